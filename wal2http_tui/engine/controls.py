"""EngineControls: everything the terminal UI reads from and asks of the engine, in one place.

The UI depends on this Protocol, never on ``Engine`` itself, so the real engine
(``wal2http_tui.engine.facade.Engine``) and the UI tests' fake (``tests.fakes.engine.FakeEngine``)
are two implementations of one contract that mypy holds both to. This module also holds the
plain values the contract speaks of (``SlotHealth``, ``CheckLine`` and the statuses the UI
tells apart, ``LOG_LINES``), so the UI imports them from here and nothing from the facade.

Threads: every member may be called from any thread. The reads are cheap copies, fine on the
UI thread several times a second; the members whose docstring says they block (disk, network,
draining sinks) belong off it (``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import AttemptRecord, RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.engine.backfill_control import BackfillRefused
from wal2http_tui.engine.check import FAIL, OK
from wal2http_tui.replication.backfill_store import FINISHED as BACKFILL_FINISHED
from wal2http_tui.replication.backfill_store import BackfillState
from wal2http_tui.replication.backfills import BackfillStatus
from wal2http_tui.replication.state import StateSnapshot

__all__ = [
    "BACKFILL_FINISHED",
    "FAIL",
    "LOG_LINES",
    "OK",
    "BackfillRefused",
    "BackfillState",
    "BackfillStatus",
    "CheckLine",
    "EngineControls",
    "EngineUnreachable",
    "SlotHealth",
]

LOG_LINES = 500  # the most lines ``log_lines`` returns

# One line of a connection test: (status, check, message), the status as ``check`` writes it
# (``OK``, ``FAIL``, or a milder one such as a note).
CheckLine = tuple[str, str, str]


@dataclass(frozen=True)
class SlotHealth:
    """This slot's row of ``pg_replication_slots``, plus how much WAL it holds back."""

    slot_name: str
    exists: bool
    active_pid: int | None = None
    restart_lsn: str | None = None
    confirmed_flush_lsn: str | None = None
    wal_status: str | None = None
    safe_wal_size: int | None = None
    retained_bytes: int | None = None
    checked_at: float = 0.0
    error: str = ""
    remembered_lsn: str | None = None  # what wal2http-tui last confirmed on it (the state file)
    remembered_at: float | None = None
    # PostgreSQL 16+ (conflicting) and 17+: None where the server has no such column
    invalidation_reason: str | None = None  # why PostgreSQL invalidated it ("conflict" on 16)
    inactive_since: float | None = None  # when its consumer went away (epoch seconds)
    failover: bool | None = None  # synchronised to standbys (a failover slot)
    synced: bool | None = None  # on a standby: a copy synchronised from the primary
    idle_timeout: str = (
        ""  # idle_replication_slot_timeout (18+), as SHOW renders it; "" or "0": off
    )


class EngineUnreachable(RuntimeError):
    """The engine runs in another process (``attached_to``) and does not answer now: the
    message says why. Only controls raise it; reads return what was read last."""


