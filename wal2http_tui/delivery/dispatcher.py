"""Dispatcher: the fan-out of committed transactions to every sink worker, and the acknowledgement
rule (the LSN that may be confirmed is the minimum over all sinks of what they finished)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.replication.transactions import Transaction


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

        ``keep_alive`` may change the set of sinks (a live reconfiguration): ``tx`` then goes to
        every sink registered when it is done, and not to a sink removed meanwhile. Returns False
        (``tx`` not fully dispatched, so never confirmed) if ``stopped()`` turns true.
        """
        tx.changes.acquire()  # held while dispatching, so an early finisher cannot free it
        try:
            given: set[int] = set()
            while True:
                pending = [w for w in self._workers if id(w) not in given]
                if not pending:
                    break
                for worker in pending:
                    while worker in self._workers and not worker.offer(tx, timeout=0.25):
                        keep_alive()
                        if stopped():
                            return False
                    given.add(id(worker))
            self.dispatched_lsn = max(self.dispatched_lsn, tx.end_lsn)
            return True
        finally:
            tx.changes.release()

    def replace(self, old: SinkWorker, new: SinkWorker) -> None:
        """Swap a sink for a new one (same name, new settings) without losing what it holds."""
        old.retire()
        old.stop(0)
        old.join()
        new.adopt(old.take_unfinished())
        with self._lock:
            self._workers = [new if w is old else w for w in self._workers]
        new.start()

    def retire(self, worker: SinkWorker) -> None:
        """Remove a sink: it stops, and what it had not delivered is no longer waited for."""
        worker.retire()
        self.remove(worker)
        worker.stop(0)
        worker.join()
        for tx in worker.take_unfinished():
            tx.changes.release()

    def confirmed_lsn(self) -> int:
        """Highest end LSN every sink has finished with (what may be confirmed to PostgreSQL)."""
        workers = self._workers
        if not workers:
            return self.dispatched_lsn
        return min(worker.progress(self.dispatched_lsn) for worker in workers)

    @property
    def idle(self) -> bool:
        return all(worker.idle for worker in self._workers)

    def stop(self, drain_timeout: float) -> None:
        for worker in self._workers:
            worker.stop(drain_timeout)
        deadline = time.monotonic() + drain_timeout + 5
        for worker in self._workers:
            worker.join(max(0.1, deadline - time.monotonic()))
