"""The compiled event path (wal2http_tui/csrc/events.c) against the Python reference.

Random changes of every kind, in every event format, through an EventProcessor on each path:
the same events, field for field, with the same payload bytes. The hand-written SHA-1 of the
event ids against hashlib, on messages of every length around its block boundaries.
"""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wal2http_tui.event_sinks.event_processor import EventProcessor, SourceInfo
from wal2http_tui.replication import native
from wal2http_tui.replication.transactions import Change, ChangeBuffer, Transaction

# random messages per property (tests/unit/test_native_memory.py asks fewer of a sanitized build)
EXAMPLES = int(os.environ.get("WAL2HTTP_EXAMPLES", "1500"))

pytestmark = pytest.mark.skipif(
    native.compiled({}) is None, reason="the compiled hot path is not built"
)

_names = st.text(min_size=1, max_size=12)
_rows = st.one_of(st.none(), st.sampled_from(['{"id":1}', '{"a":"é\\"","b":null}', "{}"]))


@st.composite
def changes(draw):
    op = draw(st.sampled_from(["insert", "update", "delete", "truncate", "message", "read"]))
    extra = None
    if op == "truncate":
        extra = {"cascade": draw(st.booleans()), "restart_identity": False}
    elif op == "message":
        extra = {
            "prefix": draw(_names),
            "content": draw(st.binary(max_size=8)),
            "transactional": True,
        }
    elif op == "read":
        extra = {"backfill": draw(_names), "table": "public.t", "row": draw(st.integers(0, 99))}
    return Change(
        op,
        draw(_names),
        draw(_names),
        draw(_rows),
        draw(_rows),
        draw(_rows),
        tuple(draw(st.lists(_names, max_size=3))),
        extra,
    )


@st.composite
def transactions(draw, tmp_path):
    buffer = ChangeBuffer(tmp_path)
    for _ in range(draw(st.integers(0, 3))):
        buffer.append(Change("insert", "public", "t", "{}", None, None))
    return Transaction(
        xid=draw(st.integers(0, 2**32 - 1)),
        commit_lsn=draw(st.integers(0, 2**64 - 1)),
        end_lsn=0,
        commit_time=draw(st.integers(-(2**40), 2**50)),
        changes=buffer,
    )


_sources = st.builds(SourceInfo, _names, _names, _names, _names)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    data=st.data(),
    source=_sources,
    event_format=st.sampled_from(["json", "debezium", "cloudevents"]),
    seq=st.integers(0, 2**40),
)
def test_the_compiled_events_are_the_python_events(
    tmp_path_factory, data, source, event_format, seq
):
    tx = data.draw(transactions(tmp_path_factory.mktemp("spool")))
    change = data.draw(changes())
    python = EventProcessor(source, event_format, compiled=False).process_event(tx, change, seq)
    compiled = EventProcessor(source, event_format, compiled=True).process_event(tx, change, seq)
    assert compiled == python


@given(st.binary(max_size=200), st.integers(0, 2**62))
def test_event_ids_are_uuid5_by_sha1(prefix, seq):
    module = native.compiled({})
    assert module is not None
    digest = hashlib.sha1(prefix + b"%d" % seq).digest()
    expected = uuid.UUID(bytes=digest[:16], version=5)
    assert module.event_id(prefix, seq) == str(expected)


def test_sha1_at_every_length_around_the_block_boundaries():
    module = native.compiled({})
    assert module is not None
    for length in range(0, 300):
        prefix = bytes(range(256))[: length % 256] * (1 + length // 256)
        prefix = prefix[:length]
        digest = hashlib.sha1(prefix + b"7").digest()
        assert module.event_id(prefix, 7) == str(uuid.UUID(bytes=digest[:16], version=5))