class EngineControls(Protocol):
    """One configuration's replication, as the terminal UI watches and steers it."""

    @property
    def attached_to(self) -> str | None:
        """None when the engine runs in this process; else, for the status line, the engine
        this UI is attached to (``wal2http-tui attach``): ``pid 123``. Quitting then leaves it
        running, and any control may raise ``EngineUnreachable``."""
        ...

    # -- what the screens show about the configuration ---------------------------------------
    @property
    def config(self) -> ReplicationConfig:
        """The configuration in force: the one started with, or the last one applied. The
        dead letters screen names its ``dead_letter_path``."""
        ...

    def config_environment(self) -> dict[str, str]:
        """The engine's values of the ``${VAR}``s its configuration file uses: the editor
        validates the file with them, so an attached UI needs none of them in its own shell
        (``{}`` when the configuration was not read from a file). Reads the file: quick."""
        ...

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start replicating; returns at once (connecting happens on the engine's threads).
        The app calls it on mount when ``snapshot().state`` is ``stopped``."""
        ...

    def stop(self) -> None:
        """Stop replicating: sinks finish in-flight deliveries (bounded), then the final
        confirmation to PostgreSQL. Blocks until then: call it off the UI thread. Once stopped
        the engine is not started again."""
        ...

    # -- reading (cheap copies, fine on the UI thread at every poll) ---------------------------
    def snapshot(self) -> StateSnapshot:
        """The replication state now: state and detail, LSNs, lag, counters, last error."""
        ...

    def sinks(self) -> list[SinkSnapshot]:
        """One snapshot per running sink: state, counters, latency, its waiting retry if any."""
        ...

    def transactions(self) -> list[TxRecord]:
        """The last transactions received (bounded), oldest first, with each sink's mark."""
        ...

    def attempts(self) -> list[AttemptRecord]:
        """The last delivery attempts (bounded), oldest first, credentials already masked."""
        ...

    def retries(self) -> list[RetryInfo]:
        """The deliveries waiting for their next attempt: one per sink at most."""
        ...

    def slot_health(self) -> SlotHealth:
        """The slot as last checked (the engine checks every few seconds on a thread of its
        own; this never waits for a check). ``error`` says why the check failed, if it did."""
        ...

    def log_lines(self) -> list[str]:
        """The last ``LOG_LINES`` formatted lines of the engine log, oldest first."""
        ...

    # -- replication controls ------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """True while replication is paused by the operator (``pause``)."""
        ...

    def pause(self) -> None:
        """Stop reading the stream; PostgreSQL keeps the WAL for the slot meanwhile."""
        ...

    def resume(self) -> None:
        """Read the stream again after ``pause``."""
        ...

    # -- sink controls: KeyError when no running sink has that name ----------------------------
    def pause_sink(self, name: str) -> None:
        """Hold this sink's deliveries; the others go on. KeyError for an unknown sink."""
        ...

    def resume_sink(self, name: str) -> None:
        """Deliver again after ``pause_sink``. KeyError for an unknown sink."""
        ...

    def retry_now(self, name: str) -> None:
        """Attempt the sink's waiting delivery now instead of at its next retry time.
        KeyError for an unknown sink."""
        ...

    def skip_to_dead_letters(self, name: str) -> bool:
        """Give up on the sink's waiting delivery: its events become dead letters and the sink
        goes on with the next ones. False (and nothing changes) when no delivery of that sink
        is waiting for a retry. KeyError for an unknown sink."""
        ...

    # -- dead letters (the dead-letter file: blocking, call them off the UI thread) ------------
    def list_dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """At most ``limit`` dead letters, oldest first. Reads the dead-letter file."""
        ...

    def replay_dead_letter(self, letter_id: int) -> str | None:
        """Send the dead letter through its sink again: None when delivered (and removed),
        else why not (no such letter, no such sink any more, the delivery's error); the letter
        stays then. Blocks on the delivery."""
        ...

    def drop_dead_letter(self, letter_id: int) -> bool:
        """Delete the dead letter for good: True when removed, False when it was already gone."""
        ...

    # -- configuration -------------------------------------------------------------------------
    def accept_gap(self) -> None:
        """After streaming was refused over a gap (``snapshot().gap_refused``): start again,
        the slot created or taken where it is now, the gap recorded in the state file. Blocks
        while the stopped server is replaced: call it off the UI thread."""
        ...

    def needs_restart(self, new: ReplicationConfig) -> bool:
        """True when ``new`` changes the replication session itself (connection, slot,
        publication, tables, queue or dead-letter settings), not just sinks. Cheap."""
        ...

    def apply(self, new: ReplicationConfig) -> None:
        """Use ``new`` from now on: sinks are reconfigured live; when ``needs_restart``, the
        replication worker stops (sinks drain) and starts again on ``new``. Blocks until done:
        call it off the UI thread. ValueError, and nothing changes, when ``new`` would enable no
        sink; other exceptions carry the reason it could not be applied."""
        ...

    def test_connection(self, config: ReplicationConfig) -> list[CheckLine]:
        """``check`` for the connection part of ``config`` (not the one in force): connect and
        run the pre-flight, one line per check. A failed check is a FAIL line, not an
        exception. Connects to PostgreSQL: call it off the UI thread."""
        ...

    def test_sink(self, sink_config: EventSinkConfig) -> str:
        """Probe a sink built from ``sink_config``: the probe's line when it answers; raises,
        with the reason as the message, when it does not. Network: call it off the UI thread."""
        ...

    # -- on-demand backfills -------------------------------------------------------------------
    def backfills(self) -> list[BackfillStatus]:
        """Every backfill of the slot the engine knows of, oldest request first, with rows/s
        and the time left while one runs. Cheap."""
        ...

    def backfill_tables(self) -> list[tuple[str, bool]]:
        """The publication's tables as the engine last found them: (name, whether it can be
        backfilled on demand, i.e. has a primary key or replica identity index). Cheap."""
        ...

    def start_backfill(
        self, tables: Sequence[str], sinks: Sequence[str] = (), where: str | None = None
    ) -> str:
        """Ask for a backfill of ``tables`` (to ``sinks``, or every enabled sink; only the rows
        matching ``where``); the new backfill's id. ``BackfillRefused``, saying why and the
        fix, when it cannot be asked. Connects to PostgreSQL: call it off the UI thread."""
        ...

    def control_backfill(self, kind: str, backfill_id: str) -> None:
        """Ask to ``pause``, ``resume`` or ``cancel`` a backfill (the engine applies it when
        its stream reaches the request). ``BackfillRefused`` when it cannot be asked.
        Connects to PostgreSQL: call it off the UI thread."""
        ...
