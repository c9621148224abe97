"""Comparing JSON exactly: numbers by their digits, objects with their key order."""

from __future__ import annotations

import json

import orjson

from wal2http_tui.replication.values import JsonValue


class Digits(str):
    """A JSON number, as written."""


class Pairs(list):
    """A JSON object's members, in order."""


def exact(text: str | bytes) -> str:
    """JSON text -> a canonical rendering that keeps what equality of json.loads output would
    hide (a number's digits: 1.0 is not 1; key order) and drops what does not matter (spaces,
    string escapes)."""
    return canonical(
        json.loads(text, parse_int=Digits, parse_float=Digits, object_pairs_hook=Pairs)
    )


def canonical(value: object) -> str:
    if isinstance(value, Digits):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render(value: JsonValue) -> str:
    return orjson.dumps(value).decode()
