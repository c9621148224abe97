"""Column values converted as the engine does equal what PostgreSQL's own ``to_jsonb()`` renders,
for every type, on a real server."""

from __future__ import annotations

import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import make_conninfo

from tests.support.all_types import COLUMNS, OPTIONAL_COLUMNS, TYPES_SQL, supported
from tests.support.exact_json import exact, render
from wal2http_tui.replication.messages import UNCHANGED_TOAST, ColumnInfo, RelationInfo
from wal2http_tui.replication.values import (
    SESSION_SETTINGS,
    TypeCatalog,
    ValueConverter,
    session_options,
)

# What PostgreSQL itself does: on every version found (tests/conftest.py).
pytestmark = pytest.mark.every_version


def session(pg, **kwargs) -> psycopg.Connection:
    return psycopg.connect(pg.dsn, autocommit=True, options=session_options(), **kwargs)


def read_tuple(data: bytes, offset: int) -> tuple[tuple[str | None, ...], int]:
    """A pgoutput TupleData at ``offset`` -> (values, offset after it)."""
    (count,) = struct.unpack_from(">h", data, offset)
    offset += 2
    values: list = []
    for _ in range(count):
        kind = data[offset : offset + 1]
        offset += 1
        if kind == b"t":
            (length,) = struct.unpack_from(">i", data, offset)
            values.append(data[offset + 4 : offset + 4 + length].decode())
            offset += 4 + length
        else:
            values.append({b"n": None, b"u": UNCHANGED_TOAST}[kind])
    return tuple(values), offset


@dataclass
class Change:
    kind: str  # 'I' or 'U'
    new: tuple
    old: tuple | None = None
    old_kind: str | None = None


def pgoutput_changes(conn: psycopg.Connection, slot: str, publication: str) -> list[Change]:
    """Inserts and updates as pgoutput (text format) renders them, in this session's settings."""
    # Decoding stops at the flushed WAL and the cluster commits asynchronously: a synchronous
    # commit of a transaction that writes WAL (a logical message, which pgoutput leaves out by
    # default) flushes everything before it.
    conn.execute("SET synchronous_commit = on")
    conn.execute("SELECT pg_logical_emit_message(true, 'flush', '')")
    rows = conn.execute(
        "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, publication),
    ).fetchall()
    changes = []
    for (data,) in rows:
        kind = chr(data[0])
        if kind == "I":
            assert data[5:6] == b"N"
            new, _ = read_tuple(data, 6)
            changes.append(Change("I", new))
        elif kind == "U":
            offset, old, old_kind = 5, None, None
            if data[offset : offset + 1] in (b"K", b"O"):
                old_kind = chr(data[offset])
                old, offset = read_tuple(data, offset + 1)
            assert data[offset : offset + 1] == b"N"
            new, _ = read_tuple(data, offset + 1)
            changes.append(Change("U", new, old, old_kind))
    return changes


def relation_of(conn: psycopg.Connection, table: str) -> RelationInfo:
    columns = conn.execute(
        "SELECT a.attname, a.atttypid, a.atttypmod, coalesce(i.indisprimary, false) "
        "FROM pg_attribute a LEFT JOIN pg_index i "
        "ON i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey) "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (table,),
    ).fetchall()
    oid = conn.execute("SELECT %s::regclass::oid", (table,)).fetchone()[0]
    return RelationInfo(oid, "public", table, "d", tuple(ColumnInfo(*c) for c in columns))


def catalog_for(pg, **kwargs) -> TypeCatalog:
    return TypeCatalog(lambda: session(pg, **kwargs))


