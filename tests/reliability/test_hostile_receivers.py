"""Hostile receivers against a real ``run --headless``: each misbehaviour is named in the log
while it lasts, memory stays small, and once the receiver behaves every row arrives."""

from __future__ import annotations

import psycopg

from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.hostile_receiver import REDIRECT_TARGET, HostileReceiver

MAX_RSS_KB = 300 * 1024

# (behaviour, what the log says while it lasts)
HOSTILE = [
    ("bad_gzip", "with a body that is not what its Content-Encoding header says"),
    ("endless", "answers with bodies longer than 64 KiB"),
    ("drip", "timed out while reading its answer"),
    ("redirect", f"answered 307 redirecting to {REDIRECT_TARGET}: update the url"),
    ("not_http", "answered with something that is not valid HTTP/1.1"),
    ("cut_short", "cut its answer short"),
    ("silent", "timed out waiting for an answer"),
]


def test_every_hostile_receiver_is_named_and_survived_without_losing_a_row(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with HostileReceiver() as receiver:
        sink = http_sink(receiver.url, timeout=2, retry_backoff_ms=100, retry_max_backoff_secs=1)
        path = tmp_path / "wal2http.toml"
        path.write_text(config_text(pg.dsn, sink, slot_name="hostile", feedback_interval_secs=1))
        with Headless(path) as engine, psycopg.connect(pg.dsn, autocommit=True) as conn:
            wait_until(lambda: slot_confirmed_lsn(pg, "hostile"), what="slot created")
            rows = 0
            for behaviour, said in HOSTILE:
                receiver.set(behaviour)
                conn.execute(f"INSERT INTO t VALUES ({rows + 1}), ({rows + 2})")
                rows += 2
                line = engine.wait_for_log(said, timeout=30)
                assert "sink http" in line, line
                assert engine.rss_kb() < MAX_RSS_KB, f"{behaviour}: {engine.rss_kb()} kB"
                receiver.set("good")
                receiver.wait_for_rows(rows, timeout=30)
                engine.lines.clear()
            assert engine.process is not None and engine.process.poll() is None
            assert engine.terminate() == 0
    assert set(receiver.ids()) == set(range(1, rows + 1))
