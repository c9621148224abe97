"""The pgoutput decoder on what a real server sends, protocol by protocol."""

from __future__ import annotations

import select
import struct
import time

import psycopg
import pytest
from psycopg import pq

from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import (
    Begin,
    ColumnInfo,
    Commit,
    Delete,
    Insert,
    Message,
    Origin,
    Relation,
    RelationInfo,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    Update,
    parse_lsn,
)

# What PostgreSQL itself does: on every version found (tests/conftest.py).
pytestmark = pytest.mark.every_version


def replicate(dsn: str, command: str, done, timeout: float = 30.0):
    """Run START_REPLICATION, decode XLogData straight from the CopyData buffer until ``done``."""
    conn = pq.PGconn.connect(
        f"{dsn} replication=database options='-c TimeZone=UTC -c DateStyle=ISO'".encode()
    )
    assert conn.status == pq.ConnStatus.OK, conn.get_error_message()
    dec = PgOutputDecoder()
    messages: list = []
    try:
        result = conn.exec_(command.encode())
        assert result.status == pq.ExecStatus.COPY_BOTH, conn.get_error_message()
        conn.nonblocking = 1
        deadline = time.monotonic() + timeout
        while not done(messages):
            assert time.monotonic() < deadline, f"timed out; decoded so far: {messages}"
            nbytes, data = conn.get_copy_data(1)
            if nbytes == 0:
                select.select([conn.socket], [], [], 0.5)
                conn.consume_input()
                continue
            assert nbytes > 0, conn.get_error_message()
            if data[0] == ord("w"):
                messages.append(dec.decode(data, 25))
            elif data[0] == ord("k") and data[17]:
                wal_end = struct.unpack_from(">Q", data, 1)[0]
                conn.put_copy_data(b"r" + struct.pack(">QQQqB", wal_end, 0, 0, 0, 0))
                conn.flush()
    finally:
        conn.finish()
    return messages, dec


def test_decodes_what_postgres_sends_on_protocol_1(pg):
    pg.execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz)"
    )
    pg.execute("CREATE PUBLICATION pub FOR TABLE items")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    (oid,) = pg.execute("SELECT 'items'::regclass::oid")[0]
    with psycopg.connect(pg.dsn) as conn:
        conn.execute(
            "INSERT INTO items VALUES (1, 'café ☕', 12.5, '2024-01-02 03:04:05+00'),"
            " (2, NULL, 0.1, '1999-12-31 23:59:59.5+00')"
        )
        (xid,) = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    pg.execute("UPDATE items SET name = 'renamed' WHERE id = 1")
    pg.execute("UPDATE items SET id = 20 WHERE id = 2")
    pg.execute("DELETE FROM items WHERE id = 1")
    pg.execute("TRUNCATE items")
    (lsn_t,) = pg.execute("SELECT pg_logical_emit_message(true, 'pfx', 'hello')::text")[0]
    (lsn_n,) = pg.execute("SELECT pg_logical_emit_message(false, 'pfx', 'bye')::text")[0]

    messages, dec = replicate(
        pg.dsn,
        "START_REPLICATION SLOT slot LOGICAL 0/0 "
        "(proto_version '1', publication_names 'pub', messages 'true')",
        lambda got: len(got) >= 22,
    )

    assert [type(m).__name__ for m in messages] == [
        *["Begin", "Relation", "Insert", "Insert", "Commit"],
        *["Begin", "Update", "Commit"],
        *["Begin", "Update", "Commit"],
        *["Begin", "Delete", "Commit"],
        # TRUNCATE invalidates the relation cache entry, so the Relation is sent again.
        *["Begin", "Relation", "Truncate", "Commit"],
        *["Begin", "Message", "Commit"],
        "Message",
    ]
    begin, relation, ins1, ins2, commit = messages[:5]
    assert begin.xid == xid
    assert begin.final_lsn == commit.commit_lsn
    assert commit.end_lsn > commit.commit_lsn
    items = RelationInfo(
        oid,
        "public",
        "items",
        "d",
        (
            ColumnInfo("id", 23, -1, True),
            ColumnInfo("name", 25, -1, False),
            ColumnInfo("price", 1700, (10 << 16 | 2) + 4, False),
            ColumnInfo("at", 1184, -1, False),
        ),
    )
    assert relation == Relation(items)
    assert dec.relations == {oid: items}
    row1 = ("1", "café ☕", "12.50", "2024-01-02 03:04:05+00")
    row2 = ("20", None, "0.10", "1999-12-31 23:59:59.5+00")
    assert ins1 == Insert(oid, row1)
    assert ins2 == Insert(oid, ("2", None, "0.10", "1999-12-31 23:59:59.5+00"))
    renamed = ("1", "renamed", *row1[2:])
    assert messages[6] == Update(oid, None, None, renamed)
    assert messages[9] == Update(oid, "K", ("2", None, None, None), row2)
    assert messages[12] == Delete(oid, "K", ("1", None, None, None))
    assert messages[15] == Relation(items)
    assert messages[16] == Truncate((oid,), 0)
    assert messages[19] == Message(True, parse_lsn(lsn_t), "pfx", b"hello")
    assert messages[21] == Message(False, parse_lsn(lsn_n), "pfx", b"bye")
    assert all(getattr(m, "xid", None) is None for m in messages if not isinstance(m, Begin))