def test_every_type_converts_to_what_to_jsonb_renders(pg):
    pg.execute(TYPES_SQL)
    columns = list(COLUMNS)
    columns += [column for probe, column in OPTIONAL_COLUMNS if supported(pg, probe)]
    definitions = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    pg.execute(f"CREATE TABLE catalog (id int PRIMARY KEY, gone int, {definitions})")
    pg.execute("ALTER TABLE catalog DROP COLUMN gone")
    pg.execute("CREATE PUBLICATION pub FOR TABLE catalog")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    rows = max(len(values) for _, _, values in columns) + 1  # the last row is all NULL
    with session(pg) as conn:
        for row in range(rows):
            names = ["id"] + [name for name, _, values in columns if row < len(values)]
            exprs = [str(row)] + [values[row] for _, _, values in columns if row < len(values)]
            conn.execute(f"INSERT INTO catalog ({', '.join(names)}) VALUES ({', '.join(exprs)})")

        changes = pgoutput_changes(conn, "slot", "pub")
        relation = relation_of(conn, "catalog")
        expected = {
            (row, column): value
            for row, column, value in conn.execute(
                "SELECT id, key, value::text FROM catalog, jsonb_each(to_jsonb(catalog))"
            )
        }
        converter = ValueConverter(catalog_for(pg))
        convert_row = converter.row_converter(relation)
        types = {name: sql_type for name, sql_type, _ in columns}

        assert [change.kind for change in changes] == ["I"] * rows
        mismatches = []
        for row, change in enumerate(changes):
            values, unchanged = convert_row(change.new)
            assert unchanged == []
            assert list(values) == [column.name for column in relation.columns]
            for column, value in values.items():
                ours, theirs = render(value), expected[row, column]
                if exact(ours) != exact(theirs):
                    text = change.new[list(values).index(column)]
                    mismatches.append(
                        f"row {row} {column} ({types.get(column, 'int')}) text {text!r}:\n"
                        f"    ours     {ours}\n    to_jsonb {theirs}"
                    )
    assert not mismatches, f"{len(mismatches)} values differ:\n" + "\n".join(mismatches)


def counting_cursor(executed: list[str]) -> type[psycopg.Cursor]:
    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            executed.append(str(query))
            return super().execute(query, params, **kwargs)

    return CountingCursor


def test_session_settings_apply_to_a_replication_connection(pg):
    conninfo = make_conninfo(pg.dsn, replication="database", options=session_options())
    conn = pq.PGconn.connect(conninfo.encode())
    try:
        assert conn.status == pq.ConnStatus.OK, conn.get_error_message()
        for name, value in SESSION_SETTINGS.items():
            result = conn.exec_(f"SHOW {name}".encode())
            assert result.status == pq.ExecStatus.TUPLES_OK, conn.get_error_message()
            assert result.get_value(0, 0).decode() == value
    finally:
        conn.finish()


def test_other_types_are_looked_up_once_then_cached(pg):
    pg.execute("CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE DOMAIN score AS numeric")
    mood, moods, score = (
        pg.execute(f"SELECT '{name}'::regtype::oid")[0][0] for name in ("mood", "mood[]", "score")
    )
    executed: list[str] = []
    catalog = catalog_for(pg, cursor_factory=counting_cursor(executed))
    converter = ValueConverter(catalog)

    assert converter.converter_for(1185)('{"2024-01-01 00:00:00+00"}') == [
        "2024-01-01T00:00:00+00:00"
    ]
    assert executed == []  # built-in types are known without asking

    assert converter.converter_for(mood)("happy") == "happy"
    assert converter.converter_for(mood)("sad") == "sad"
    assert len(executed) == 1
    assert converter.converter_for(moods)("{sad,NULL}") == ["sad", None]  # the array, not mood
    assert render(converter.converter_for(score)("1.50")) == "1.50"
    relation = RelationInfo(
        1, "public", "t", "d", (ColumnInfo("m", mood, -1, False), ColumnInfo("s", score, -1, False))
    )
    assert render(converter.row_converter(relation)(("sad", "2"))[0]) == '{"m":"sad","s":2}'
    assert render(ValueConverter(catalog).converter_for(score)("-1")) == "-1"
    assert len(executed) == 3

    converter.invalidate()
    converter.converter_for(mood)
    assert len(executed) == 4
    catalog.close()


