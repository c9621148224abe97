"""What the engine publishes for people to watch: bounded feeds and per-sink status.

The engine writes, any thread reads. Everything here is bounded (``deque(maxlen=...)``), so a
UI that reads slowly, or not at all, costs nothing but a fixed amount of memory.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field


class Mark:
    """One transaction's delivery state at one sink."""

    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    FAILED = "failed"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    FILTERED = "filtered"  # the sink's tables/ops filters let none of its changes through


class SinkState:
    HEALTHY = "healthy"
    RETRYING = "retrying"
    FAILING = "failing"
    STALLED = "stalled"  # work queued, nothing delivered for stall_warning_secs
    PAUSED = "paused"
    DISABLED = "disabled"
    STOPPED = "stopped"


@dataclass
class TxRecord:
    """A recent transaction as the Transactions pane shows it."""

    xid: int
    lsn: str
    commit_time: str
    size: int
    tables: tuple[str, ...]
    received_at: float
    marks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttemptRecord:
    """One delivery attempt, for the inspector."""

    sink: str
    at: float
    attempt: int
    event_ids: tuple[str, ...]
    event_type: str
    ok: bool
    status: int | None
    latency_ms: float
    error: str
    response_body: str
    request_headers: dict[str, str]
    payload: bytes


@dataclass(frozen=True)
class RetryInfo:
    """A delivery waiting to be retried."""

    sink: str
    event_ids: tuple[str, ...]
    table_op: str
    attempt: int
    max_attempts: int | None  # None: retrying until it works (on_failure = "block")
    next_attempt_at: float
    last_error: str


# Upper bounds (seconds) of the buckets attempts' durations are counted in (the last: the rest).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class SinkSnapshot:
    name: str
    kind: str
    target: str
    state: str
    delivered: int
    failed: int
    dead_lettered: int
    queue_depth: int
    last_status: int | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    last_error: str
    retries: tuple[RetryInfo, ...]  # the deliveries waiting to be retried, oldest first
    finished_lsn: int
    receives: str = "everything"  # the sink's filters, in short (Route.summary)
    ordering: str = "commit"
    in_flight: int = 0  # requests on their way
    max_in_flight: int = 1
    # attempts per duration bucket (DURATION_BUCKETS, then one for longer), and their sum
    durations: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)
    duration_sum_secs: float = 0.0


class SinkStats:
    """Counters one delivery worker keeps; ``snapshot`` copies them for readers."""

    def __init__(self, name: str, kind: str, target: str, receives: str = "everything") -> None:
        self.name = name
        self.kind = kind
        self.target = target
        self.receives = receives
        self.state = SinkState.HEALTHY
        self.delivered = 0
        self.failed = 0
        self.dead_lettered = 0
        self.last_status: int | None = None
        self.last_error = ""
        # by delivery (0 under commit order); replaced, never changed in place, so readers can copy
        self.retries: dict[int, RetryInfo] = {}
        self.in_flight = 0
        self.ordering = "commit"
        self.max_in_flight = 1
        self.latencies: deque[float] = deque(maxlen=2000)
        self.durations = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum_secs = 0.0

    def count_duration(self, seconds: float) -> None:
        self.durations[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum_secs += seconds

    def snapshot(self, queue_depth: int, finished_lsn: int) -> SinkSnapshot:
        latencies = sorted(self.latencies)
        return SinkSnapshot(
            name=self.name,
            kind=self.kind,
            target=self.target,
            state=self.state,
            delivered=self.delivered,
            failed=self.failed,
            dead_lettered=self.dead_lettered,
            queue_depth=queue_depth,
            last_status=self.last_status,
            latency_p50_ms=_percentile(latencies, 0.50),
            latency_p99_ms=_percentile(latencies, 0.99),
            last_error=self.last_error,
            retries=tuple(self.retries.values()),
            finished_lsn=finished_lsn,
            receives=self.receives,
            ordering=self.ordering,
            in_flight=self.in_flight,
            max_in_flight=self.max_in_flight,
            durations=tuple(self.durations),
            duration_sum_secs=self.duration_sum_secs,
        )


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


INSPECTED_PAYLOAD_BYTES = 64 * 1024  # kept per attempt for the inspector


class ActivityFeed:
    """Recent transactions and delivery attempts, bounded."""

    def __init__(self, transactions: int = 500, attempts: int = 200) -> None:
        self.transactions: deque[TxRecord] = deque(maxlen=transactions)
        self.attempts: deque[AttemptRecord] = deque(maxlen=attempts)

    def add_transaction(self, record: TxRecord) -> None:
        self.transactions.append(record)

    def add_attempt(self, record: AttemptRecord) -> None:
        self.attempts.append(record)

    def recent_transactions(self) -> list[TxRecord]:
        return list(self.transactions)

    def recent_attempts(self) -> list[AttemptRecord]:
        return list(self.attempts)
