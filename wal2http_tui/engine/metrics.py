"""Metrics and health over HTTP (``metrics_listen``): ``/metrics``, ``/healthz``, ``/readyz``.

Everything is read from the engine's controls when asked (``EngineCollector.collect`` runs at
each scrape), so the delivery path carries no metrics code. ``/metrics`` is
``prometheus_client``'s text format; ``/healthz`` answers 200 while the process and its
replication loop are alive; ``/readyz`` answers 200 while the engine streams (or waits as a
healthy standby), no enabled sink is FAILING or STALLED and the lag is under
``ready_max_lag_secs``, else 503 with a one-line reason. The server is a small threaded
``http.server``: it listens where the operator said (loopback by default in the sample) and
answers nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from wal2http_tui.config.model import parse_listen
from wal2http_tui.delivery.activity import DURATION_BUCKETS, SinkState
from wal2http_tui.engine.controls import EngineControls
from wal2http_tui.replication.state import EngineState, StateSnapshot

log = logging.getLogger("wal2http_tui.metrics")

SINK_STATES = (
    SinkState.HEALTHY,
    SinkState.RETRYING,
    SinkState.FAILING,
    SinkState.STALLED,
    SinkState.PAUSED,
    SinkState.DISABLED,
    SinkState.STOPPED,
)
ENGINE_STATES = (
    EngineState.STOPPED,
    EngineState.CONNECTING,
    EngineState.STREAMING,
    EngineState.STANDBY,
    EngineState.RECONNECTING,
    EngineState.PAUSED,
    EngineState.ERROR,
)
NOT_READY_SINK_STATES = (SinkState.FAILING, SinkState.STALLED)
# (kind, name, help, the SinkSnapshot field it reads): one sample per sink
PER_SINK: tuple[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str, str], ...] = (
    (CounterMetricFamily, "wal2http_events_delivered", "Events delivered", "delivered"),
    (
        CounterMetricFamily,
        "wal2http_events_failed",
        "Delivery attempts that failed (a failed batch counts once)",
        "failed",
    ),
    (
        CounterMetricFamily,
        "wal2http_events_dead_lettered",
        "Events written to the dead letters",
        "dead_lettered",
    ),
    (GaugeMetricFamily, "wal2http_sink_queue_events", "Events queued at the sink", "queue_depth"),
    (GaugeMetricFamily, "wal2http_sink_in_flight_requests", "Requests on their way", "in_flight"),
)


def lag_seconds(state: StateSnapshot) -> float:
    """How far behind the engine is: the age of the newest transaction received while WAL is
    waiting to be confirmed; 0 when nothing is (an idle database is not lagging)."""
    if not state.lag_bytes or state.lag_seconds is None:
        return 0.0
    return state.lag_seconds


class EngineCollector(Collector):
    """The engine's figures, read at each scrape."""

    def __init__(self, engine: EngineControls) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        state = engine.snapshot()
        sinks = engine.sinks()
        per_sink = [
            (kind(name, documentation, labels=["sink"]), attribute)
            for kind, name, documentation, attribute in PER_SINK
        ]
        duration = HistogramMetricFamily(
            "wal2http_delivery_duration_seconds",
            "Duration of delivery attempts, per sink",
            labels=["sink"],
        )
        sink_state = GaugeMetricFamily(
            "wal2http_sink_state", "1 for the state the sink is in", labels=["sink", "state"]
        )
        for sink in sinks:
            for family, attribute in per_sink:
                family.add_metric([sink.name], getattr(sink, attribute))
            duration.add_metric([sink.name], _buckets(sink.durations), sink.duration_sum_secs)
            for name in SINK_STATES:
                sink_state.add_metric([sink.name, name], float(sink.state == name))
        yield from (family for family, _ in per_sink)
        yield duration
        yield sink_state
        yield _gauge("wal2http_received_lsn", "Last WAL position received", state.received_lsn)
        yield _gauge(
            "wal2http_confirmed_lsn", "WAL position confirmed to PostgreSQL", state.flushed_lsn
        )
        yield _gauge(
            "wal2http_replication_lag_bytes",
            "WAL the server has written that is not confirmed yet",
            state.lag_bytes,
        )
        yield _gauge(
            "wal2http_replication_lag_seconds",
            "Age of the newest transaction received while WAL waits to be confirmed",
            lag_seconds(state),
        )
        retained = engine.slot_health().retained_bytes
        if retained is not None:
            yield _gauge(
                "wal2http_slot_retained_wal_bytes",
                "WAL the slot holds back on the server",
                retained,
            )
        engine_state = GaugeMetricFamily(
            "wal2http_engine_state", "1 for the state the engine is in", labels=["state"]
        )
        for name in ENGINE_STATES:
            engine_state.add_metric([name], float(state.state == name))
        yield engine_state
        yield from _backfills(engine)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _buckets(counts: tuple[int, ...]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus' cumulative buckets, ending with +Inf."""
    bounds = [*(repr(bound) for bound in DURATION_BUCKETS), "+Inf"]
    total = 0
    cumulative = []
    for bound, count in zip(bounds, counts, strict=True):
        total += count
        cumulative.append((bound, float(total)))
    return cumulative


def _backfills(engine: EngineControls) -> Iterator[Metric]:
    statuses = engine.backfills()
    if not statuses:
        return
    rows = CounterMetricFamily(
        "wal2http_backfill_rows", "Rows a backfill has sent", labels=["backfill", "state"]
    )
    progress = GaugeMetricFamily(
        "wal2http_backfill_progress_ratio",
        "Rows sent against the planner's estimate (1 once done)",
        labels=["backfill"],
    )
    for status in statuses:
        record = status.record
        rows.add_metric([record.id, record.state], record.rows)
        if record.percent is not None:
            progress.add_metric([record.id], record.percent / 100)
    yield rows
    yield progress


def liveness(engine: EngineControls, replication_alive: bool) -> tuple[bool, str]:
    state = engine.snapshot()
    if not replication_alive:
        return False, "the replication loop has ended: " + (state.last_error or "")
    return True, f"alive ({state.state})"


def readiness(engine: EngineControls, max_lag_secs: float) -> tuple[bool, str]:
    """Whether the engine does its job now, and a one-line reason."""
    state = engine.snapshot()
    # a standby is healthy: another instance streams on the slot, this one waits its turn
    if state.state not in (EngineState.STREAMING, EngineState.STANDBY):
        reason = state.detail or state.last_error or "not streaming"
        return False, f"{state.state}: {reason}"
    for sink in engine.sinks():
        if sink.state in NOT_READY_SINK_STATES:
            return False, f"sink {sink.name} is {sink.state}: {sink.last_error or 'no detail'}"
    lag = lag_seconds(state)
    if lag > max_lag_secs:
        return False, f"lagging {lag:.0f}s behind (ready_max_lag_secs = {max_lag_secs:g})"
    return True, f"ready ({state.state})"


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` for one engine on its own thread."""

    def __init__(
        self,
        engine: EngineControls,
        listen: str,
        *,
        max_lag_secs: float,
        replication_alive: Callable[[], bool],
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(engine))
        self.engine = engine
        self.max_lag_secs = max_lag_secs
        self.replication_alive = replication_alive
        host, port = parse_listen(listen)
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path in ("/healthz", "/readyz"):
            if path == "/healthz":
                ok, reason = liveness(self.engine, self.replication_alive())
            else:
                ok, reason = readiness(self.engine, self.max_lag_secs)
            return (200 if ok else 503), "text/plain; charset=utf-8", (reason + "\n").encode()
        return 404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz or /readyz\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MetricsServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        try:
            status, content_type, body = self.server.owner.answer(self.path.split("?")[0])
        except Exception as exc:  # a scrape must never take the engine down, nor go unanswered
            log.error("metrics: %s: %s", self.path, exc, exc_info=exc)
            status, content_type, body = 500, "text/plain", f"error: {exc}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
