"""ReplicationState: what the engine knows about the stream, readable from any thread.

The replication thread is the only writer. Readers (the UI, the headless logger, tests) call
``snapshot()``, which returns plain values copied under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from wal2http_tui.replication.messages import Lsn, Oid, RelationInfo, TypeInfo, format_lsn

log = logging.getLogger("wal2http_tui.state")


class EngineState:
    """The engine's lifecycle, as shown to operators."""

    STOPPED = "stopped"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STANDBY = "standby"
    RECONNECTING = "reconnecting"
    PAUSED = "paused"
    ERROR = "error"


_TROUBLE = (EngineState.RECONNECTING, EngineState.ERROR, EngineState.STANDBY)


@dataclass(frozen=True)
class StateSnapshot:
    """Plain values, safe to hand to another thread."""

    state: str
    detail: str
    host: str
    database: str
    server_version: int
    system_id: str
    timeline: int
    slot_name: str
    publication_name: str
    protocol_version: int
    received_lsn: Lsn
    flushed_lsn: Lsn
    server_wal_end: Lsn
    last_feedback_time: float
    messages: int
    bytes: int
    transactions: int
    changes: int
    last_commit_lsn: Lsn
    last_commit_time: float | None
    next_retry_at: float | None
    reconnect_attempt: int
    last_error: str
    keyless_tables: tuple[str, ...] = ()  # published without a usable replica identity
    last_message_at: float = 0.0  # wall clock of the last message from the server (0: none)
    wal_sender_timeout: str = ""  # the server's, as SHOW renders it
    server_timeout_secs: float = 0.0  # ours: silence this long means reconnect (0: never)
    gap_refused: str = ""  # why streaming was refused over a gap (the operator may accept it)
    row_path: str = ""  # native (compiled) or python: what renders the row changes

    @property
    def lag_bytes(self) -> int:
        """WAL the server has written that this engine has not confirmed yet."""
        return max(0, self.server_wal_end - self.flushed_lsn) if self.server_wal_end else 0

    @property
    def lag_seconds(self) -> float | None:
        """Seconds between now and the commit time of the newest transaction received."""
        if self.last_commit_time is None:
            return None
        return max(0.0, time.time() - self.last_commit_time)

    @property
    def received(self) -> str:
        return format_lsn(self.received_lsn)

    @property
    def flushed(self) -> str:
        return format_lsn(self.flushed_lsn)


@dataclass
class ReplicationState:
    """Relations, custom types, LSN positions and counters of one replication stream."""

    slot_name: str = ""
    publication_name: str = ""
    relations: dict[Oid, RelationInfo] = field(default_factory=dict)
    types: dict[Oid, TypeInfo] = field(default_factory=dict)
    received_lsn: Lsn = 0
    flushed_lsn: Lsn = 0
    server_wal_end: Lsn = 0
    last_feedback_time: float = 0.0
    state: str = EngineState.STOPPED
    detail: str = ""
    host: str = ""
    database: str = ""
    server_version: int = 0
    system_id: str = ""
    timeline: int = 0
    protocol_version: int = 0
    messages: int = 0
    bytes: int = 0
    transactions: int = 0
    changes: int = 0
    last_commit_lsn: Lsn = 0
    last_commit_time: float | None = None
    next_retry_at: float | None = None
    reconnect_attempt: int = 0
    last_error: str = ""
    keyless_tables: tuple[str, ...] = ()
    last_message_at: float = 0.0
    wal_sender_timeout: str = ""
    server_timeout_secs: float = 0.0
    gap_refused: str = ""
    row_path: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get_relation(self, oid: Oid) -> RelationInfo | None:
        return self.relations.get(oid)

    def set_state(self, state: str, detail: str = "", *, error: str | None = None) -> None:
        """Change state; each change is one log line (warnings for reconnecting and errors)."""
        self._change(None, state, detail, error)

    def replace_state(self, expected: str, state: str, detail: str = "") -> bool:
        """Change to ``state`` only while in ``expected`` (an operator's pause or resume applies
        to the state it was asked in); True when it changed."""
        return self._change(expected, state, detail, None)

    def _change(self, expected: str | None, state: str, detail: str, error: str | None) -> bool:
        with self._lock:
            if expected is not None and self.state != expected:
                return False
            changed = (state, detail) != (self.state, self.detail)
            self.state = state
            self.detail = detail
            if error is not None:
                self.last_error = error
        if changed:
            level = logging.WARNING if state in _TROUBLE else logging.INFO
            log.log(level, "state %s%s", state, f": {detail}" if detail else "")
        return changed

    def add_keyless_table(self, name: str) -> None:
        """A published table whose updates and deletes PostgreSQL refuses (no replica identity)."""
        with self._lock:
            if name not in self.keyless_tables:
                self.keyless_tables = (*self.keyless_tables, name)

    def snapshot(self) -> StateSnapshot:
        with self._lock:
            return StateSnapshot(
                state=self.state,
                detail=self.detail,
                host=self.host,
                database=self.database,
                server_version=self.server_version,
                system_id=self.system_id,
                timeline=self.timeline,
                slot_name=self.slot_name,
                publication_name=self.publication_name,
                protocol_version=self.protocol_version,
                received_lsn=self.received_lsn,
                flushed_lsn=self.flushed_lsn,
                server_wal_end=self.server_wal_end,
                last_feedback_time=self.last_feedback_time,
                messages=self.messages,
                bytes=self.bytes,
                transactions=self.transactions,
                changes=self.changes,
                last_commit_lsn=self.last_commit_lsn,
                last_commit_time=self.last_commit_time,
                next_retry_at=self.next_retry_at,
                reconnect_attempt=self.reconnect_attempt,
                last_error=self.last_error,
                keyless_tables=self.keyless_tables,
                last_message_at=self.last_message_at,
                wal_sender_timeout=self.wal_sender_timeout,
                server_timeout_secs=self.server_timeout_secs,
                gap_refused=self.gap_refused,
                row_path=self.row_path,
            )
