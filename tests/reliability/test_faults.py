"""Break things for real (kill -9, receivers down, PostgreSQL restarted, disk full) and check
that every committed row still reaches every sink, in order, with a stable id."""

from __future__ import annotations

import json
import resource
import subprocess
import threading
import time

import psycopg

from tests.support.engine import http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.demo.receiver import Fault, WebhookReceiver


def write_config(tmp_path, pg, sinks: str, slot: str = "rel", **top: object) -> str:
    settings = {"feedback_interval_secs": 1, **top}
    extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
    path = tmp_path / "wal2http.toml"
    path.write_text(
        f'connection_string = "{pg.dsn}"\nslot_name = "{slot}"\npublication_name = "rel_pub"\n'
        f"{extra}{sinks}"
    )
    return str(path)


INSERT_ROWS = (
    "INSERT INTO t SELECT g, repeat('x', %s::int) FROM generate_series(%s::int, %s::int) g"
)


def insert_in_transactions(dsn: str, first: int, count: int, per_tx: int, pad: int = 10) -> None:
    with psycopg.connect(dsn) as conn:
        for start in range(first, first + count, per_tx):
            end = min(start + per_tx, first + count) - 1
            conn.execute(INSERT_ROWS, (pad, start, end))
            conn.commit()


def sessions(receiver: WebhookReceiver, boundaries: list[float]) -> list[list[int]]:
    """Row ids in arrival order, split at the given times (process restarts)."""
    runs: list[list[int]] = [[] for _ in range(len(boundaries) + 1)]
    for request in list(receiver.requests):
        if request.status != 200:
            continue
        index = sum(request.at > moment for moment in boundaries)
        body = json.loads(request.body)
        for event in body if isinstance(body, list) else [body]:
            runs[index].append(event["new"]["id"])
    return runs


def ids_by_row(receiver: WebhookReceiver) -> dict[int, set[str]]:
    seen: dict[int, set[str]] = {}
    for event in list(receiver.events):
        seen.setdefault(event["new"]["id"], set()).add(event["event_id"])
    return seen


def test_kill_9_in_flight_then_restart_loses_nothing(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    rows = 5000
    with WebhookReceiver(latency=0.002) as receiver:
        config = write_config(
            tmp_path, pg, http_sink(receiver.url, batch_max_events=5), queue_max_events=1000
        )
        with Headless(config) as first:
            wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
            writer = threading.Thread(target=insert_in_transactions, args=(pg.dsn, 1, rows, 50))
            writer.start()
            receiver.wait_for_events(1500, timeout=60)
            first.kill()
            killed_at = time.time()
            writer.join()
        with Headless(config) as second:
            seen = wait_until(
                lambda: len(ids_by_row(receiver)) == rows and ids_by_row(receiver),
                timeout=120,
                what="every row",
            )
            assert second.terminate() == 0
    assert set(seen) == set(range(1, rows + 1))
    assert all(len(ids) == 1 for ids in seen.values()), "a resend carried a different event id"
    before, after = sessions(receiver, [killed_at])
    assert before == sorted(before) and len(set(before)) == len(before)
    assert after == sorted(after) and len(set(after)) == len(after)
    assert after[0] <= before[-1] + 1, "the restart must resume at or before the last delivery"
    store = DeadLetterStore(tmp_path / "wal2http-dead-letters.sqlite")
    assert store.count() == 0


def test_receiver_down_for_a_minute_backpressure_then_everything_arrives(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    receiver = WebhookReceiver().start()
    port = receiver.port
    config = write_config(
        tmp_path,
        pg,
        http_sink(receiver.url, retries=2, retry_backoff_ms=100, retry_max_backoff_secs=2),
        queue_max_events=500,
    )
    with Headless(config) as process:
        wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
        insert_in_transactions(pg.dsn, 1, 100, 10)
        receiver.wait_for_events(100)
        receiver.stop()  # connection refused from now on
        down_at = time.monotonic()
        baseline = process.rss_kb()
        insert_in_transactions(pg.dsn, 101, 200, 20, pad=1000)  # the sink now has work pending
        time.sleep(2.5)  # confirmations of the first 100 rows have arrived by now
        confirmed = slot_confirmed_lsn(pg, "rel")
        peak = baseline
        next_row = 301
        while time.monotonic() - down_at < 60:
            insert_in_transactions(pg.dsn, next_row, 200, 20, pad=1000)  # ~200 KB of rows
            next_row += 200
            peak = max(peak, process.rss_kb())
            time.sleep(0.5)
        process.wait_for_log("sink http: failing")
        assert slot_confirmed_lsn(pg, "rel") == confirmed
        assert peak - baseline < 60_000, f"RSS grew {peak - baseline} kB while the sink was down"
        revived = WebhookReceiver(port=port).start()
        try:
            total = next_row - 1
            revived.wait_for_events(total - 100, timeout=120)
            ids = [event["new"]["id"] for event in revived.events]
            assert ids == list(range(101, total + 1))
            process.wait_for_log("sink http: healthy")
            assert process.terminate() == 0
        finally:
            revived.stop()


def test_errors_are_retried_per_policy_and_dead_letters_replay(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    with WebhookReceiver() as receiver:
        receiver.fail_next(1, Fault(status=500))
        receiver.fail_next(1, Fault(status=503, retry_after="2"))
        receiver.fail_next(1, Fault(status=429))
        receiver.fail_next(1, Fault(status=200, stall_seconds=1.5))
        receiver.fail_next(1, Fault(reset=True))
        sinks = http_sink(receiver.url, timeout=0.5, retries=8, retry_backoff_ms=50)
        config = write_config(tmp_path, pg, sinks)
        with Headless(config) as process:
            wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
            insert_in_transactions(pg.dsn, 1, 1, 1)
            receiver.wait_for_events(1, timeout=30)
            wait_until(lambda: len(receiver.requests) == 6, what="the stalled answer")
            statuses = [r.status for r in receiver.requests]
            assert statuses[:3] == [500, 503, 429]
            # the stalled request (answered after the client gave up) and the reset one were
            # retried: one more 200 arrives late, so the receiver sees the event twice
            assert sorted(statuses[3:]) == [0, 200, 200]
            gap = receiver.requests[2].at - receiver.requests[1].at
            assert gap >= 1.9, f"Retry-After: 2 was not honoured ({gap:.2f}s)"
            assert "no answer from" in process.wait_for_log("within 0.5s")
            assert process.terminate() == 0

    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=500))
        sinks = http_sink(receiver.url, retries=2, retry_backoff_ms=20, on_failure="dead_letter")
        config = write_config(tmp_path, pg, sinks)
        with Headless(config) as process:
            insert_in_transactions(pg.dsn, 2, 3, 3)
            store = DeadLetterStore(tmp_path / "wal2http-dead-letters.sqlite")
            wait_until(lambda: store.count() == 3, what="3 dead letters")
            assert "1 event(s) dead-lettered" in process.log
            assert process.terminate() == 0
        assert len([r for r in receiver.requests if r.status == 500]) == 9  # 3 x (1 + 2 retries)
        receiver.fail_always(None)
        replay = cli("dead-letters", "replay", "--all", "-c", config)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        events = receiver.wait_for_events(3)
    assert [e["new"]["id"] for e in events] == [2, 3, 4]


def test_postgres_restart_and_walsender_termination_lose_nothing(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, http_sink(receiver.url))
        with Headless(config) as process:
            wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
            insert_in_transactions(pg.dsn, 1, 100, 10)
            pg.cluster.restart("fast")
            insert_in_transactions(pg.dsn, 101, 100, 10)
            process.wait_for_log("state reconnecting")
            receiver.wait_for_events(200, timeout=60)
            pg.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = 'rel'"
            )
            insert_in_transactions(pg.dsn, 201, 100, 10)
            receiver.wait_for_events(300, timeout=60)
            assert process.terminate() == 0
    assert set(ids_by_row(receiver)) == set(range(1, 301))
    assert all(len(ids) == 1 for ids in ids_by_row(receiver).values())


