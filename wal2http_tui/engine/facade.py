"""Engine: what a controller (the terminal UI) drives, in plain Python and no UI code.

It owns one ``ReplicationServer`` for the current configuration and adds what an operator
needs around it: the slot's health from ``pg_replication_slots`` (polled every few seconds on a
thread of its own), the last lines of the engine log, dead-letter operations, connection and
sink tests, and applying an edited configuration (sinks live; connection, slot or publication
by restarting the replication worker). Every read returns plain values, safe from any thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

import psycopg

from wal2http_tui.config.env import referenced_environment
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import read_config_text
from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import AttemptRecord, RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter, DeadLetterStore
from wal2http_tui.delivery.replay import Replayer
from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.engine import backfill_control
from wal2http_tui.engine.check import run_check
from wal2http_tui.engine.controls import (
    LOG_LINES,
    BackfillStatus,
    CheckLine,
    EngineControls,
    SlotHealth,
)
from wal2http_tui.engine.metrics import MetricsServer
from wal2http_tui.engine.server import NO_SINK_LEFT, ReplicationServer
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.replication.connections import connect_sql
from wal2http_tui.replication.deadlines import deadline
from wal2http_tui.replication.messages import format_lsn
from wal2http_tui.replication.positions import PositionError
from wal2http_tui.replication.slot_row import read_slot_row
from wal2http_tui.replication.state import StateSnapshot
from wal2http_tui.replication.stream import DRAIN_TIMEOUT

log = logging.getLogger("wal2http_tui.engine")
SLOT_HEALTH_INTERVAL = 3.0
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"

# Changing any of these means a new replication session: the worker restarts.
RESTART_KEYS = (
    "connection_string",
    "slot_name",
    "publication_name",
    "tables",
    "create_publication",
    "publish",
    "publish_generated_columns",
    "create_slot",
    "failover_slot",
    "feedback_interval_secs",
    "server_timeout_secs",
    "queue_max_events",
    "stall_warning_secs",
    "dead_letter_path",
)


class LogBuffer(logging.Handler):
    """The last ``capacity`` formatted lines of the engine log."""

    def __init__(self, capacity: int = LOG_LINES) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=capacity)
        self.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def read_slot_health(conn: psycopg.Connection, slot_name: str) -> SlotHealth:
    row = read_slot_row(conn, slot_name)
    if row is None:
        return SlotHealth(slot_name, exists=False, checked_at=time.time())
    idle_timeout = ""
    if conn.info.server_version >= 180000:
        shown = conn.execute("SHOW idle_replication_slot_timeout").fetchone()
        idle_timeout = str(shown[0]) if shown else ""
    return SlotHealth(
        slot_name,
        True,
        row["active_pid"],
        row["restart_lsn"],
        row["confirmed_flush_lsn"],
        row["wal_status"],
        row["safe_wal_size"],
        row["retained_bytes"],
        time.time(),
        invalidation_reason=row["invalidation_reason"],
        inactive_since=row["inactive_since"],
        failover=row["failover"],
        synced=row["synced"],
        idle_timeout=idle_timeout,
    )


class Engine:
    """One configuration's replication, controllable from any thread: ``EngineControls``."""

    def __init__(
        self,
        config: ReplicationConfig,
        *,
        slot_health_interval: float = SLOT_HEALTH_INTERVAL,
        drain_timeout: float = DRAIN_TIMEOUT,
        accept_gap: bool = False,
    ) -> None:
        self.config = config
        self._drain_timeout = drain_timeout
        self.log = LogBuffer()
        logging.getLogger("wal2http_tui").addHandler(self.log)
        logging.getLogger("wal2http_tui").setLevel(logging.INFO)
        self.dead_letters = DeadLetterStore(config.dead_letter_path)
        self.server = self._new_server(config, accept_gap)
        self._metrics: MetricsServer | None = None
        self._slot_health = SlotHealth(config.slot_name, exists=False)
        self._slot_interval = slot_health_interval
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_slot, name="slot-health", daemon=True)
        self._lock = threading.Lock()

    def _new_server(self, config: ReplicationConfig, accept_gap: bool = False) -> ReplicationServer:
        return ReplicationServer.from_config(
            config,
            dead_letters=self.dead_letters,
            accept_gap=accept_gap,
            drain_timeout=self._drain_timeout,
        )

    attached_to = None  # the engine runs in this process

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.server.start()
        if not self._poller.is_alive():
            self._poller.start()
        self._serve_metrics()

    def stop(self) -> None:
        """Stop streaming: sinks finish in-flight deliveries (bounded), final confirmation."""
        self._stop.set()
        self.server.stop()
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None
        logging.getLogger("wal2http_tui").removeHandler(self.log)

    def _serve_metrics(self) -> None:
        """``metrics_listen``: serve /metrics, /healthz and /readyz. An address that cannot be
        listened on is an error in the log and the engine goes on without them."""
        listen = self.config.metrics_listen
        if listen is None or self._metrics is not None:
            return
        try:
            self._metrics = MetricsServer(
                self,
                listen,
                max_lag_secs=self.config.ready_max_lag_secs,
                replication_alive=lambda: self.server.running,
            )
        except OSError as exc:
            log.error(
                "metrics_listen = %s: cannot listen (%s): /metrics, /healthz and /readyz are "
                "not served (is another wal2http-tui serving them?)",
                listen,
                exc.strerror or exc,
            )
            return
        self._metrics.start()
        log.info("serving /metrics, /healthz and /readyz on http://%s", listen)

    # -- reading -------------------------------------------------------------------------------
    def snapshot(self) -> StateSnapshot:
        return self.server.snapshot()

    def sinks(self) -> list[SinkSnapshot]:
        return self.server.sinks()

    def transactions(self) -> list[TxRecord]:
        return self.server.feed.recent_transactions()

    def attempts(self) -> list[AttemptRecord]:
        return self.server.feed.recent_attempts()

    def retries(self) -> list[RetryInfo]:
        return [retry for sink in self.sinks() for retry in sink.retries]

    def slot_health(self) -> SlotHealth:
        return self._slot_health

    def log_lines(self) -> list[str]:
        return list(self.log.lines)

    # -- controls ------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.server.paused

    def pause(self) -> None:
        self.server.pause()

    def resume(self) -> None:
        self.server.resume()

    def pause_sink(self, name: str) -> None:
        self._worker(name).pause()

    def resume_sink(self, name: str) -> None:
        self._worker(name).resume()

    def retry_now(self, name: str) -> None:
        self._worker(name).retry_now()

    def skip_to_dead_letters(self, name: str) -> bool:
        return self._worker(name).skip_to_dead_letters()

    def _worker(self, name: str) -> SinkWorker:
        worker = self.server.worker(name)
        if worker is None:
            raise KeyError(f"no running sink named {name!r}")
        return worker

    def config_environment(self) -> dict[str, str]:
        path = self.config.source_path
        if path is None:
            return {}
        try:
            text = read_config_text(path)
        except ConfigError:
            return {}  # the editor says why when it opens the file
        return referenced_environment(text, os.environ)

    # -- dead letters --------------------------------------------------------------------------
    def list_dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        return self.dead_letters.list(limit=limit)

    def replay_dead_letter(self, letter_id: int) -> str | None:
        """None when delivered (and removed), else why not."""
        letter = self.dead_letters.get(letter_id)
        if letter is None:
            return f"no dead letter with id {letter_id}"
        replayer = Replayer(self.config, self.dead_letters)
        try:
            return replayer.replay(letter)
        finally:
            replayer.close()

    def drop_dead_letter(self, letter_id: int) -> bool:
        return self.dead_letters.remove(letter_id)

    def accept_gap(self) -> None:
        with self._lock:
            logging.getLogger("wal2http_tui").warning(
                "the operator accepted the gap: starting again where the slot is now"
            )
            self.server.stop()
            self.server = self._new_server(self.config, accept_gap=True)
            self.server.start()

    # -- configuration -------------------------------------------------------------------------
    def needs_restart(self, new: ReplicationConfig) -> bool:
        """True when ``new`` changes the replication session itself, not just sinks."""
        return any(getattr(self.config, key) != getattr(new, key) for key in RESTART_KEYS)

    def apply(self, new: ReplicationConfig) -> None:
        """Use ``new``: sinks live; a restart of the worker when ``needs_restart``.

        ValueError (and nothing changes) when ``new`` enables no sink."""
        if not new.enabled_sinks:
            raise ValueError(NO_SINK_LEFT)
        with self._lock:
            if self.needs_restart(new):
                logging.getLogger("wal2http_tui").info("configuration changed: restarting")
                self.server.stop()
                if not self.server.wait_stopped(self._stopping_time()):
                    raise RuntimeError(
                        "the running replication worker has not stopped yet (a sink is still "
                        "finishing an attempt): the new configuration is not applied; try "
                        "again in a moment"
                    )
                if new.dead_letter_path != self.config.dead_letter_path:
                    self.dead_letters.close()
                    self.dead_letters = DeadLetterStore(new.dead_letter_path)
                self.config = new
                self.server = self._new_server(new)
                self.server.start()
            else:
                self.server.reconfigure_sinks(new.event_sinks)
                self.config = replace(self.config, event_sinks=new.event_sinks)

    def _stopping_time(self) -> float:
        """How long stopping may take: draining, then the slowest sink's attempt in flight."""
        slowest = max((sink.timeout for sink in self.config.enabled_sinks), default=0.0)
        return self.server.stream.drain_timeout + slowest + 15

    @staticmethod
    def test_connection(config: ReplicationConfig) -> list[CheckLine]:
        """``check`` for the connection part: (status, check, message) lines."""
        lines: list[CheckLine] = []
        only_connection = replace(config, event_sinks=())
        run_check(only_connection, lambda *line: lines.append(line))
        return [line for line in lines if line[1] != "sinks"]

    @staticmethod
    def test_sink(sink_config: EventSinkConfig) -> str:
        """Probe one sink; returns the probe's line, raises with the reason on failure."""
        sink = build_sink(sink_config)
        try:
            return sink.probe()
        finally:
            sink.close()

    # -- slot health ---------------------------------------------------------------------------
    def _with_remembered(self, health: SlotHealth) -> SlotHealth:
        """The slot's row, with what wal2http-tui last confirmed on it beside PostgreSQL's."""
        server = self.server
        system_id = server.snapshot().system_id
        if server.positions is None or not system_id:
            return health
        try:
            remembered = server.positions.remembered(system_id, health.slot_name)
        except PositionError:
            return health  # a server being replaced closed its file: the next check reads it
        if remembered is None:
            return health
        return replace(
            health,
            remembered_lsn=format_lsn(remembered.confirmed_lsn),
            remembered_at=remembered.confirmed_at,
        )

    def _poll_slot(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.is_set():
            slot = self.config.slot_name
            try:
                timeout = self.config.server_timeout_secs
                if conn is None or conn.closed:
                    conn = connect_sql(self.config.connection_string, "slot health", timeout)
                with deadline(conn, timeout, "reading pg_replication_slots"):
                    health = read_slot_health(conn, slot)
                self._slot_health = self._with_remembered(health)
            except psycopg.Error as exc:
                self._slot_health = SlotHealth(
                    slot,
                    exists=False,
                    checked_at=time.time(),
                    error=str(exc).strip().splitlines()[0],
                )
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self._slot_interval)
        if conn is not None:
            conn.close()

    # -- on-demand backfills -------------------------------------------------------------------
    def backfills(self) -> list[BackfillStatus]:
        backfills = self.server.stream.backfills
        return backfills.statuses() if backfills is not None else []

    def backfill_tables(self) -> list[tuple[str, bool]]:
        return [(table.name, bool(table.key_columns)) for table in self.server.stream.published]

    def start_backfill(
        self, tables: Sequence[str], sinks: Sequence[str] = (), where: str | None = None
    ) -> str:
        requested = backfill_control.request_start(self.config, tables, sinks, where)
        if self.server.stream.backfills is not None:
            self.server.stream.backfills.expect(requested.record)
        return requested.record.id

    def control_backfill(self, kind: str, backfill_id: str) -> None:
        backfill_control.request(self.config, kind, backfill_id)


def _keeps_the_contract(engine: Engine) -> EngineControls:
    """Never called: here mypy holds ``Engine`` to the contract the terminal UI drives, and
    names any member that is missing or mistyped (an error here, not a crash in a screen)."""
    return engine
