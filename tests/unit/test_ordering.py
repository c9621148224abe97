"""Per-key order with concurrency: whatever order deliveries finish in, events of a key go out
in commit order one at a time, barriers separate what comes before and after them, the in-flight
limit holds, and the confirmed position never passes an unfinished event."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wal2http_tui.delivery.ordering import BARRIER, Completion, KeyScheduler, order_key
from wal2http_tui.replication.transactions import Change


class Event:
    def __init__(self, number: int, key: object, lsn: int) -> None:
        self.number, self.key, self.lsn = number, key, lsn


workloads = st.lists(
    st.one_of(st.integers(min_value=0, max_value=5), st.just(BARRIER)), min_size=1, max_size=60
)


def _run(keys: list, limit: int, seed: int, per_tx: int = 3):
    """Feed ``keys`` (events in commit order, ``per_tx`` to a transaction), finish in-flight
    events in a random order; what started when, and the completion's confirmations."""
    rng = random.Random(seed)
    scheduler: KeyScheduler[Event] = KeyScheduler(limit)
    completion = Completion()
    events = [Event(i, key, 100 + i // per_tx) for i, key in enumerate(keys)]
    tokens = {
        lsn: completion.add(lsn, sum(e.lsn == lsn for e in events))
        for lsn in sorted({e.lsn for e in events})
    }
    for event in events:
        scheduler.add(event, event.key)
    started: list[Event] = []
    finished: set[int] = set()
    in_flight: list[Event] = []
    confirmations = []
    while len(finished) < len(events):
        taken = scheduler.take(limit=rng.randint(1, limit))
        for event in taken:
            # nothing of the same key, and no barrier, before it is unfinished
            earlier = events[: event.number]
            assert all(
                e.number in finished for e in earlier if e.key == event.key or e.key is BARRIER
            )
            if event.key is BARRIER:
                assert all(e.number in finished for e in earlier)
        started += taken
        in_flight += taken
        assert 0 < len(in_flight) <= limit, "stuck, or over the in-flight limit"
        rng.shuffle(in_flight)
        for event in in_flight[: rng.randint(1, len(in_flight))]:
            scheduler.finish(event)
            completion.finished(tokens[event.lsn])
            finished.add(event.number)
            confirmations.append((completion.confirmed, set(finished)))
        in_flight = [e for e in in_flight if e.number not in finished]
    return events, started, confirmations


@settings(max_examples=300, deadline=None)
@given(keys=workloads, limit=st.integers(min_value=1, max_value=8), seed=st.integers(0, 2**16))
def test_order_barriers_limit_and_confirmations_hold_in_any_completion_order(keys, limit, seed):
    events, started, confirmations = _run(keys, limit, seed)
    assert sorted(e.number for e in started) == list(range(len(events)))  # each once
    for key in {e.key for e in events}:
        of_key = [e.number for e in started if e.key == key]
        assert of_key == sorted(of_key), f"key {key} out of commit order"
    for confirmed, finished in confirmations:
        assert all(e.number in finished for e in events if e.lsn <= confirmed)
    assert confirmations[-1][0] == events[-1].lsn


def test_independent_keys_go_out_together_and_one_key_waits_for_itself():
    scheduler: KeyScheduler[str] = KeyScheduler(max_in_flight=3)
    for item, key in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c"), ("d1", "d")]:
        scheduler.add(item, key)
    assert scheduler.take() == ["a1", "b1", "c1"]  # d1 waits for room, a2 for a1
    assert scheduler.take() == []
    scheduler.finish("b1")
    assert scheduler.take() == ["d1"]
    scheduler.finish("a1")
    assert scheduler.take() == ["a2"]
    assert len(scheduler) == 3


def test_a_barrier_waits_for_what_came_before_and_holds_what_comes_after():
    scheduler: KeyScheduler[str] = KeyScheduler(max_in_flight=8)
    for item, key in [("a1", "a"), ("b1", "b"), ("truncate", BARRIER), ("a2", "a"), ("c1", "c")]:
        scheduler.add(item, key)
    assert scheduler.take() == ["a1", "b1"]
    scheduler.finish("a1")
    assert scheduler.take() == []
    scheduler.finish("b1")
    assert scheduler.take() == ["truncate"]
    assert scheduler.take() == []
    scheduler.finish("truncate")
    assert scheduler.take() == ["a2", "c1"]


def test_the_confirmed_position_stops_at_the_first_unfinished_transaction():
    completion = Completion(confirmed=50)
    first = completion.add(100, 2)
    second = completion.add(200, 1)
    completion.add(300, 0)  # nothing for this sink: finished once everything before it is
    completion.finished(second)
    assert completion.confirmed == 50
    completion.finished(first)
    assert completion.confirmed == 50
    completion.finished(first)
    assert completion.confirmed == 300 and completion.unfinished == 0
    completion.add(250, 0)  # out of order: never takes the position back
    assert completion.confirmed == 300
    fourth = completion.add(400, 1)
    with pytest.raises(ValueError, match="more events finished"):
        completion.finished(fourth, 2)


def test_a_transaction_built_a_little_at_a_time_is_not_finished_before_it_is_sealed():
    completion = Completion()
    big = completion.begin(100)
    completion.count(big)
    completion.finished(big)  # its only event so far is done, but more may come
    assert completion.confirmed == 0
    completion.count(big, 2)
    completion.seal(big)
    completion.finished(big, 2)
    assert (completion.confirmed, completion.done) == (100, big)
    same_lsn = completion.add(100, 0)  # a backfill chunk may end where a transaction did
    assert completion.done == same_lsn
    later = completion.begin(200)
    completion.count(later)
    completion.seal(later)
    with pytest.raises(ValueError, match="sealed"):
        completion.count(later)


def _change(op: str, key: str | None, old: str | None = None) -> Change:
    return Change(op, "public", "t", None, old, key)


def test_order_keys_are_the_row_the_table_or_a_barrier():
    row = order_key(_change("insert", '{"id": 1}'))
    assert (
        row
        == order_key(_change("update", '{"id": 1}'))
        == order_key(_change("delete", '{"id": 1}'))
    )
    assert row != order_key(_change("insert", '{"id": 2}'))
    assert order_key(_change("insert", None)) == ("public", "t")  # no key: the table's order
    assert order_key(_change("truncate", None)) is BARRIER
    assert order_key(_change("message", None)) is BARRIER
    # an update that moves the row to another key is ordered with both keys
    assert order_key(_change("update", '{"id": 2}', old='{"id": 1}')) is BARRIER
    # REPLICA IDENTITY FULL sends the old row with every update: same key, same lane
    full_old = '{"id": 1, "note": "before"}'
    assert order_key(_change("update", '{"id": 1}', old=full_old)) == row
