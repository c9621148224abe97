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

import orjson

from wal2http_tui import __version__
from wal2http_tui.changes import Change, Transaction
from wal2http_tui.types import format_lsn, pg_timestamp_to_datetime

EVENT_FORMATS = ("json", "debezium", "cloudevents")

# UUIDv5 namespace of wal2http event ids: uuid5(NAMESPACE_URL, "urn:wal2http:event").
EVENT_ID_NAMESPACE = bytes.fromhex("f37218330c0057e5abdb7e33b1c3ec7e")

_Fragment = orjson.Fragment
_dumps = orjson.dumps
_NULL = _Fragment(b"null")
_DEBEZIUM_OPS = {"insert": "c", "update": "u", "delete": "d", "truncate": "t", "message": "m"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


def event_id(system_id: str, slot: str, commit_lsn: int, seq: int) -> str:
    """UUIDv5 (RFC 4122) of ``system_id/slot/commit LSN/seq``; equals ``uuid.uuid5``."""
    return _uuid5(f"{system_id}/{slot}/{format_lsn(commit_lsn)}/{seq}")


def batch_id(events: Sequence[Event]) -> str:
    """A deterministic id for a batch: UUIDv5 of its first and last event ids and its size."""
    return _uuid5(f"batch/{events[0].event_id}/{events[-1].event_id}/{len(events)}")


def _uuid5(text: str) -> str:
    name = text.encode()
    digest = bytearray(hashlib.sha1(EVENT_ID_NAMESPACE + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(pg_micros: int) -> str:
    """Wire timestamp -> ``2024-01-02T03:04:05.123456Z``."""
    moment = pg_timestamp_to_datetime(pg_micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class EventProcessor:
    """Shared by all sinks of one event format: builds events and formats their payloads."""

    def __init__(self, source: SourceInfo, event_format: str = "json") -> None:
        if event_format not in EVENT_FORMATS:
            raise ValueError(f"event_format must be one of {', '.join(EVENT_FORMATS)}")
        self.event_format = event_format
        self._tx_cache: tuple[int, str, str] = (-1, "", "")
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

    def process_event(self, tx: Transaction, change: Change, seq: int) -> Event:
        """The event for the ``seq``-th change of ``tx``, with its payload."""
        lsn, commit_time = self._tx_fields(tx)
        if change.op == "message":
            schema, table = "", ""
            event_type = f"logical_message.{change.extra['prefix']}.message"
        else:
            schema, table = change.schema, change.table
            event_type = f"{schema}.{table}.{change.op}"
        event = Event(
            event_id=event_id(self.source.system_id, self.source.slot, tx.commit_lsn, seq),
            event_type=event_type,
            op=change.op,
            schema=schema,
            table=table,
            lsn=lsn,
            commit_time=commit_time,
            seq=seq,
            payload=b"",
            xid=tx.xid,
        )
        event.payload = self.format_payload(event, change, tx.size)
        return event

    def format_payload(self, event: Event, change: Change, tx_size: int) -> bytes:
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

    # -- formats ------------------------------------------------------------------------------
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
        elif change.op == "message":
            body.update(_message_fields(change.extra or {}))
        return body

    def _debezium(self, event: Event, change: Change) -> dict:
        commit_ms = _commit_ms(event.commit_time)
        envelope = {
            "event_id": event.event_id,
            "before": _row(change.old),
            "after": _row(change.new),
            "op": _DEBEZIUM_OPS[change.op],
            "ts_ms": commit_ms,
            "source": {
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
            },
        }
        if change.op == "message":
            envelope["message"] = _message_fields(change.extra or {})
        return envelope

    def _tx_fields(self, tx: Transaction) -> tuple[str, str]:
        cached = self._tx_cache
        if cached[0] != tx.commit_lsn:
            cached = (tx.commit_lsn, format_lsn(tx.commit_lsn), rfc3339(tx.commit_time))
            self._tx_cache = cached
        return cached[1], cached[2]


def _row(raw: str | bytes | None) -> orjson.Fragment:
    return _NULL if raw is None else _Fragment(raw)


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
    moment = datetime.strptime(commit_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
