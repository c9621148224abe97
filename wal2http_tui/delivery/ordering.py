"""Per-row order with concurrency (``ordering = "key"``, the concurrent-delivery issue): which
events may be in flight together, and how far a sink is finished when they complete out of
order; and which order key an event has.

``KeyScheduler`` takes events in commit order, each with an order key: events of one key go out
one at a time, in commit order; events of different keys may be in flight together, up to a
limit. A barrier (key ``BARRIER``: truncates, logical messages) waits until everything before
it is finished, and everything after it waits for the barrier.

``Completion`` takes each transaction in commit order, counts its events as they are built,
and takes the events as they finish, in any order; ``confirmed`` is the end LSN of the last
transaction of which every event, and every event of every transaction before it, is finished:
what the acknowledgement rule may confirm for this sink.

``order_key`` is the rule for which events must keep their order: those of one row (table and
key); of one table when its rows have no key; a truncate, a logical message, or an update that
changes a row's key is a barrier.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from wal2http_tui.replication.messages import Lsn
from wal2http_tui.replication.transactions import Change

Item = TypeVar("Item")

BARRIER: Hashable = object()  # the order key of an event everything else waits around


def order_key(change: Change) -> Hashable:
    """What ``change`` keeps its order with (see the module docstring)."""
    if change.op in ("truncate", "message"):
        return BARRIER
    if change.key is None:  # no replica identity: the table's changes keep their order
        return (change.schema, change.table)
    if change.op == "update" and change.old is not None and _key_changed(change):
        return BARRIER  # the row leaves one key for another: ordered with both
    return (change.schema, change.table, change.key)


def _key_changed(change: Change) -> bool:
    """An update whose old row (sent for a changed key, or every time under REPLICA IDENTITY
    FULL) has other key values than the new row."""
    assert change.key is not None and change.old is not None
    old = json.loads(change.old)
    key = json.loads(change.key)
    return any(name not in old or old[name] != value for name, value in key.items())


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


class _Open:
    __slots__ = ("end_lsn", "left", "sealed")

    def __init__(self, end_lsn: Lsn) -> None:
        self.end_lsn = end_lsn
        self.left = 0  # events counted and not finished
        self.sealed = False  # every event of it has been counted


class Completion:
    """How far a sink is finished, when its events finish out of order.

    A transaction is ``begin``-ed in commit order, which gives it a token; its events are
    ``count``-ed as they are built (a big transaction is never built whole), it is ``seal``-ed
    once all are, and they are ``finished`` in any order. ``done`` is the token, and
    ``confirmed`` the end LSN, of the last transaction finished with everything before it.
    """

    def __init__(self, confirmed: Lsn = 0) -> None:
        self.confirmed = confirmed
        self.done = 0  # tokens start at 1
        self._last_token = 0
        self._last_lsn = confirmed
        self._open: OrderedDict[int, _Open] = OrderedDict()

    def begin(self, end_lsn: Lsn) -> int:
        """A transaction, in commit order: its token. ``confirmed`` never goes back: an end LSN
        below the last one counts as the last one."""
        end_lsn = self._last_lsn = max(end_lsn, self._last_lsn)
        self._last_token += 1
        self._open[self._last_token] = _Open(end_lsn)
        return self._last_token

    def count(self, token: int, events: int = 1) -> None:
        entry = self._open[token]
        if entry.sealed:
            raise ValueError(f"transaction {token} is sealed: no more events are counted")
        entry.left += events

    def seal(self, token: int) -> None:
        """Every event of the transaction has been counted."""
        self._open[token].sealed = True
        self._advance()

    def add(self, end_lsn: Lsn, events: int) -> int:
        """A transaction whose events are all known at once: begin, count and seal."""
        token = self.begin(end_lsn)
        self.count(token, events)
        self.seal(token)
        return token

    def finished(self, token: int, events: int = 1) -> None:
        """``events`` of the transaction ``token`` are finished."""
        entry = self._open[token]
        if events > entry.left:
            raise ValueError(f"more events finished than transaction {token} has")
        entry.left -= events
        self._advance()

    @property
    def unfinished(self) -> int:
        """Transactions not yet confirmed."""
        return len(self._open)

    def _advance(self) -> None:
        while self._open:
            token, entry = next(iter(self._open.items()))
            if entry.left or not entry.sealed:
                return
            self._open.popitem(last=False)
            self.done = token
            self.confirmed = entry.end_lsn
