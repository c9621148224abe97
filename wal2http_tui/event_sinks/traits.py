"""The ``EventSink`` interface every sink implements, and what one delivery attempt reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wal2http_tui.config.model import BaseSinkConfig
from wal2http_tui.event_sinks.event_processor import Event
from wal2http_tui.event_sinks.routing import Route

if TYPE_CHECKING:
    from wal2http_tui.event_sinks.concurrent import Request, Sender


@dataclass
class Attempt:
    """What one request looked like and what came back, for the inspector and the log."""

    status: int | None = None
    response_body: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)  # secrets already masked
    payload: bytes = b""
    body_truncated: bool = False  # the answer was longer than the client reads


class DeliveryError(Exception):
    """One delivery attempt failed.

    ``retryable``: a later attempt may succeed (connection errors, timeouts, 408, 425, 429, 5xx).
    ``retry_after``: seconds the receiver asked us to wait, when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        attempt: Attempt | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempt = attempt or Attempt()


class EventSink(ABC):
    """A destination for events. Implementations make ONE attempt per call and raise
    ``DeliveryError`` on failure; queueing, ordering, retries and dead letters are the delivery
    worker's job, shared by every sink."""

    kind: str = ""
    name: str = ""
    batch_max_events: int = 1
    route: Route = Route()  # what the sink receives (its tables, ops and exclude_columns)
    keyed_batches = False  # True when events may differ in batch_key
    ordering = "commit"  # or "key": rows concurrently, up to max_in_flight requests at once
    max_in_flight = 1
    timeout = 30.0  # seconds an attempt may take, at most

    def configure(self, config: BaseSinkConfig) -> None:
        """Take the settings every kind of sink has from its configuration."""
        self.name = config.name
        self.route = Route.of(config)
        self.ordering = config.ordering
        self.max_in_flight = config.max_in_flight if config.ordering == "key" else 1
        self.timeout = config.timeout

    def batch_key(self, event: Event) -> str:
        """Events of one batch share this (an HTTP sink's URL per event): with
        ``keyed_batches``, a batch only holds consecutive events with the same key, so
        batching never reorders."""
        return ""

    @abstractmethod
    def on_event(self, event: Event) -> Attempt:
        """Deliver one event (one attempt)."""

    def on_batch(self, events: Sequence[Event]) -> Attempt:
        """Deliver consecutive events in one attempt; sinks that cannot batch send one."""
        if len(events) != 1:
            raise ValueError(f"{self.kind} sink {self.name} delivers one event at a time")
        return self.on_event(events[0])

    def sender(self, size: int, done: Callable[[Request], None]) -> Sender:
        """How this sink makes up to ``size`` requests at once (``ordering = "key"``): by
        default on threads, each with a ``fork`` of the sink."""
        from wal2http_tui.event_sinks.concurrent import ThreadSender  # it imports this module

        return ThreadSender(self, size, done)

    def fork(self) -> EventSink:
        """Another sink with the same settings and connections of its own, for one of the
        threads that deliver concurrently (``ordering = "key"``)."""
        raise NotImplementedError(f"the {self.kind} sink cannot deliver concurrently")

    @abstractmethod
    def describe_target(self) -> str:
        """Where events go, for display (no secrets)."""

    def probe(self) -> str:
        """Check the target is reachable (for ``check``); returns a line, raises on failure."""
        return f"{self.describe_target()} (not probed)"

    def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold a connection
        """Release connections."""
