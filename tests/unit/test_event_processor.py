"""Events: deterministic ids, the three payload formats, exact embedded rows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from wal2http_tui.event_sinks.event_processor import (
    EventProcessor,
    SourceInfo,
    batch_id,
    event_id,
    rfc3339,
)
from wal2http_tui.replication.messages import datetime_to_pg_timestamp
from wal2http_tui.replication.transactions import Change, ChangeBuffer, Transaction

SOURCE = SourceInfo(system_id="7300000000000000001", database="shop", slot="s1", publication="p1")
COMMIT = datetime_to_pg_timestamp(datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))


def _tx(tmp_path, changes: list[Change]) -> Transaction:
    buffer = ChangeBuffer(tmp_path)
    for change in changes:
        buffer.append(change)
    buffer.finish()
    return Transaction(
        xid=742, commit_lsn=0x16B3748, end_lsn=0x16B3780, commit_time=COMMIT, changes=buffer
    )


UPDATE = Change(
    op="update",
    schema="public",
    table="orders",
    new='{"id":1,"total":12345678901234567890.123456789,"note":"x"}',
    old='{"id":1}',
    key='{"id":1}',
    unchanged_toast=("blob",),
)


def test_event_id_is_uuid5_of_system_slot_lsn_and_seq():
    expected = uuid.uuid5(
        uuid.uuid5(uuid.NAMESPACE_URL, "urn:wal2http:event"), "7300000000000000001/s1/0/16B3748/3"
    )
    assert event_id("7300000000000000001", "s1", 0x16B3748, 3) == str(expected)
    assert event_id("7300000000000000001", "s1", 0x16B3748, 4) != str(expected)
    assert event_id("7300000000000000002", "s1", 0x16B3748, 3) != str(expected)


def test_json_event_has_every_field_and_exact_numbers(tmp_path):
    tx = _tx(tmp_path, [UPDATE])
    event = EventProcessor(SOURCE).process_event(tx, UPDATE, 0)
    body = json.loads(event.payload, parse_float=str)
    assert body == {
        "event_id": event_id(SOURCE.system_id, "s1", 0x16B3748, 0),
        "event_type": "public.orders.update",
        "op": "update",
        "schema": "public",
        "table": "orders",
        "new": {"id": 1, "total": "12345678901234567890.123456789", "note": "x"},
        "old": {"id": 1},
        "key": {"id": 1},
        "unchanged_toast": ["blob"],
        "xid": 742,
        "lsn": "0/16B3748",
        "commit_time": "2024-05-06T07:08:09.123456Z",
        "seq": 0,
        "tx_size": 1,
        "source": {"database": "shop", "slot": "s1", "publication": "p1"},
    }
    assert b"12345678901234567890.123456789" in event.payload


def test_debezium_envelope(tmp_path):
    tx = _tx(tmp_path, [UPDATE])
    event = EventProcessor(SOURCE, "debezium").process_event(tx, UPDATE, 0)
    body = json.loads(event.payload)
    assert body["op"] == "u"
    assert body["before"] == {"id": 1}
    assert body["after"]["note"] == "x"
    assert body["event_id"] == event.event_id
    assert body["source"]["table"] == "orders"
    assert body["source"]["lsn"] == "0/16B3748"
    assert body["source"]["txId"] == 742
    assert body["ts_ms"] == 1714979289123


def test_cloudevents_structured_json(tmp_path):
    tx = _tx(tmp_path, [UPDATE])
    event = EventProcessor(SOURCE, "cloudevents").process_event(tx, UPDATE, 0)
    body = json.loads(event.payload)
    assert body["specversion"] == "1.0"
    assert body["id"] == event.event_id
    assert body["type"] == "public.orders.update"
    assert body["source"] == "/wal2http/shop/s1"
    assert body["time"] == "2024-05-06T07:08:09.123456Z"
    assert body["datacontenttype"] == "application/json"
    assert body["data"]["new"]["note"] == "x"
    assert body["data"]["event_id"] == event.event_id


def test_truncate_and_message_events(tmp_path):
    truncate = Change(
        "truncate",
        "public",
        "orders",
        None,
        None,
        None,
        (),
        {"cascade": True, "restart_identity": False},
    )
    message = Change(
        "message",
        "",
        "",
        None,
        None,
        None,
        (),
        {"prefix": "audit", "content": b"hello", "transactional": True},
    )
    tx = _tx(tmp_path, [truncate, message])
    processor = EventProcessor(SOURCE)
    first = json.loads(processor.process_event(tx, truncate, 0).payload)
    assert (first["op"], first["new"], first["old"]) == ("truncate", None, None)
    assert first["truncate"] == {"cascade": True, "restart_identity": False}
    assert first["tx_size"] == 2
    second = json.loads(processor.process_event(tx, message, 1).payload)
    assert second["op"] == "message"
    assert (second["prefix"], second["content"]) == ("audit", "hello")
    assert second["event_type"] == "logical_message.audit.message"


def test_batch_id_depends_on_first_last_and_size(tmp_path):
    tx = _tx(tmp_path, [UPDATE, UPDATE])
    processor = EventProcessor(SOURCE)
    events = [processor.process_event(tx, UPDATE, i) for i in range(3)]
    assert batch_id(events) == batch_id(list(events))
    assert batch_id(events) != batch_id(events[:2])
    uuid.UUID(batch_id(events))


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="json, debezium, cloudevents"):
        EventProcessor(SOURCE, "xml")


def test_rfc3339_is_utc_with_microseconds():
    assert rfc3339(0) == "2000-01-01T00:00:00.000000Z"
