"""What the engine remembers of its on-demand backfills, in the state file beside the slot's
positions: each backfill's request, state and per-table progress (the last key delivered to
every sink), written after every chunk, so a backfill resumes where it was after kill -9; and
the key that signs backfill messages (``backfill_requests``), made on first use."""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from wal2http_tui.config.files import open_private_sqlite
from wal2http_tui.replication.positions import PositionError

SCHEMA = """
CREATE TABLE IF NOT EXISTS backfills (
    id TEXT PRIMARY KEY,
    slot TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS control_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
);
"""


class BackfillState:
    REQUESTED = "requested"  # written by the command; the engine has not read the request yet
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINISHED = (BackfillState.DONE, BackfillState.CANCELLED, BackfillState.FAILED)


class BackfillStoreError(PositionError):
    """The state file cannot be read or written; names it and the cause (a PositionError, as
    for the slot's positions in the same file, so every command reports it the same way)."""


@dataclass(frozen=True)
class TableProgress:
    """One table of a backfill: rows delivered, the key of the last one (its columns' text, as
    PostgreSQL writes them; None before the first chunk), and whether it is finished."""

    table: str
    estimate: int = 0
    rows: int = 0
    last_key: tuple[str | None, ...] | None = None
    done: bool = False


@dataclass(frozen=True)
class BackfillRecord:
    id: str
    slot: str
    tables: tuple[TableProgress, ...]
    sinks: tuple[str, ...] = ()  # empty: every enabled sink
    where: str | None = None
    state: str = BackfillState.QUEUED
    detail: str = ""
    requested_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    request_lsn: int = 0

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def estimate(self) -> int:
        return sum(max(table.estimate, table.rows) for table in self.tables)

    @property
    def percent(self) -> int | None:
        """Rows sent against the planner's estimate; 100 only once done (estimates run short);
        None without an estimate."""
        if self.state == BackfillState.DONE:
            return 100
        if not self.estimate:
            return None
        return min(99, self.rows * 100 // self.estimate)

    @property
    def sinks_label(self) -> str:
        """``all`` for a backfill to every enabled sink (no sinks named)."""
        return ", ".join(self.sinks) if self.sinks else "all"

    @property
    def current(self) -> TableProgress | None:
        """The first table not done yet."""
        return next((table for table in self.tables if not table.done), None)

    def with_state(self, state: str, detail: str = "") -> BackfillRecord:
        return replace(self, state=state, detail=detail, updated_at=time.time())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BackfillRecord:
        data = json.loads(text)
        tables = tuple(
            TableProgress(
                **{
                    **table,
                    "last_key": None if table["last_key"] is None else tuple(table["last_key"]),
                }
            )
            for table in data.pop("tables")
        )
        return cls(**{**data, "tables": tables, "sinks": tuple(data["sinks"])})


class BackfillStore:
    """Thread-safe access to the backfills in the state file."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._lock = threading.Lock()
        if not create and not path.exists():
            raise BackfillStoreError(
                f"no state file at {path}: the engine has not run with this configuration on "
                "this host (backfill requests are signed with the key it keeps there); start it "
                "once, or run this command where it runs"
            )
        try:
            self._db = open_private_sqlite(path, SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BackfillStoreError(f"cannot open the state file {path}: {exc}") from exc

    def key(self) -> bytes:
        """The key that signs backfill messages (made now if there is none yet)."""
        with self._guard("read"):
            row = self._db.execute("SELECT key FROM control_key").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT OR IGNORE INTO control_key VALUES (1, ?)", (secrets.token_bytes(32),)
                )
                row = self._db.execute("SELECT key FROM control_key").fetchone()
        return bytes(row[0])

    def save(self, record: BackfillRecord) -> None:
        with self._guard("write"):
            self._db.execute(
                "INSERT INTO backfills VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "record = excluded.record",
                (record.id, record.slot, record.to_json()),
            )

    def get(self, backfill_id: str) -> BackfillRecord | None:
        with self._guard("read"):
            row = self._db.execute(
                "SELECT record FROM backfills WHERE id = ?", (backfill_id,)
            ).fetchone()
        return BackfillRecord.from_json(row[0]) if row else None

    def records(self, slot: str) -> list[BackfillRecord]:
        """The slot's backfills, oldest request first."""
        with self._guard("read"):
            rows = self._db.execute(
                "SELECT record FROM backfills WHERE slot = ? ORDER BY rowid", (slot,)
            ).fetchall()
        return [BackfillRecord.from_json(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """The store's lock, its SQLite errors turned into BackfillStoreError."""
        try:
            with self._lock:
                yield
        except sqlite3.Error as exc:
            raise BackfillStoreError(f"cannot {what} the state file {self.path}: {exc}") from exc
