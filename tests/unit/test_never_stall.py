"""Delivery never stalls silently: what a sink worker, the dispatcher and the HTTP client do when
a receiver, a library or our own code misbehaves (issue 11; the hostile receivers against a real
``run --headless`` are in ``tests/reliability/test_hostile_receivers.py``)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from tests.support.engine import sample_event, wait_until
from tests.support.hostile_receiver import HostileReceiver
from tests.unit.test_delivery import SOURCE, dispatch, transaction, worker
from wal2http_tui.config.model import HttpSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import ActivityFeed, SinkState
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.delivery.dispatcher import Dispatcher
from wal2http_tui.delivery.replay import Replayer
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.event_sinks.event_processor import EventProcessor
from wal2http_tui.event_sinks.http_client import RESPONSE_BODY_CAP, HttpClient
from wal2http_tui.event_sinks.http_sink import HttpEventSink
from wal2http_tui.event_sinks.traits import DeliveryError
from wal2http_tui.replication.state import EngineState
from wal2http_tui.replication.stream import ReplicationStream
from wal2http_tui.replication.transactions import Change, ChangeBuffer, Transaction

QUICK = RetryPolicy(retries=2, backoff_ms=10, max_backoff_secs=0.05)


# -- 1, 2, 3: the HTTP client against hostile answers --------------------------------------------
def test_a_body_that_is_not_the_gzip_it_claims_is_a_retryable_failure_not_a_crash():
    with HostileReceiver("bad_gzip") as receiver:
        client = HttpClient(timeout=5)
        with pytest.raises(DeliveryError) as caught:
            client.send_request(receiver.url, "POST", b"{}", {})
        client.close()
    assert caught.value.retryable
    assert "answered 200 with a body that is not what its Content-Encoding header says" in str(
        caught.value
    )


def test_an_endless_body_is_read_up_to_the_cap_and_the_connection_closed():
    with HostileReceiver("endless") as receiver:
        client = HttpClient(timeout=5)
        started = time.monotonic()
        answer = client.exchange("POST", receiver.url, content=b"{}")
        attempt = client.send_request(receiver.url, "POST", b"{}", {})
        elapsed = time.monotonic() - started
        client.close()
    assert answer.status == 200
    assert len(answer.body) == RESPONSE_BODY_CAP and answer.truncated
    assert attempt.body_truncated
    assert elapsed < 4  # two requests, neither read to the end


def test_the_timeout_bounds_the_whole_attempt_when_the_body_drips():
    with HostileReceiver("drip") as receiver:
        client = HttpClient(timeout=1.5)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            client.send_request(receiver.url, "POST", b"{}", {})
        elapsed = time.monotonic() - started
        client.close()
    assert 1.4 < elapsed < 3.0
    assert caught.value.retryable
    assert "no answer from" in str(caught.value) and "within 1.5s" in str(caught.value)
    assert "while reading its answer" in str(caught.value)


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        ("redirect", "answered 307 redirecting to http://127.0.0.1:1/elsewhere: update the url"),
        ("not_http", "answered with something that is not valid HTTP/1.1"),
        ("cut_short", "cut its answer short"),
        ("silent", "timed out waiting for an answer"),
    ],
)
def test_every_other_hostile_answer_is_a_failure_that_names_it(behaviour, said):
    with HostileReceiver(behaviour) as receiver:
        client = HttpClient(timeout=1)
        with pytest.raises(DeliveryError) as caught:
            client.send_request(receiver.url, "POST", b"{}", {})
        client.close()
    assert said in str(caught.value)
    assert caught.value.retryable == (behaviour != "redirect")


# -- 4: an unexpected exception inside a sink ------------------------------------------------------
class _Exploding(HttpEventSink):
    """An HTTP sink whose first ``failures`` attempts raise what no sink should raise."""

    def __init__(self, config: HttpSinkConfig, failures: int) -> None:
        super().__init__(config)
        self.failures = failures

    def request(self, events):  # what every request of both orderings is built by
        if self.failures:
            self.failures -= 1
            raise KeyError("a bug in a library")
        return super().request(events)


def exploding_worker(url: str, failures: int, ordering: str = "commit", **kwargs) -> SinkWorker:
    config = HttpSinkConfig(name="boom", enabled=True, url=url, timeout=2, ordering=ordering)
    return SinkWorker(
        _Exploding(config, failures), EventProcessor(SOURCE), feed=ActivityFeed(), **kwargs
    )


@pytest.mark.parametrize("ordering", ["commit", "key"])
def test_an_unexpected_exception_is_logged_once_shown_as_failing_and_retried(
    tmp_path, caplog, ordering
):
    caplog.set_level(logging.WARNING, logger="wal2http_tui")
    with WebhookReceiver() as receiver:
        retry = RetryPolicy(retries=1, backoff_ms=200, max_backoff_secs=0.5)
        sink = exploding_worker(
            receiver.url, failures=3, ordering=ordering, retry=retry, dead_letters=None
        )
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 2, end_lsn=500))
        wait_until(lambda: sink.snapshot().state == SinkState.FAILING, what="FAILING")
        assert "KeyError: 'a bug in a library'" in sink.snapshot().last_error
        assert dispatcher.confirmed_lsn() == 0
        events = receiver.wait_for_events(2)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="delivered after all")
        assert sink.snapshot().state == SinkState.HEALTHY
        assert sink.alive
        dispatcher.stop(1)
    assert sorted(event["new"]["id"] for event in events) == [1, 2]
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 1
    assert "unexpected error in the http sink: KeyError" in tracebacks[0].getMessage()


def test_an_unexpected_exception_follows_on_failure_dead_letter(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    with WebhookReceiver() as receiver:
        retry = RetryPolicy(retries=0, on_failure="dead_letter")
        sink = exploding_worker(receiver.url, failures=1, retry=retry, dead_letters=store)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        dispatch(dispatcher, transaction(tmp_path, 2, 1, end_lsn=600))
        events = receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 600, what="both settled")
        dispatcher.stop(1)
    assert [event["new"]["id"] for event in events] == [2]
    [letter] = store.list()
    assert json.loads(letter.payload)["new"] == {"id": 1}
    assert "KeyError" in letter.reason


class _UnreadableOnce(ChangeBuffer):
    """A transaction's changes whose first reading fails, as a spill file that cannot be read
    would."""

    failures = 1

    def __iter__(self):
        if self.failures:
            self.failures -= 1
            raise OSError("spill file unreadable")
        return super().__iter__()


@pytest.mark.parametrize("ordering", ["commit", "key"])
def test_an_error_while_building_events_keeps_the_queue_and_starts_over(tmp_path, caplog, ordering):
    buffer = _UnreadableOnce(tmp_path)
    for row in (1, 2, 3):
        new = json.dumps({"id": row})
        buffer.append(Change("insert", "public", "t", new, None, new))
    buffer.finish()
    tx = Transaction(xid=1, commit_lsn=492, end_lsn=500, commit_time=0, changes=buffer)
    with WebhookReceiver() as receiver:
        sink = worker(receiver.url, tmp_path, retry=QUICK, ordering=ordering)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        dispatch(dispatcher, tx)
        sink.start()
        events = receiver.wait_for_events(3)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="delivered after the error")
        dispatcher.stop(1)
    ids = [event["new"]["id"] for event in events]
    assert (ids if ordering == "commit" else sorted(ids)) == [1, 2, 3]  # by key: rows in any order
    assert "OSError: spill file unreadable" in caplog.text


# -- 6: the acknowledgement rule while sinks change ------------------------------------------------
def test_no_confirmation_sees_a_replaced_sinks_unfinished_work_in_neither_worker(tmp_path):
    """``confirmed_lsn`` asked while the new worker adopts the old one's queue waits for the swap
    and then sees the work in the new worker: it never confirms what nobody delivered."""
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=503))
        old = worker(receiver.url, tmp_path, retry=QUICK)
        dispatcher = Dispatcher()
        dispatcher.add(old)
        old.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        seen: list[int] = []

        class Adopting(SinkWorker):
            def adopt(self, transactions, finished_lsn):
                asked = threading.Thread(target=lambda: seen.append(dispatcher.confirmed_lsn()))
                asked.start()
                asked.join(0.3)  # with the lock held by replace, it cannot answer yet
                super().adopt(transactions, finished_lsn)
                self.asked = asked

        new = worker(receiver.url, tmp_path, Adopting, retry=QUICK)
        dispatcher.replace(old, new)
        new.asked.join(2)
        assert seen == [0], "a confirmation passed the replaced sink's undelivered transaction"
        assert dispatcher.confirmed_lsn() == 0
        receiver.fail_always(None)
        receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="delivered by the new worker")
        dispatcher.stop(1)


def test_a_worker_in_a_large_transaction_stops_at_the_drain_deadline(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.latency = 0.01
        sink = worker(receiver.url, tmp_path, retry=QUICK)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        dispatch(dispatcher, transaction(tmp_path, 1, 10_000, end_lsn=500))
        sink.start()
        receiver.wait_for_events(5)
        started = time.monotonic()
        assert dispatcher.stop(0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the worker went on for {elapsed:.1f}s past the drain deadline"
    assert receiver.accepted < 10_000
    assert dispatcher.confirmed_lsn() == 0


def test_dispatch_during_a_replace_does_not_queue_the_transaction_twice(tmp_path):
    with WebhookReceiver() as receiver:
        first = worker(receiver.url, tmp_path, retry=QUICK, queue_max_events=1)
        full = worker("http://127.0.0.1:9/never", tmp_path, retry=QUICK, queue_max_events=1)
        full.sink.name = "full"
        dispatcher = Dispatcher()
        dispatcher.add(first)
        dispatcher.add(full)
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=400))
        replacement = worker(receiver.url, tmp_path, retry=QUICK, timeout=3)
        replaced = threading.Event()

        def keep_alive() -> None:  # while "full" blocks the dispatch, "s" is replaced
            if not replaced.is_set():
                replaced.set()
                dispatcher.replace(first, replacement)
                dispatcher.retire(full)

        tx = transaction(tmp_path, 2, 1, end_lsn=500)
        assert dispatcher.dispatch(tx, keep_alive=keep_alive, stopped=lambda: False)
        receiver.wait_for_events(2)
        time.sleep(0.5)
        dispatcher.stop(1)
    assert [event["new"]["id"] for event in receiver.events] == [1, 2]


# -- 7: a dead letter replayed to a batching sink --------------------------------------------------
def test_replay_sends_the_shape_a_batching_sink_sends(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    event = sample_event(b'{"new": {"id": 7}}')
    store.add("batched", event, "503", 3, time.time(), time.time())
    with WebhookReceiver() as receiver:
        sinks = (
            HttpSinkConfig(name="batched", enabled=True, url=receiver.url, batch_max_events=50),
        )
        config = type("Config", (), {"event_sinks": sinks})()
        replayer = Replayer(config, store)  # type: ignore[arg-type]  # only event_sinks is read
        assert replayer.replay(store.list()[0]) is None
        replayer.close()
    assert json.loads(receiver.requests[0].body) == [{"new": {"id": 7}}]
    assert store.list() == []


# -- 9: operator actions apply to the state they were asked in ------------------------------------
def test_skip_with_nothing_waiting_arms_nothing(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    with WebhookReceiver() as receiver:
        sink = worker(receiver.url, tmp_path, dead_letters=store, retry=QUICK)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        assert sink.skip_to_dead_letters() is False
        receiver.fail_next(1, Fault(status=503))
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        receiver.wait_for_events(1)
        wait_until(lambda: dispatcher.confirmed_lsn() == 500, what="delivered on retry")
        dispatcher.stop(1)
    assert store.list() == [], "a skip asked when nothing failed dead-lettered a later failure"


def test_a_paused_sink_stays_paused_while_its_attempt_in_flight_fails(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=503, stall_seconds=0.5))
        sink = worker(receiver.url, tmp_path, retry=QUICK)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        wait_until(lambda: receiver.requests, what="an attempt in flight")
        sink.pause()
        time.sleep(1.0)
        assert sink.snapshot().state == SinkState.PAUSED
        sink.resume()
        wait_until(lambda: sink.snapshot().state == SinkState.RETRYING, what="RETRYING again")
        dispatcher.stop(0)


# -- 11: a one-event sink handed several events ----------------------------------------------------
def test_a_one_event_sink_refuses_several_events_instead_of_dropping_them():
    sink = HttpEventSink(HttpSinkConfig(name="one", enabled=True, url="http://127.0.0.1:9/"))
    with pytest.raises(ValueError, match="delivers one event at a time"):
        sink.on_batch([sample_event(), sample_event()])
    sink.close()


# -- STALLED ---------------------------------------------------------------------------------------
def test_work_queued_and_nothing_delivered_is_stalled_once_then_healthy(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wal2http_tui")
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=503))
        patient = RetryPolicy(retries=1000, backoff_ms=10, max_backoff_secs=0.05)  # RETRYING
        sink = worker(receiver.url, tmp_path, retry=patient, stall_warning_secs=1)
        dispatcher = Dispatcher()
        dispatcher.add(sink)
        sink.start()
        dispatch(dispatcher, transaction(tmp_path, 1, 1, end_lsn=500))
        wait_until(lambda: sink.snapshot().state == SinkState.STALLED, what="STALLED")
        time.sleep(1.0)
        receiver.fail_always(None)
        receiver.wait_for_events(1)
        wait_until(lambda: sink.snapshot().state == SinkState.HEALTHY, what="HEALTHY again")
        dispatcher.stop(1)
    stalled = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalled) == 1
    assert stalled[0].levelno == logging.WARNING
    assert "nothing delivered for 1s" in stalled[0].getMessage()
    assert "503" in stalled[0].getMessage()


# -- 9: pause and resume of replication apply to the state they were asked in -------------------
class _Consumers:
    """Just enough of a TransactionHandler for a stream that is never started."""

    consumers = 1


def test_pause_and_resume_leave_reconnecting_standby_and_error_alone():
    config = ReplicationConfig(connection_string="host=db.invalid")
    stream = ReplicationStream(config, _Consumers())  # type: ignore[arg-type]  # never started
    for state in (EngineState.RECONNECTING, EngineState.STANDBY, EngineState.ERROR):
        stream.state.set_state(state, "why")
        stream.pause()
        assert (stream.snapshot().state, stream.paused) == (state, True)
        stream.resume()
        assert (stream.snapshot().state, stream.paused) == (state, False)
    stream.state.set_state(EngineState.STREAMING)
    stream.pause()
    assert stream.snapshot().state == EngineState.PAUSED
    stream.resume()
    assert stream.snapshot().state == EngineState.STREAMING
