"""What the engine remembers of each slot it streamed, so that a gap is never papered over.

PostgreSQL resends everything after a slot's ``confirmed_flush_lsn``, which is why nothing is
lost across crashes. But if the slot itself is dropped, advanced by someone else, or the
connection string now reaches another cluster, a slot created or found there starts somewhere
else, and the changes in between are silently skipped. So the engine writes down, before it
tells PostgreSQL, the position it confirms for each (system identifier, slot), and on every
start and reconnect compares it with what PostgreSQL says (``judge``):

- no record: a first start, nothing to say;
- the slot is missing, or ahead of the record, or the system identifier changed: a gap, which
  the engine refuses to stream across unless the operator accepts it (``--accept-gap``), and
  then records (from, to, when);
- the slot is behind the record (a server restored from a backup): what lies between is sent
  again, which is only a warning, since receivers deduplicate on event ids.

The file is SQLite (mode 0600) beside the dead letters; every write is one transaction, so it
survives kill -9.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from wal2http_tui.config.files import open_private_sqlite
from wal2http_tui.replication.messages import Lsn, format_lsn

SCHEMA = """
CREATE TABLE IF NOT EXISTS slot_positions (
    system_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    target TEXT NOT NULL,
    confirmed_lsn INTEGER NOT NULL,
    confirmed_at REAL NOT NULL,
    PRIMARY KEY (system_id, slot)
);
CREATE TABLE IF NOT EXISTS initial_snapshots (
    system_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    snapshot_lsn INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (system_id, slot)
);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    from_lsn INTEGER NOT NULL,
    to_lsn INTEGER,
    at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""


class PositionError(Exception):
    """The state file cannot be read or written; the message names it and the cause."""


@dataclass(frozen=True)
class Remembered:
    """The last position the engine confirmed on a slot, and when."""

    system_id: str
    slot: str
    target: str
    confirmed_lsn: Lsn
    confirmed_at: float


@dataclass(frozen=True)
class Gap:
    """Changes that were never delivered and cannot be read any more: from, to (None when not
    known yet: a slot created now starts at the server's current position)."""

    system_id: str
    slot: str
    from_lsn: Lsn
    to_lsn: Lsn | None
    at: float
    reason: str


@dataclass(frozen=True)
class Verdict:
    """What comparing the record with PostgreSQL found: ``ok``, ``behind`` (a warning) or
    ``gap`` (refused unless accepted); ``message`` says it to the operator."""

    kind: str
    message: str = ""
    gap_from: Lsn | None = None
    gap_to: Lsn | None = None


OK = Verdict("ok")


def connection_target(dsn: str) -> str:
    """``host:port/database`` of a connection string (no credentials), to tell clusters apart."""
    params = conninfo_to_dict(dsn)
    host = params.get("host") or params.get("hostaddr") or "local socket"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or params.get('user', '')}"


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))


def judge(
    remembered: Remembered | None,
    other_cluster: Remembered | None,
    *,
    slot: str,
    system_id: str,
    slot_exists: bool,
    slot_confirmed: Lsn,
) -> Verdict:
    """Compare what was remembered with what PostgreSQL says now."""
    accept = (
        "start again knowingly with `wal2http-tui run --accept-gap` (or accept it in the UI), "
        "which records the gap; then resynchronise the receivers"
    )
    if remembered is None and other_cluster is not None:
        last = other_cluster
        return Verdict(
            "gap",
            f"the connection string now reaches another cluster: system identifier "
            f"{system_id}, where slot {slot} was streamed from system identifier "
            f"{last.system_id} (confirmed up to {format_lsn(last.confirmed_lsn)} at "
            f"{_when(last.confirmed_at)}). Point connection_string back at that cluster, or "
            f"{accept} (event ids change with the system identifier)",
            gap_from=last.confirmed_lsn,
        )
    if remembered is None:
        return OK
    position = f"{format_lsn(remembered.confirmed_lsn)} at {_when(remembered.confirmed_at)}"
    if not slot_exists:
        return Verdict(
            "gap",
            f"replication slot {slot} does not exist, but wal2http-tui confirmed up to "
            f"{position} on it: the changes since then cannot be read from a new slot. Restore "
            f"the slot if you can (a server or a backup that still has it), or {accept}",
            gap_from=remembered.confirmed_lsn,
        )
    if slot_confirmed > remembered.confirmed_lsn:
        return Verdict(
            "gap",
            f"replication slot {slot} is confirmed up to {format_lsn(slot_confirmed)}, ahead of "
            f"{position} where wal2http-tui left it: someone advanced it "
            "(pg_replication_slot_advance) or another consumer used it, and the changes in "
            f"between were never delivered. Find out who, then {accept}",
            gap_from=remembered.confirmed_lsn,
            gap_to=slot_confirmed,
        )
    if slot_confirmed < remembered.confirmed_lsn:
        return Verdict(
            "behind",
            f"replication slot {slot} is confirmed up to {format_lsn(slot_confirmed)}, behind "
            f"{position} where wal2http-tui left it (a server restored from a backup?): the "
            "changes in between are sent again, with the same event ids",
        )
    return OK


