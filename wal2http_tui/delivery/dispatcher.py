"""Dispatcher: the fan-out of committed transactions to every sink worker, and the acknowledgement
rule (the LSN that may be confirmed is the minimum over all sinks of what they finished)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.replication.transactions import Transaction

STOP_GRACE_SECS = 5.0


class Dispatcher:
    """Hands each committed transaction to every sink worker, in order, with backpressure."""

    def __init__(self) -> None:
        self._workers: list[SinkWorker] = []
        self._lock = threading.Lock()
        self.dispatched_lsn = 0

    @property
    def workers(self) -> list[SinkWorker]:
        return self._workers

    def add(self, worker: SinkWorker) -> None:
        with self._lock:
            self._workers = [*self._workers, worker]

    def remove(self, worker: SinkWorker) -> None:
        with self._lock:
            self._workers = [w for w in self._workers if w is not worker]

    def dispatch(
        self,
        tx: Transaction,
        keep_alive: Callable[[], None],
        stopped: Callable[[], bool],
    ) -> bool:
        """Queue ``tx`` at every sink; while a queue is full, call ``keep_alive`` and wait.

        The set of sinks may change meanwhile (a live reconfiguration): ``tx`` then goes to
        every sink registered when it is done, not to a sink removed meanwhile, and not twice
        to a sink replaced meanwhile (its replacement took over what it held). Returns False
        (``tx`` not fully dispatched, so never confirmed) if ``stopped()`` turns true.
        """
        tx.changes.acquire()  # held while dispatching, so an early finisher cannot free it
        try:
            given: set[str] = set()  # by sink name: a replacement inherits what was given
            while True:
                pending = [w for w in self._workers if w.name not in given]
                if not pending:
                    break
                for worker in pending:
                    # A worker removed or replaced meanwhile is skipped: its replacement, if
                    # it has one, is offered ``tx`` in the next round unless it inherited it.
                    while worker in self._workers:
                        if worker.offer(tx, timeout=0.25):
                            given.add(worker.name)
                            break
                        keep_alive()
                        if stopped():
                            return False
            with self._lock:
                self.dispatched_lsn = max(self.dispatched_lsn, tx.end_lsn)
            return True
        finally:
            tx.changes.release()

    def replace(self, old: SinkWorker, new: SinkWorker) -> None:
        """Swap a sink for a new one (same name, new settings) without losing what it holds.

        The old worker is stopped and waited for before the new one starts, so the receiver
        never sees the two send at once; its unfinished transactions pass to the new worker in
        one step under the lock ``confirmed_lsn`` takes, so no confirmation can ever see them
        in neither worker.
        """
        old.retire()
        old.stop(0)
        old.join_reporting()
        with self._lock:
            new.adopt(old.take_unfinished(), old.finished_lsn)
            self._workers = [new if w is old else w for w in self._workers]
        new.start()

    def retire(self, worker: SinkWorker) -> None:
        """Remove a sink: it stops, and what it had not delivered is no longer waited for."""
        worker.retire()
        self.remove(worker)
        worker.stop(0)
        worker.join_reporting()
        for tx in worker.take_unfinished():
            tx.changes.release()

    def confirmed_lsn(self) -> int:
        """The acknowledgement rule: the highest end LSN that every enabled sink has finished
        with (delivered, or dead-lettered where it is configured to), which is what may be
        confirmed to PostgreSQL."""
        with self._lock:
            if not self._workers:
                return self.dispatched_lsn
            return min(worker.progress(self.dispatched_lsn) for worker in self._workers)

    @property
    def idle(self) -> bool:
        return all(worker.idle for worker in self._workers)

    def stop(self, drain_timeout: float) -> bool:
        """Stop every worker: each delivers what is queued for at most ``drain_timeout``
        seconds, then stops between attempts; True when all have ended within that time plus
        ``STOP_GRACE_SECS`` (an attempt in flight may take up to its sink's timeout)."""
        for worker in self._workers:
            worker.stop(drain_timeout)
        deadline = time.monotonic() + drain_timeout + STOP_GRACE_SECS
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))
        return not any(worker.alive for worker in self._workers)

    @property
    def stopped(self) -> bool:
        """No worker thread is running any more."""
        return not any(worker.alive for worker in self._workers)
