"""Every change ``ConfigDocument`` makes to the text: each takes the ``TomlLayout`` of the text
and returns the new text, changed only where the edit is.

Why not let tomlkit write the edited document back (``document.as_string()``)? Two reasons, both
seen with tomlkit 0.15.2:

- It does not reproduce every valid file byte for byte, edited or not: it writes every header of
  an array of tables the way the first one is written (``[[ event_sinks.http ]]`` or
  ``[["event_sinks".http]]`` become ``[[event_sinks.http]]``) and drops the space before the
  ``}`` that closes an inline table after a date. Writing the whole document back after changing
  one value would rewrite lines nobody edited.
- Its model keeps the comment lines and blank lines that follow a table's last key in that
  table, so the comment paragraph above a header belongs, for tomlkit, to the table before it.
  A key or a table it appends lands after that paragraph, away from its table; removing a table
  takes the next table's comment with it and leaves its own above the gap. Its public API also
  adds a key only at the end of a table, without the indentation or the CRLF line ending of the
  keys around it.

Here a value is replaced within its own span, a comment paragraph goes with the header just
below it, a comment line right after a table's keys (no blank line between) stays with that
table, a new line copies the indentation and line ending of the keys it joins, and a removal at
the end of the file leaves no blank lines there. tomlkit still writes the values (``toml_text``)
and edits inside inline tables and arrays (``ConfigDocument``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.layout import Header, Statement, TomlLayout
from wal2http_tui.config.toml_text import nest, render_key, render_value


def add_key(layout: TomlLayout, path: KeyPath, depth: int, value: Any) -> str:
    """Add the key ``path[depth]`` (its value nested under the rest of ``path``) to the table
    ``path[:depth]``, in the body of the table that holds it: after its last key."""
    table, key = path[:depth], path[depth]
    if isinstance(key, int):
        raise KeyError(f"{format_key_path(path[: depth + 1])} does not exist")
    value = nest(path[depth + 1 :], value)
    if table == () or layout.header(table) is not None:
        return _add_statement(layout, table, (key,), value)
    # The table is made by dotted keys (``a.b = 1`` makes ``a``), or only by its sub-tables.
    dotted = [
        s
        for s in layout.statements.values()
        if s.path[: len(table)] == table and len(s.table) < len(table)
    ]
    if dotted:
        anchor = max(dotted, key=lambda s: s.end)
        return _insert_line(layout, anchor.end, anchor, (*table[len(anchor.table) :], key), value)
    if not any(isinstance(part, int) for part in table):
        return add_table(layout, f"[{render_key(table)}]", {key: value}, None)
    raise ValueError(f"cannot add {format_key_path(path)} as the file is written")


def add_table(
    layout: TomlLayout, header: str, table: Mapping[str, Any], after: KeyPath | None
) -> str:
    """Add a table after the last table under ``after`` (else at the end of the file)."""
    text, nl = layout.text, _newline(layout.text)
    lines = [header, *(f"{render_key((k,))} = {render_value(v)}" for k, v in table.items())]
    block = nl + nl.join(lines) + nl
    below = [] if after is None else _headers_under(layout, after)
    pos = _block(layout, below[-1])[1] if below else len(text)
    if pos > 0 and not text[:pos].endswith("\n"):
        block = nl + block
    return text[:pos] + (block.removeprefix(nl) if pos == 0 else block) + text[pos:]


def make_array_of_tables(layout: TomlLayout, header: Header) -> str:
    """``[path]`` -> ``[[path]]``: the table becomes the first of an array of tables."""
    text = layout.text
    inner = text[header.bracket_start + 1 : header.bracket_end - 1]
    return f"{text[: header.bracket_start]}[[{inner}]]{text[header.bracket_end :]}"


def make_array_of_inline_tables(
    layout: TomlLayout, statement: Statement, table: Mapping[str, Any]
) -> str:
    """``key = { ... }`` -> ``key = [{ ... }, { table }]``: the inline table as written, then
    ``table``."""
    written = layout.text[statement.value_start : statement.value_end]
    return replace_value(layout, statement, f"[{written}, {render_value(table)}]")


def remove_table(layout: TomlLayout, path: KeyPath) -> str:
    """Remove every table under ``path`` with the comment lines just above its header, and the
    dotted keys that make part of it."""
    blocks = [_block(layout, header) for header in _headers_under(layout, path)]
    spans = [(start, end) for start, _, end in blocks]
    spans += [
        (s.start, s.end)
        for s in layout.statements.values()
        if s.path[: len(path)] == path and not any(start <= s.start < end for start, end in spans)
    ]
    return _remove_spans(layout.text, spans)


def remove_key(layout: TomlLayout, statement: Statement) -> str:
    """Remove a ``key = value`` line (all its lines, for a multi-line value)."""
    return _remove_spans(layout.text, [(statement.start, statement.end)])


def replace_value(layout: TomlLayout, statement: Statement, value_text: str) -> str:
    """Write ``value_text`` in place of the value of a ``key = value`` line; the key and the
    comment after the value stay as they are."""
    text = layout.text
    return text[: statement.value_start] + value_text + text[statement.value_end :]


def _remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        if end >= len(text):  # no blank lines left at the end of the file
            while re.search(r"\n[ \t]*\r?\n$", text[:start]):
                start = text.rfind("\n", 0, start - 1) + 1
        text = text[:start] + text[end:]
    return text


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _add_statement(layout: TomlLayout, table: KeyPath, key: KeyPath, value: Any) -> str:
    body = [s for s in layout.statements.values() if s.table == table]
    if body:
        anchor = max(body, key=lambda s: s.end)
        return _insert_line(layout, anchor.end, anchor, key, value)
    header = layout.header(table) if table else None
    if header is not None:
        return _insert_line(layout, header.end, None, key, value)
    if layout.headers:  # the top level, before the first table and the comments above it
        start, nl = _block(layout, layout.headers[0])[0], _newline(layout.text)
        line = f"{render_key(key)} = {render_value(value)}{nl}"
        return layout.text[:start] + line + nl + layout.text[start:]
    return _insert_line(layout, len(layout.text), None, key, value)


def _insert_line(
    layout: TomlLayout, pos: int, like: Statement | None, key: KeyPath, value: Any
) -> str:
    """Insert ``key = value`` at ``pos`` (a line start), indented like ``like``."""
    text, nl = layout.text, _newline(layout.text)
    indent = ""
    if like is not None:
        line = text[like.start : like.value_start]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
    new_line = f"{indent}{render_key(key)} = {render_value(value)}{nl}"
    if pos > 0 and not text[:pos].endswith("\n"):
        new_line = nl + new_line
    return text[:pos] + new_line + text[pos:]


def _headers_under(layout: TomlLayout, path: KeyPath) -> list[Header]:
    return [h for h in layout.headers if h.path[: len(path)] == path]


def _block(layout: TomlLayout, header: Header) -> tuple[int, int, int]:
    """Where a table's lines start (with the comment lines just above its header), where its
    keys end (with comment lines right after them), and where it ends (with the blank lines
    after it). A comment paragraph after a blank line is left to what follows."""
    text, headers = layout.text, layout.headers
    following = headers[headers.index(header) + 1 :]
    limit = _block_start(text, following[0]) if following else len(text)
    ends = [s.end for s in layout.statements.values() if header.start <= s.start < limit]
    body_end = _skip_lines(text, max([header.end, *ends]), limit, comments=True)
    return (
        _block_start(text, header),
        body_end,
        _skip_lines(text, body_end, limit, comments=False),
    )


def _skip_lines(text: str, pos: int, limit: int, *, comments: bool) -> int:
    """Past the lines from ``pos`` that are comments (or, ``comments=False``, blank)."""
    while pos < limit:
        end = text.find("\n", pos, limit)
        line = text[pos : limit if end < 0 else end].strip()
        if not (line.startswith("#") if comments else not line):
            break
        pos = limit if end < 0 else end + 1
    return pos


def _block_start(text: str, header: Header) -> int:
    start = header.start
    while start > 0:
        previous = text.rfind("\n", 0, start - 1) + 1
        if not text[previous:start].lstrip().startswith("#"):
            break
        start = previous
    return start
