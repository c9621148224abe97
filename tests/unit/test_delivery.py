"""Delivery workers against real local receivers: order, batching, retries, dead letters, acks."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.engine import wait_until
from wal2http_tui.config.model import HttpSinkConfig
from wal2http_tui.delivery.activity import ActivityFeed, SinkState
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.delivery.dispatcher import Dispatcher
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.event_sinks.event_processor import EventProcessor, SourceInfo
from wal2http_tui.event_sinks.http_sink import HttpEventSink
from wal2http_tui.replication.transactions import Change, ChangeBuffer, Transaction

SOURCE = SourceInfo("7000000000000000001", "db", "slot", "pub")


def transaction(tmp_path, first_id: int, rows: int, end_lsn: int) -> Transaction:
    buffer = ChangeBuffer(tmp_path)
    for row in range(first_id, first_id + rows):
        new = json.dumps({"id": row})
        buffer.append(Change("insert", "public", "t", new, None, new))
    buffer.finish()
    return Transaction(
        xid=end_lsn, commit_lsn=end_lsn - 8, end_lsn=end_lsn, commit_time=0, changes=buffer
    )


def worker(url: str, tmp_path, cls: type[SinkWorker] = SinkWorker, **kwargs) -> SinkWorker:
    batch = kwargs.pop("batch_max_events", 1)
    retry = kwargs.pop("retry", RetryPolicy(retries=2, backoff_ms=10, max_backoff_secs=0.05))
    config = HttpSinkConfig(
        name="s",
        enabled=True,
        url=url,
        timeout=kwargs.pop("timeout", 2),
        batch_max_events=batch,
        ordering=kwargs.pop("ordering", "commit"),
    )
    store = kwargs.pop("dead_letters", None)
    return cls(
        HttpEventSink(config),
        EventProcessor(SOURCE),
        retry=retry,
        dead_letters=store,
        feed=ActivityFeed(),
        **kwargs,
    )


def dispatch(dispatcher: Dispatcher, tx: Transaction) -> None:
    assert dispatcher.dispatch(tx, keep_alive=lambda: None, stopped=lambda: False)


@pytest.mark.parametrize("batch", [1, 7])
def test_events_arrive_in_commit_order_and_acks_follow(tmp_path, batch):
    with WebhookReceiver() as receiver:
        sink = worker(receiver.url, tmp_path, batch_max_events=batch)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        for n in range(10):
            dispatch(dispatcher, transaction(tmp_path, n * 5, 5, end_lsn=1000 + n * 100))
        events = receiver.wait_for_events(50)
        wait_until(lambda: dispatcher.confirmed_lsn() == 1900, what="all acknowledged")
        dispatcher.stop(1)
    assert [e["new"]["id"] for e in events] == list(range(50))
    assert [e["seq"] for e in events] == [s for _ in range(10) for s in range(5)]
    bodies = [json.loads(r.body) for r in receiver.requests]
    if batch == 1:
        assert all(isinstance(body, dict) for body in bodies)
    else:
        assert all(isinstance(body, list) and len(body) <= 7 for body in bodies)
        assert max(len(body) for body in bodies) == 7


def test_retries_then_delivers_and_confirmed_lsn_waits(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.fail_next(2, Fault(status=503))
        sink = worker(receiver.url, tmp_path)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="ack")
        dispatcher.stop(1)
    assert [r.status for r in receiver.requests] == [503, 503, 200]
    assert sink.stats.failed == 2 and sink.stats.delivered == 1
    statuses = [a.status for a in sink.feed.recent_attempts()]
    assert statuses == [503, 503, 200]


def test_permanent_failure_blocks_by_default_and_confirms_nothing(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=400))
        sink = worker(receiver.url, tmp_path)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        wait_until(lambda: sink.stats.state == SinkState.FAILING, what="FAILING")
        assert dispatcher.confirmed_lsn() == 0
        receiver.fail_always(None)
        sink.retry_now()
        receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="ack after recovery")
        dispatcher.stop(1)
    assert sink.stats.state == SinkState.STOPPED


def test_exhausted_retries_dead_letter_then_move_on(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    with WebhookReceiver() as receiver:
        receiver.fail_next(3, Fault(status=500))
        sink = worker(
            receiver.url,
            tmp_path,
            dead_letters=store,
            retry=RetryPolicy(
                retries=2, backoff_ms=1, max_backoff_secs=0.01, on_failure="dead_letter"
            ),
        )
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        dispatch(dispatcher, transaction(tmp_path, 2, 1, end_lsn=600))
        events = receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 600, what="both settled")
        dispatcher.stop(1)
    assert [e["new"]["id"] for e in events] == [2]
    letters = store.list()
    assert len(letters) == 1
    assert letters[0].attempts == 3
    assert json.loads(letters[0].payload)["new"] == {"id": 1}
    assert "500" in letters[0].reason
    assert sink.stats.dead_lettered == 1


def test_a_refused_event_in_a_batch_is_isolated(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    with WebhookReceiver() as receiver:
        receiver.fail_next(2, Fault(status=422))  # the batch, then its first event alone
        sink = worker(
            receiver.url,
            tmp_path,
            dead_letters=store,
            batch_max_events=3,
            retry=RetryPolicy(retries=0, on_failure="dead_letter"),
        )
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        dispatch(dispatcher, transaction(tmp_path, 1, 3, end_lsn=500))
        sink.start()
        events = receiver.wait_for_events(2)
        dispatcher.stop(1)
    assert [e["new"]["id"] for e in events] == [2, 3]
    assert [json.loads(letter.payload)["new"]["id"] for letter in store.list()] == [1]


def test_backpressure_offer_fails_when_queue_is_full(tmp_path):
    sink = worker("http://127.0.0.1:9/never", tmp_path, queue_max_events=10)
    assert sink.offer(transaction(tmp_path, 1, 6, 100), timeout=0.01)
    assert not sink.offer(transaction(tmp_path, 7, 6, 200), timeout=0.05)
    assert sink.queue_depth == 6
    # a transaction larger than the queue still goes through when the queue is empty
    lone = worker("http://127.0.0.1:9/never", tmp_path, queue_max_events=10)
    assert lone.offer(transaction(tmp_path, 1, 50, 100), timeout=0.01)


def test_pause_holds_delivery_and_resume_releases_it(tmp_path):
    with WebhookReceiver() as receiver:
        sink = worker(receiver.url, tmp_path)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.pause()
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 2, end_lsn=500))
        time.sleep(0.5)
        assert receiver.accepted == 0
        assert sink.snapshot().state == SinkState.PAUSED
        sink.resume()
        receiver.wait_for_events(2)
        dispatcher.stop(1)


@pytest.mark.parametrize(("ordering", "rows"), [("commit", 1), ("key", 3)])
def test_skip_dead_letters_the_blocked_deliveries(tmp_path, ordering, rows):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=500))
        sink = worker(receiver.url, tmp_path, dead_letters=store, ordering=ordering)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, rows, end_lsn=500))
        # by key, each row's delivery waits for its own retry: one entry each
        wait_until(lambda: len(sink.stats.retries) == rows, what="the retries pending")
        assert all(len(r.event_ids) == 1 for r in sink.stats.retries.values())
        assert sink.snapshot().state in (SinkState.RETRYING, SinkState.FAILING)
        sink.skip_to_dead_letters()
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="skipped")
        assert not sink.stats.retries and sink.snapshot().state == SinkState.HEALTHY
        dispatcher.stop(1)
    assert len(store.list()) == rows


def test_stop_with_undeliverable_events_does_not_confirm_them(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=503))
        sink = worker(receiver.url, tmp_path)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        started = time.monotonic()
        dispatcher.stop(0.5)
        assert time.monotonic() - started < 3
    assert dispatcher.confirmed_lsn() == 0
