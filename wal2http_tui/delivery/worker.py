"""SinkWorker: one sink's delivery thread and its bounded queue.

Each ``SinkWorker`` takes committed transactions in commit order, turns their changes into
events, sends them (one by one or in batches), retries per policy, dead-letters where configured,
and records how far it got (``finished_lsn``). A slow or failing sink never blocks another sink's
deliveries; the ``Dispatcher`` (``dispatcher.py``) in front of the workers blocks the replication
thread when a queue is full (backpressure: WAL waits on the server, memory stays bounded).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.delivery.activity import (
    INSPECTED_PAYLOAD_BYTES,
    ActivityFeed,
    AttemptRecord,
    Mark,
    RetryInfo,
    SinkSnapshot,
    SinkState,
    SinkStats,
)
from wal2http_tui.delivery.dead_letters import DeadLetterError, DeadLetterStore
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.event_sinks.event_processor import Event, EventProcessor
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError, EventSink
from wal2http_tui.replication.transactions import Transaction

log = logging.getLogger("wal2http_tui.delivery")

MAX_TRANSACTIONS_QUEUED = 1000
MAX_RETRY_AFTER_SECS = 3600.0


def _weight(tx: Transaction) -> int:
    """What a queued transaction counts against ``queue_max_events``: its changes while they
    are in memory, 1 once spilled to disk."""
    return 1 if tx.changes.spilled else max(1, tx.size)


class _Stopped(Exception):
    """The worker was told to stop while a delivery was pending."""


class SinkWorker:
    """Delivers one sink's events in commit order on its own thread."""

    def __init__(
        self,
        sink: EventSink,
        processor: EventProcessor,
        *,
        retry: RetryPolicy,
        dead_letters: DeadLetterStore | None,
        feed: ActivityFeed,
        queue_max_events: int = ReplicationConfig.queue_max_events,
    ) -> None:
        self.sink = sink
        self.processor = processor
        self.retry = retry
        self.dead_letters = dead_letters
        self.feed = feed
        self.queue_max_events = queue_max_events
        self.stats = SinkStats(sink.name, sink.kind, sink.describe_target())
        self.finished_lsn = 0
        self._queue: deque[Transaction] = deque()  # unfinished, in commit order
        self._started = 0  # how many at the front of the queue the thread has begun
        self._retired = False  # replaced or removed: takes no more transactions
        self._queued_weight = 0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._paused = False
        self._skip_requested = False
        self._stopping = False
        self._drain_deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.sink.name

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (once; later calls do nothing)."""
        if self._thread.ident is None:
            self._thread.start()

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop after delivering what is queued, for at most ``drain_timeout`` seconds."""
        with self._cond:
            self._stopping = True
            self._drain_deadline = time.monotonic() + drain_timeout
            self._cond.notify_all()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def pause(self) -> None:
        self._paused = True
        self._set_state(SinkState.PAUSED)

    def resume(self) -> None:
        self._paused = False
        if self.stats.state == SinkState.PAUSED:
            self._set_state(SinkState.HEALTHY)
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def _set_state(self, state: str) -> None:
        """Change the sink's state; each change is one log line."""
        if state == self.stats.state:
            return
        self.stats.state = state
        level = logging.WARNING if state == SinkState.FAILING else logging.INFO
        reason = f" ({self.stats.last_error})" if state == SinkState.FAILING else ""
        log.log(level, "sink %s: %s%s", self.name, state, reason)

    def retry_now(self) -> None:
        """Cut the current backoff short."""
        self._wake.set()

    def skip_to_dead_letters(self) -> None:
        """Dead-letter the delivery that is being retried, and move on."""
        self._skip_requested = True
        self._wake.set()

    def retire(self) -> None:
        """Take no more transactions (the dispatcher is replacing or removing this sink)."""
        with self._cond:
            self._retired = True
            self._cond.notify_all()

    def take_unfinished(self) -> list[Transaction]:
        """After the thread has stopped: the transactions it had not finished, in order (the
        one it was delivering first; it will be sent again from its first event)."""
        with self._cond:
            unfinished = list(self._queue)
            self._queue.clear()
            self._started = 0
            self._queued_weight = 0
            return unfinished

    def adopt(self, transactions: list[Transaction]) -> None:
        """Take over another worker's unfinished transactions (their references included)."""
        with self._cond:
            for tx in transactions:
                self._queue.append(tx)
                self._queued_weight += _weight(tx)
            self._cond.notify_all()

    # -- the queue (replication thread) --------------------------------------------------------
    def offer(self, tx: Transaction, timeout: float) -> bool:
        """Queue ``tx``; False if the queue stayed full for ``timeout`` seconds."""
        weight = _weight(tx)
        with self._cond:
            if self._retired:
                self._cond.wait(timeout)
                return False
            if self._queue_full(weight):
                self._cond.wait(timeout)
                if self._queue_full(weight):
                    return False
            tx.changes.acquire()
            self._queue.append(tx)
            self._queued_weight += weight
            self._cond.notify_all()
        return True

    def _queue_full(self, weight: int) -> bool:
        if not self._queue:
            return False
        return (
            self._queued_weight + weight > self.queue_max_events
            or len(self._queue) >= MAX_TRANSACTIONS_QUEUED
        )

    def progress(self, dispatched_lsn: int) -> int:
        """The LSN up to which this sink has finished everything it was given.

        Called by the replication thread, the only one that dispatches: when nothing is
        unfinished, everything dispatched so far is done.
        """
        with self._cond:
            return self.finished_lsn if self._queue else dispatched_lsn

    @property
    def queue_depth(self) -> int:
        return self._queued_weight

    @property
    def idle(self) -> bool:
        return not self._queue

    def snapshot(self) -> SinkSnapshot:
        return self.stats.snapshot(self._queued_weight, self.finished_lsn)

    # -- the worker thread ---------------------------------------------------------------------
    def _next_transaction(self, block: bool) -> Transaction | None:
        """The next queued transaction not yet started; None when there is none (and ``block``
        is False), or when stopping and the queue is drained or the drain deadline has passed.
        Transactions stay queued until finished, so an unfinished one is never lost."""
        with self._cond:
            while True:
                if self._stopping and time.monotonic() >= (self._drain_deadline or 0):
                    return None
                if len(self._queue) > self._started:
                    tx = self._queue[self._started]
                    self._started += 1
                    return tx
                if not block or self._stopping:
                    return None
                self._cond.wait(0.5)

    def _run(self) -> None:
        batch_size = max(1, self.sink.batch_max_events)
        current: Transaction | None = None
        changes = None
        seq = 0
        try:
            while True:
                events: list[Event] = []
                completes: list[Transaction] = []
                while len(events) < batch_size:
                    if current is None:
                        current = self._next_transaction(block=not events and not completes)
                        if current is None:
                            break
                        self._mark(current, Mark.IN_FLIGHT)
                        changes, seq = iter(current.changes), 0
                    change = next(changes, None)
                    if change is None:
                        completes.append(current)
                        current = None
                        continue
                    events.append(self.processor.process_event(current, change, seq))
                    seq += 1
                if not events and not completes:
                    return  # stopped
                if events:
                    self._deliver(events)
                for tx in completes:
                    self._finish(tx)
        except _Stopped:
            return
        finally:
            self._set_state(SinkState.STOPPED)
            self.sink.close()

    def _finish(self, tx: Transaction) -> None:
        weight = _weight(tx)
        if tx.marks.get(self.name) != Mark.DEAD_LETTERED:
            self._mark(tx, Mark.DELIVERED)
        with self._cond:
            finished = self._queue.popleft()
            assert finished is tx, "transactions finish in the order they were queued"
            self._started -= 1
            self.finished_lsn = tx.end_lsn
            self._queued_weight -= weight
            self._cond.notify_all()
        tx.changes.release()

    def _mark(self, tx: Transaction, mark: str) -> None:
        tx.marks[self.name] = mark

    def _deliver(self, events: list[Event]) -> None:
        """Deliver ``events`` or dead-letter them; returns only when they are settled."""
        attempt = 0
        first_failure = 0.0
        while True:
            self._wait_while_paused()
            attempt += 1
            started = time.monotonic()
            try:
                result = self.sink.on_batch(events)
            except DeliveryError as error:
                first_failure = first_failure or time.time()
                self._record(events, attempt, started, error.attempt, str(error))
                exhausted = not error.retryable or attempt > self.retry.retries
                if self._skip_requested or (exhausted and self.retry.on_failure == "dead_letter"):
                    self._skip_requested = False
                    if len(events) > 1 and not error.retryable:
                        for event in events:  # find the event the receiver refuses
                            self._deliver([event])
                        return
                    self._dead_letter(events, str(error), attempt, first_failure)
                    return
                self._wait_retry(events, attempt, error, exhausted)
                continue
            self._record(events, attempt, started, result, "")
            self.stats.delivered += len(events)
            self.stats.retry = None
            if not self._paused:
                self._set_state(SinkState.HEALTHY)
            return

    def _wait_retry(
        self, events: list[Event], attempt: int, error: DeliveryError, exhausted: bool
    ) -> None:
        if error.retry_after is not None:
            delay = min(error.retry_after, MAX_RETRY_AFTER_SECS)
        elif exhausted:
            delay = self.retry.max_backoff_secs
        else:
            delay = self.retry.delay(attempt)
        state = SinkState.FAILING if exhausted else SinkState.RETRYING
        if not self._paused:
            self._set_state(state)
        first = events[0]
        self.stats.retry = RetryInfo(
            sink=self.name,
            event_ids=tuple(e.event_id for e in events),
            table_op=f"{first.schema}.{first.table} {first.op}" if first.schema else first.op,
            attempt=attempt,
            max_attempts=None if self.retry.on_failure == "block" else self.retry.retries + 1,
            next_attempt_at=time.time() + delay,
            last_error=str(error),
        )
        log.warning(
            "sink %s: attempt %d failed (%s); next attempt in %.1fs",
            self.name,
            attempt,
            error,
            delay,
        )
        self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by retry-now, skip or stop (stop past the drain deadline aborts)."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping and time.monotonic() >= (self._drain_deadline or 0):
                raise _Stopped
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wake.wait(min(remaining, 0.5)):
                self._wake.clear()
                if not self._stopping:
                    return

    def _wait_while_paused(self) -> None:
        while self._paused:
            self._sleep(0.5)

    def _record(
        self, events: list[Event], attempt: int, started: float, result: Attempt, error: str
    ) -> None:
        latency_ms = (time.monotonic() - started) * 1000
        ok = not error
        if ok:
            self.stats.latencies.append(latency_ms)
        else:
            self.stats.failed += 1
            self.stats.last_error = error
        self.stats.last_status = result.status
        self.feed.add_attempt(
            AttemptRecord(
                sink=self.name,
                at=time.time(),
                attempt=attempt,
                event_ids=tuple(e.event_id for e in events),
                event_type=events[0].event_type,
                ok=ok,
                status=result.status,
                latency_ms=latency_ms,
                error=error,
                response_body=result.response_body[:4096],
                request_headers=result.request_headers,
                payload=result.payload[:INSPECTED_PAYLOAD_BYTES],
            )
        )

    def _dead_letter(
        self, events: list[Event], reason: str, attempts: int, first_failure: float
    ) -> None:
        failures = 0
        while True:
            try:
                if self.dead_letters is None:
                    raise DeadLetterError("no dead-letter file is configured")
                for event in events:
                    self.dead_letters.add(
                        self.name, event, reason, attempts, first_failure, time.time()
                    )
                break
            except DeadLetterError as exc:
                # Never drop: block, say why, and try again.
                failures += 1
                self._set_state(SinkState.FAILING)
                self.stats.last_error = f"{exc}; delivery is blocked until it can be written"
                log.error("sink %s: %s", self.name, self.stats.last_error)
                self._sleep(min(30.0, 0.5 * 2**failures))
        self.stats.dead_lettered += len(events)
        self.stats.retry = None
        log.warning("sink %s: %d event(s) dead-lettered: %s", self.name, len(events), reason)
