"""How configuration errors show what the file holds: its TOML type, and the value unless secret."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from datetime import date, time

_TYPE_NAMES = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    ((date, time), "a date/time"),
)


def show(value: object) -> str:
    """A value as TOML writes it; a long string cut to about 80 characters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '..."'
    return str(value)


def describe(value: object, *, secret: bool = False) -> str:
    """``a string ("10")``: the TOML type of a value, and the value unless it is secret."""
    name = next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), "a value")
    if secret or isinstance(value, list | dict):
        return name
    return f"{name} ({show(value)})"


def unquote_hint(value: object) -> str:
    """A hint for a boolean or a number written as a string."""
    if isinstance(value, str) and re.fullmatch(r"\s*(true|false|[-+]?[0-9_.eE+-]+)\s*", value):
        return "; write it without quotes"
    return ""


def unknown_key_message(key: str, allowed: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean `{close[0]}`?"
    return f"unknown key; the keys of {where} are: {', '.join(allowed)}"
