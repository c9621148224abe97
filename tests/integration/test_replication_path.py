"""The path everything rests on: pgoutput over a psycopg 3 ``pq`` replication connection."""

from __future__ import annotations

import select
import struct
import time

from psycopg import pq


def _replication_conn(dsn: str) -> pq.PGconn:
    conn = pq.PGconn.connect(f"{dsn} replication=database".encode())
    assert conn.status == pq.ConnStatus.OK, conn.get_error_message()
    return conn


def _read_xlogdata(conn: pq.PGconn, want: int, timeout: float = 20.0) -> list[bytes]:
    """Collect pgoutput payloads of XLogData ('w') messages until ``want`` have arrived."""
    payloads: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(payloads) < want and time.monotonic() < deadline:
        nbytes, data = conn.get_copy_data(1)
        if nbytes == 0:
            select.select([conn.socket], [], [], 0.5)
            conn.consume_input()
            continue
        assert nbytes > 0, conn.get_error_message()
        data = bytes(data)
        if data[:1] == b"w":
            payloads.append(data[25:])
        elif data[:1] == b"k" and data[17]:
            wal_end = struct.unpack_from(">Q", data, 1)[0]
            conn.put_copy_data(b"r" + struct.pack(">QQQqB", wal_end, 0, 0, 0, 0))
            conn.flush()
    return payloads


def test_pgoutput_bytes_arrive_over_pq_copy_both(pg):
    pg.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
    pg.execute("CREATE PUBLICATION pub FOR TABLE items")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    pg.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")

    conn = _replication_conn(pg.dsn)
    try:
        result = conn.exec_(b"IDENTIFY_SYSTEM")
        assert result.status == pq.ExecStatus.TUPLES_OK
        assert result.get_value(0, 3) == pg.name.encode()

        result = conn.exec_(
            b"START_REPLICATION SLOT slot LOGICAL 0/0 (proto_version '1', publication_names 'pub')"
        )
        assert result.status == pq.ExecStatus.COPY_BOTH
        conn.nonblocking = 1

        payloads = _read_xlogdata(conn, want=5)
    finally:
        conn.finish()

    kinds = [p[:1] for p in payloads]
    assert kinds == [b"B", b"R", b"I", b"I", b"C"]
    relation = payloads[1]
    assert b"public\x00items\x00" in relation
    first, second = payloads[2], payloads[3]
    assert first.endswith(b"t\x00\x00\x00\x011t\x00\x00\x00\x03one")
    assert second.endswith(b"t\x00\x00\x00\x012t\x00\x00\x00\x03two")
