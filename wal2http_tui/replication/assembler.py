"""Turns the pgoutput message stream into committed transactions.

Plain transactions arrive whole between Begin and Commit (already committed on the server).
Streamed transactions (protocol 2+) arrive in chunks between StreamStart and StreamStop,
interleaved with others, and are only handed on at StreamCommit; a StreamAbort drops them (or
one aborted subtransaction's changes). Two-phase transactions are held from Prepare to Commit
Prepared, and dropped at Rollback Prepared. Every transaction's changes live in a
``ChangeBuffer``, which spills to disk, so no transaction size ever lives in RAM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from wal2http_tui.replication import native
from wal2http_tui.replication.backfill_requests import PREFIX as BACKFILL_PREFIX
from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import (
    TRUNCATE_CASCADE,
    TRUNCATE_RESTART_IDENTITY,
    Begin,
    BeginPrepare,
    Commit,
    CommitPrepared,
    Delete,
    Insert,
    Lsn,
    Message,
    Prepare,
    ProtocolError,
    Relation,
    RelationInfo,
    ReplicationMessage,
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    TupleData,
    Type,
    Update,
    Xid,
)
from wal2http_tui.replication.transactions import (
    DEFAULT_MEMORY_LIMIT,
    Change,
    ChangeBuffer,
    SpoolDirectory,
    Transaction,
)
from wal2http_tui.replication.values import JsonValue, RowConverter, ValueConverter

_orjson_dumps = orjson.dumps


def _dumps(value: object) -> str:
    """JSON text as str: orjson's bytes reserve 4 KiB each, a str copy is exact (and cheap)."""
    return _orjson_dumps(value).decode()


@dataclass
class _Open:
    """A transaction being received."""

    xid: Xid
    commit_lsn: Lsn
    timestamp: int
    changes: ChangeBuffer
    streamed: bool = False


