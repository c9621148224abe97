"""EventProcessor: one row change of a committed transaction -> an Event with its payload.

Event ids are deterministic: a UUIDv5 of (system identifier, slot name, commit LSN, index of the
change in its transaction), so a change resent after a crash or reconnect carries the same id
and receivers can deduplicate on it.

Payload formats: ``json`` (the default), ``debezium`` (an envelope with before/after) and
``cloudevents`` (CloudEvents 1.0 structured JSON whose ``data`` is the json event). Row values
are embedded byte for byte as the engine rendered them (the to_jsonb rule).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from wal2http_tui import __version__
from wal2http_tui.config.model import EVENT_FORMATS
from wal2http_tui.replication import native
from wal2http_tui.replication.messages import format_lsn, pg_timestamp_to_datetime
from wal2http_tui.replication.transactions import Change, Transaction

if TYPE_CHECKING:
    from _hashlib import HASH  # what hashlib.sha1() returns (typeshed's name for it)

# UUIDv5 namespace of wal2http event ids: uuid5(NAMESPACE_URL, "urn:wal2http:event").
EVENT_ID_NAMESPACE = bytes.fromhex("f37218330c0057e5abdb7e33b1c3ec7e")

_Fragment = orjson.Fragment
_dumps = orjson.dumps
_NULL = _Fragment(b"null")
_DEBEZIUM_OPS = {
    "insert": "c",
    "update": "u",
    "delete": "d",
    "truncate": "t",
    "message": "m",
    "read": "r",
}
_ROW_OPS = frozenset({"insert", "update", "delete"})
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def event_id(system_id: str, slot: str, commit_lsn: int, seq: int) -> str:
    """UUIDv5 (RFC 4122) of ``system_id/slot/commit LSN/seq``; equals ``uuid.uuid5``."""
    return _uuid_from(_id_hash(system_id, slot, commit_lsn), seq)


def batch_id(events: Sequence[Event]) -> str:
    """A deterministic id for a batch: UUIDv5 of its first and last event ids and its size."""
    return _uuid5(f"batch/{events[0].event_id}/{events[-1].event_id}/{len(events)}")


def _id_prefix(system_id: str, slot: str, commit_lsn: int) -> bytes:
    """What every event id of one transaction hashes before its ``seq``."""
    return EVENT_ID_NAMESPACE + f"{system_id}/{slot}/{format_lsn(commit_lsn)}/".encode()


def _id_hash(system_id: str, slot: str, commit_lsn: int) -> HASH:
    """SHA-1 state after the namespace and ``system_id/slot/lsn/``: one per transaction."""
    return hashlib.sha1(_id_prefix(system_id, slot, commit_lsn))


def _uuid_from(prefix_hash: HASH, seq: int) -> str:
    hashed = prefix_hash.copy()
    hashed.update(b"%d" % seq)
    return _format_uuid5(hashed.digest())


def _uuid5(text: str) -> str:
    return _format_uuid5(hashlib.sha1(EVENT_ID_NAMESPACE + text.encode()).digest())


def _format_uuid5(sha1_digest: bytes) -> str:
    digest = bytearray(sha1_digest[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


RFC3339 = "%Y-%m-%dT%H:%M:%S.%fZ"


def rfc3339(pg_micros: int) -> str:
    """Wire timestamp -> ``2024-01-02T03:04:05.123456Z``."""
    return pg_timestamp_to_datetime(pg_micros).strftime(RFC3339)


def safe_name(text: str) -> str:
    """Characters outside [A-Za-z0-9_] replaced by '_' (Hook0 event type parts)."""
    return _UNSAFE_NAME.sub("_", text) or "_"


@dataclass(frozen=True)
class SourceInfo:
    """Where events come from; part of every event and of every event id."""

    system_id: str
    database: str
    slot: str
    publication: str


@dataclass(slots=True)
class Event:
    """One event ready to send: identity, routing fields and the formatted payload."""

    event_id: str
    event_type: str  # <schema>.<table>.<op>
    op: str
    schema: str
    table: str
    lsn: str
    commit_time: str  # RFC 3339 UTC
    seq: int
    payload: bytes
    xid: int = 0


@dataclass(frozen=True, slots=True)
class _TxContext:
    """What every event of one transaction shares, rendered once."""

    tx: Transaction
    id_prefix: bytes  # what the event ids hash before their seq
    id_hash: HASH  # hashlib state after it
    lsn: str
    commit_time: str
    commit_ms: int
    json_middle: str  # ',"xid":..,"lsn":..,"commit_time":..,"seq":'
    json_tail: str  # ',"tx_size":..,"source":{..}}'


@dataclass(frozen=True, slots=True)
class _TableOp:
    """What every event of one table and operation shares, rendered once."""

    event_type: str
    json_head: str  # '"event_type":..,"op":..,"schema":..,"table":..'
    cloudevents_head: str  # '"type":..,"subject":..'
    debezium_op: str
    debezium_place: str  # '"schema":..,"table":..'


class EventProcessor:
    """Shared by all sinks of one event format: builds events and formats their payloads.

    Row changes are the hot path (one per row, at tens of thousands per second): their payload
    is assembled from text the transaction and the table already rendered once, around the
    rows' JSON, which the engine rendered when it decoded them. Truncates and logical messages
    are built as dictionaries. Both produce the same documents.
    """

    def __init__(
        self, source: SourceInfo, event_format: str = "json", *, compiled: bool | None = None
    ) -> None:
        """``compiled``: build row events with the compiled hot path (None: when
        ``WAL2HTTP_IMPL`` chooses it; see replication/native.py)."""
        if event_format not in EVENT_FORMATS:
            raise ValueError(f"event_format must be one of {', '.join(EVENT_FORMATS)}")
        self.event_format = event_format
        module = native.compiled() if compiled is None or compiled else None
        if compiled and module is None:
            raise ValueError("the compiled hot path is not built (see replication/native.py)")
        self._compiled_id = None if module is None else module.event_id
        self._compiled_json = (
            None if module is None or event_format != "json" else module.json_row_event
        )
        self._context: _TxContext | None = None
        self._table_ops: dict[tuple[str, str, str], _TableOp] = {}
        self.source = source

    @property
    def source(self) -> SourceInfo:
        return self._source

    @source.setter
    def source(self, source: SourceInfo) -> None:
        """Set once the replication connection has identified the server (its system id)."""
        self._source = source
        self._source_json = {
            "database": source.database,
            "slot": source.slot,
            "publication": source.publication,
        }
        self._source_text = _text(self._source_json)
        self._context = None

    def process_event(self, tx: Transaction, change: Change, seq: int) -> Event:
        """The event for the ``seq``-th change of ``tx``, with its payload."""
        context = self._context
        if context is None or context.tx is not tx:
            context = self._context = self._tx_context(tx)
        op = change.op
        if op in _ROW_OPS:
            schema, table = change.schema, change.table
            table_op = self._table_op(schema, table, op)
            compiled_json = self._compiled_json
            if compiled_json is not None:
                event_id, payload = compiled_json(
                    context.id_prefix,
                    seq,
                    table_op.json_head,
                    change.new,
                    change.old,
                    change.key,
                    change.unchanged_toast,
                    context.json_middle,
                    context.json_tail,
                )
            else:
                event_id = self._event_id(context, seq)
                payload = self._row_payload(event_id, seq, tx.xid, change, context, table_op)
            return Event(
                event_id,
                table_op.event_type,
                op,
                schema,
                table,
                context.lsn,
                context.commit_time,
                seq,
                payload,
                tx.xid,
            )
        if op == "message":
            schema, table = "", ""
            extra = change.extra
            assert extra is not None  # a message's change always carries its prefix and content
            event_type = f"logical_message.{extra['prefix']}.message"
        else:
            schema, table = change.schema, change.table
            event_type = f"{schema}.{table}.{op}"
        event = Event(
            event_id=self.read_event_id(change) if op == "read" else self._event_id(context, seq),
            event_type=event_type,
            op=op,
            schema=schema,
            table=table,
            lsn=context.lsn,
            commit_time=context.commit_time,
            seq=seq,
            payload=b"",
            xid=tx.xid,
        )
        event.payload = self.format_payload(event, change, tx.size)
        return event

    def _event_id(self, context: _TxContext, seq: int) -> str:
        compiled = self._compiled_id
        if compiled is not None:
            return compiled(context.id_prefix, seq)
        return _uuid_from(context.id_hash, seq)

    def read_event_id(self, change: Change) -> str:
        """A read event's id: UUIDv5 of where it comes from (the initial snapshot's position, or
        an on-demand backfill's id), the table and the row: its place in the table's read for
        the initial snapshot (a key would not do: rows of a table without one, under REPLICA
        IDENTITY FULL, may be equal), its key for a backfill. Resends carry the same ids; an
        initial snapshot taken again after an interruption, or another backfill, new ones."""
        extra = change.extra or {}
        origin = extra.get("backfill") or extra.get("snapshot_lsn")
        return _uuid5(
            f"read/{self.source.system_id}/{self.source.slot}/{origin}/"
            f"{extra.get('table')}/{extra.get('row')}"
        )

    def format_payload(self, event: Event, change: Change, tx_size: int) -> bytes:
        """The payload of ``event`` in this processor's format (any kind of change)."""
        body = self._json_event(event, change, tx_size)
        if self.event_format == "json":
            return _dumps(body)
        if self.event_format == "debezium":
            return _dumps(self._debezium(event, change))
        return _dumps(
            {
                "specversion": "1.0",
                "id": event.event_id,
                "source": f"/wal2http/{self.source.database}/{self.source.slot}",
                "type": event.event_type,
                "subject": f"{event.schema}.{event.table}" if event.schema else None,
                "time": event.commit_time,
                "datacontenttype": "application/json",
                "data": body,
            }
        )

    # -- the row-change fast path ---------------------------------------------------------------
    def _tx_context(self, tx: Transaction) -> _TxContext:
        prefix = _id_prefix(self.source.system_id, self.source.slot, tx.commit_lsn)
        lsn = format_lsn(tx.commit_lsn)
        moment = pg_timestamp_to_datetime(tx.commit_time)
        commit_time = moment.strftime(RFC3339)
        return _TxContext(
            tx=tx,
            id_prefix=prefix,
            id_hash=hashlib.sha1(prefix),
            lsn=lsn,
            commit_time=commit_time,
            commit_ms=_milliseconds(moment),
            json_middle=f',"xid":{tx.xid},"lsn":"{lsn}","commit_time":"{commit_time}","seq":',
            json_tail=f',"tx_size":{tx.size},"source":{self._source_text}}}',
        )

    def _table_op(self, schema: str, table: str, op: str) -> _TableOp:
        key = (schema, table, op)
        cached = self._table_ops.get(key)
        if cached is None:
            event_type = f"{schema}.{table}.{op}"
            place = f'"schema":{_text(schema)},"table":{_text(table)}'
            cached = self._table_ops[key] = _TableOp(
                event_type=event_type,
                json_head=f'"event_type":{_text(event_type)},"op":"{op}",{place}',
                cloudevents_head=(
                    f'"type":{_text(event_type)},"subject":{_text(f"{schema}.{table}")}'
                ),
                debezium_op=_DEBEZIUM_OPS[op],
                debezium_place=place,
            )
        return cached

    def _row_payload(
        self,
        event_id: str,
        seq: int,
        xid: int,
        change: Change,
        context: _TxContext,
        table_op: _TableOp,
    ) -> bytes:
        """A row change's payload (the compiled json_row_event writes the same json format)."""
        new, old = change.new or "null", change.old or "null"
        if self.event_format == "debezium":
            return (
                f'{{"event_id":"{event_id}","before":{old},"after":{new},'
                f'"op":"{table_op.debezium_op}","ts_ms":{context.commit_ms},'
                f'"source":{{"version":"{__version__}","connector":"wal2http",'
                f'"name":{_text(self.source.slot)},"ts_ms":{context.commit_ms},'
                f'"db":{_text(self.source.database)},{table_op.debezium_place},'
                f'"txId":{xid},"lsn":"{context.lsn}","sequence":{seq}}}}}'
            ).encode()
        toast = _text(list(change.unchanged_toast)) if change.unchanged_toast else "[]"
        body = (
            f'{{"event_id":"{event_id}",{table_op.json_head},"new":{new},"old":{old},'
            f'"key":{change.key or "null"},"unchanged_toast":{toast}'
            f"{context.json_middle}{seq}{context.json_tail}"
        )
        if self.event_format == "json":
            return body.encode()
        return (
            f'{{"specversion":"1.0","id":"{event_id}",'
            f'"source":{_text(f"/wal2http/{self.source.database}/{self.source.slot}")},'
            f'{table_op.cloudevents_head},"time":"{context.commit_time}",'
            f'"datacontenttype":"application/json","data":{body}}}'
        ).encode()

    # -- dictionaries (truncate, message) -------------------------------------------------------
    def _json_event(self, event: Event, change: Change, tx_size: int) -> dict:
        body = {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "op": change.op,
            "schema": event.schema or None,
            "table": event.table or None,
            "new": _row(change.new),
            "old": _row(change.old),
            "key": _row(change.key),
            "unchanged_toast": list(change.unchanged_toast),
            "xid": event.xid,
            "lsn": event.lsn,
            "commit_time": event.commit_time,
            "seq": event.seq,
            "tx_size": tx_size,
            "source": self._source_json,
        }
        if change.op == "truncate":
            body["truncate"] = change.extra
        elif change.op == "read":
            body["backfill"] = _backfill(change.extra or {})
        elif change.op == "message":
            body.update(_message_fields(change.extra or {}))
        return body

    def _debezium(self, event: Event, change: Change) -> dict:
        commit_ms = _commit_ms(event.commit_time)
        source: dict[str, object] = {
            "version": __version__,
            "connector": "wal2http",
            "name": self.source.slot,
            "ts_ms": commit_ms,
            "db": self.source.database,
            "schema": event.schema or None,
            "table": event.table or None,
            "txId": event.xid,
            "lsn": event.lsn,
            "sequence": event.seq,
        }
        envelope = {
            "event_id": event.event_id,
            "before": _row(change.old),
            "after": _row(change.new),
            "op": _DEBEZIUM_OPS[change.op],
            "ts_ms": commit_ms,
            "source": source,
        }
        if change.op == "message":
            envelope["message"] = _message_fields(change.extra or {})
        elif change.op == "read":
            extra = change.extra or {}
            source["snapshot"] = "last" if extra.get("last") else "true"
            envelope["backfill"] = _backfill(extra)
        return envelope


def _text(value: object) -> str:
    """JSON text of a small value."""
    return _dumps(value).decode()


def _row(raw: str | bytes | None) -> orjson.Fragment:
    return _NULL if raw is None else _Fragment(raw)


def _backfill(extra: dict) -> dict:
    """What a read event says of the snapshot or backfill it comes from."""
    return {
        "id": extra.get("backfill", "initial"),
        "table": extra.get("table"),
        "chunk": extra.get("chunk"),
        "snapshot_lsn": extra.get("snapshot_lsn"),
    }


def _message_fields(extra: dict) -> dict:
    content: bytes = extra.get("content", b"")
    try:
        text, encoding = content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(content).decode(), "base64"
    return {
        "prefix": extra.get("prefix"),
        "content": text,
        "content_encoding": encoding,
        "transactional": extra.get("transactional"),
    }


def _commit_ms(commit_time: str) -> int:
    return _milliseconds(datetime.strptime(commit_time, RFC3339).replace(tzinfo=UTC))


def _milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
