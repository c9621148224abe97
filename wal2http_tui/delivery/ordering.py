"""Per-row order with concurrency (``ordering = "key"``, the concurrent-delivery issue): which
events may be in flight together, and how far a sink is finished when they complete out of
order. Not wired into ``SinkWorker`` yet: the worker still sends one request at a time.

``KeyScheduler`` takes events in commit order, each with an order key: events of one key go out
one at a time, in commit order; events of different keys may be in flight together, up to a
limit. A barrier (key ``BARRIER``: truncates, logical messages) waits until everything before
it is finished, and everything after it waits for the barrier.

``Completion`` takes each transaction (its end LSN and its number of events) in commit order
and the events as they finish, in any order; ``confirmed`` is the end LSN of the last
transaction of which every event, and every event of every transaction before it, is finished:
what the acknowledgement rule may confirm for this sink.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from wal2http_tui.replication.messages import Lsn

Item = TypeVar("Item")

BARRIER: Hashable = object()  # the order key of an event everything else waits around


@dataclass
class _Epoch(Generic[Item]):
    """Events between two barriers (or a barrier alone): its lanes run concurrently."""

    barrier: bool = False
    lanes: dict[Hashable, deque[Item]] = field(default_factory=dict)
    ready: deque[Hashable] = field(default_factory=deque)  # keys whose next event may start
    unfinished: int = 0


class KeyScheduler(Generic[Item]):
    """Events in commit order in, events that may start now out (see the module docstring).
    An item must not be added twice while it is unfinished (items are told apart by key and
    arrival order, not by value)."""

    def __init__(self, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._epochs: deque[_Epoch[Item]] = deque()
        self._running: dict[int, tuple[_Epoch[Item], Hashable]] = {}  # id(item) -> where

    def __len__(self) -> int:
        """Events added and not finished (in flight or waiting)."""
        return sum(epoch.unfinished for epoch in self._epochs)

    def add(self, item: Item, key: Hashable) -> None:
        barrier = key is BARRIER
        last = self._epochs[-1] if self._epochs else None
        if last is None or barrier or last.barrier:
            last = _Epoch(barrier=barrier)
            self._epochs.append(last)
        lane = last.lanes.get(key)
        if lane is None:
            lane = last.lanes[key] = deque()
            last.ready.append(key)
        lane.append(item)
        last.unfinished += 1

    def take(self, limit: int | None = None) -> list[Item]:
        """The events that may start now (at most ``limit``, and no more than the in-flight
        limit leaves room for), in commit order of their keys' turns; they count as in flight
        until ``finish``."""
        room = self.max_in_flight - self.in_flight
        if limit is not None:
            room = min(room, limit)
        taken: list[Item] = []
        if not self._epochs:
            return taken
        epoch = self._epochs[0]  # only the oldest epoch runs: a barrier separates them
        while room > 0 and epoch.ready:
            key = epoch.ready.popleft()
            item = epoch.lanes[key][0]
            self._running[id(item)] = (epoch, key)
            taken.append(item)
            room -= 1
        self.in_flight += len(taken)
        return taken

    def finish(self, item: Item) -> None:
        """``item`` (taken) is delivered or settled: its key's next event may start."""
        epoch, key = self._running.pop(id(item))
        lane = epoch.lanes[key]
        head = lane.popleft()
        assert head is item, "an event finishes before the next of its key starts"
        self.in_flight -= 1
        epoch.unfinished -= 1
        if lane:
            epoch.ready.append(key)
        else:
            del epoch.lanes[key]
        while self._epochs and self._epochs[0].unfinished == 0:
            self._epochs.popleft()


class Completion:
    """How far a sink is finished, when its events finish out of order."""

    def __init__(self, confirmed: Lsn = 0) -> None:
        self.confirmed = confirmed
        self._last = confirmed  # the end LSN of the last transaction added
        self._open: OrderedDict[Lsn, int] = OrderedDict()  # end LSN -> events unfinished

    def add(self, end_lsn: Lsn, events: int) -> None:
        """A transaction, in commit order, with the number of events it has for the sink."""
        if end_lsn <= self._last:
            raise ValueError("transactions are added in commit order")
        self._last = end_lsn
        self._open[end_lsn] = events
        self._advance()

    def finished(self, end_lsn: Lsn, events: int = 1) -> None:
        """``events`` of the transaction ending at ``end_lsn`` are finished."""
        left = self._open[end_lsn] - events
        if left < 0:
            raise ValueError(f"more events finished than the transaction at {end_lsn} has")
        self._open[end_lsn] = left
        self._advance()

    @property
    def unfinished(self) -> int:
        """Transactions not yet confirmed."""
        return len(self._open)

    def _advance(self) -> None:
        while self._open:
            lsn, left = next(iter(self._open.items()))
            if left:
                return
            self._open.popitem(last=False)
            self.confirmed = lsn
