"""Several sinks at once on real PostgreSQL: HTTP receivers and the Hook0 fake, failures, replay."""

from __future__ import annotations

import json

import pytest

from tests.fakes.hook0_api import Hook0Fake
from tests.support.engine import (
    http_sink,
    make_server,
    running,
    sample_event,
    slot_confirmed_lsn,
    wait_until,
)
from tests.support.hook0 import APPLICATION, TOKEN, hook0_sink
from wal2http_tui.config.loader import load_config_text
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.delivery.replay import Replayer, replay_all
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.event_sinks.factory import build_sink


def _config(pg, sinks: str) -> str:
    return (
        f'connection_string = "{pg.dsn}"\nslot_name = "multi"\npublication_name = "multi_pub"\n'
        f"feedback_interval_secs = 1\n{sinks}"
    )


@pytest.fixture
def hook0():
    with Hook0Fake({APPLICATION: [TOKEN]}) as fake:
        yield fake


def test_two_http_sinks_and_hook0_receive_the_same_events(pg, tmp_path, hook0):
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    with WebhookReceiver() as a, WebhookReceiver() as b:
        sinks = (
            http_sink(a.url, name="a")
            + http_sink(b.url, name="b", event_format="cloudevents", batch_max_events=10)
            + hook0_sink(hook0.api_url)
        )
        with running(make_server(tmp_path, _config(pg, sinks))) as server:
            pg.execute("INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 20) g")
            pg.execute("UPDATE orders SET total = 0 WHERE id = 1")
            a_events = a.wait_for_events(21)
            b_events = b.wait_for_events(21)
            h_events = hook0.wait_for_events(21, timeout=30)
            commit = server.snapshot().last_commit_lsn
            wait_until(lambda: slot_confirmed_lsn(pg, "multi") > commit, what="confirmation")
    ids = [e["event_id"] for e in a_events]
    assert [e["id"] for e in b_events] == ids
    assert [e.event_id for e in h_events] == ids
    assert [e["data"]["new"] for e in b_events] == [e["new"] for e in a_events]
    first = h_events[0]
    assert first.event_type == "public.orders.insert"
    assert first.labels == {"source": "wal2http", "schema": "public", "table": "orders"}
    assert first.payload["new"] == {"id": 1, "total": 1.5}
    assert h_events[-1].event_type == "public.orders.update"
    assert hook0.violations == []
    assert sorted(hook0.event_types(APPLICATION)) == [
        "public.orders.insert",
        "public.orders.update",
    ]


