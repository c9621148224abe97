"""The two hot paths on the same WAL: what the pure-Python path sends, the compiled one sends,
byte for byte (but the ids and the slot's name, which name the slot each engine reads).

Two slots are made before one workload with every kind of change the stream carries: the
types the compiled rules cover and some they do not, NULLs, numbers that must keep their
digits, unchanged TOAST, REPLICA IDENTITY FULL, a column added between rows, truncates,
logical messages, and a transaction big enough to be streamed before it commits. One engine
reads each slot, one with WAL2HTTP_IMPL=python, one with native.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.support.engine import http_sink, make_server, running
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.replication import native

pytestmark = [
    pytest.mark.every_version,
    pytest.mark.skipif(native.compiled({}) is None, reason="the compiled hot path is not built"),
]

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

WORKLOAD = [
    "CREATE DOMAIN money2 AS numeric(12,2)",
    """CREATE TABLE t (
        id bigint PRIMARY KEY, i int, n numeric, f float8, b bool, s text, j jsonb, js json,
        ts timestamp, tz timestamptz, d date, u uuid, by bytea, ia int[], ta text[], m money2,
        big text)""",
    "CREATE TABLE full_t (id int, note text)",
    "ALTER TABLE full_t REPLICA IDENTITY FULL",
    """INSERT INTO t VALUES
        (1, -7, 12345678901234567890.0123456789, 1e100, true, E'é "q" \\\\ \\n\\t',
         '{"b": 1, "a": [1, 2.50]}', '{"b":1,"a":2,"a":3}', '2024-01-02 03:04:05.5',
         '2024-01-02 03:04:05.5+00', '2024-02-29',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', '{1,NULL,3}', '{a,"b c",NULL}', 12.5,
         NULL),
        (2, NULL, 'NaN', -0.0, false, '', 'null', '[]', 'infinity', '-infinity', '0044-03-15 BC',
         NULL, '', '{}', '{}', NULL, NULL),
        (3, 2147483647, -0.000001, 'Infinity', NULL, repeat('x', 5), '"s"', ' {} ', NULL, NULL,
         NULL, NULL, NULL, '[0:1]={7,8}', '{{a,b},{c,d}}', -1, NULL)""",
    # random enough not to compress below the TOAST threshold: stored out of line
    "UPDATE t SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 600) g) "
    "WHERE id = 1",
    "UPDATE t SET i = 8 WHERE id = 1",  # big is TOASTed and unchanged: not sent
    "INSERT INTO full_t VALUES (1, 'one'), (1, 'one')",
    "UPDATE full_t SET note = 'uno'",
    "DELETE FROM full_t",
    "DELETE FROM t WHERE id = 2",
    "ALTER TABLE t ADD COLUMN later text",
    "INSERT INTO t (id, later) VALUES (4, 'after the new column')",
    "SELECT pg_logical_emit_message(true, 'hot', 'in a transaction')",
    "SELECT pg_logical_emit_message(false, 'hot', 'on its own')",
    "TRUNCATE full_t",
]


def _config(pg, slot: str, url: str) -> str:
    return (
        f'connection_string = "{pg.dsn}"\nslot_name = "{slot}"\npublication_name = "hot_pub"\n'
        f"feedback_interval_secs = 1\n{http_sink(url, batch_max_events=1)}"
    )


def _streamed_transaction(dsn: str) -> None:
    """Enough rows to pass logical_decoding_work_mem (64 kB): sent in stream blocks."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET logical_decoding_work_mem = '64kB'")
        conn.execute(
            "INSERT INTO t (id, s, n) "
            "SELECT g, 'row ' || g, g / 7.0 FROM generate_series(10, 3009) g"
        )
        conn.commit()


def _received(pg, tmp_path, monkeypatch, slot: str, impl: str, count: int) -> list[bytes]:
    monkeypatch.setenv(native.IMPL_VARIABLE, impl)
    folder = tmp_path / slot
    folder.mkdir()
    with WebhookReceiver() as receiver:
        server = make_server(folder, _config(pg, slot, receiver.url))
        with running(server):
            receiver.wait_for_events(count, timeout=60)
            assert server.snapshot().row_path == impl
        bodies = [request.body for request in receiver.requests if request.status == 200]
    return [UUID.sub(b"ID", body).replace(slot.encode(), b"SLOT") for body in bodies]


def test_the_compiled_path_sends_what_the_python_path_sends(pg, tmp_path, monkeypatch):
    pg.execute("CREATE PUBLICATION hot_pub FOR ALL TABLES")
    for slot in ("hot_python", "hot_native"):
        pg.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    for statement in WORKLOAD:
        pg.execute(statement)
    _streamed_transaction(pg.dsn)
    expected_events = 3 + 2 + 2 + 2 + 2 + 1 + 1 + 2 + 1 + 3000
    python = _received(pg, tmp_path, monkeypatch, "hot_python", "python", expected_events)
    compiled = _received(pg, tmp_path, monkeypatch, "hot_native", "native", expected_events)
    assert len(python) == expected_events
    assert compiled == python
    assert b'"n":12345678901234567890.0123456789' in python[0]
    assert b'"ia":[1,null,3]' in python[0] and b'"unchanged_toast":["big"]' in python[4]
