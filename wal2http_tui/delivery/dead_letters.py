"""Dead letters: events a sink gave up on, kept in SQLite until replayed or dropped.

One file (WAL mode, mode 0600) per configuration. A record holds the payload exactly as the
sink would send it (no request headers, so no secrets), the reason, how many attempts were made,
and the first and last failure times. Replay sends it through the same sink again.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from wal2http_tui.config.files import open_private_sqlite
from wal2http_tui.event_sinks.event_processor import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    op TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    lsn TEXT NOT NULL,
    commit_time TEXT NOT NULL,
    seq INTEGER NOT NULL,
    xid INTEGER NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failure REAL NOT NULL,
    last_failure REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_sink ON dead_letters (sink, id);
"""

_COLUMNS = (
    "id, sink, event_id, event_type, op, schema_name, table_name, lsn, commit_time, seq, xid, "
    "payload, reason, attempts, first_failure, last_failure"
)


class DeadLetterError(Exception):
    """The dead-letter file cannot be written; the message names the file and the cause."""


@dataclass(frozen=True)
class DeadLetter:
    id: int
    sink: str
    event_id: str
    event_type: str
    op: str
    schema: str
    table: str
    lsn: str
    commit_time: str
    seq: int
    xid: int
    payload: bytes
    reason: str
    attempts: int
    first_failure: float
    last_failure: float

    def to_event(self) -> Event:
        return Event(
            event_id=self.event_id,
            event_type=self.event_type,
            op=self.op,
            schema=self.schema,
            table=self.table,
            lsn=self.lsn,
            commit_time=self.commit_time,
            seq=self.seq,
            payload=self.payload,
            xid=self.xid,
        )


class DeadLetterStore:
    """Thread-safe access to the dead-letter file (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = open_private_sqlite(self.path, SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise DeadLetterError(f"cannot open dead-letter file {self.path}: {exc}") from exc

    def add(
        self,
        sink: str,
        event: Event,
        reason: str,
        attempts: int,
        first_failure: float,
        last_failure: float,
    ) -> int:
        row = (
            sink,
            event.event_id,
            event.event_type,
            event.op,
            event.schema,
            event.table,
            event.lsn,
            event.commit_time,
            event.seq,
            event.xid,
            event.payload,
            reason,
            attempts,
            first_failure,
            last_failure,
        )
        try:
            with self._lock:
                cursor = self._db.execute(
                    f"INSERT INTO dead_letters ({_COLUMNS.removeprefix('id, ')}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                letter_id = cursor.lastrowid
            assert letter_id is not None  # an INSERT that succeeded always sets it
            return letter_id
        except sqlite3.Error as exc:
            raise DeadLetterError(f"cannot write dead-letter file {self.path}: {exc}") from exc

    def list(self, sink: str | None = None, limit: int = 1000) -> list[DeadLetter]:
        query = f"SELECT {_COLUMNS} FROM dead_letters"
        params: tuple = ()
        if sink is not None:
            query += " WHERE sink = ?"
            params = (sink,)
        query += " ORDER BY id LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*params, limit)).fetchall()
        return [DeadLetter(*row) for row in rows]

    def get(self, letter_id: int) -> DeadLetter | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        return DeadLetter(*row) if row else None

    def remove(self, letter_id: int) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,))
        return cursor.rowcount > 0

    def count(self, sink: str | None = None) -> int:
        with self._lock:
            if sink is None:
                return self._db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
            return self._db.execute(
                "SELECT count(*) FROM dead_letters WHERE sink = ?", (sink,)
            ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
