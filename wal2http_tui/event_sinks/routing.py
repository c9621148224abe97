"""What one sink receives: the tables and operations its filters let through (``tables``,
``ops``), and the columns it never sees (``exclude_columns``).

A ``Route`` decides per (operation, schema, table), once: the answers are cached, so the hot
path pays a dictionary look-up per change. Logical decoding messages belong to no table: only
``ops`` filters them. Excluded columns are removed from the rows' JSON text before an event is
built, so they are in no part of any payload format (``new``, ``old``, ``key``,
``unchanged_toast``, Debezium's ``before``/``after``, CloudEvents' ``data``, Hook0's payload);
the other values keep their exact text. Event ids do not depend on the route.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from json.scanner import make_scanner

import orjson

from wal2http_tui.config.model import BaseSinkConfig
from wal2http_tui.config.table_names import TablePattern, parse_table_pattern
from wal2http_tui.replication.transactions import Change

ROW_OPERATIONS = frozenset({"insert", "update", "delete", "read"})
_NO_COLUMNS: frozenset[str] = frozenset()
# Python's own JSON scanner finds where each value of a row ends; numbers are kept as text, so
# nothing is converted (only the extents are used: the text is sliced, never re-rendered).
_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=str)
_SCAN = make_scanner(_DECODER)  # type: ignore[arg-type]  # typeshed is wrong: it takes a decoder
_SPACE = " \t\n\r"


class Route:
    def __init__(
        self,
        tables: Sequence[str] | None = None,
        ops: Iterable[str] | None = None,
        exclude_columns: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.tables = None if tables is None else tuple(parse_table_pattern(t) for t in tables)
        self.ops = None if ops is None else frozenset(ops)
        self.exclusions: tuple[tuple[TablePattern, frozenset[str]], ...] = tuple(
            (parse_table_pattern(pattern), frozenset(columns))
            for pattern, columns in (exclude_columns or {}).items()
        )
        self.everything = self.tables is None and self.ops is None and not self.exclusions
        self._wanted: dict[tuple[str, str, str], bool] = {}
        self._hidden: dict[tuple[str, str], frozenset[str]] = {}

    @classmethod
    def of(cls, config: BaseSinkConfig) -> Route:
        return cls(config.tables, config.ops, config.exclude_columns)

    def receives_table(self, schema: str, table: str) -> bool:
        """Whether some change of this table can reach the sink (whatever its operation)."""
        return self.tables is None or any(p.matches(schema, table) for p in self.tables)

    def wants(self, op: str, schema: str, table: str) -> bool:
        key = (op, schema, table)
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = self._wanted[key] = (self.ops is None or op in self.ops) and (
                op == "message" or self.receives_table(schema, table)
            )
        return wanted

    def wants_any(self, kinds: Iterable[tuple[str, str, str]]) -> bool:
        """Whether any of the (operation, schema, table) of a transaction reaches the sink."""
        return self.everything or any(self.wants(*kind) for kind in kinds)

    def hidden_columns(self, schema: str, table: str) -> frozenset[str]:
        key = (schema, table)
        hidden = self._hidden.get(key)
        if hidden is None:
            hidden = self._hidden[key] = _NO_COLUMNS.union(
                *(columns for pattern, columns in self.exclusions if pattern.matches(*key))
            )
        return hidden

    def project(self, change: Change) -> Change:
        """``change`` without the columns this sink does not see."""
        if not self.exclusions or change.op not in ROW_OPERATIONS:
            return change
        hidden = self.hidden_columns(change.schema, change.table)
        if not hidden:
            return change
        return change._replace(
            new=drop_columns(change.new, hidden),
            old=drop_columns(change.old, hidden),
            key=drop_columns(change.key, hidden),
            unchanged_toast=tuple(c for c in change.unchanged_toast if c not in hidden),
        )

    def summary(self) -> str:
        """A compact form for the Sinks pane: ``2 tables · 3 ops · 1 column hidden``."""
        if self.everything:
            return "everything"
        parts = []
        if self.tables is not None:
            parts.append(_count(len(self.tables), "table"))
        if self.ops is not None:
            parts.append(_count(len(self.ops), "op"))
        hidden = {column for _, columns in self.exclusions for column in columns}
        if hidden:
            parts.append(_count(len(hidden), "column") + " hidden")
        return " · ".join(parts)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def drop_columns(row: str | None, hidden: frozenset[str]) -> str | None:
    """A JSON object's text without the members named in ``hidden``; the others' text as it
    was, byte for byte."""
    if row is None or not any(_json_name(name) in row for name in hidden):
        return row
    kept = []
    position = _skip_space(row, 1)
    while row[position] != "}":
        name, end = _SCAN(row, position)
        value_start = _skip_space(row, _skip_space(row, end) + 1)  # past the ':'
        _, value_end = _SCAN(row, value_start)
        if name not in hidden:
            kept.append(row[position:value_end])
        position = _skip_space(row, value_end)
        if row[position] == ",":
            position = _skip_space(row, position + 1)
    return "{" + ",".join(kept) + "}"


@functools.cache
def _json_name(name: str) -> str:
    """A column name as it stands in a row's JSON text (quoted, escaped), rendered once."""
    return orjson.dumps(name).decode()


def _skip_space(text: str, position: int) -> int:
    while text[position] in _SPACE:
        position += 1
    return position