class PositionStore:
    """Thread-safe access to the state file (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = open_private_sqlite(path, SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise PositionError(f"cannot open the state file {path}: {exc}") from exc

    def remembered(self, system_id: str, slot: str) -> Remembered | None:
        row = self._one(
            "SELECT system_id, slot, target, confirmed_lsn, confirmed_at FROM slot_positions "
            "WHERE system_id = ? AND slot = ?",
            (system_id, slot),
        )
        return Remembered(*row) if row else None

    def other_cluster(self, slot: str, target: str, system_id: str) -> Remembered | None:
        """The newest record of this slot at this target from another cluster, if any."""
        row = self._one(
            "SELECT system_id, slot, target, confirmed_lsn, confirmed_at FROM slot_positions "
            "WHERE slot = ? AND target = ? AND system_id <> ? ORDER BY confirmed_at DESC",
            (slot, target, system_id),
        )
        return Remembered(*row) if row else None

    def confirm(self, system_id: str, slot: str, target: str, lsn: Lsn) -> None:
        """Remember ``lsn`` as confirmed (before it is sent to PostgreSQL)."""
        self._write(
            "INSERT INTO slot_positions VALUES (?, ?, ?, ?, ?) ON CONFLICT (system_id, slot) "
            "DO UPDATE SET target = excluded.target, confirmed_lsn = excluded.confirmed_lsn, "
            "confirmed_at = excluded.confirmed_at",
            (system_id, slot, target, lsn, time.time()),
        )

    def forget_other_clusters(self, slot: str, target: str, system_id: str) -> None:
        """After a change of cluster was accepted: only the new one is remembered."""
        self._write(
            "DELETE FROM slot_positions WHERE slot = ? AND target = ? AND system_id <> ?",
            (slot, target, system_id),
        )

    def record_gap(
        self, system_id: str, slot: str, from_lsn: Lsn, to_lsn: Lsn | None, reason: str
    ) -> None:
        self._write(
            "INSERT INTO gaps (system_id, slot, from_lsn, to_lsn, at, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (system_id, slot, from_lsn, to_lsn, time.time(), reason),
        )

    def initial_snapshot(self, system_id: str, slot: str) -> tuple[Lsn, bool] | None:
        """The slot's initial snapshot: its position and whether it was delivered."""
        row = self._one(
            "SELECT snapshot_lsn, finished_at IS NOT NULL FROM initial_snapshots "
            "WHERE system_id = ? AND slot = ?",
            (system_id, slot),
        )
        return (row[0], bool(row[1])) if row else None

    def snapshot_started(self, system_id: str, slot: str, lsn: Lsn) -> None:
        self._write(
            "INSERT INTO initial_snapshots VALUES (?, ?, ?, ?, NULL) ON CONFLICT (system_id, "
            "slot) DO UPDATE SET snapshot_lsn = excluded.snapshot_lsn, "
            "started_at = excluded.started_at, finished_at = NULL",
            (system_id, slot, lsn, time.time()),
        )

    def snapshot_finished(self, system_id: str, slot: str) -> None:
        self._write(
            "UPDATE initial_snapshots SET finished_at = ? WHERE system_id = ? AND slot = ?",
            (time.time(), system_id, slot),
        )

    def gaps(self, slot: str | None = None) -> list[Gap]:
        with self._lock:
            rows = self._db.execute(
                "SELECT system_id, slot, from_lsn, to_lsn, at, reason FROM gaps "
                "WHERE ? IS NULL OR slot = ? ORDER BY id",
                (slot, slot),
            ).fetchall()
        return [Gap(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, query: str, params: tuple[object, ...]) -> tuple | None:
        try:
            with self._lock:
                row = self._db.execute(query, params).fetchone()
        except sqlite3.Error as exc:
            raise PositionError(f"cannot read the state file {self.path}: {exc}") from exc
        return tuple(row) if row else None

    def _write(self, query: str, params: tuple[object, ...]) -> None:
        try:
            with self._lock:
                self._db.execute(query, params)
        except sqlite3.Error as exc:
            raise PositionError(f"cannot write the state file {self.path}: {exc}") from exc
