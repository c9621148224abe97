"""KeyedDelivery: a sink's delivery loop under ``ordering = "key"``.

It runs on the sink's worker thread in place of the commit-order loop, with the same queue, the
same retry policy, dead letters and counters (``SinkWorker``'s). Events are built from the
queued transactions in commit order, at most ``window`` of them unfinished (the memory bound
holds whatever a retrying key holds back); ``KeyScheduler`` says which may start (one at a time
per row, barriers around truncates and messages), up to ``max_in_flight`` requests are made at
once by the sink's sender (``event_sinks/concurrent.py``), and ``Completion`` turns events
finished in any order into the transactions finished in order, which is all ``progress`` (the
acknowledgement rule) sees.

A request that fails waits for its retry holding only its own keys: other keys keep moving.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from wal2http_tui.delivery.ordering import Completion, KeyScheduler, order_key
from wal2http_tui.event_sinks.concurrent import CLOSE_GRACE_SECS, Request
from wal2http_tui.event_sinks.event_processor import Event
from wal2http_tui.replication.transactions import Transaction

if TYPE_CHECKING:
    from wal2http_tui.delivery.worker import SinkWorker

IDLE_WAIT_SECS = 0.5
MIN_WINDOW_EVENTS = 256


class _Item:
    """An event in the scheduler, and the transaction it counts towards."""

    __slots__ = ("event", "token")

    def __init__(self, event: Event, token: int) -> None:
        self.event = event
        self.token = token


class _Open:
    """A transaction begun and not yet finished."""

    __slots__ = ("filtered", "token", "tx")

    def __init__(self, token: int, tx: Transaction) -> None:
        self.token = token
        self.tx = tx
        self.filtered = False


class KeyedDelivery:
    def __init__(self, worker: SinkWorker) -> None:
        self.worker = worker
        sink = worker.sink
        self.limit = max(1, sink.max_in_flight)
        self.batch_size = max(1, sink.batch_max_events)
        self.window = max(MIN_WINDOW_EVENTS, 2 * self.limit * self.batch_size)
        self.window = min(self.window, max(worker.queue_max_events, self.limit))
        self.sender = sink.sender(self.limit, self._done)
        self._finished: list[Request] = []  # handed back by the sender's threads
        self._numbers = 0
        self.generation = 0
        self._reset()

    def _reset(self) -> None:
        self.scheduler: KeyScheduler[_Item] = KeyScheduler(max_in_flight=self.window)
        self.completion = Completion(self.worker.finished_lsn)
        self._open: deque[_Open] = deque()
        self._current: _Open | None = None
        self._ready: deque[Request] = deque()  # to send as soon as there is room
        self._waiting: list[Request] = []  # failed, waiting for their retry
        self._in_flight = 0
        self.worker.stats.in_flight = 0
        self.worker.stats.retries = {}

    # -- the worker's loop ---------------------------------------------------------------------
    def step(self) -> bool:
        """One turn: settle what came back, build events, start what may start, wait; False
        once stopped (past the drain deadline, or stopping with nothing left)."""
        worker = self.worker
        if worker.past_deadline():
            return False
        self._settle_finished()
        self._handle_operator()
        self._fill()
        self._confirm()
        worker.check_stall()
        if not worker.paused:
            self._start()
        if worker.stopping and not len(self.scheduler) and not worker.has_unbuilt:
            return False
        worker.wait_for_work(self._has_work, self._timeout())
        return True

    def start_over(self) -> None:
        """After an unexpected error: wait for the requests in flight to end (each bounded by
        the sink's timeout; their answers are ignored), so a row's earlier event can never
        arrive after a later one, then begin again at the first unfinished transaction;
        delivered events are sent again, with the same ids."""
        self.generation += 1
        deadline = time.monotonic() + self.worker.sink.timeout + CLOSE_GRACE_SECS
        while self._in_flight > 0 and time.monotonic() < deadline:
            self.worker.wait_for_work(lambda: bool(self._finished), IDLE_WAIT_SECS)
            with self.worker.condition:
                self._in_flight -= len(self._finished)
                self._finished = []
        self.worker.rewind()
        self._reset()

    def close(self) -> None:
        self.sender.close(self.worker.sink.timeout)

    # -- the parts -----------------------------------------------------------------------------
    def _done(self, request: Request) -> None:
        """On a sender's thread: hand ``request`` back to the loop and wake it."""
        with self.worker.condition:
            self._finished.append(request)
            self.worker.condition.notify_all()

    def _has_work(self) -> bool:
        if self._finished:
            return True
        room = len(self.scheduler) < self.window
        return room and self.worker.has_unbuilt

    def _timeout(self) -> float:
        if not self._waiting:
            return IDLE_WAIT_SECS
        due = min(request.due for request in self._waiting)
        return max(0.0, min(IDLE_WAIT_SECS, due - time.monotonic()))

    def _fill(self) -> None:
        """Build events, in commit order, until the window is full or nothing is queued."""
        worker = self.worker
        while len(self.scheduler) < self.window:
            built = worker.next_event(block=False)
            if built is None:
                return
            current = self._current
            if current is None or current.tx is not built.tx:
                current = _Open(self.completion.begin(built.tx.end_lsn), built.tx)
                self._current = current
                self._open.append(current)
            if built.event is None:
                current.filtered = built.filtered
                self._current = None
                self.completion.seal(current.token)
                continue
            assert built.change is not None
            self.completion.count(current.token)
            self.scheduler.add(_Item(built.event, current.token), order_key(built.change))

    def _confirm(self) -> None:
        """Finish, in commit order, the transactions every event of which is settled."""
        done = self.completion.done
        while self._open and self._open[0].token <= done:
            finished = self._open.popleft()
            self.worker.finish(finished.tx, filtered=finished.filtered)

    def _start(self) -> None:
        now = time.monotonic()
        due = [request for request in self._waiting if request.due <= now]
        if due:
            self._waiting = [request for request in self._waiting if request.due > now]
            self._ready.extend(due)
        room = self.limit - self._in_flight - len(self._ready)
        if room > 0:
            self._ready.extend(self._requests(self.scheduler.take(room * self.batch_size)))
        while self._ready and self._in_flight < self.limit:
            request = self._ready.popleft()
            request.attempt += 1
            self._in_flight += 1
            self.sender.submit(request)
        self.worker.stats.in_flight = self._in_flight

    def _requests(self, items: list[_Item]) -> list[Request]:
        """``items`` (of independent keys) as requests of at most ``batch_size`` events, each
        request's events sharing the sink's batch key (its URL)."""
        if self.batch_size == 1:
            return [self._request([item]) for item in items]
        groups: dict[str, list[_Item]] = {}
        requests = []
        for item in items:
            key = self.worker.sink.batch_key(item.event)
            group = groups.setdefault(key, [])
            group.append(item)
            if len(group) == self.batch_size:
                requests.append(self._request(groups.pop(key)))
        requests.extend(self._request(group) for group in groups.values())
        return requests

    def _request(self, items: list[_Item]) -> Request:
        self._numbers += 1
        return Request(self._numbers, [item.event for item in items], items, self.generation)

    def _settle_finished(self) -> None:
        with self.worker.condition:
            finished, self._finished = self._finished, []
        for request in finished:
            if request.generation != self.generation:
                continue  # from before a start-over: what it carried is sent again
            self._in_flight -= 1
            self._settle(request)
        self.worker.stats.in_flight = self._in_flight

    def _settle(self, request: Request) -> None:
        worker = self.worker
        events = request.events
        if request.exception is not None:
            error = worker.unexpected_failure(request.exception)
        elif request.error is not None:
            error = request.error
        else:
            assert request.result is not None
            worker.succeeded(
                events, request.attempt, request.seconds, request.result, request.number
            )
            self._finish(request)
            return
        request.first_failure = request.first_failure or time.time()
        exhausted = worker.failed(events, request.attempt, request.seconds, error)
        if exhausted and worker.retry.on_failure == "dead_letter":
            if len(events) > 1 and not error.retryable:
                # find the events the receiver refuses: each on its own, at once
                worker.clear_retry(request.number)
                self._ready.extend(self._request([item]) for item in request.items)
                return
            self._dead_letter(request, str(error))
            return
        delay = worker.retry_later(
            request.number,
            events,
            request.attempt,
            error,
            exhausted,
            failing=exhausted or request.exception is not None,
        )
        request.due = time.monotonic() + delay
        self._waiting.append(request)

    def _dead_letter(self, request: Request, reason: str) -> None:
        self.worker.dead_letter(
            request.events, reason, request.attempt, request.first_failure, request.number
        )
        self._finish(request)

    def _finish(self, request: Request) -> None:
        for item in request.items:
            self.scheduler.finish(item)
            self.completion.finished(item.token)

    def _handle_operator(self) -> None:
        """Retry now (every waiting request is due at once) and skip (every waiting request
        goes to the dead letters)."""
        worker = self.worker
        if worker.take_skip_request():
            waiting, self._waiting = self._waiting, []
            for request in waiting:
                info = worker.stats.retries.get(request.number)
                self._dead_letter(request, info.last_error if info else "skipped by the operator")
        if worker.take_wake():
            for request in self._waiting:
                request.due = 0.0