def test_catalog_serves_other_threads_and_reconnects(pg):
    pg.execute("CREATE TYPE pair AS (a int, b text); CREATE DOMAIN positive AS int")
    pair, positive = (pg.execute(f"SELECT '{t}'::regtype::oid")[0][0] for t in ("pair", "positive"))
    connects = []

    def connect() -> psycopg.Connection:
        connects.append(threading.get_ident())
        return session(pg, application_name="values-catalog")

    converter = ValueConverter(TypeCatalog(connect))
    with ThreadPoolExecutor(1) as worker:
        convert_pair = worker.submit(converter.converter_for, pair).result()
        assert convert_pair('(1,"x y")') == {"a": 1, "b": "x y"}
        assert connects == [worker.submit(threading.get_ident).result()]  # lazily, there

        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'values-catalog'"
        )
        assert worker.submit(converter.converter_for, positive).result()("3") == 3
    assert len(connects) == 2


def test_json_casts_are_computed_by_the_server(pg):
    pg.execute(
        "CREATE TYPE weather AS ENUM ('sun', 'rain');"
        "CREATE FUNCTION weather_to_json(weather) RETURNS json LANGUAGE sql IMMUTABLE"
        "    AS $$ SELECT json_build_object('sky', $1::text, 'mm', 1.50) $$;"
        "CREATE CAST (weather AS json) WITH FUNCTION weather_to_json(weather)"
    )
    weather = pg.execute("SELECT 'weather'::regtype::oid")[0][0]
    converter = ValueConverter(catalog_for(pg))
    assert render(converter.converter_for(weather)("rain")) == '{"mm": 1.50, "sky": "rain"}'


def test_unchanged_toast_is_reported_or_filled_from_the_full_old_row(pg):
    big = "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i"
    for table in ("keyed", "whole"):
        pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, big text, note text)")
    pg.execute("ALTER TABLE whole REPLICA IDENTITY FULL")
    pg.execute("CREATE PUBLICATION pub FOR TABLE keyed, whole")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    for table in ("keyed", "whole"):
        pg.execute(f"INSERT INTO {table} VALUES (1, ({big}), 'before')")
        pg.execute(f"UPDATE {table} SET note = 'after'")
    big_text = pg.execute(big)[0][0]

    with session(pg) as conn:
        updates = [c for c in pgoutput_changes(conn, "slot", "pub") if c.kind == "U"]
        keyed, whole = (relation_of(conn, table) for table in ("keyed", "whole"))
    converter = ValueConverter()

    assert updates[0].new[1] is UNCHANGED_TOAST
    assert converter.row_converter(keyed)(updates[0].new) == ({"id": 1, "note": "after"}, ["big"])

    assert updates[1].old_kind == "O"
    assert updates[1].new[1] is UNCHANGED_TOAST
    values, unchanged = converter.row_converter(whole)(updates[1].new, old=updates[1].old)
    assert values == {"id": 1, "big": big_text, "note": "after"}
    assert unchanged == []


def test_timestamptz_offsets_in_other_time_zones(pg):
    """SESSION_SETTINGS pins UTC, but any zone's offsets (even LMT's seconds) come out right."""
    stamps = (
        "ARRAY['2024-01-02 03:04:05.5+00', '2024-07-01 00:00+00', '1850-01-01 00:00:00+00', "
        "'0044-03-15 12:00:00+00 BC', 'infinity']::timestamptz[]"
    )
    convert = ValueConverter().converter_for(1184)
    with session(pg) as conn:
        for zone in ("Asia/Kolkata", "America/St_Johns", "Europe/Paris", "America/Los_Angeles"):
            conn.execute(f"SET TimeZone = '{zone}'")
            for text, rendered in conn.execute(
                f"SELECT v::text, to_jsonb(v)::text FROM unnest({stamps}) v"
            ):
                assert render(convert(text)) == rendered, (zone, text)
