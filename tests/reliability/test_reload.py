"""SIGHUP reloads the configuration of a real ``run --headless``: a valid change applies live
(a new sink starts receiving), an invalid file is logged with its line and key and changes
nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg

from tests.reliability.test_faults import write_config
from tests.support.engine import http_sink, wait_until
from tests.support.headless import Headless
from wal2http_tui.demo.receiver import WebhookReceiver


def test_sighup_applies_a_valid_file_and_keeps_the_running_one_over_an_invalid_one(
    pg_newest, tmp_path
):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as first, WebhookReceiver() as second:
        path = Path(write_config(tmp_path, pg, http_sink(first.url, name="first"), slot="hup"))
        original = path.read_text()
        with Headless(path) as engine, psycopg.connect(pg.dsn, autocommit=True) as conn:
            engine.wait_for_log("streaming")
            conn.execute("INSERT INTO t VALUES (1)")
            first.wait_for_events(1)

            path.write_text(original + http_sink(second.url, name="second"))
            engine.process.send_signal(signal.SIGHUP)
            engine.wait_for_log("configuration reloaded: 2 sink(s) enabled")
            conn.execute("INSERT INTO t VALUES (2)")
            assert [e["new"]["id"] for e in second.wait_for_events(1)] == [2]
            first.wait_for_events(2)

            valid = path.read_text()
            path.write_text(valid.replace(f'url = "{second.url}"', 'url = "ftp://nowhere"'))
            engine.process.send_signal(signal.SIGHUP)
            line = engine.wait_for_log("configuration not reloaded")
            assert f"{path}:" in line and "event_sinks.http[1].url" in line, line
            conn.execute("INSERT INTO t VALUES (3)")
            assert [e["new"]["id"] for e in second.wait_for_events(2)] == [2, 3]
            wait_until(lambda: first.accepted == 3, what="the first sink still receiving")
            assert engine.process.poll() is None
            assert engine.terminate() == 0
