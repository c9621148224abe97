"""Through the whole engine (walsender, decoder, values, events): every value equals to_jsonb()."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support.all_types import COLUMNS, OPTIONAL_COLUMNS, TYPES_SQL, supported
from tests.support.engine import http_sink, make_server, running
from tests.support.exact_json import Digits, Pairs, canonical, exact
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.replication.values import session_options

# What PostgreSQL itself does: on every version found (tests/conftest.py).
pytestmark = pytest.mark.every_version


def _to_jsonb(pg, table: str) -> dict[int, dict[str, str]]:
    """id -> column -> canonical to_jsonb rendering, in the engine's session settings."""
    with psycopg.connect(pg.dsn, options=session_options()) as conn:
        rows = conn.execute(
            f"SELECT id, key, value::text FROM {table}, jsonb_each(to_jsonb({table}))"
        )
        result: dict[int, dict[str, str]] = {}
        for row_id, column, value in rows:
            result.setdefault(row_id, {})[column] = exact(value)
    return result


def _rows(body: bytes, field: str) -> dict[str, str]:
    event = json.loads(body, parse_int=Digits, parse_float=Digits, object_pairs_hook=Pairs)
    row = dict(event)[field]
    return {column: canonical(value) for column, value in row}


def test_inserted_updated_and_deleted_rows_equal_to_jsonb(pg, tmp_path):
    pg.execute(TYPES_SQL)
    columns = list(COLUMNS) + [c for probe, c in OPTIONAL_COLUMNS if supported(pg, probe)]
    definitions = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    pg.execute(f"CREATE TABLE catalog (id int PRIMARY KEY, {definitions})")
    pg.execute("ALTER TABLE catalog REPLICA IDENTITY FULL")
    rows = max(len(values) for _, _, values in columns) + 1
    with WebhookReceiver() as receiver:
        text = (
            f'connection_string = "{pg.dsn}"\nslot_name = "vals"\npublication_name = "vals_pub"\n'
            f"{http_sink(receiver.url)}"
        )
        with running(make_server(tmp_path, text)):
            for row in range(rows):
                names = ["id"] + [name for name, _, values in columns if row < len(values)]
                exprs = [str(row)] + [v[row] for _, _, v in columns if row < len(v)]
                pg.execute(f"INSERT INTO catalog ({', '.join(names)}) VALUES ({', '.join(exprs)})")
            inserted = _to_jsonb(pg, "catalog")
            pg.execute("UPDATE catalog SET id = id + 1000")
            updated = _to_jsonb(pg, "catalog")
            pg.execute("DELETE FROM catalog")
            receiver.wait_for_events(3 * rows, timeout=60)
    bodies = [request.body for request in receiver.requests]
    ops = [json.loads(body)["op"] for body in bodies]
    assert ops == ["insert"] * rows + ["update"] * rows + ["delete"] * rows
    by_id: dict[tuple[str, str, int], dict[str, str]] = {}
    for body in bodies:
        op = json.loads(body)["op"]
        for field in ("new", "old"):
            if json.loads(body)[field] is not None:
                row = _rows(body, field)
                by_id[op, field, int(row["id"])] = row
    checks = []
    for row in range(rows):
        checks += [
            ("insert", "new", row, inserted[row]),
            ("update", "new", row + 1000, updated[row + 1000]),
            ("update", "old", row, inserted[row]),
            ("delete", "old", row + 1000, updated[row + 1000]),
        ]
    mismatches = []
    for op, field, row_id, theirs in checks:
        ours = by_id[op, field, row_id]
        for column, expected in theirs.items():
            if ours.get(column) != expected:
                mismatches.append(
                    f"{op} {field} id {row_id} {column}: {ours.get(column)} != {expected}"
                )
    assert not mismatches, "\n".join(mismatches)


def test_rows_read_by_the_initial_snapshot_equal_to_jsonb(pg, tmp_path):
    pg.execute(TYPES_SQL)
    columns = list(COLUMNS) + [c for probe, c in OPTIONAL_COLUMNS if supported(pg, probe)]
    definitions = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    pg.execute(f"CREATE TABLE catalog (id int PRIMARY KEY, {definitions})")
    rows = max(len(values) for _, _, values in columns) + 1
    for row in range(rows):
        names = ["id"] + [name for name, _, values in columns if row < len(values)]
        exprs = [str(row)] + [v[row] for _, _, v in columns if row < len(v)]
        pg.execute(f"INSERT INTO catalog ({', '.join(names)}) VALUES ({', '.join(exprs)})")
    expected = _to_jsonb(pg, "catalog")
    with WebhookReceiver() as receiver:
        text = (
            f'connection_string = "{pg.dsn}"\nslot_name = "reads"\npublication_name = "reads_pub"\n'
            "initial_snapshot = true\nbackfill_chunk_rows = 2\n"
            f"{http_sink(receiver.url, event_format='debezium')}"
        )
        with running(make_server(tmp_path, text)):
            receiver.wait_for_events(rows, timeout=60)
    bodies = [request.body for request in receiver.requests]
    envelopes = [json.loads(body) for body in bodies]
    assert [e["op"] for e in envelopes] == ["r"] * rows
    assert [e["source"]["snapshot"] for e in envelopes] == ["true"] * (rows - 1) + ["last"]
    assert all(e["before"] is None for e in envelopes)
    assert [e["backfill"]["chunk"] for e in envelopes] == [i // 2 for i in range(rows)]
    mismatches = []
    for body in bodies:
        ours = _rows(body, "after")
        for column, value in expected[int(ours["id"])].items():
            if ours.get(column) != value:
                mismatches.append(f"read id {ours['id']} {column}: {ours.get(column)} != {value}")
    assert not mismatches, "\n".join(mismatches)


GENERATED = (
    "CREATE TABLE priced (id int PRIMARY KEY, net numeric(12, 2), "
    "gross numeric GENERATED ALWAYS AS (net * 1.21) STORED, "
    "label text GENERATED ALWAYS AS ('#' || id::text) STORED)"
)


def test_stored_generated_columns_are_published_on_18_and_equal_to_jsonb(pg, tmp_path):
    """Read by the initial snapshot (row 1) and streamed (row 2): the same columns, the
    generated ones included, each equal to to_jsonb."""
    pg.execute(GENERATED)
    pg.execute("INSERT INTO priced (id, net) VALUES (1, 10.00)")
    with WebhookReceiver() as receiver:
        text = (
            f'connection_string = "{pg.dsn}"\nslot_name = "gen"\npublication_name = "gen_pub"\n'
            f"publish_generated_columns = true\ninitial_snapshot = true\n"
            f"{http_sink(receiver.url)}"
        )
        server = make_server(tmp_path, text)
        if pg.major < 18:
            with running(server, state="error"):
                detail = server.snapshot().detail + server.snapshot().last_error
            assert "publish_generated_columns = true needs PostgreSQL 18 or later" in detail
            return
        with running(server):
            assert pg.execute(
                "SELECT pubgencols::text FROM pg_publication WHERE pubname = 'gen_pub'"
            ) == [("s",)]
            receiver.wait_for_events(1)
            pg.execute("INSERT INTO priced (id, net) VALUES (2, 0.07)")
            receiver.wait_for_events(2)
            expected = _to_jsonb(pg, "priced")
    ops = [json.loads(request.body)["op"] for request in receiver.requests]
    rows = [_rows(request.body, "new") for request in receiver.requests]
    assert ops == ["read", "insert"]
    assert rows == [expected[1], expected[2]]
    assert set(rows[0]) == set(rows[1]) == {"id", "net", "gross", "label"}
