"""Key paths: how the package names a place in the configuration file.

A key path is a tuple of keys and array indices, ``("event_sinks", "http", 1, "url")``; messages
write it the way TOML would, ``event_sinks.http[1].url``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TypeAlias

KeyPath: TypeAlias = tuple[str | int, ...]

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_key_path(path: Sequence[str | int]) -> str:
    """``("event_sinks", "http", 1, "url")`` -> ``event_sinks.http[1].url``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        text += f".{key}" if text else key
    return text
