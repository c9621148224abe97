"""On-demand backfills: the rows of a table, read in key order while the stream goes on, and
delivered at a point of the stream they are consistent with (the watermark method of Netflix's
DBLog, as in Debezium's incremental snapshots).

For each chunk of ``chunk_rows`` rows (keyset: the rows after the last key read, in the order of
the primary key or replica identity index):

1. the engine writes a low watermark into the WAL (``backfill_requests.emit``);
2. when the stream reaches it, the engine reads the chunk (its own REPEATABLE READ snapshot),
   then writes a high watermark; from the low watermark on, it notes every key of the table the
   stream changes;
3. when the stream reaches the high watermark, the chunk minus the keys changed in between is
   handed to the sinks as ``read`` changes, as one unit at that point of the stream. A changed
   key's newer value already went (or goes) out through the stream, so a read is never older
   than a change the receiver already has.

A transaction that commits before the low watermark but is still invisible when the chunk is
read (a commit waiting for a synchronous standby) would make the chunk older than the stream:
the engine notes the transactions it streamed while a backfill is active and, when one of them
is invisible to the chunk's snapshot, throws the chunk away and reads it again a second later.

Progress (the last key of each table that every sink has) is written to the state file once the
chunk is delivered (``delivered``), so a backfill resumes from its last delivered chunk after a
restart; the events of a chunk sent again carry the same ids (backfill id, table, key).

Everything here runs on the replication thread, except ``statuses`` (any thread).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import orjson
import psycopg
from psycopg import pq, sql

from wal2http_tui.replication.assembler import read_change
from wal2http_tui.replication.backfill_requests import (
    MIN_SERVER_VERSION,
    BackfillMessage,
    BadBackfillMessage,
    decode,
    emit,
)
from wal2http_tui.replication.backfill_store import (
    FINISHED,
    BackfillRecord,
    BackfillState,
    BackfillStore,
    TableProgress,
)
from wal2http_tui.replication.deadlines import deadline
from wal2http_tui.replication.messages import Lsn, RelationInfo, format_lsn
from wal2http_tui.replication.replica_identity import PublishedTable, published_tables
from wal2http_tui.replication.snapshot import relation_of, text_rows
from wal2http_tui.replication.transactions import (
    Change,
    SpoolDirectory,
    Transaction,
    read_transaction,
)
from wal2http_tui.replication.transport import now_pg_micros
from wal2http_tui.replication.values import ValueConverter

log = logging.getLogger("wal2http_tui.backfill")

PROGRESS_LOG_SECS = 10.0  # how often a running backfill says how far it got
RETRY_CHUNK_SECS = 1.0  # after a chunk read while a streamed transaction was still invisible
XID_HALF = 2**31


class _ChunkRefused(Exception):
    """PostgreSQL refused a chunk's query (a table dropped, a where clause that fails)."""


def _query_error(result: pq.abc.PGresult) -> Exception:
    """A failed query: a connection problem (the stream reconnects and asks again) or a
    refusal of the query itself, with PostgreSQL's message."""
    primary = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message
    message = (primary or b"").decode(errors="replace").strip()
    state = result.error_field(pq.DiagnosticField.SQLSTATE) or b""
    if not state or state[:2] in (b"08", b"57"):
        return psycopg.OperationalError(message)
    return _ChunkRefused(message)


@dataclass(frozen=True)
class BackfillStatus:
    """A backfill as the UI and ``backfill list`` show it."""

    record: BackfillRecord
    rows_per_sec: float = 0.0
    eta_secs: float | None = None


@dataclass
class _Chunk:
    """A chunk between its watermarks: asked for (low written), then read (high written)."""

    backfill: str
    number: int
    table: PublishedTable
    after: tuple[str | None, ...] | None
    run: str
    rows: dict[bytes, Change] | None = None  # by canonical key, once read
    last_key: tuple[str | None, ...] | None = None
    final: bool = False  # no row after this chunk
    changed: set[bytes] = field(default_factory=set)
    truncated: bool = False


@dataclass(frozen=True)
class _Pending:
    """A chunk handed to the sinks, whose progress is written once every sink has it."""

    lsn: Lsn
    backfill: str
    table: str
    rows: int
    last_key: tuple[str | None, ...] | None
    done: bool


@dataclass
class _Rate:
    since: float
    rows: int


