"""Sinks changed live, again and again, while rows stream and the receiver fails now and then,
then ``kill -9``: the slot's confirmed position never passed a row the receiver did not have,
and after a restart every row arrives (issue 11, point 6)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.paths import REPOSITORY
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.replication.messages import format_lsn, parse_lsn

SLOT = "live"


def first_arrivals(receiver: WebhookReceiver) -> tuple[dict[int, float], dict[int, int]]:
    """For each row: when the receiver first accepted it, and its commit LSN."""
    arrivals: dict[int, float] = {}
    lsns: dict[int, int] = {}
    for request in list(receiver.requests):
        if request.status != 200:
            continue
        body = json.loads(request.body)
        for event in body if isinstance(body, list) else [body]:
            arrivals.setdefault(event["new"]["id"], request.at)
            lsns[event["new"]["id"]] = parse_lsn(event["lsn"])
    return arrivals, lsns


def test_sinks_changed_in_a_loop_then_kill_9_never_confirm_an_undelivered_row(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        receiver.latency = 0.01
        path = tmp_path / "wal2http.toml"
        sink = http_sink(receiver.url, retry_backoff_ms=20)
        path.write_text(config_text(pg.dsn, sink, slot_name=SLOT, feedback_interval_secs=1))
        loop = subprocess.Popen(
            [sys.executable, "-m", "tests.support.reconfigure_loop", str(path)],
            cwd=REPOSITORY,
            stderr=subprocess.DEVNULL,
        )
        samples: list[tuple[float, int]] = []
        try:
            wait_until(lambda: slot_confirmed_lsn(pg, SLOT), what="slot created")
            deadline = time.monotonic() + 8
            row = 0
            while time.monotonic() < deadline:
                for _ in range(5):
                    row += 1
                    pg.execute(f"INSERT INTO t VALUES ({row})")
                if row % 20 == 0:
                    receiver.fail_next(2, Fault(status=503))
                samples.append((time.time(), slot_confirmed_lsn(pg, SLOT)))
                time.sleep(0.05)
            loop.send_signal(signal.SIGKILL)
            loop.wait(10)
        finally:
            if loop.poll() is None:
                loop.kill()
        samples.append((time.time(), slot_confirmed_lsn(pg, SLOT)))
        with Headless(path) as engine:
            wait_until(lambda: len(first_arrivals(receiver)[0]) == row, timeout=60, what="all")
            assert engine.terminate() == 0
    arrivals, lsns = first_arrivals(receiver)
    assert sorted(arrivals) == list(range(1, row + 1))
    for at, confirmed in samples:
        early = [i for i, lsn in lsns.items() if lsn < confirmed and arrivals[i] > at]
        assert not early, f"confirmed {format_lsn(confirmed)} before rows {early} arrived"