def test_a_failing_sink_holds_the_confirmed_lsn_but_not_the_others(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as good, WebhookReceiver() as bad:
        bad.fail_always(Fault(status=500))
        sinks = http_sink(good.url, name="good") + http_sink(
            bad.url, name="bad", retry_backoff_ms=20, retry_max_backoff_secs=0.2
        )
        with running(make_server(tmp_path, _config(pg, sinks))) as server:
            before = slot_confirmed_lsn(pg, "multi")
            pg.execute("INSERT INTO t SELECT generate_series(1, 30)")
            good.wait_for_events(30)
            wait_until(lambda: server.worker("bad").stats.failed >= 3, what="bad sink failing")
            assert slot_confirmed_lsn(pg, "multi") == before
            assert server.snapshot().flushed_lsn == before
            bad.fail_always(None)
            bad.wait_for_events(30, timeout=30)
            commit = server.snapshot().last_commit_lsn
            wait_until(lambda: slot_confirmed_lsn(pg, "multi") > commit, what="confirmation")
    assert [e["new"]["id"] for e in bad.events] == list(range(1, 31))
    assert good.event_ids() == bad.event_ids()


def test_connection_refused_and_timeouts_are_retried_until_delivered(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as slow:
        down = WebhookReceiver().start()
        down_url = down.url
        down.stop()  # nothing listens on that port now: connection refused
        slow.fail_next(2, Fault(stall_seconds=1.5))
        sinks = http_sink(
            down_url, name="down", retry_backoff_ms=20, retry_max_backoff_secs=0.2
        ) + http_sink(slow.url, name="slow", timeout=0.5, retry_backoff_ms=20)
        with running(make_server(tmp_path, _config(pg, sinks))) as server:
            pg.execute("INSERT INTO t VALUES (1)")
            slow.wait_for_events(1, timeout=30)
            wait_until(lambda: server.worker("down").stats.failed >= 2, what="refusals")
            assert "connection refused" in server.worker("down").stats.last_error
            revived = WebhookReceiver(port=down.port).start()
            try:
                revived.wait_for_events(1, timeout=30)
            finally:
                revived.stop()
    slow_errors = [a.error for a in server.feed.recent_attempts() if a.sink == "slow" and a.error]
    assert len(slow_errors) == 2 and all("within 0.5s" in e for e in slow_errors)


def test_dead_letters_then_replay_delivers_them(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=422))
        sinks = http_sink(receiver.url, on_failure="dead_letter", retries=1)
        text = _config(pg, sinks)
        with running(make_server(tmp_path, text)) as server:
            pg.execute("INSERT INTO t SELECT generate_series(1, 5)")
            wait_until(lambda: server.worker("http").stats.dead_lettered == 5, what="5 dead")
            commit = server.snapshot().last_commit_lsn
            wait_until(lambda: slot_confirmed_lsn(pg, "multi") > commit, what="confirmation")
        config = load_config_text(text, tmp_path / "wal2http.toml")
        store = DeadLetterStore(config.dead_letter_path)
        letters = store.list()
        assert [json.loads(x.payload)["new"]["id"] for x in letters] == [1, 2, 3, 4, 5]
        assert all("422" in x.reason for x in letters)
        receiver.fail_always(None)
        lines: list[str] = []
        replayer = Replayer(config, store)
        failed = replay_all(replayer, letters, lines.append)
        replayer.close()
        events = receiver.wait_for_events(5)
    assert failed == 0
    assert store.count() == 0
    assert [e["new"]["id"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["event_id"] for e in events] == [x.event_id for x in letters]
    assert len(lines) == 5 and lines[0].startswith("replayed")


def test_hook0_resend_of_an_ingested_event_counts_as_delivered(tmp_path, hook0):
    text = _config(FakeDb, hook0_sink(hook0.api_url))
    sink = build_sink(load_config_text(text, tmp_path / "wal2http.toml").event_sinks[0])
    event = sample_event()
    first = sink.on_event(event)
    again = sink.on_event(event)  # a resend after a crash: Hook0 already has it
    sink.close()
    assert (first.status, again.status) == (201, 409)
    assert len(hook0.events) == 1


class FakeDb:
    dsn = "host=127.0.0.1 dbname=unused"


def test_hook0_rate_limit_is_waited_out(pg, tmp_path, hook0):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    hook0.fail_next(2, status=429, problem="RateLimited", retry_after=1)
    with running(make_server(tmp_path, _config(pg, hook0_sink(hook0.api_url)))) as server:
        pg.execute("INSERT INTO t VALUES (1)")
        hook0.wait_for_events(1, timeout=30)
    attempts = [a for a in server.feed.recent_attempts() if a.sink == "hook0"]
    assert [a.status for a in attempts] == [429, 429, 201]
    assert attempts[1].at - attempts[0].at >= 0.9  # waited as told by Retry-After


def test_hook0_quota_is_permanent_and_dead_lettered(pg, tmp_path, hook0):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    hook0.fail_next(1, status=429, problem="TooManyEventsToday")
    sinks = hook0_sink(hook0.api_url, on_failure="dead_letter", retries=3)
    with running(make_server(tmp_path, _config(pg, sinks))) as server:
        pg.execute("INSERT INTO t VALUES (1)")
        pg.execute("INSERT INTO t VALUES (2)")
        hook0.wait_for_events(1)
        wait_until(lambda: server.worker("hook0").stats.dead_lettered == 1, what="dead letter")
    letter = server.dead_letters.list()[0]
    assert "TooManyEventsToday" in letter.reason
    assert letter.attempts == 1
    assert [e.payload["new"]["id"] for e in hook0.events] == [2]
