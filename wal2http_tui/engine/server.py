"""ReplicationServer: a replication stream delivered to event sinks (the seed's server).

It joins the two halves of the data path: a ``ReplicationStream`` (PostgreSQL to committed
transactions) and a ``Dispatcher`` with one ``SinkWorker`` per sink (transactions to events to
receivers). It is the stream's ``TransactionHandler``: it records each transaction in the activity
feed, hands it to the dispatcher, and reports the dispatcher's confirmed LSN, so the stream
confirms to PostgreSQL nothing that some enabled sink has not finished. Sinks can be added,
changed and removed while it streams.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from wal2http_tui.config.model import BaseSinkConfig, EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import ActivityFeed, Mark, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.delivery.dispatcher import Dispatcher
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.event_sinks.event_processor import EventProcessor, SourceInfo, rfc3339
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.event_sinks.route_check import check_route
from wal2http_tui.event_sinks.traits import EventSink
from wal2http_tui.replication.messages import ReplicationMessage, format_lsn
from wal2http_tui.replication.positions import PositionStore
from wal2http_tui.replication.state import ReplicationState, StateSnapshot
from wal2http_tui.replication.stream import DRAIN_TIMEOUT, ReplicationStream
from wal2http_tui.replication.transactions import Transaction

log = logging.getLogger("wal2http_tui.server")

NO_SINK_LEFT = (
    "no sink would be enabled: changes would be read with nowhere to send them and confirmed "
    "as done; keep at least one sink enabled (or stop wal2http-tui instead)"
)


class ReplicationServer:
    """Streams one slot of one database to every registered sink."""

    def __init__(
        self,
        config: ReplicationConfig,
        *,
        dead_letters: DeadLetterStore | None = None,
        feed: ActivityFeed | None = None,
        spool_memory_limit: int | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        positions: PositionStore | None = None,
        accept_gap: bool = False,
    ) -> None:
        self.config = config
        self.positions = positions
        self.feed = feed or ActivityFeed()
        self.dead_letters = dead_letters
        self.dispatcher = Dispatcher()
        self._source = SourceInfo("", "", config.slot_name, config.publication_name)
        self._reconfigure_lock = threading.Lock()
        self._delivering = False
        self.stream = ReplicationStream(
            config,
            self,
            spool_memory_limit=spool_memory_limit,
            drain_timeout=drain_timeout,
            positions=positions,
            accept_gap=accept_gap,
        )

    @classmethod
    def from_config(
        cls,
        config: ReplicationConfig,
        *,
        dead_letters: DeadLetterStore | None = None,
        spool_memory_limit: int | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        accept_gap: bool = False,
    ) -> ReplicationServer:
        """A server with the dead-letter file, the state file and every enabled sink of
        ``config``; DeadLetterError or PositionError when a file cannot be opened."""
        server = cls(
            config,
            dead_letters=dead_letters or DeadLetterStore(config.dead_letter_path),
            spool_memory_limit=spool_memory_limit,
            drain_timeout=drain_timeout,
            positions=PositionStore(config.state_path),
            accept_gap=accept_gap,
        )
        for sink_config in config.enabled_sinks:
            server.register_event_sink(
                build_sink(sink_config),
                event_format=sink_config.event_format,
                retry=RetryPolicy.of(sink_config),
            )
        return server

    # -- the stream ----------------------------------------------------------------------------
    @property
    def state(self) -> ReplicationState:
        return self.stream.state

    @property
    def fatal_error(self) -> str | None:
        """Why it refused to start (the set-up or the configuration must change), if it did."""
        return self.stream.fatal_error

    @property
    def crash_error(self) -> str | None:
        """Why it stopped on an error while running, if it did."""
        return self.stream.crash_error

    @property
    def running(self) -> bool:
        """True while the replication thread is alive."""
        return self.stream.running

    @property
    def paused(self) -> bool:
        return self.stream.paused

    def start(self) -> None:
        """Run the replication loop on a thread of its own."""
        self.stream.start()

    def run(self) -> None:
        """The replication loop, in the calling thread, until ``stop()``."""
        self.stream.run()

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading, let sinks finish in-flight deliveries (bounded), confirm, disconnect."""
        self.stream.stop(timeout)
        if self.positions is not None and not self.stream.running:
            self.positions.close()

    def wait_stopped(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until the replication thread and every sink
        worker have ended, so that nothing of this server sends any more; True when they have."""
        self.stream.stop(timeout)
        for worker in self.dispatcher.workers:
            worker.join(timeout)
        return not self.stream.running and self.dispatcher.stopped

    def pause(self) -> None:
        self.stream.pause()

    def resume(self) -> None:
        self.stream.resume()

    def snapshot(self) -> StateSnapshot:
        return self.stream.snapshot()

    def process_replication_message(self, message: ReplicationMessage) -> None:
        """Feed one decoded message (the loop does this for every XLogData it receives)."""
        self.stream.process_replication_message(message)

    # -- sinks ---------------------------------------------------------------------------------
    def register_event_sink(
        self,
        sink: EventSink,
        *,
        event_format: str = "json",
        retry: RetryPolicy | None = None,
        queue_max_events: int | None = None,
    ) -> SinkWorker:
        """Add a sink; it receives every transaction dispatched from now on."""
        if any(worker.name == sink.name for worker in self.dispatcher.workers):
            raise ValueError(f"a sink named {sink.name!r} is already registered")
        worker = self._new_worker(sink, event_format, retry, queue_max_events)
        self.dispatcher.add(worker)
        if self._delivering:
            worker.start()
        return worker

    @property
    def event_sinks(self) -> list[EventSink]:
        return [worker.sink for worker in self.dispatcher.workers]

    def _new_worker(
        self,
        sink: EventSink,
        event_format: str,
        retry: RetryPolicy | None,
        queue_max_events: int | None = None,
    ) -> SinkWorker:
        return SinkWorker(
            sink,
            EventProcessor(self._source, event_format),
            retry=retry or RetryPolicy(),
            dead_letters=self.dead_letters,
            feed=self.feed,
            queue_max_events=queue_max_events or self.config.queue_max_events,
            stall_warning_secs=self.config.stall_warning_secs,
        )

    def reconfigure_sinks(self, sink_configs: Sequence[EventSinkConfig]) -> None:
        """Apply new sink settings live, without dropping the replication connection: removed
        or disabled sinks stop, new ones start with the next transaction, changed ones are
        replaced by a new sink that first delivers everything the old one had not."""
        with self._reconfigure_lock:
            wanted = {c.name: c for c in sink_configs if c.enabled}
            if not wanted:
                raise ValueError(NO_SINK_LEFT)
            current = {worker.name: worker for worker in self.dispatcher.workers}
            for name, worker in current.items():
                if name not in wanted:
                    log.info("sink %s removed", name)
                    self.dispatcher.retire(worker)
            for name, sink_config in wanted.items():
                running = current.get(name)
                if running is not None and getattr(running.sink, "config", None) == sink_config:
                    continue
                new = self._new_worker(
                    build_sink(sink_config), sink_config.event_format, RetryPolicy.of(sink_config)
                )
                if running is None:
                    log.info("sink %s added", name)
                    self.dispatcher.add(new)
                    if self._delivering:
                        new.start()
                else:
                    log.info("sink %s reconfigured", name)
                    self.dispatcher.replace(running, new)
            self._warn_about_routes()

    def sinks(self) -> list[SinkSnapshot]:
        return [worker.snapshot() for worker in self.dispatcher.workers]

    def worker(self, name: str) -> SinkWorker | None:
        return next((w for w in self.dispatcher.workers if w.name == name), None)

    # -- the stream's TransactionHandler -------------------------------------------------------
    @property
    def consumers(self) -> int:
        return len(self.dispatcher.workers)

    @property
    def dispatched_lsn(self) -> int:
        return self.dispatcher.dispatched_lsn

    @property
    def idle(self) -> bool:
        return self.dispatcher.idle

    def confirmed_lsn(self) -> int:
        return self.dispatcher.confirmed_lsn()

    def set_source(self, system_id: str, database: str) -> None:
        self._source = SourceInfo(
            system_id, database, self.config.slot_name, self.config.publication_name
        )
        for worker in self.dispatcher.workers:
            worker.processor.source = self._source
        self._warn_about_routes()

    def _warn_about_routes(self) -> None:
        """What each sink's route makes of the publication's tables, once per run."""
        for worker in self.dispatcher.workers:
            sink_config = getattr(worker.sink, "config", None)
            if isinstance(sink_config, BaseSinkConfig) and self.stream.published:
                findings = check_route(
                    sink_config, self.stream.published, self.config.publication_name
                )
                for warning in findings.warnings:
                    self.stream.warn_once(warning)

    def start_delivery(self) -> None:
        """Start every sink worker (once; later calls do nothing)."""
        self._delivering = True
        for worker in self.dispatcher.workers:
            worker.start()

    def stop_delivery(self, drain_timeout: float) -> None:
        self.dispatcher.stop(drain_timeout)

    def dispatch(
        self, tx: Transaction, keep_alive: Callable[[], None], stopped: Callable[[], bool]
    ) -> bool:
        tx.marks.update({worker.name: Mark.QUEUED for worker in self.dispatcher.workers})
        self.feed.add_transaction(
            TxRecord(
                xid=tx.xid,
                lsn=format_lsn(tx.commit_lsn),
                commit_time=rfc3339(tx.commit_time) if tx.commit_time else "",
                size=tx.size,
                tables=tuple(sorted(tx.tables)),
                received_at=tx.received_at,
                marks=tx.marks,
            )
        )
        return self.dispatcher.dispatch(tx, keep_alive, stopped)
