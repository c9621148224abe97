"""The ``EventSink`` interface every sink implements, and what one delivery attempt reports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from wal2http_tui.event_sinks.event_processor import Event
from wal2http_tui.event_sinks.routing import Route


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

    @abstractmethod
    def describe_target(self) -> str:
        """Where events go, for display (no secrets)."""

    def probe(self) -> str:
        """Check the target is reachable (for ``check``); returns a line, raises on failure."""
        return f"{self.describe_target()} (not probed)"

    def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold a connection
        """Release connections."""
