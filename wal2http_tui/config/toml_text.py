"""Python values as TOML, the way every edit writes them: on one line, inline tables spaced as
``{ a = 1 }``, and a string that replaces a 'literal string' kept literal when it can."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Item, String, StringType

from wal2http_tui.config.keys import KeyPath, format_key_path

_NOT_IN_LITERAL_STRING = re.compile(r"['\x00-\x08\x0a-\x1f\x7f]")


def render_key(key: KeyPath) -> str:
    """A key, or a dotted key, as TOML writes it (quoted where a bare key cannot be)."""
    parts = []
    for part in key:
        if isinstance(part, int):
            raise TypeError(f"{format_key_path(key)}: an array index is not part of a TOML key")
        parts.append(tomlkit.key(part).as_string())
    return ".".join(parts)


def render_value(value: Any, *, literal: bool = False) -> str:
    """TOML text for a value; ``literal`` writes a string as a 'literal string' if it can be one."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        literal = literal and not _NOT_IN_LITERAL_STRING.search(value)
        return tomlkit.string(value, literal=literal).as_string()
    if isinstance(value, bool | int | float):
        return tomlkit.item(value).as_string()
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{render_key((str(k),))} = {render_value(v)}" for k, v in value.items())
        return f"{{ {pairs} }}" if pairs else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")


def toml_item(value: Any) -> Item:
    """A tomlkit item for ``value``, formatted as ``render_value`` writes it."""
    item = tomlkit.parse(f"v = {render_value(value)}").item("v")
    assert isinstance(item, Item)  # one key = value line: never an out-of-order table's proxy
    return item


def is_literal_string(item: object) -> bool:
    """Whether a tomlkit item is a single-line 'literal string'."""
    return isinstance(item, String) and item.type is StringType.SLL


def nest(keys: KeyPath, value: Any) -> Any:
    """``value`` under the tables ``keys`` name: ``("a", "b"), 1`` -> ``{"a": {"b": 1}}``."""
    for key in reversed(keys):
        value = {key: value}
    return value