class TransactionAssembler:
    """Feeds on decoded messages; calls ``on_transaction`` with each committed transaction."""

    def __init__(
        self,
        relations: dict[int, RelationInfo],
        converter: ValueConverter,
        spool_dir: Path | SpoolDirectory,
        on_transaction: Callable[[Transaction], None],
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        on_relation: Callable[[RelationInfo], None] | None = None,
        on_control: Callable[[Message], None] | None = None,
        *,
        compiled: bool = False,
    ) -> None:
        self._relations = relations
        self._converter = converter
        self._spool_dir = spool_dir
        self._on_transaction = on_transaction
        self._on_relation = on_relation
        self._on_control = on_control
        self._memory_limit = memory_limit
        self._current: _Open | None = None
        self._streams: dict[Xid, _Open] = {}
        self._prepared: dict[str, _Open] = {}
        self._stream_xid: Xid | None = None
        self._row_converters: dict[int, tuple[RelationInfo, RowConverter, tuple[str, ...]]] = {}
        # The compiled row path (native.py), when asked for: ``row_changes(data, offset,
        # in_stream)`` renders a row change message with the layouts built here, or declines.
        self._layouts: dict[int, object] = {}
        rows = native.rows(relations, self._layouts) if compiled else None
        self.row_changes = None if rows is None else rows.change
        # ``read_rows(pgconn_ptr, limit, in_stream)``: rendered rows straight from libpq
        self.read_rows = rows.read if rows is not None and native.reads_from_libpq() else None

    @property
    def in_flight(self) -> bool:
        """True while any transaction has been started but not yet committed or dropped."""
        return self._current is not None or bool(self._streams) or bool(self._prepared)

    def reset(self) -> None:
        """Forget partial transactions (after a reconnect the server sends them again)."""
        for open_tx in [self._current, *self._streams.values(), *self._prepared.values()]:
            if open_tx is not None:
                open_tx.changes.discard()
        self._current = None
        self._streams.clear()
        self._prepared.clear()
        self._stream_xid = None

    # -- the message stream -------------------------------------------------------------------
    def wire_feeder(self, decoder: PgOutputDecoder) -> Callable[[bytes | memoryview, int], None]:
        """``feed_wire(data, offset)``: feeds the pgoutput message at ``offset`` of ``data``.

        Row changes go to the compiled row path when it is on; what it declines, and every other
        message, is decoded by ``decoder`` (which keeps the relations this assembler reads).
        """
        decode, feed, append, row_changes = decoder.decode, self.feed, self.append, self.row_changes
        if row_changes is None:
            return lambda data, offset: feed(decode(data, offset))

        def feed_wire(data: bytes | memoryview, offset: int) -> None:
            row = row_changes(data, offset, decoder.in_stream)
            if row is None:
                feed(decode(data, offset))
            else:
                append(*row)

        return feed_wire

    def feed(self, message: ReplicationMessage) -> None:
        # Row changes first: one call per row. Three isinstance calls rather than a match
        # statement or an isinstance tuple (SIM101): CPython 3.11 specialises isinstance(x, C),
        # so these cost what type() identity checks do; the tuple costs ~30 ns more a message,
        # the match statement's class patterns ~70 ns.
        if (
            isinstance(message, Insert)  # noqa: SIM101 (see above)
            or isinstance(message, Update)
            or isinstance(message, Delete)
        ):
            self.append(message.xid, self._row_change(message))
        elif isinstance(message, Begin):
            self._current = self._open(message.xid, message.final_lsn, message.timestamp)
        elif isinstance(message, Commit):
            current = self._take_current("Commit")
            self._emit(current, message.commit_lsn, message.end_lsn, message.timestamp)
        elif isinstance(message, Truncate):
            for change in self._truncate_changes(message):
                self.append(message.xid, change)
        elif isinstance(message, Message):
            self._message(message)
        elif isinstance(message, StreamStart):
            self._stream_xid = message.xid
            if message.xid not in self._streams:
                self._streams[message.xid] = self._open(message.xid, 0, 0, streamed=True)
        elif isinstance(message, StreamStop):
            self._stream_xid = None
        elif isinstance(message, StreamCommit):
            stream = self._streams.pop(message.xid, None)
            if stream is None:
                raise ProtocolError("StreamCommit", 1, f"xid {message.xid} was never streamed")
            self._emit(stream, message.commit_lsn, message.end_lsn, message.timestamp)
        elif isinstance(message, StreamAbort):
            self._stream_abort(message)
        elif isinstance(message, BeginPrepare):
            self._current = self._open(message.xid, message.prepare_lsn, message.timestamp)
        elif isinstance(message, Prepare):
            self._prepared[message.gid] = self._take_current("Prepare")
        elif isinstance(message, StreamPrepare):
            stream = self._streams.pop(message.xid, None)
            if stream is not None:
                self._prepared[message.gid] = stream
        elif isinstance(message, CommitPrepared):
            prepared = self._prepared.pop(message.gid, None)
            if prepared is not None:
                self._emit(prepared, message.commit_lsn, message.end_lsn, message.timestamp)
        elif isinstance(message, RollbackPrepared):
            prepared = self._prepared.pop(message.gid, None)
            if prepared is not None:
                prepared.changes.discard()
        elif isinstance(message, Relation):
            self._row_converters.pop(message.relation.oid, None)
            self._layouts.pop(message.relation.oid, None)
            if self._on_relation is not None:
                self._on_relation(message.relation)
        elif isinstance(message, Type):
            # A custom type was (re)announced: it may have changed (ALTER TYPE).
            self._converter.invalidate()
            self._row_converters.clear()
            self._layouts.clear()

    # -- helpers ------------------------------------------------------------------------------
    def _open(self, xid: Xid, commit_lsn: Lsn, timestamp: int, *, streamed: bool = False) -> _Open:
        buffer = ChangeBuffer(self._spool_dir, self._memory_limit)
        return _Open(xid, commit_lsn, timestamp, buffer, streamed)

    def _take_current(self, where: str) -> _Open:
        current = self._current
        if current is None:
            raise ProtocolError(where, 0, "no transaction is open (Begin missing)")
        self._current = None
        return current

    def append(self, xid: Xid | None, change: Change) -> None:
        """Add a row change to its open transaction (xid: a streamed transaction's)."""
        if xid is not None:
            stream = self._streams.get(self._stream_xid) if self._stream_xid is not None else None
            if stream is None:
                raise ProtocolError("change", 0, f"streamed change of xid {xid} outside a stream")
            stream.changes.append(change, xid)
            return
        current = self._current
        if current is None:
            raise ProtocolError("change", 0, "row change outside a transaction (Begin missing)")
        current.changes.append(change)

    def _emit(self, open_tx: _Open, commit_lsn: Lsn, end_lsn: Lsn, timestamp: int) -> None:
        open_tx.changes.finish()
        self._on_transaction(
            Transaction(
                xid=open_tx.xid,
                commit_lsn=commit_lsn or open_tx.commit_lsn,
                end_lsn=end_lsn,
                commit_time=timestamp or open_tx.timestamp,
                changes=open_tx.changes,
                streamed=open_tx.streamed,
                received_at=time.time(),
            )
        )

    def _stream_abort(self, message: StreamAbort) -> None:
        stream = self._streams.get(message.xid)
        if stream is None:
            return
        if message.subtransaction_xid in (message.xid, 0):
            del self._streams[message.xid]
            stream.changes.discard()
        else:
            stream.changes.abort_subtransaction(message.subtransaction_xid)

    def _message(self, message: Message) -> None:
        control = not message.transactional and message.prefix == BACKFILL_PREFIX
        if control and self._on_control is not None:
            self._on_control(message)  # the engine's own, for no sink
            return
        change = Change(
            op="message",
            schema="",
            table="",
            new=None,
            old=None,
            key=None,
            extra={
                "prefix": message.prefix,
                "content": message.content,
                "transactional": message.transactional,
            },
        )
        if message.transactional:
            self.append(message.xid, change)
            return
        # A non-transactional message stands alone: deliver it as its own unit at its LSN.
        single = self._open(0, message.lsn, 0)
        single.changes.append(change)
        self._emit(single, message.lsn, message.lsn, 0)

    def _relation(self, relation_id: int, where: str) -> RelationInfo:
        relation = self._relations.get(relation_id)
        if relation is None:
            raise ProtocolError(where, 1, f"relation {relation_id} was never announced")
        return relation

    def _convert(self, relation: RelationInfo) -> tuple[RowConverter, tuple[str, ...]]:
        """The relation's row converter and key columns, built once per Relation message."""
        cached = self._row_converters.get(relation.oid)
        if cached is not None and cached[0] is relation:
            return cached[1], cached[2]
        converter = self._converter.row_converter(relation)
        keys = self._converter.key_columns(relation)
        self._row_converters[relation.oid] = (relation, converter, keys)
        if self.row_changes is not None:
            self._layouts[relation.oid] = native.layout(relation, converter, keys)
        return converter, keys

    def _row_change(self, message: Insert | Update | Delete) -> Change:
        relation = self._relation(message.relation_id, type(message).__name__)
        convert, keys = self._convert(relation)
        if isinstance(message, Insert):
            new, toast = convert(message.tuple_data)
            return Change(
                "insert",
                relation.schema,
                relation.table,
                _dumps(new),
                None,
                _key(new, keys),
                tuple(toast),
            )
        if isinstance(message, Update):
            old_tuple = message.old_tuple_data
            old = self._old_row(convert, message.key_type, old_tuple, keys)
            full_old = old_tuple if message.key_type == "O" else None
            new, toast = convert(message.new_tuple_data, old=full_old)
            return Change(
                "update",
                relation.schema,
                relation.table,
                _dumps(new),
                None if old is None else _dumps(old),
                _key(new, keys),
                tuple(toast),
            )
        old = self._old_row(convert, message.key_type, message.tuple_data, keys)
        return Change(
            "delete",
            relation.schema,
            relation.table,
            None,
            None if old is None else _dumps(old),
            _key(old or {}, keys),
        )

    @staticmethod
    def _old_row(
        convert: RowConverter,
        key_type: str | None,
        old_tuple: TupleData | None,
        keys: tuple[str, ...],
    ) -> dict[str, JsonValue] | None:
        if old_tuple is None:
            return None
        row, _ = convert(old_tuple)
        if key_type == "K":
            return {name: row[name] for name in keys if name in row}
        return row

    def _truncate_changes(self, message: Truncate) -> list[Change]:
        extra = {
            "cascade": bool(message.flags & TRUNCATE_CASCADE),
            "restart_identity": bool(message.flags & TRUNCATE_RESTART_IDENTITY),
        }
        changes = []
        for relation_id in message.relation_ids:
            relation = self._relation(relation_id, "Truncate")
            changes.append(
                Change("truncate", relation.schema, relation.table, None, None, None, (), extra)
            )
        return changes


def _key(row: dict[str, JsonValue], keys: tuple[str, ...]) -> str | None:
    if not keys:
        return None
    return _dumps({name: row.get(name) for name in keys})


def read_change(
    convert: RowConverter,
    keys: tuple[str, ...],
    relation: RelationInfo,
    row: TupleData,
    extra: dict,
) -> Change:
    """A row read from a table (a snapshot), rendered like every row the stream carries."""
    new, _ = convert(row)
    return Change(
        "read", relation.schema, relation.table, _dumps(new), None, _key(new, keys), (), extra
    )
