"""``metrics_listen``: a real ``run --headless`` serves /metrics (read with prometheus_client's
own parser), /healthz and /readyz; readiness follows PostgreSQL going away and coming back."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.test_faults import write_config
from tests.support.engine import http_sink, wait_until
from tests.support.headless import Headless
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.demo.throwaway import free_port


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_what_the_receiver_got_and_readiness_follows_postgresql(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    port = free_port()
    with WebhookReceiver() as receiver:
        config = write_config(
            tmp_path,
            pg,
            http_sink(receiver.url),
            slot="metrics",
            metrics_listen=f'"127.0.0.1:{port}"',
            server_timeout_secs=3,
        )
        with Headless(config) as engine:
            engine.wait_for_log(
                f"serving /metrics, /healthz and /readyz on http://127.0.0.1:{port}"
            )
            wait_until(lambda: _get(port, "/readyz")[0] == 200, what="ready")
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                for i in range(1, 31):
                    conn.execute("INSERT INTO t VALUES (%s)", (i,))
            receiver.wait_for_events(30)
            sink = (("sink", "http"),)
            wait_until(
                lambda: _samples(port).get(("wal2http_events_delivered_total", sink)) == 30,
                what="the delivered counter at 30",
            )
            samples = _samples(port)
            assert receiver.accepted == 30
            assert samples[("wal2http_events_failed_total", sink)] == 0
            assert samples[("wal2http_delivery_duration_seconds_count", sink)] >= 30
            assert samples[("wal2http_sink_state", (("sink", "http"), ("state", "healthy")))] == 1
            assert samples[("wal2http_engine_state", (("state", "streaming"),))] == 1
            assert samples[("wal2http_confirmed_lsn", ())] > 0
            assert _get(port, "/healthz")[0] == 200
            assert _get(port, "/readyz") == (200, "ready (streaming)\n")

            pg.cluster.stop_server()
            try:
                stopped = time.monotonic()
                wait_until(lambda: _get(port, "/readyz")[0] == 503, timeout=15, what="503")
                assert time.monotonic() - stopped < 15
                status, reason = _get(port, "/readyz")
                assert status == 503 and reason.startswith("reconnecting"), reason
                assert _get(port, "/healthz")[0] == 200  # alive: it keeps trying
            finally:
                pg.cluster.start_server()
            wait_until(lambda: _get(port, "/readyz")[0] == 200, timeout=60, what="ready again")
            assert _get(port, "/nothing")[0] == 404
            assert engine.terminate() == 0