def test_second_instance_is_a_standby_and_takes_over_after_kill_9(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, http_sink(receiver.url))
        with Headless(config) as first:
            wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
            first.wait_for_log("state streaming")
            with Headless(config) as second:
                second.wait_for_log("state standby: slot in use by pid")
                insert_in_transactions(pg.dsn, 1, 10, 10)
                receiver.wait_for_events(10)
                first.kill()
                second.wait_for_log("state streaming", timeout=30)
                insert_in_transactions(pg.dsn, 11, 10, 10)
                # rows 1-10 may arrive twice (the first instance died before confirming them)
                wait_until(lambda: set(ids_by_row(receiver)) == set(range(1, 21)), what="20 rows")
                assert second.terminate() == 0
    assert all(len(ids) == 1 for ids in ids_by_row(receiver).values())


def test_dead_letter_disk_full_blocks_instead_of_dropping(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    limit = 256 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=422))
        sinks = http_sink(receiver.url, retries=0, on_failure="dead_letter")
        config = write_config(tmp_path, pg, sinks)
        with Headless(config, preexec_fn=small_files) as process:
            wait_until(lambda: slot_confirmed_lsn(pg, "rel"), what="slot")
            insert_in_transactions(pg.dsn, 1, 40, 1, pad=20_000)  # 40 x 20 kB: cannot all fit
            line = process.wait_for_log("delivery is blocked until it can be written", 60)
            assert "cannot write dead-letter file" in line
            store = DeadLetterStore(tmp_path / "wal2http-dead-letters.sqlite")
            time.sleep(3)  # let the confirmations of what was saved arrive
            stuck, saved = slot_confirmed_lsn(pg, "rel"), store.count()
            time.sleep(3)
            assert saved < 40
            assert (slot_confirmed_lsn(pg, "rel"), store.count()) == (stuck, saved), "not blocked"
            assert stuck < int(pg.execute("SELECT pg_current_wal_lsn() - '0/0'")[0][0])
            subprocess.run(["prlimit", f"--pid={process.pid}", "--fsize=unlimited"], check=True)
            wait_until(lambda: store.count() == 40, timeout=90, what="all 40 dead-lettered")
            assert process.terminate() == 0
    letters = store.list()
    assert [json.loads(x.payload)["new"]["id"] for x in letters] == list(range(1, 41))
