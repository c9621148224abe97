"""Payloads on screen: JSON re-indented token by token, so every value stays byte-exact.

``json.loads`` would turn ``1.10`` into ``1.1`` and round big numbers; the engine embeds numeric
and jsonb values exactly as PostgreSQL rendered them, so the inspector only adds whitespace.
"""

from __future__ import annotations

from textual.content import Content
from textual.highlight import highlight

INDENT = "  "


def pretty_json(text: str) -> str:
    """``text`` with a line per member and element; tokens are copied, never re-encoded.

    Text that is not JSON comes back re-indented as far as its brackets go, which is still
    readable, and never loses a character that is not whitespace.
    """
    out: list[str] = []
    depth = 0
    i, length = 0, len(text)
    while i < length:
        char = text[i]
        if char == '"':
            end = i + 1
            while end < length and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
            continue
        if char in "{[":
            closing = "}" if char == "{" else "]"
            following = _next_significant(text, i + 1)
            if following < length and text[following] == closing:
                out.append(char + closing)
                i = following + 1
                continue
            depth += 1
            out.append(char + "\n" + INDENT * depth)
        elif char in "}]":
            depth = max(0, depth - 1)
            out.append("\n" + INDENT * depth + char)
        elif char == ",":
            out.append(",\n" + INDENT * depth)
        elif char == ":":
            out.append(": ")
        elif not char.isspace():
            out.append(char)
        i += 1
    return "".join(out)


def _next_significant(text: str, start: int) -> int:
    while start < len(text) and text[start].isspace():
        start += 1
    return start


def payload_content(payload: bytes, *, raw: bool = False) -> Content:
    """The payload as sent (``raw``), or pretty and highlighted in the app's theme colours."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Content(repr(payload))
    if raw:
        return Content(text)
    return highlight(pretty_json(text), language="json")
