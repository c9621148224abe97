"""The replication connection: psycopg 3's ``pq`` layer speaking the streaming replication protocol.

psycopg's high-level API has no replication support, but its ``pq`` layer streams COPY BOTH:
``IDENTIFY_SYSTEM``, ``START_REPLICATION SLOT s LOGICAL ...``, then ``get_copy_data`` for XLogData
('w') and primary keepalives ('k'), and ``put_copy_data`` for standby status updates ('r').
Every wait is bounded, so the thread that owns the connection can always be stopped promptly.
"""

from __future__ import annotations

import re
import select
import struct
import time
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import psycopg
from psycopg import pq

from wal2http_tui.replication.messages import PG_EPOCH, Lsn, format_lsn, parse_lsn

XLOGDATA_HEADER = struct.Struct(">QQQ")  # after 'w': wal start, wal end, server time
KEEPALIVE = struct.Struct(">QQB")  # after 'k': wal end, server time, reply requested
STANDBY_STATUS = struct.Struct(">cQQQqB")  # 'r', write, flush, apply, client time, reply now
PAYLOAD_OFFSET = 1 + XLOGDATA_HEADER.size  # where the pgoutput message starts in a 'w' buffer

_EPOCH_OFFSET_US = int(PG_EPOCH.timestamp()) * 1_000_000


class ReplicationError(Exception):
    """The replication connection failed (the server loop reconnects with backoff)."""


