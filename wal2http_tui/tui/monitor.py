"""One poll of the engine: plain values the screens render, plus the rates derived from them.

The UI never receives per-event messages. ``Monitor.read`` runs on the UI thread a few times a
second, copies what the engine publishes (cheap, bounded reads) and derives events/s and the
slot's retained-WAL trend from successive readings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wal2http_tui.delivery.activity import RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.replication.state import StateSnapshot

if TYPE_CHECKING:
    from wal2http_tui.engine.controls import BackfillStatus, EngineControls, SlotHealth

RATE_PERIOD = 1.0  # seconds per events/s sample
RATE_HISTORY = 60
SLOT_HISTORY = 40
RISING_CHECKS = 4  # retained WAL grew across this many successive slot checks


@dataclass(frozen=True)
class Readings:
    """Everything the live screens show, read at ``now``.

    ``stopping``: the app is stopping the engine (the operator quit); the engine's own state
    says otherwise until its sinks have drained. ``attached_to``: the engine runs in another
    process, this UI is attached to it there (``EngineControls.attached_to``).
    """

    now: float
    state: StateSnapshot
    stopping: bool
    paused: bool
    sinks: list[SinkSnapshot]
    transactions: list[TxRecord]
    retries: list[RetryInfo]
    slot: SlotHealth
    log: list[str]
    backfills: list[BackfillStatus]
    events_per_second: float | None
    rate_history: list[float]
    retained_history: list[int]
    attached_to: str | None = None

    @property
    def slot_rising(self) -> bool:
        recent = self.retained_history[-RISING_CHECKS:]
        return len(recent) == RISING_CHECKS and all(a < b for a, b in pairwise(recent))


@runtime_checkable
class ShowsReadings(Protocol):
    """A screen that renders each reading while it is on the screen stack."""

    def show_readings(self, readings: Readings) -> None: ...


class EventRate:
    """Events per second from successive ``changes`` counts, one sample per ``period``."""

    def __init__(self, period: float = RATE_PERIOD, history: int = RATE_HISTORY) -> None:
        self.period = period
        self.samples: deque[float] = deque(maxlen=history)
        self._last: tuple[int, float] | None = None

    def observe(self, changes: int, now: float) -> None:
        if self._last is None:
            self._last = (changes, now)
            return
        last_changes, last_time = self._last
        elapsed = now - last_time
        if elapsed < self.period:
            return
        # A restarted worker counts from zero again: never a negative rate.
        self.samples.append(max(0, changes - last_changes) / elapsed)
        self._last = (changes, now)

    @property
    def current(self) -> float | None:
        return self.samples[-1] if self.samples else None


class SlotTrend:
    """Retained WAL bytes, one sample per slot check (``checked_at`` changes)."""

    def __init__(self, history: int = SLOT_HISTORY) -> None:
        self.samples: deque[int] = deque(maxlen=history)
        self._checked_at = 0.0

    def observe(self, slot: SlotHealth) -> None:
        if slot.checked_at == self._checked_at or slot.retained_bytes is None:
            return
        self._checked_at = slot.checked_at
        self.samples.append(slot.retained_bytes)


class Monitor:
    """Reads the engine and keeps the short histories the screens draw."""

    def __init__(self, engine: EngineControls) -> None:
        self.engine = engine
        self.rate = EventRate()
        self.slot_trend = SlotTrend()

    def read(self, now: float, *, stopping: bool) -> Readings:
        engine = self.engine
        state = engine.snapshot()
        slot = engine.slot_health()
        self.rate.observe(state.changes, now)
        self.slot_trend.observe(slot)
        return Readings(
            now=now,
            state=state,
            stopping=stopping,
            paused=engine.paused,
            sinks=engine.sinks(),
            transactions=engine.transactions(),
            retries=engine.retries(),
            slot=slot,
            log=engine.log_lines(),
            backfills=engine.backfills(),
            events_per_second=self.rate.current,
            rate_history=list(self.rate.samples),
            retained_history=list(self.slot_trend.samples),
            attached_to=engine.attached_to,
        )
