"""The local files the configuration points at (the dead letters, the replication state): SQLite
databases only the owner may read, since they hold payloads and positions."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

STATE_FILE_NAME = "wal2http-state.sqlite"  # beside the dead-letter file


def open_private_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """``path`` created mode 0600 if missing (its directory too), in WAL mode with full sync,
    ``schema`` applied; OSError or sqlite3.Error when that cannot be done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Only when it is new: closing a descriptor of a file drops every POSIX lock this
        # process holds on it, which SQLite's other connections here rely on (another
        # process would then think it alone, and delete the write-ahead log under them).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db