class SlotInUse(ReplicationError):
    """The slot is streaming to another process (``replication slot ... is active for PID n``)."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


@dataclass(frozen=True)
class SystemIdentity:
    system_id: str
    timeline: int
    xlogpos: Lsn
    database: str


def now_pg_micros() -> int:
    """Now, as microseconds since the PostgreSQL epoch (2000-01-01 UTC)."""
    return time.time_ns() // 1000 - _EPOCH_OFFSET_US


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_ACTIVE_PID = re.compile(r"is active for PID (\d+)")


class ReplicationConnection:
    """One replication session: connect, identify, start streaming, read, acknowledge.

    Connecting is bounded by libpq's ``connect_timeout`` (in the conninfo); each command by
    ``timeout`` seconds (0: unbounded), past which it fails naming the command.
    """

    def __init__(self, conninfo: str, *, timeout: float = 0.0) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self._conn: pq.abc.PGconn | None = None
        self.identity: SystemIdentity | None = None
        self._copy_end = 0  # what libpq said after the last batch's messages (-1, -2), if it ended

    # -- setup -------------------------------------------------------------------------------
    def connect(self) -> SystemIdentity:
        conn = pq.PGconn.connect(self._conninfo.encode())
        if conn.status != pq.ConnStatus.OK:
            message = _error_text(conn)
            conn.finish()
            raise ReplicationError(f"cannot open a replication connection: {message}")
        conn.nonblocking = 1
        self._conn = conn
        result = self._command("IDENTIFY_SYSTEM")
        self.identity = SystemIdentity(
            system_id=_text(result.get_value(0, 0)),
            timeline=int(_text(result.get_value(0, 1))),
            xlogpos=_parse_lsn_bytes(result.get_value(0, 2)),
            database=_text(result.get_value(0, 3)),
        )
        return self.identity

    @property
    def server_version(self) -> int:
        assert self._conn is not None
        return self._conn.server_version

    def start(self, slot: str, start_lsn: Lsn, options: dict[str, str]) -> None:
        """``START_REPLICATION SLOT slot LOGICAL lsn (options)``; raises SlotInUse when taken."""
        assert self._conn is not None
        rendered = ", ".join(f"{quote_ident(k)} {quote_literal(v)}" for k, v in options.items())
        command = (
            f"START_REPLICATION SLOT {quote_ident(slot)} LOGICAL {format_lsn(start_lsn)}"
            f" ({rendered})"
        )
        result = self._exec(command, "START_REPLICATION")
        if result.status != pq.ExecStatus.COPY_BOTH:
            self._drain_results()
            message = _result_error(result) or _error_text(self._conn)
            active = _ACTIVE_PID.search(message)
            if active:
                raise SlotInUse(message, int(active.group(1)))
            raise ReplicationError(f"START_REPLICATION failed: {message}")

    def create_slot_exporting(self, slot: str, *, failover: bool = False) -> tuple[Lsn, str]:
        """``CREATE_REPLICATION_SLOT slot LOGICAL pgoutput`` exporting its snapshot: the slot's
        consistent point and the snapshot's name, which SQL connections import with ``SET
        TRANSACTION SNAPSHOT`` to see the database exactly as of that point. The snapshot lives
        until this connection runs its next command. ``failover``: a failover slot (17+)."""
        assert self._conn is not None
        export = "(SNAPSHOT 'export')" if self.server_version >= 150000 else "EXPORT_SNAPSHOT"
        if failover:
            export = "(SNAPSHOT 'export', FAILOVER)"
        result = self._command(
            f"CREATE_REPLICATION_SLOT {quote_ident(slot)} LOGICAL pgoutput {export}"
        )
        return _parse_lsn_bytes(result.get_value(0, 1)), _text(result.get_value(0, 2))

    def make_failover_slot(self, slot: str) -> None:
        """``ALTER_REPLICATION_SLOT slot (FAILOVER)`` (PostgreSQL 17+): standbys with
        ``sync_replication_slots`` keep the slot in step from now on."""
        self._command(f"ALTER_REPLICATION_SLOT {quote_ident(slot)} (FAILOVER)")

    # -- streaming ---------------------------------------------------------------------------
    def read(self, timeout: float) -> memoryview | bytes | None:
        """The next CopyData message, or None if nothing arrived within ``timeout`` seconds."""
        conn = self._conn
        assert conn is not None
        deadline = None
        while True:
            nbytes, data = (self._copy_end, b"") if self._copy_end else conn.get_copy_data(1)
            if nbytes > 0:
                return data
            if nbytes == 0:
                if deadline is None:
                    deadline = time.monotonic() + timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    readable, _, _ = select.select([conn.socket], [], [], remaining)
                    conn.consume_input()
                except (OSError, psycopg.OperationalError) as exc:
                    raise ReplicationError(f"connection lost: {_error_text(conn) or exc}") from exc
                if not readable:
                    return None
                continue
            self._copy_end = 0
            self.end_of_copy(nbytes)

    def end_of_copy(self, nbytes: int) -> NoReturn:
        """What PQgetCopyData's ``nbytes`` < 0 means, raised: -1 the server ended the COPY
        (its error, if any), -2 the connection failed."""
        conn = self._conn
        assert conn is not None
        if nbytes == -1:
            result = conn.get_result()
            message = (_result_error(result) if result else "") or _error_text(conn)
            raise ReplicationError(f"server ended replication: {message or 'no reason given'}")
        raise ReplicationError(f"connection lost: {_error_text(conn) or 'unknown error'}")

    @property
    def pgconn_ptr(self) -> int:
        """libpq's PGconn of this session (for the compiled read loop, native.py)."""
        assert self._conn is not None
        # not in psycopg's PGconn protocol, but on both its implementations (binary, ctypes)
        address: int = cast(Any, self._conn).pgconn_ptr
        return address

    def read_batch(self, timeout: float, limit: int) -> list[memoryview | bytes]:
        """The messages that have arrived: waits up to ``timeout`` for the first (none: an empty
        list), then takes what else libpq already holds, at most ``limit`` in all. One call for
        many messages: the stream loop's checks run once a batch, not once a row."""
        first = self.read(timeout)
        if first is None:
            return []
        batch = [first]
        assert self._conn is not None
        get_copy_data = self._conn.get_copy_data
        while len(batch) < limit:
            nbytes, data = get_copy_data(1)
            if nbytes <= 0:
                self._copy_end = nbytes  # the end of the stream: the next read() says it
                break
            batch.append(data)
        return batch

    def send_status(self, lsn: Lsn, *, reply: bool = False) -> None:
        """Standby status update: write = flush = apply = ``lsn``."""
        conn = self._conn
        assert conn is not None
        message = STANDBY_STATUS.pack(b"r", lsn, lsn, lsn, now_pg_micros(), 1 if reply else 0)
        try:
            if conn.put_copy_data(message) != 1 or conn.flush() != 0:
                raise ReplicationError(f"cannot send feedback: {_error_text(conn)}")
        except psycopg.OperationalError as exc:
            raise ReplicationError(f"cannot send feedback: {_error_text(conn) or exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.finish()
            self._conn = None

    # -- helpers -----------------------------------------------------------------------------
    def _command(self, sql: str) -> pq.abc.PGresult:
        result = self._exec(sql, sql)
        self._drain_results()
        if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            raise ReplicationError(f"{sql} failed: {_result_error(result)}")
        return result

    def _exec(self, sql: str, what: str) -> pq.abc.PGresult:
        """Send one command and wait (at most ``timeout``) for its first result."""
        conn = self._conn
        assert conn is not None
        deadline = time.monotonic() + self._timeout if self._timeout else None
        try:
            conn.send_query(sql.encode())
            while conn.flush() == 1:
                self._wait(conn, deadline, what, write=True)
            conn.consume_input()
            while conn.is_busy():
                self._wait(conn, deadline, what)
                conn.consume_input()
        except (OSError, psycopg.OperationalError) as exc:
            raise ReplicationError(f"connection lost: {_error_text(conn) or exc}") from exc
        result = conn.get_result()
        if result is None:
            raise ReplicationError(f"{what} failed: {_error_text(conn) or 'no result'}")
        return result

    def _drain_results(self) -> None:
        """Read the results after the first, so the connection is ready for the next command."""
        assert self._conn is not None
        while self._conn.get_result() is not None:
            pass

    def _wait(
        self, conn: pq.abc.PGconn, deadline: float | None, what: str, *, write: bool = False
    ) -> None:
        """Until the socket is ready; ReplicationError naming ``what`` once ``deadline`` passes."""
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        sockets = [conn.socket]
        ready = select.select([] if write else sockets, sockets if write else [], [], remaining)
        if not (ready[0] or ready[1]):
            raise ReplicationError(
                f"no answer from PostgreSQL within {self._timeout:g}s to {what} "
                "(server_timeout_secs)"
            )


def _text(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


def _parse_lsn_bytes(value: bytes | None) -> Lsn:
    return parse_lsn(_text(value)) if value else 0


def _error_text(conn: pq.abc.PGconn) -> str:
    return conn.get_error_message().strip()


def _result_error(result: pq.abc.PGresult | None) -> str:
    if result is None:
        return ""
    return result.get_error_message().strip()
