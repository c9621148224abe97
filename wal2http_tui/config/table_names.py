"""Table names as the file writes them: ``schema.table`` or ``table``, a part double-quoted
(with ``""`` for a quote) when it holds a dot; and the sinks' table patterns, where a bare
``*`` part stands for any schema or any table (``public.*``, ``*.audit_log``, ``*.*``)."""

from __future__ import annotations

import re
from typing import NamedTuple

_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([^".]+)')
WILDCARD = "*"


def _parts(name: object) -> list[tuple[str, bool]]:
    """Each part of ``name`` and whether it was quoted; ValueError when it is not a name."""
    if not isinstance(name, str):
        raise ValueError("not a string")
    parts: list[tuple[str, bool]] = []
    position = 0
    while True:
        match = _NAME_PART.match(name, position)
        if match is None:
            raise ValueError(f"not a table name: {name!r}")
        quoted, bare = match.groups()
        part = quoted.replace('""', '"') if quoted is not None else bare
        if not part.strip():
            raise ValueError(f"not a table name: {name!r}")
        parts.append((part, quoted is not None))
        position = match.end()
        if position == len(name):
            return parts
        if name[position] != "." or len(parts) == 2:
            raise ValueError(f"not a table name: {name!r}")
        position += 1


def split_table_name(name: object) -> tuple[str, ...]:
    """``schema.table`` or ``table`` -> its one or two parts. Names are taken as written (no
    case folding). ValueError for anything else."""
    return tuple(part for part, _ in _parts(name))


class TablePattern(NamedTuple):
    """A sink's ``tables`` entry: None for a part that matches anything."""

    schema: str | None
    table: str | None

    def matches(self, schema: str, table: str) -> bool:
        return (self.schema is None or self.schema == schema) and (
            self.table is None or self.table == table
        )

    def __str__(self) -> str:
        return ".".join(_written(part) for part in self)


def _written(part: str | None) -> str:
    if part is None:
        return WILDCARD
    if "." in part or '"' in part or part == WILDCARD:
        return '"' + part.replace('"', '""') + '"'
    return part


def parse_table_pattern(text: object) -> TablePattern:
    """``schema.table`` with ``*`` for a whole part; ``"*"`` (quoted) is a table named ``*``.
    ValueError naming what is wrong."""
    parts = _parts(text)
    if len(parts) != 2:
        raise ValueError("a pattern names the schema and the table")
    pattern: list[str | None] = []
    for part, quoted in parts:
        if not quoted and WILDCARD in part and part != WILDCARD:
            raise ValueError("`*` stands for a whole part")
        pattern.append(None if part == WILDCARD and not quoted else part)
    return TablePattern(*pattern)