def test_decodes_a_streamed_transaction_on_protocol_2(pg):
    pg.execute("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'")
    pg.execute("SELECT pg_reload_conf()")
    try:
        pg.execute("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        pg.execute("CREATE PUBLICATION pub FOR TABLE big")
        pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
        with psycopg.connect(pg.dsn) as conn:
            conn.execute(
                "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g"
            )
            (xid,) = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        messages, dec = replicate(
            pg.dsn,
            "START_REPLICATION SLOT slot LOGICAL 0/0 "
            "(proto_version '2', publication_names 'pub', streaming 'on')",
            lambda got: bool(got) and isinstance(got[-1], StreamCommit),
        )
    finally:
        pg.execute("ALTER SYSTEM RESET logical_decoding_work_mem")
        pg.execute("SELECT pg_reload_conf()")

    starts = [m for m in messages if isinstance(m, StreamStart)]
    assert len(starts) >= 2, "64kB of decoding memory should split 2000 rows into segments"
    assert starts[0] == StreamStart(xid, True)
    assert all(s == StreamStart(xid, False) for s in starts[1:])
    assert messages[0] == starts[0]
    assert isinstance(messages[1], Relation)
    assert messages[1].xid == xid
    assert messages[1].relation.table == "big"
    inserts = [m for m in messages if isinstance(m, Insert)]
    assert [m.tuple_data for m in inserts] == [(str(i), "x" * 200) for i in range(1, 2001)]
    assert {m.xid for m in inserts} == {xid}
    assert sum(isinstance(m, StreamStop) for m in messages) == len(starts)
    assert messages[-1].xid == xid
    assert not any(isinstance(m, Begin | Commit) for m in messages)
    assert not dec.in_stream


def test_decodes_origin_and_two_phase_messages_on_protocol_3(pg):
    pg.execute("CREATE TABLE items (id int PRIMARY KEY)")
    pg.execute("CREATE PUBLICATION pub FOR TABLE items")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput', false, true)")
    pg.execute("SELECT pg_replication_origin_create('node_a')")
    (oid,) = pg.execute("SELECT 'items'::regclass::oid")[0]
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_replication_origin_session_setup('node_a')")
        conn.execute("BEGIN")
        conn.execute("SELECT pg_replication_origin_xact_setup('0/ABCDEF', now())")
        conn.execute("INSERT INTO items VALUES (1)")
        conn.execute("COMMIT")
    prepared_xids = {}
    for gid, value, finish in [("gid-c", 2, "COMMIT"), ("gid-r", 3, "ROLLBACK")]:
        pg.execute(f"BEGIN; INSERT INTO items VALUES ({value}); PREPARE TRANSACTION '{gid}'")
        (prepared_xids[gid],) = pg.execute(
            "SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE gid = %s", (gid,)
        )[0]
        pg.execute(f"{finish} PREPARED '{gid}'")

    messages, _ = replicate(
        pg.dsn,
        "START_REPLICATION SLOT slot LOGICAL 0/0 "
        "(proto_version '3', publication_names 'pub', two_phase 'on')",
        lambda got: len(got) >= 13,
    )

    assert [type(m).__name__ for m in messages] == [
        *["Begin", "Origin", "Relation", "Insert", "Commit"],
        *["BeginPrepare", "Insert", "Prepare", "CommitPrepared"],
        *["BeginPrepare", "Insert", "Prepare", "RollbackPrepared"],
    ]
    assert messages[1] == Origin(origin_lsn=0xABCDEF, name="node_a")
    assert messages[3] == Insert(oid, ("1",))
    for begin, insert, prepare, finish, gid, value in [
        (*messages[5:9], "gid-c", "2"),
        (*messages[9:13], "gid-r", "3"),
    ]:
        xid = prepared_xids[gid]
        assert (begin.gid, begin.xid) == (gid, xid)
        assert insert == Insert(oid, (value,))
        assert (prepare.gid, prepare.xid, prepare.flags) == (gid, xid, 0)
        assert (prepare.prepare_lsn, prepare.end_lsn) == (begin.prepare_lsn, begin.end_lsn)
        assert prepare.timestamp == begin.timestamp
        assert (finish.gid, finish.xid, finish.flags) == (gid, xid, 0)
    commit_prepared, rollback_prepared = messages[8], messages[12]
    assert commit_prepared.commit_lsn >= messages[7].end_lsn
    assert commit_prepared.end_lsn > commit_prepared.commit_lsn
    assert rollback_prepared.prepare_end_lsn == messages[11].end_lsn
    assert rollback_prepared.prepare_timestamp == messages[11].timestamp
    assert rollback_prepared.rollback_end_lsn > rollback_prepared.prepare_end_lsn
    assert rollback_prepared.rollback_timestamp >= rollback_prepared.prepare_timestamp
