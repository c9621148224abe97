"""Concurrent requests of one sink (``ordering = "key"``): the ``Sender`` interface, the
``Request`` it carries, and ``ThreadSender``, the sender of sinks that only know blocking calls.

A ``Request`` goes in through ``submit``; the same object comes back through ``done`` with what
happened (from the sender's own thread), each request bounded by the sink's timeout. The
delivery loop decides everything else: what to send, when to retry, in which order.

``ThreadSender`` runs each sink's ``on_batch`` (one blocking attempt) on up to ``size`` threads,
started as requests need them, each with a fork of the sink (connections of its own, so no
client is shared between threads): the Hook0 SDK's calls are made this way. HTTP sinks use
libcurl's multi interface instead (``curl_sender.py``), which costs far less per request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from wal2http_tui.event_sinks.event_processor import Event
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError

if TYPE_CHECKING:
    from wal2http_tui.event_sinks.traits import EventSink

log = logging.getLogger("wal2http_tui.delivery")

CLOSE_GRACE_SECS = 5.0  # past the sink's timeout, what closing waits for a thread


class Request:
    """One delivery (a batch of events of independent keys) and its latest attempt."""

    __slots__ = (
        "attempt",
        "due",
        "ended",
        "error",
        "events",
        "exception",
        "first_failure",
        "generation",
        "items",
        "number",
        "result",
        "started",
    )

    def __init__(self, number: int, events: list[Event], items: list, generation: int) -> None:
        self.number = number  # > 0; what the Retries pane and the sink's counters know it by
        self.events = events
        self.items = items  # what the delivery loop finishes when it is settled
        self.generation = generation
        self.attempt = 0
        self.first_failure = 0.0
        self.due = 0.0  # monotonic time of the next attempt, while waiting to retry
        self.started = 0.0
        self.ended = 0.0
        self.result: Attempt | None = None
        self.error: DeliveryError | None = None
        self.exception: Exception | None = None  # not a DeliveryError: a bug or a surprise

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Sender(Protocol):
    def submit(self, request: Request) -> None:
        """Start ``request``; ``done(request)`` is called when its attempt has ended."""

    def close(self, timeout: float) -> None:
        """Let the requests in flight end (each bounded by ``timeout``), then release
        everything; requests submitted and not started are dropped."""


class ThreadSender:
    """Makes requests on up to ``size`` threads; ``done(request)`` is called as each ends."""

    def __init__(self, sink: EventSink, size: int, done: Callable[[Request], None]) -> None:
        self._sink = sink
        self._size = size
        self._done = done
        self._requests: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._busy = 0

    def submit(self, request: Request) -> None:
        with self._lock:
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._serve,
                    name=f"sink-{self._sink.name}-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        self._requests.put(request)

    def close(self, timeout: float) -> None:
        """Let each thread finish its request (each is bounded by the sink's ``timeout``)."""
        for _ in self._threads:
            self._requests.put(None)
        deadline = time.monotonic() + timeout + CLOSE_GRACE_SECS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _serve(self) -> None:
        sink: EventSink | None = None
        broken: Exception | None = None
        try:
            sink = self._sink.fork()
        except Exception as exc:  # every request it takes then reports this, none is lost
            broken = exc
            log.error("sink %s: cannot open a connection set: %s", self._sink.name, exc)
        try:
            while True:
                request = self._requests.get()
                if request is None:
                    return
                request.result = request.error = request.exception = None
                request.started = time.monotonic()
                try:
                    if sink is None:
                        assert broken is not None
                        raise broken
                    request.result = sink.on_batch(request.events)
                except DeliveryError as error:
                    request.error = error
                except Exception as exc:
                    request.exception = exc
                request.ended = time.monotonic()
                with self._lock:
                    self._busy -= 1
                self._done(request)
        finally:
            if sink is not None:
                sink.close()
