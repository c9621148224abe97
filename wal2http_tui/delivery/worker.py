"""SinkWorker: one sink's delivery thread and its bounded queue.

Each ``SinkWorker`` takes committed transactions in commit order, turns their changes into
events, sends them (one by one or in batches), retries per policy, dead-letters where configured,
and records how far it got (``finished_lsn``). A slow or failing sink never blocks another sink's
deliveries; the ``Dispatcher`` (``dispatcher.py``) in front of the workers blocks the replication
thread when a queue is full (backpressure: WAL waits on the server, memory stays bounded).

The thread never ends on its own while it has work: an unexpected exception, from the sink or
from building its events, is logged once with its traceback, shows the sink FAILING with the
error, and is retried like any failed attempt; what is queued stays queued. A sink that has had
work and delivered nothing for ``stall_warning_secs`` shows STALLED, so "healthy" never hides a
sink that does not move.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
from wal2http_tui.delivery.keyed import KeyedDelivery
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.event_sinks.event_processor import Event, EventProcessor
from wal2http_tui.event_sinks.http_client import RESPONSE_BODY_CAP
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError, EventSink
from wal2http_tui.replication.transactions import Change, Transaction

log = logging.getLogger("wal2http_tui.delivery")

MAX_TRANSACTIONS_QUEUED = 1000
MAX_RETRY_AFTER_SECS = 3600.0
JOIN_REPORT_SECS = 10.0  # while waiting for a worker to stop, say so this often


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
        stall_warning_secs: float = ReplicationConfig.stall_warning_secs,
    ) -> None:
        self.sink = sink
        self.processor = processor
        self.retry = retry
        self.dead_letters = dead_letters
        self.feed = feed
        self.queue_max_events = queue_max_events
        self.stall_warning_secs = stall_warning_secs
        self.stats = SinkStats(sink.name, sink.kind, sink.describe_target(), sink.route.summary())
        self.stats.ordering = sink.ordering
        self.stats.max_in_flight = sink.max_in_flight
        self.finished_lsn = 0
        self._queue: deque[Transaction] = deque()  # unfinished, in commit order
        self._started = 0  # how many at the front of the queue the thread has begun
        self._retired = False  # replaced or removed: takes no more transactions
        self._queued_weight = 0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stopping = False
        self._drain_deadline: float | None = None
        # What the sink shows is derived from these, under _state_lock (see _show_state).
        self._state_lock = threading.Lock()
        self._delivery_state = SinkState.HEALTHY
        self._paused = False
        self._stalled = False
        self._ended = False
        self._skip_requested = False
        self._waiting_since: float | None = None  # work queued, nothing delivered since then
        self._reported_errors: set[str] = set()  # unexpected errors already logged in full
        self._long_answers_reported = False
        self._cursor = _Cursor()
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
        """Stop after delivering what is queued, for at most ``drain_timeout`` seconds; past it
        the worker stops between attempts (an attempt in flight is bounded by the sink's
        timeout)."""
        with self._cond:
            self._stopping = True
            self._drain_deadline = time.monotonic() + drain_timeout
            self._cond.notify_all()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def join_reporting(self) -> None:
        """Wait until the thread has ended, logging while an attempt in flight holds it (it is
        bounded by the sink's timeout, so this ends)."""
        waited = 0.0
        while self._thread.is_alive():
            self._thread.join(JOIN_REPORT_SECS)
            waited += JOIN_REPORT_SECS
            if self._thread.is_alive():
                log.warning(
                    "sink %s: still finishing the attempt in flight before it stops (%.0fs)",
                    self.name,
                    waited,
                )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def pause(self) -> None:
        with self._state_lock:
            self._paused = True
            self._show_state()

    def resume(self) -> None:
        with self._state_lock:
            self._paused = False
            self._show_state()
        self.poke()

    @property
    def paused(self) -> bool:
        return self._paused

    def retry_now(self) -> None:
        """Cut the current backoff short."""
        self.poke()

    def poke(self) -> None:
        """Wake the worker thread to look again (at its retries, its pause, its queue)."""
        self._wake.set()
        with self._cond:
            self._cond.notify_all()

    def skip_to_dead_letters(self) -> bool:
        """Dead-letter the delivery that is waiting to be retried, and move on. False (and
        nothing is armed) when no delivery is waiting: the request applies to the state it was
        made in, never to a later failure."""
        with self._state_lock:
            if not self.stats.retries:
                return False
            self._skip_requested = True
        self.poke()
        return True

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

    def adopt(self, transactions: list[Transaction], finished_lsn: int) -> None:
        """Take over another worker's unfinished transactions (their references included) and
        the position it had finished up to."""
        with self._cond:
            self.finished_lsn = max(self.finished_lsn, finished_lsn)
            for tx in transactions:
                self._queue.append(tx)
                self._queued_weight += _weight(tx)
            if self._queue and self._waiting_since is None:
                self._waiting_since = time.monotonic()
            self._cond.notify_all()

    # -- the queue (replication thread) --------------------------------------------------------
    def offer(self, tx: Transaction, timeout: float) -> bool:
        """Queue ``tx``; False if the queue stayed full for ``timeout`` seconds."""
        weight = _weight(tx)
        with self._cond:
            if self._retired:
                self._cond.wait(timeout)
                return False
            if (
                tx.sinks is not None and self.name not in tx.sinks
            ) or not self.sink.route.wants_any(tx.changes.kinds):
                # finished for this sink at once: it never holds back the confirmed LSN
                self.mark(tx, Mark.FILTERED if tx.size else Mark.DELIVERED)
                return True
            if self._queue_full(weight):
                self._cond.wait(timeout)
                if self._queue_full(weight):
                    return False
            tx.changes.acquire()
            if not self._queue:
                self._waiting_since = time.monotonic()
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

        Called under the dispatcher's lock, which also guards dispatching: when nothing is
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

    # -- what the sink shows -------------------------------------------------------------------
    def _set_delivery_state(self, state: str) -> None:
        with self._state_lock:
            self._delivery_state = state
            self._show_state()

    def _show_state(self) -> None:
        """Under _state_lock: the state to show, from what deliveries say and what the operator
        asked; each change is one log line."""
        if self._ended:
            state = SinkState.STOPPED
        elif self._paused:
            state = SinkState.PAUSED
        elif self._stalled and self._delivery_state in (SinkState.HEALTHY, SinkState.RETRYING):
            state = SinkState.STALLED
        else:
            state = self._delivery_state
        if state == self.stats.state:
            return
        self.stats.state = state
        if state == SinkState.FAILING:
            log.warning("sink %s: failing (%s)", self.name, self.stats.last_error)
        elif state == SinkState.STALLED:
            log.warning(
                "sink %s: stalled: work queued and nothing delivered for %.0fs (last error: %s)",
                self.name,
                self.stall_warning_secs,
                self.stats.last_error or "none",
            )
        else:
            log.info("sink %s: %s", self.name, state)

    def check_stall(self) -> None:
        since = self._waiting_since
        stalled = bool(
            self.stall_warning_secs
            and since is not None
            and time.monotonic() - since >= self.stall_warning_secs
        )
        if stalled != self._stalled:
            with self._state_lock:
                self._stalled = stalled
                self._show_state()

    def delivered(self, count: int, delivery: int = 0) -> None:
        """``count`` events of ``delivery`` are delivered (or dead-lettered, with 0): it waits
        for no retry any more, and the sink is healthy once nothing else does."""
        self.stats.delivered += count
        self.clear_retry(delivery)
        with self._cond:
            self._waiting_since = time.monotonic() if self._queue else None
        with self._state_lock:
            if delivery == 0:
                self._skip_requested = False
            self._stalled = False
            if not self.stats.retries:
                self._delivery_state = SinkState.HEALTHY
            self._show_state()

    def clear_retry(self, delivery: int) -> None:
        if delivery in self.stats.retries:
            self.stats.retries = {k: v for k, v in self.stats.retries.items() if k != delivery}

    # -- the worker thread ---------------------------------------------------------------------
    def past_deadline(self) -> bool:
        return self._stopping and time.monotonic() >= (self._drain_deadline or 0)

    def _next_transaction(self, block: bool) -> Transaction | None:
        """The next queued transaction not yet started; None when there is none (and ``block``
        is False), or when stopping and the queue is drained or the drain deadline has passed.
        Transactions stay queued until finished, so an unfinished one is never lost."""
        with self._cond:
            while True:
                if self.past_deadline():
                    return None
                if len(self._queue) > self._started:
                    tx = self._queue[self._started]
                    self._started += 1
                    return tx
                if not block or self._stopping:
                    return None
                self._cond.wait(0.5)

    def _run(self) -> None:
        keyed = KeyedDelivery(self) if self.sink.ordering == "key" else None
        step = keyed.step if keyed else self._deliver_next_batch
        start_over = keyed.start_over if keyed else self.rewind
        failures = 0
        try:
            while True:
                try:
                    if not step():
                        return
                    failures = 0
                except _Stopped:
                    return
                except Exception as exc:  # the thread must never end silently
                    failures += 1
                    self.unexpected(exc)
                    self._set_delivery_state(SinkState.FAILING)
                    start_over()
                    self._sleep(self.retry.delay(failures) or 0.1)
        finally:
            if keyed is not None:
                keyed.close()  # waits for the requests in flight (each bounded by the timeout)
            with self._state_lock:
                self._ended = True
                self._show_state()
            self.sink.close()

    def _deliver_next_batch(self) -> bool:
        """Build one batch of events (at most ``batch_max_events``, across transactions),
        deliver it, finish the transactions it completes; False when stopped."""
        if self.past_deadline():
            return False
        batch_size = max(1, self.sink.batch_max_events)
        cursor = self._cursor
        keyed = self.sink.keyed_batches
        events: list[Event] = []
        completes: list[tuple[Transaction, bool]] = []  # and whether the route filtered it all
        while len(events) < batch_size:
            if cursor.pending is not None:
                event, cursor.pending = cursor.pending, None
            else:
                built = self.next_event(block=not events and not completes)
                if built is None:
                    break
                if built.event is None:
                    completes.append((built.tx, built.filtered))
                    continue
                event = built.event
            if keyed:
                key = self.sink.batch_key(event)
                if not events:
                    batch_key = key
                elif key != batch_key:
                    cursor.pending = event  # the first of the next batch
                    break
            events.append(event)
        if not events and not completes:
            return False
        if events:
            self._deliver(events)
        for tx, filtered in completes:
            self.finish(tx, filtered=filtered)
        return True

    def next_event(self, *, block: bool) -> Built | None:
        """The next event of the queued transactions, in commit order, and after a
        transaction's last event its end (``event`` None); None when nothing is queued (after
        waiting, with ``block``) or when stopping."""
        cursor = self._cursor
        route = self.sink.route
        filtering = not route.everything
        while True:
            if cursor.tx is None:
                tx = self._next_transaction(block)
                if tx is None:
                    return None
                self.mark(tx, Mark.IN_FLIGHT)
                cursor.begin(tx)
            assert cursor.tx is not None and cursor.changes is not None
            change = next(cursor.changes, None)
            if change is None:
                end = Built(cursor.tx, None, None, filtered=filtering and not cursor.produced)
                cursor.end()
                return end
            seq = cursor.seq  # every change counts, so ids do not depend on the route
            cursor.seq = seq + 1
            projected = change
            if filtering:
                if not route.wants(change.op, change.schema, change.table):
                    continue
                projected = route.project(change)
                cursor.produced = True
            return Built(cursor.tx, self.processor.process_event(cursor.tx, projected, seq), change)

    def wait_for_work(self, ready: Callable[[], bool], timeout: float) -> None:
        """Sleep until ``ready()`` holds (checked under the queue's lock, which every new
        transaction, finished request and poke notifies) or ``timeout`` passes."""
        with self._cond:
            if not ready():
                self._cond.wait(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def condition(self) -> threading.Condition:
        """The queue's lock and condition: whoever changes what the worker waits for
        notifies it."""
        return self._cond

    def take_skip_request(self) -> bool:
        """Whether the operator asked to skip the waiting deliveries (once)."""
        with self._state_lock:
            requested, self._skip_requested = self._skip_requested, False
        return requested

    def take_wake(self) -> bool:
        """Whether the operator asked for a retry now, a resume or a skip (once)."""
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    @property
    def has_unbuilt(self) -> bool:
        """A queued transaction has changes not yet made into events."""
        return self._cursor.tx is not None or len(self._queue) > self._started

    def rewind(self) -> None:
        """After an unexpected error: begin again at the first unfinished transaction (events
        already delivered from it are sent again, with the same ids)."""
        self._cursor.end()
        with self._cond:
            self._started = 0

    def unexpected(self, exc: Exception) -> str:
        """Log an unexpected error with its traceback, once per distinct error; its message."""
        message = f"unexpected error in the {self.sink.kind} sink: {type(exc).__name__}: {exc}"
        self.stats.last_error = message
        if message not in self._reported_errors:
            self._reported_errors.add(message)
            log.error("sink %s: %s", self.name, message, exc_info=exc)
        return message

    def finish(self, tx: Transaction, *, filtered: bool = False) -> None:
        weight = _weight(tx)
        if filtered and tx.size:
            self.mark(tx, Mark.FILTERED)
        elif tx.marks.get(self.name) != Mark.DEAD_LETTERED:
            self.mark(tx, Mark.DELIVERED)
        with self._cond:
            finished = self._queue.popleft()
            assert finished is tx, "transactions finish in the order they were queued"
            self._started -= 1
            self.finished_lsn = tx.end_lsn
            self._queued_weight -= weight
            self._cond.notify_all()
        tx.changes.release()

    def mark(self, tx: Transaction, mark: str) -> None:
        tx.marks[self.name] = mark

    def _deliver(self, events: list[Event]) -> None:
        """Deliver ``events`` or dead-letter them; returns only when they are settled."""
        attempt = 0
        first_failure = 0.0
        while True:
            self.wait_while_paused()
            if self.past_deadline():
                raise _Stopped
            self.check_stall()
            attempt += 1
            started = time.monotonic()
            unexpected = False
            self.stats.in_flight = 1
            try:
                result = self.sink.on_batch(events)
            except DeliveryError as failure:
                error = failure
            except Exception as exc:  # a bug or a library's surprise: a retryable failure
                error = self.unexpected_failure(exc)
                unexpected = True
            else:
                self.stats.in_flight = 0
                self.succeeded(events, attempt, time.monotonic() - started, result)
                return
            self.stats.in_flight = 0
            first_failure = first_failure or time.time()
            exhausted = self.failed(events, attempt, time.monotonic() - started, error)
            if self._skip_requested or (exhausted and self.retry.on_failure == "dead_letter"):
                with self._state_lock:
                    self._skip_requested = False
                if len(events) > 1 and not error.retryable:
                    for event in events:  # find the event the receiver refuses
                        self._deliver([event])
                    return
                self.dead_letter(events, str(error), attempt, first_failure)
                return
            failing = exhausted or unexpected
            self._sleep(self.retry_later(0, events, attempt, error, exhausted, failing=failing))

    def unexpected_failure(self, exc: Exception) -> DeliveryError:
        """An exception no sink should raise, as the retryable failure it is treated as."""
        return DeliveryError(self.unexpected(exc), retryable=True)

    def succeeded(
        self, events: list[Event], attempt: int, seconds: float, result: Attempt, delivery: int = 0
    ) -> None:
        """Attempt ``attempt`` of ``delivery`` (0 under commit order) delivered ``events``."""
        self.record(events, attempt, seconds, result, "")
        self.note_long_answer(result)
        self.delivered(len(events), delivery)

    def failed(
        self, events: list[Event], attempt: int, seconds: float, error: DeliveryError
    ) -> bool:
        """Attempt ``attempt`` of ``events`` failed: recorded; whether the retry policy is
        used up for them (a permanent failure uses it up at once)."""
        self.record(events, attempt, seconds, error.attempt, str(error))
        return not error.retryable or attempt > self.retry.retries

    def note_long_answer(self, result: Attempt) -> None:
        if result.body_truncated and not self._long_answers_reported:
            self._long_answers_reported = True
            log.warning(
                "sink %s: the receiver answers with bodies longer than %d KiB: only that much "
                "is read and the connection is closed after each such answer",
                self.name,
                RESPONSE_BODY_CAP // 1024,
            )

    def retry_later(
        self,
        delivery: int,
        events: list[Event],
        attempt: int,
        error: DeliveryError,
        exhausted: bool,
        *,
        failing: bool,
    ) -> float:
        """Record that ``delivery`` (its ``events``) failed ``attempt`` and waits for another:
        in the Retries pane, the sink's state and the log. The seconds to wait: what the
        receiver asked (capped), the longest backoff once the retries are used up, else the
        policy's backoff."""
        if error.retry_after is not None:
            delay = min(error.retry_after, MAX_RETRY_AFTER_SECS)
        elif exhausted:
            delay = self.retry.max_backoff_secs
        else:
            delay = self.retry.delay(attempt)
        first = events[0]
        info = RetryInfo(
            sink=self.name,
            event_ids=tuple(e.event_id for e in events),
            table_op=f"{first.schema}.{first.table} {first.op}" if first.schema else first.op,
            attempt=attempt,
            max_attempts=None if self.retry.on_failure == "block" else self.retry.retries + 1,
            next_attempt_at=time.time() + delay,
            last_error=str(error),
        )
        self.stats.retries = {**self.stats.retries, delivery: info}
        self._set_delivery_state(SinkState.FAILING if failing else SinkState.RETRYING)
        log.warning(
            "sink %s: attempt %d failed (%s); next attempt in %.1fs",
            self.name,
            attempt,
            error,
            delay,
        )
        return delay

    def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by retry-now, skip or stop (stop past the drain deadline aborts)."""
        deadline = time.monotonic() + seconds
        while True:
            if self.past_deadline():
                raise _Stopped
            self.check_stall()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wake.wait(min(remaining, 0.5)):
                self._wake.clear()
                if not self._stopping:
                    return

    def wait_while_paused(self) -> None:
        while self._paused:
            self._sleep(0.5)

    def record(
        self, events: list[Event], attempt: int, seconds: float, result: Attempt, error: str
    ) -> None:
        """One attempt that took ``seconds``: in the counters and the inspector's feed."""
        latency_ms = seconds * 1000
        self.stats.count_duration(seconds)
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
                response_body=result.response_body,
                request_headers=result.request_headers,
                payload=result.payload[:INSPECTED_PAYLOAD_BYTES],
            )
        )

    def dead_letter(
        self,
        events: list[Event],
        reason: str,
        attempts: int,
        first_failure: float,
        delivery: int = 0,
    ) -> None:
        """Store ``events`` as dead letters (blocking, and saying why, while the file cannot
        be written: never dropped), and count them settled."""
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
                self.stats.last_error = f"{exc}; delivery is blocked until it can be written"
                self._set_delivery_state(SinkState.FAILING)
                log.error("sink %s: %s", self.name, self.stats.last_error)
                self._sleep(min(30.0, 0.5 * 2**failures))
        self.stats.dead_lettered += len(events)
        log.warning("sink %s: %d event(s) dead-lettered: %s", self.name, len(events), reason)
        self.delivered(0, delivery)


@dataclass(frozen=True, slots=True)
class Built:
    """What ``next_event`` returns: an event of ``tx`` built from ``change`` (as PostgreSQL
    sent it, before the route's projection), or the end of ``tx`` (``event`` None)."""

    tx: Transaction
    event: Event | None
    change: Change | None
    filtered: bool = False  # at the end: the route let none of the changes through


class _Cursor:
    """Where the worker is: the transaction it is turning into events, and how far."""

    def __init__(self) -> None:
        self.end()

    def begin(self, tx: Transaction) -> None:
        self.tx: Transaction | None = tx
        self.changes: Iterator[Change] | None = iter(tx.changes)
        self.seq = 0  # the index of the next change in the transaction
        self.produced = False  # whether its route let a change through
        self.pending: Event | None = None  # built, but of the next batch

    def end(self) -> None:
        self.tx = None
        self.changes = None
        self.seq = 0
        self.produced = False
        self.pending = None
