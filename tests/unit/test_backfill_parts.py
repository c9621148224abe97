"""The parts of on-demand backfills that need no database: the signed messages, the record kept
in the state file, the snapshot visibility rule and the key matching of the watermark window."""

from __future__ import annotations

import json

import pytest

from wal2http_tui.config.loader import load_config_text
from wal2http_tui.engine.backfill_control import BackfillRefused, records
from wal2http_tui.replication.backfill_requests import (
    BackfillMessage,
    BadBackfillMessage,
    decode,
    encode,
)
from wal2http_tui.replication.backfill_store import (
    BackfillRecord,
    BackfillState,
    BackfillStore,
    BackfillStoreError,
    TableProgress,
)
from wal2http_tui.replication.backfills import _canonical, _visible

KEY = b"k" * 32


def test_a_message_decodes_to_what_was_encoded():
    message = BackfillMessage(
        "start", "slot", "ab12cd34", ("public.orders",), ("crm",), "total > 10"
    )
    assert decode(encode(message, KEY), KEY) == message


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda body: body.update(where="true) OR (true"), "not signed with this engine's key"),
        (lambda body: body.update(v=2), "format version 2"),
        (lambda body: body.pop("sig"), "not signed"),
        (lambda body: body.update(kind="drop"), "not signed"),  # any change breaks the signature
    ],
)
def test_a_tampered_message_is_refused(tamper, reason):
    body = json.loads(encode(BackfillMessage("start", "slot", "id1", ("public.t",)), KEY))
    tamper(body)
    with pytest.raises(BadBackfillMessage, match=reason.replace("(", r"\(")):
        decode(json.dumps(body).encode(), KEY)


def test_a_message_signed_with_another_key_is_refused():
    content = encode(BackfillMessage("cancel", "slot", "id1"), b"other" * 8)
    with pytest.raises(BadBackfillMessage, match="not signed with this engine's key"):
        decode(content, KEY)


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"v": 1, "kind": "start"}'])
def test_malformed_content_is_refused(content):
    with pytest.raises(BadBackfillMessage):
        decode(content, KEY)


def test_the_record_survives_the_state_file(tmp_path):
    store = BackfillStore(tmp_path / "state.sqlite")
    record = BackfillRecord(
        "ab12cd34",
        "slot",
        (
            TableProgress("public.a", estimate=100, rows=100, last_key=("99", None), done=True),
            TableProgress("public.b", estimate=50),
        ),
        sinks=("crm",),
        where="n > 1",
        state=BackfillState.RUNNING,
    )
    store.save(record)
    store.save(BackfillRecord("other", "another slot", ()))
    store.close()
    again = BackfillStore(tmp_path / "state.sqlite", create=False)
    assert again.records("slot") == [record]
    assert again.get("ab12cd34") == record
    assert record.rows == 100 and record.estimate == 150
    assert record.current == record.tables[1]


def test_the_key_is_made_once_and_kept(tmp_path):
    first = BackfillStore(tmp_path / "state.sqlite").key()
    assert len(first) == 32
    assert BackfillStore(tmp_path / "state.sqlite").key() == first
    assert BackfillStore(tmp_path / "other.sqlite").key() != first


def test_a_missing_state_file_is_named_with_the_fix(tmp_path):
    with pytest.raises(BackfillStoreError, match=r"no state file at .*start it once"):
        BackfillStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


@pytest.mark.parametrize(
    ("xid", "snapshot", "visible"),
    [
        (100, "105:110:", True),  # before xmin
        (107, "105:110:107,108", False),  # in progress
        (106, "105:110:107,108", True),  # finished between xmin and xmax
        (110, "105:110:", False),  # at xmax: began after
        (4294967402 % 2**32, "4294967400:4294967410:4294967403", True),  # ids with an epoch
        (4294967403 % 2**32, "4294967400:4294967410:4294967403", False),
        (5, "4294967290:4294967300:", False),  # after a wraparound: 32-bit 5 is past xmax
    ],
)
def test_visibility_follows_the_snapshot(xid, snapshot, visible):
    assert _visible(xid, snapshot) is visible


def test_a_key_matches_whichever_json_rendered_it():
    keys = ("id", "region")
    from_key = json.loads('{"id": 7, "region": "eu"}')
    from_full_old_row = json.loads('{"region": "eu", "name": "x", "id": 7}')
    assert _canonical(from_key, keys) == _canonical(from_full_old_row, keys)
    assert _canonical(from_key, keys) != _canonical({"id": 7, "region": "us"}, keys)


def test_an_unreadable_state_file_is_a_refusal_that_names_it(tmp_path):
    state = tmp_path / "wal2http-state.sqlite"
    state.write_text("not a database")
    text = (
        'connection_string = "host=/nowhere"\n'
        f'dead_letter_path = "{tmp_path / "wal2http-dead-letters.sqlite"}"\n'
        '[[event_sinks.http]]\nname = "h"\nurl = "http://127.0.0.1:9/"\n'
    )
    config = load_config_text(text, tmp_path / "wal2http.toml")
    assert config.state_path == state
    with pytest.raises(BackfillRefused, match=f"cannot open the state file {state}: file is not"):
        records(config)
    assert state.read_text() == "not a database"  # nothing overwritten
