"""Per-key order with concurrency: whatever order deliveries finish in, events of a key go out
in commit order one at a time, barriers separate what comes before and after them, the in-flight
limit holds, and the confirmed position never passes an unfinished event."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wal2http_tui.delivery.ordering import BARRIER, Completion, KeyScheduler


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
    for lsn in sorted({e.lsn for e in events}):
        completion.add(lsn, sum(e.lsn == lsn for e in events))
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
            completion.finished(event.lsn)
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
    completion.add(100, 2)
    completion.add(200, 1)
    completion.add(300, 0)  # nothing for this sink: finished once everything before it is
    completion.finished(200)
    assert completion.confirmed == 50
    completion.finished(100)
    assert completion.confirmed == 50
    completion.finished(100)
    assert completion.confirmed == 300 and completion.unfinished == 0
    with pytest.raises(ValueError, match="commit order"):
        completion.add(250, 1)
    completion.add(400, 1)
    with pytest.raises(ValueError, match="more events finished"):
        completion.finished(400, 2)