class Backfills:
    """The on-demand backfills of one slot."""

    def __init__(
        self,
        store: BackfillStore,
        slot: str,
        publication: str,
        converter: ValueConverter,
        connect: Callable[[], psycopg.Connection],
        spool: SpoolDirectory,
        *,
        chunk_rows: int,
        timeout: float,
        warn: Callable[[str], None],
    ) -> None:
        self._store = store
        self._slot = slot
        self._publication = publication
        self._converter = converter
        self._connect = connect
        self._spool = spool
        self._chunk_rows = chunk_rows
        self._timeout = timeout
        self._warn = warn
        self._key = store.key()
        self._lock = threading.Lock()
        self._records = {record.id: record for record in store.records(slot)}
        # where reading goes on: (table index, key) after the last chunk handed to the sinks
        self._cursor: dict[str, tuple[int, tuple[str | None, ...] | None]] = {}
        self._pending: list[_Pending] = []
        self._published: dict[str, PublishedTable] = {}
        self._conn: psycopg.Connection | None = None
        self._run = ""
        self._numbers = 0
        self._chunk: _Chunk | None = None
        self._retry_at: float | None = None
        self._streamed_xids: set[int] = set()
        self._rates: dict[str, _Rate] = {}
        self._logged_at = time.monotonic()

    # -- the stream's side ---------------------------------------------------------------------
    def begin_session(self, published: Sequence[PublishedTable], server_version: int) -> None:
        """Streaming (re)started: watermarks of an earlier session mean nothing now."""
        self._published = {table.name: table for table in published}
        self._chunk = None
        if server_version < MIN_SERVER_VERSION:
            self._run = ""  # pgoutput would never send the watermarks
            if self._active() is not None:
                self._warn(
                    "backfills wait: PostgreSQL 14 or later is needed to read the logical "
                    "decoding messages they are steered by"
                )
            return
        self._run = uuid.uuid4().hex
        self._ask_next()

    def end_session(self) -> None:
        self._chunk = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def watching(self) -> bool:
        """A backfill is active: the stream's transactions matter (``observe``)."""
        return bool(self._run) and (self._chunk is not None or self._active() is not None)

    def observe(self, tx: Transaction) -> None:
        """A transaction the stream passed on: note its xid, and the keys it changed in the
        table of the chunk between its watermarks."""
        if tx.xid:
            self._streamed_xids.add(tx.xid)
        chunk = self._chunk
        if chunk is None:
            return
        schema, table = chunk.table.schema, chunk.table.table
        if not any(s == schema and t == table for _, s, t in tx.changes.kinds):
            return
        keys = chunk.table.key_columns
        for change in tx.changes:
            if change.schema != schema or change.table != table:
                continue
            if change.op == "truncate":
                chunk.truncated = True
            for text in (change.key, change.old):
                if text is not None:
                    chunk.changed.add(_canonical(orjson.loads(text), keys))

    def on_message(self, lsn: Lsn, content: bytes) -> Transaction | None:
        """A backfill message read from the stream at ``lsn``; the read changes to hand to the
        sinks at this point of the stream, if it is a high watermark that ends a chunk."""
        try:
            message = decode(content, self._key)
        except BadBackfillMessage as exc:
            self._warn(f"backfill message at {format_lsn(lsn)} ignored: {exc}")
            return None
        if message.slot != self._slot:
            return None
        reads = None
        if message.kind == "start":
            self._start(message, lsn)
        elif message.kind in ("pause", "resume", "cancel"):
            self._control(message)
        elif self._is_current(message):
            if message.kind == "low":
                self._read_chunk()
            else:
                reads = self._finish_chunk(lsn)
        if self._chunk is None:
            self._ask_next()
        return reads

    def delivered(self, confirmed: Lsn, idle: bool) -> None:
        """Every sink has everything up to ``confirmed`` (all, when ``idle``): write the
        progress of the chunks that includes; say how far a running backfill got."""
        while self._pending and (idle or self._pending[0].lsn <= confirmed):
            self._record_progress(self._pending.pop(0))
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._retry_at = None
            self._ask_next()
        if time.monotonic() - self._logged_at >= PROGRESS_LOG_SECS:
            self._logged_at = time.monotonic()
            for status in self.statuses():
                if status.record.state == BackfillState.RUNNING:
                    log.info("%s", progress_line(status))

    def expect(self, record: BackfillRecord) -> None:
        """A request this process just wrote (shown until the stream reaches it)."""
        with self._lock:
            self._records.setdefault(record.id, record)

    def statuses(self) -> list[BackfillStatus]:
        with self._lock:
            records = list(self._records.values())
            rates = dict(self._rates)
        return [_status(record, rates.get(record.id)) for record in records]

    # -- requests ------------------------------------------------------------------------------
    def _start(self, message: BackfillMessage, lsn: Lsn) -> None:
        known = self._records.get(message.id)
        if known is not None and known.state != BackfillState.REQUESTED:
            return  # read again after a reconnect or restart
        self._read_publication()  # a table added to it since streaming began is backfilled too
        problem, tables = self._tables(message.tables)
        record = BackfillRecord(
            id=message.id,
            slot=self._slot,
            tables=tuple(TableProgress(table) for table in tables),
            sinks=message.sinks,
            where=message.where,
            request_lsn=lsn,
        )
        if problem:
            record = record.with_state(BackfillState.FAILED, problem)
            log.error("backfill %s refused: %s", message.id, problem)
        else:
            record = replace(record, tables=self._estimates(record.tables))
            log.info(
                "backfill %s requested: %s%s",
                message.id,
                ", ".join(tables),
                f" to {', '.join(message.sinks)}" if message.sinks else "",
            )
        self._save(record)

    def _read_publication(self) -> None:
        conn = self._sql()
        with deadline(conn, self._timeout, "reading the publication's tables"):
            published = published_tables(conn, self._publication, None)
        self._published = {table.name: table for table in published}

    def _tables(self, names: Iterable[str]) -> tuple[str, list[str]]:
        tables = list(names)
        for name in tables:
            table = self._published.get(name)
            if table is None:
                return f"{name} is not in the publication", tables
            if not table.key_columns:
                return f"{name} has no primary key or replica identity index", tables
        return "", tables

    def _estimates(self, tables: tuple[TableProgress, ...]) -> tuple[TableProgress, ...]:
        conn = self._sql()
        oids = [self._published[table.table].oid for table in tables]
        with deadline(conn, self._timeout, "estimating the rows of a backfill"):
            found: dict[int, int] = dict(
                conn.execute(
                    "SELECT oid, greatest(reltuples, 0)::bigint FROM pg_class "
                    "WHERE oid = ANY(%s::oid[])",
                    (oids,),
                ).fetchall()
            )
        return tuple(
            replace(t, estimate=found.get(oid, 0)) for t, oid in zip(tables, oids, strict=True)
        )

    def _control(self, message: BackfillMessage) -> None:
        record = self._records.get(message.id)
        if record is None:
            self._warn(f"backfill {message.kind}: no backfill {message.id}")
            return
        if record.state in FINISHED:
            return
        if message.kind == "pause" and record.state != BackfillState.PAUSED:
            self._save(record.with_state(BackfillState.PAUSED, "paused by operator"))
            log.info("backfill %s paused after %d rows", record.id, record.rows)
        elif message.kind == "resume" and record.state == BackfillState.PAUSED:
            self._save(record.with_state(BackfillState.QUEUED))
            log.info("backfill %s resumed", record.id)
        elif message.kind == "cancel":
            self._save(record.with_state(BackfillState.CANCELLED, "cancelled by operator"))
            log.info("backfill %s cancelled after %d rows", record.id, record.rows)
        else:
            return
        with self._lock:
            self._rates.pop(record.id, None)  # counted again from its next chunk
        if self._chunk is not None and self._chunk.backfill == record.id:
            self._chunk = None  # its watermarks are ignored now

    # -- chunks --------------------------------------------------------------------------------
    def _active(self) -> BackfillRecord | None:
        """The backfill to read from next: the oldest one asked for with tables left to read."""
        for record in self._records.values():
            if record.state in (BackfillState.QUEUED, BackfillState.RUNNING):
                index, _ = self._position(record)
                if index < len(record.tables):
                    return record
        return None

    def _position(self, record: BackfillRecord) -> tuple[int, tuple[str | None, ...] | None]:
        if record.id not in self._cursor:
            index = next((i for i, t in enumerate(record.tables) if not t.done), len(record.tables))
            key = record.tables[index].last_key if index < len(record.tables) else None
            self._cursor[record.id] = (index, key)
        return self._cursor[record.id]

    def _ask_next(self) -> None:
        """Write the low watermark of the next chunk to read, if there is one."""
        if self._retry_at is not None or not self._run:
            return
        while (record := self._active()) is not None:
            index, after = self._position(record)
            name = record.tables[index].table
            table = self._published.get(name)
            if table is not None:
                break
            self._fail(record, f"{name} is no longer in the publication")
        else:
            return
        if record.state == BackfillState.QUEUED:
            record = record.with_state(BackfillState.RUNNING)
            self._save(record)
        with self._lock:
            self._rates.setdefault(record.id, _Rate(time.monotonic(), record.rows))
        self._numbers += 1
        self._chunk = _Chunk(record.id, self._numbers, table, after, self._run)
        self._emit("low", self._chunk)

    def _is_current(self, message: BackfillMessage) -> bool:
        chunk = self._chunk
        return (
            chunk is not None
            and message.id == chunk.backfill
            and message.chunk == chunk.number
            and message.run == chunk.run
        )

    def _emit(self, kind: str, chunk: _Chunk) -> None:
        message = BackfillMessage(
            kind, self._slot, chunk.backfill, chunk=chunk.number, run=chunk.run
        )
        conn = self._sql()
        with deadline(conn, self._timeout, f"writing a backfill {kind} watermark"):
            emit(conn, message, self._key)

    def _read_chunk(self) -> None:
        """At the low watermark: read the chunk, then write the high watermark."""
        chunk = self._chunk
        assert chunk is not None
        record = self._records[chunk.backfill]
        conn = self._sql()
        try:
            with deadline(conn, self._timeout, f"reading a backfill chunk of {chunk.table.name}"):
                result, snapshot, relation = self._select(conn, chunk, record.where)
        except _ChunkRefused as exc:  # the table or the where clause: reconnecting won't help
            self._fail(record, f"reading {chunk.table.name}: {exc}")
            return
        if any(not _visible(xid, snapshot) for xid in self._streamed_xids):
            self._warn(
                "backfill: a transaction already streamed was not yet visible to the chunk's "
                "snapshot (a commit waiting for a synchronous standby?); reading it again"
            )
            self._chunk = None
            self._retry_at = time.monotonic() + RETRY_CHUNK_SECS
            return
        self._streamed_xids = {x for x in self._streamed_xids if not _visible(x, snapshot)}
        convert = self._converter.row_converter(relation)
        keys = self._converter.key_columns(relation)
        positions = [i for i, c in enumerate(relation.columns) if c.name in chunk.table.key_columns]
        chunk.final = result.ntuples <= self._chunk_rows
        chunk.rows = {}
        base = {"backfill": record.id, "table": chunk.table.name, "chunk": chunk.number}
        row: tuple[str | None, ...] = ()
        for row in itertools.islice(text_rows(result), self._chunk_rows):
            extra = dict(base)
            change = read_change(convert, keys, relation, row, extra)
            extra["row"] = change.key  # its id is made of it
            key = _canonical(orjson.loads(change.key or "{}"), chunk.table.key_columns)
            chunk.rows[key] = change
        if row:
            chunk.last_key = tuple(row[i] for i in positions)
        result.clear()  # the rows are converted: the chunk holds them once
        chunk.changed.clear()  # from the low watermark on (nothing after it was observed yet)
        self._emit("high", chunk)

    def _select(
        self, conn: psycopg.Connection, chunk: _Chunk, where: str | None
    ) -> tuple[pq.abc.PGresult, str, RelationInfo]:
        """The chunk's rows (a text-format result: what the output functions write, as pgoutput
        sends), the snapshot they were read in, and the table's columns."""
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
            relation = relation_of(conn, chunk.table)
            query = _chunk_query(chunk, relation, where, self._chunk_rows + 1).as_bytes(conn)
            types = {c.name: c.type_oid for c in relation.columns}
            params = [None if v is None else v.encode() for v in chunk.after or ()]
            oids = [types[name] for name in chunk.table.key_columns] if chunk.after else None
            result = conn.pgconn.exec_params(query, params, oids)
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise _query_error(result)
        finally:
            conn.execute("ROLLBACK")
        return result, row[0] if row else "", relation

    def _finish_chunk(self, lsn: Lsn) -> Transaction | None:
        """At the high watermark: the chunk minus the keys changed since the low one."""
        chunk = self._chunk
        assert chunk is not None and chunk.rows is not None
        self._chunk = None
        record = self._records[chunk.backfill]
        index, after = self._position(record)
        if chunk.truncated:  # the table was emptied meanwhile: read from the same key again
            return None
        kept = [change for key, change in chunk.rows.items() if key not in chunk.changed]
        last_key = chunk.last_key if chunk.last_key is not None else after
        done = chunk.final
        self._cursor[record.id] = (index + 1, None) if done else (index, last_key)
        self._pending.append(_Pending(lsn, record.id, chunk.table.name, len(kept), last_key, done))
        if not kept:
            return None
        at = format_lsn(lsn)
        for number, change in enumerate(kept):
            extra = cast(dict, change.extra)  # the chunk's own, made for this row
            extra["snapshot_lsn"] = at
            extra["last"] = done and number == len(kept) - 1
        sinks = frozenset(record.sinks) if record.sinks else None
        return read_transaction(self._spool, lsn, kept, now_pg_micros(), sinks)

    def _record_progress(self, pending: _Pending) -> None:
        record = self._records.get(pending.backfill)
        if record is None or record.state in FINISHED:
            return
        tables = tuple(
            replace(t, rows=t.rows + pending.rows, last_key=pending.last_key, done=pending.done)
            if t.table == pending.table and not t.done
            else t
            for t in record.tables
        )
        record = replace(record, tables=tables, updated_at=time.time())
        if pending.done:
            table = next(t for t in tables if t.table == pending.table)
            log.info("backfill %s: %s done (%d rows)", record.id, table.table, table.rows)
        if all(t.done for t in tables):
            record = record.with_state(BackfillState.DONE)
            log.info("backfill %s done: %d rows", record.id, record.rows)
        self._save(record)

    def _fail(self, record: BackfillRecord, problem: str) -> None:
        log.error("backfill %s failed: %s", record.id, problem)
        self._save(record.with_state(BackfillState.FAILED, problem))
        self._chunk = None

    def _save(self, record: BackfillRecord) -> None:
        self._store.save(record)
        with self._lock:
            self._records[record.id] = record

    def _sql(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn


def _chunk_query(
    chunk: _Chunk, relation: RelationInfo, where: str | None, limit: int
) -> sql.Composed:
    """``limit`` rows after the chunk's start key (``$1``... its columns' values), in key order."""
    key = sql.SQL(", ").join(sql.Identifier(name) for name in chunk.table.key_columns)
    conditions: list[sql.Composable] = []
    if chunk.after is not None:
        values = sql.SQL(", ").join(sql.SQL(f"${i + 1}") for i in range(len(chunk.after)))
        conditions.append(sql.SQL("({}) > ({})").format(key, values))
    if where:
        conditions.append(sql.SQL("({})").format(sql.SQL(where)))
    filtered = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    return sql.SQL("SELECT {} FROM ONLY {}{} ORDER BY {} LIMIT {}").format(
        sql.SQL(", ").join(sql.Identifier(c.name) for c in relation.columns),
        sql.Identifier(chunk.table.schema, chunk.table.table),
        filtered,
        key,
        sql.Literal(limit),
    )


def _canonical(row: dict, keys: Sequence[str]) -> bytes:
    """A row's key, the same bytes whichever JSON rendering of it (a change's key or old row)."""
    return orjson.dumps([row.get(name) for name in keys], option=orjson.OPT_SORT_KEYS)


def _visible(xid: int, snapshot: str) -> bool:
    """Whether the (32-bit) ``xid`` had committed for ``snapshot`` (``pg_current_snapshot()``
    as text: ``xmin:xmax:xip,...``, 64-bit ids)."""
    _, xmax, xip = snapshot.split(":")
    running = {int(x) % 2**32 for x in xip.split(",") if x}
    if (xid - int(xmax)) % 2**32 < XID_HALF:
        return False  # at or after xmax: started after the snapshot
    return xid not in running


def _status(record: BackfillRecord, rate: _Rate | None) -> BackfillStatus:
    if rate is None or record.state != BackfillState.RUNNING:
        return BackfillStatus(record)
    elapsed = time.monotonic() - rate.since
    per_sec = (record.rows - rate.rows) / elapsed if elapsed > 0 else 0.0
    left = max(0, record.estimate - record.rows)
    return BackfillStatus(record, per_sec, left / per_sec if per_sec > 0 else None)


def progress_line(status: BackfillStatus) -> str:
    record = status.record
    current = record.current
    eta = f", about {status.eta_secs:.0f} s left" if status.eta_secs is not None else ""
    return (
        f"backfill {record.id}: {record.rows:,} of about {record.estimate:,} rows"
        f"{f' ({current.table})' if current else ''}, {status.rows_per_sec:,.0f} rows/s{eta}"
    )
