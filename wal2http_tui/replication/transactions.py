"""Committed transactions and their row changes, as the engine hands them to the sinks.

A ``Change`` carries its rows already rendered as JSON (text, by the to_jsonb rule), so every
sink embeds the same exact text and a spooled change costs its JSON size on disk, not a tree of
Python objects in memory. ``ChangeBuffer`` keeps a transaction's changes in memory up to a limit
and spills the rest to a temporary file, so memory stays bounded whatever the transaction size.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from wal2http_tui.replication.messages import Lsn, Xid


class Change(NamedTuple):
    """One row change (or truncate, or logical decoding message) inside a transaction."""

    op: str  # insert | update | delete | truncate | message
    schema: str
    table: str
    new: str | None  # JSON object of the row after the change
    old: str | None  # JSON object of the old row or its key columns, as PostgreSQL sent them
    key: str | None  # JSON object of the replica identity key columns of the row
    unchanged_toast: tuple[str, ...] = ()
    extra: dict | None = None  # truncate: cascade/restart_identity; message: prefix/content


DEFAULT_MEMORY_LIMIT = 4 * 1024 * 1024  # bytes of change data kept in RAM per transaction
PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
SPILL_CHUNK_BYTES = 1024 * 1024  # once spilling, records go to disk in chunks of about this size


class SpoolDirectory:
    """A private temporary directory for spill files, created on first use (most runs never
    spill), deleted by ``cleanup``."""

    def __init__(self, prefix: str = "wal2http-spool-") -> None:
        self._prefix = prefix
        self._path: Path | None = None
        self._lock = threading.Lock()

    def path(self) -> Path:
        with self._lock:
            if self._path is None:
                self._path = Path(tempfile.mkdtemp(prefix=self._prefix))
            return self._path

    def cleanup(self) -> None:
        with self._lock:
            if self._path is not None:
                shutil.rmtree(self._path, ignore_errors=True)
                self._path = None


class ChangeBuffer:
    """Append-only list of changes that spills to a temporary file beyond ``memory_limit``.

    Changes of a streamed transaction carry the (sub)transaction xid they belong to, so that a
    subtransaction abort can drop them (``abort_subtransaction``) without rewriting the file.
    Several readers may iterate at once (one per sink); each ``acquire`` is matched by a
    ``release``, and the last release deletes it.
    """

    def __init__(
        self, spool_dir: Path | SpoolDirectory, memory_limit: int = DEFAULT_MEMORY_LIMIT
    ) -> None:
        self._spool_dir = spool_dir
        self._memory_limit = memory_limit
        self._records: list[tuple[Xid, Change]] = []
        self._memory_bytes = 0
        self._path: str | None = None
        self._file: BinaryIO | None = None
        self._aborted: set[Xid] = set()
        self._recount = False
        self._lock = threading.Lock()
        self._readers = 0
        self.count = 0
        # (operation, schema, table) of every change appended, so a sink can tell at once
        # whether a transaction holds anything it receives (a superset after an abort).
        self.kinds: set[tuple[str, str, str]] = set()

    @property
    def tables(self) -> set[str]:
        """Qualified names of the tables the changes touch (logical messages excluded)."""
        return {f"{schema}.{table}" for _, schema, table in self.kinds if table}

    @property
    def spilled(self) -> bool:
        return self._path is not None

    def append(self, change: Change, xid: Xid = 0) -> None:
        self.count += 1
        self.kinds.add(change[:3])  # (op, schema, table): a slice is the cheapest way there
        self._records.append((xid, change))
        # about what the change costs in memory (its JSON plus ~200 bytes of objects)
        self._memory_bytes += (
            200 + len(change.new or "") + len(change.old or "") + len(change.key or "")
        )
        if self._memory_bytes > (SPILL_CHUNK_BYTES if self._file else self._memory_limit):
            self._spill()

    def abort_subtransaction(self, xid: Xid) -> None:
        """Drop an aborted subtransaction's changes (they were streamed, never committed)."""
        self._aborted.add(xid)
        kept = [(x, c) for x, c in self._records if x != xid]
        self.count -= len(self._records) - len(kept)
        self._records = kept
        if self._path is not None:
            self._recount = True  # spilled records stay on disk; finish() counts what is left

    def finish(self) -> None:
        """No more appends: flush the spill file and settle the count."""
        if self._file is not None:
            self._spill()
            self._file.close()
            self._file = None
        if self._recount:
            self.count = sum(1 for _ in self)
            self._recount = False

    def __iter__(self) -> Iterator[Change]:
        aborted = self._aborted
        for xid, change in self._chunks():
            if xid not in aborted:
                yield change

    def _chunks(self) -> Iterator[tuple[Xid, Change]]:
        if self._path is None:
            yield from self._records
            return
        with open(self._path, "rb") as spool:
            while True:
                try:
                    chunk = pickle.load(spool)
                except EOFError:
                    return
                yield from chunk

    def acquire(self) -> None:
        """One more reader (a sink that queued the transaction) before the storage is freed."""
        with self._lock:
            self._readers += 1

    def release(self) -> None:
        """A reader is done; the last one frees the memory and deletes the spill file."""
        with self._lock:
            self._readers -= 1
            last = self._readers <= 0
        if last:
            self.discard()

    def discard(self) -> None:
        self._records = []
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)

    def _spill(self) -> None:
        """Write the records held in memory to the spill file as one chunk."""
        if self._file is None:
            spool = self._spool_dir
            directory = spool.path() if isinstance(spool, SpoolDirectory) else spool
            fd, self._path = tempfile.mkstemp(prefix="tx-", suffix=".spool", dir=directory)
            self._file = os.fdopen(fd, "wb")
        self._file.write(pickle.dumps(self._records, PICKLE_PROTOCOL))
        self._records = []
        self._memory_bytes = 0


@dataclass(eq=False)
class Transaction:
    """A committed transaction, ready for delivery. ``end_lsn`` is what gets confirmed."""

    xid: Xid
    commit_lsn: Lsn
    end_lsn: Lsn
    commit_time: int  # microseconds since 2000-01-01 UTC
    changes: ChangeBuffer
    streamed: bool = False
    received_at: float = 0.0
    sinks: frozenset[str] | None = None  # only these sinks take it (a backfill's); None: all
    # Each sink's delivery mark (delivery.activity.Mark), written by the sink workers.
    marks: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return self.changes.count

    @property
    def tables(self) -> set[str]:
        return self.changes.tables


def read_transaction(
    spool: SpoolDirectory,
    lsn: Lsn,
    changes: Iterable[Change],
    commit_time: int,
    sinks: frozenset[str] | None = None,
) -> Transaction:
    """Rows read from tables (a snapshot's or a backfill's chunk) as one unit of delivery at
    ``lsn``, the stream position they are consistent with."""
    buffer = ChangeBuffer(spool)
    for change in changes:
        buffer.append(change)
    buffer.finish()
    return Transaction(
        xid=0,
        commit_lsn=lsn,
        end_lsn=lsn,
        commit_time=commit_time,
        changes=buffer,
        received_at=time.time(),
        sinks=sinks,
    )
