"""RemoteEngine: ``EngineControls`` of an engine in another process, through its control socket.

``wal2http-tui attach`` gives the terminal UI a ``RemoteEngine`` instead of an ``Engine``: the
same screens drive the engine of ``run --headless``. The UI's own work (rendering, decoding the
answers) stays in the UI's process; the engine only encodes what it is asked for.

Quick reads share one connection; a call that may block for long (replaying a dead letter,
applying a configuration) gets a connection of its own, so the panes go on refreshing
meanwhile. When the engine stops answering, reads return what was read last, ``snapshot``
says the engine is unreachable and why (state ``error``), controls raise ``EngineUnreachable``,
and the next read after ``RECONNECT_SECS`` tries to connect again. ``stop`` only disconnects:
the engine goes on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from wal2http_tui import __version__
from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import AttemptRecord, RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.engine.control_protocol import (
    CALLS,
    MAX_LINE,
    PROTOCOL,
    ControlError,
    decode,
    encode,
    raise_error,
    structure,
    version_refusal,
)
from wal2http_tui.engine.controls import (
    BackfillStatus,
    CheckLine,
    EngineControls,
    EngineUnreachable,
    SlotHealth,
)
from wal2http_tui.replication.state import EngineState, StateSnapshot

CONNECT_TIMEOUT = 5.0  # seconds for the hello, and for each quick call's answer
RECONNECT_SECS = 1.0
ATTACHED_NICENESS = 19  # an attached UI runs when the engine (and PostgreSQL) leave a core free


def yield_cpu_to_the_engine() -> None:
    """Lower this process's CPU priority: an attached UI shares the host with the engine it
    watches (and PostgreSQL), and on a busy host the engine's work comes first."""
    with contextlib.suppress(OSError):
        os.nice(ATTACHED_NICENESS)


T = TypeVar("T")


class Connection:
    """One connection to an engine's control socket, after the hello."""

    def __init__(self, path: Path, *, read_only: bool, timeout: float | None) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CONNECT_TIMEOUT)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise ControlError(_connect_problem(path, exc)) from None
        self.reader = self.sock.makefile("rb")
        try:
            self.hello = self._hello(read_only)
        except BaseException:
            self.close()
            raise
        self.sock.settimeout(timeout)

    def _hello(self, read_only: bool) -> dict[str, Any]:
        client = f"wal2http-tui {__version__}"
        self.sock.sendall(encode({"protocol": PROTOCOL, "client": client, "read_only": read_only}))
        hello = self._receive()
        if "refused" in hello:
            raise ControlError(f"the engine on {self.path} refused this UI: {hello['refused']}")
        refusal = version_refusal(PROTOCOL, hello.get("protocol"), "client")
        if refusal is not None:
            raise ControlError(f"{self.path}: {refusal}")
        return hello

    def _receive(self) -> dict[str, Any]:
        line = self.reader.readline(MAX_LINE)
        if not line:
            raise ControlError(f"the engine on {self.path} closed the connection")
        return decode(line)

    def exchange(self, name: str, args: Sequence[object]) -> dict[str, Any]:
        """Send one request, read its answer (``OSError`` or ``ControlError`` when the
        connection fails: the answer itself may carry an error, see ``outcome``)."""
        self.sock.sendall(encode({"call": name, "args": list(args)}))
        return self._receive()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


def _outcome(name: str, answer: dict[str, Any]) -> Any:
    """The result an answer carries, or the exception it carries raised."""
    if "error" in answer:
        raise_error(answer)
    return structure(answer.get("result"), CALLS[name].returns)


def _connect_problem(path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return (
            f"no engine answers on {path} (no socket there): is `wal2http-tui run --headless` "
            "running for this configuration, as this user?"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"no engine answers on {path}: the socket was left by an engine that is gone"
    if isinstance(exc, PermissionError):
        return f"permission denied on {path}: attach as the user the engine runs as"
    return f"cannot connect to {path}: {exc.strerror or exc}"


class RemoteEngine:
    """The engine behind the control socket at ``path``, as the terminal UI drives it."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        first = Connection(path, read_only=read_only, timeout=CONNECT_TIMEOUT)
        self._conn: Connection | None = first
        self.hello = first.hello
        self._lost = ""
        self._retry_at = 0.0
        self._last: dict[str, Any] = {}
        self._last["snapshot"] = self._call("snapshot")
        self._last["config"] = self._call("config")

    @property
    def config_path(self) -> Path | None:
        """The configuration file the engine runs (absolute), as its hello says."""
        path = self.hello.get("config_path")
        return Path(path) if path else None

    def runs(self, config_path: Path) -> bool:
        """Whether the engine runs the configuration file at ``config_path``."""
        return self.config_path is not None and self.config_path.resolve() == config_path.resolve()

    @property
    def attached_to(self) -> str | None:
        return f"pid {self.hello.get('pid')}"

    # -- the connection ------------------------------------------------------------------------
    def _call(self, name: str, *args: object) -> Any:
        if CALLS[name].slow:
            conn = self._connect(timeout=None)
            try:
                answer = conn.exchange(name, args)
            except (OSError, ControlError) as exc:
                raise EngineUnreachable(f"{self.path}: {exc}") from None
            finally:
                conn.close()
            return _outcome(name, answer)
        with self._lock:
            if self._conn is None:
                if time.monotonic() < self._retry_at:
                    raise EngineUnreachable(self._lost)
                self._conn = self._connect(timeout=CONNECT_TIMEOUT)
                self._lost = ""
            try:
                answer = self._conn.exchange(name, args)
            except (OSError, ControlError) as exc:
                self._conn.close()
                self._conn = None
                self._lost = f"the engine on {self.path} stopped answering ({exc})"
                self._retry_at = time.monotonic() + RECONNECT_SECS
                raise EngineUnreachable(self._lost) from None
        result = _outcome(name, answer)
        self._last[name] = result
        return result

    def _connect(self, timeout: float | None) -> Connection:
        try:
            return Connection(self.path, read_only=self.read_only, timeout=timeout)
        except ControlError as exc:
            self._lost = str(exc)
            self._retry_at = time.monotonic() + RECONNECT_SECS
            raise EngineUnreachable(str(exc)) from None

    def _read(self, name: str, default: T) -> T:
        """A quick read; what was read last (or ``default``) while the engine is unreachable."""
        try:
            return self._call(name)
        except EngineUnreachable:
            return self._last.get(name, default)

    # -- lifecycle: the engine runs on its own -------------------------------------------------
    def start(self) -> None:
        """Nothing to start: the engine is already running."""

    def stop(self) -> None:
        """Detach: close the connection; the engine goes on."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- reading -------------------------------------------------------------------------------
    def config_environment(self) -> dict[str, str]:
        return self._call("config_environment")

    @property
    def config(self) -> ReplicationConfig:
        return self._read("config", self._last["config"])

    def snapshot(self) -> StateSnapshot:
        try:
            return self._call("snapshot")
        except EngineUnreachable as exc:
            last: StateSnapshot = self._last["snapshot"]
            why = self.unreachable_because(exc)
            return replace(
                last, state=EngineState.ERROR, detail=why, last_error=why, gap_refused=""
            )

    def unreachable_because(self, exc: EngineUnreachable) -> str:
        """What the UI says when the engine does not answer."""
        return str(exc)

    def sinks(self) -> list[SinkSnapshot]:
        return self._read("sinks", [])

    def transactions(self) -> list[TxRecord]:
        return self._read("transactions", [])

    def attempts(self) -> list[AttemptRecord]:
        return self._read("attempts", [])

    def retries(self) -> list[RetryInfo]:
        return self._read("retries", [])

    def slot_health(self) -> SlotHealth:
        return self._read("slot_health", SlotHealth(self._last["config"].slot_name, exists=False))

    def log_lines(self) -> list[str]:
        return self._read("log_lines", [])

    def backfills(self) -> list[BackfillStatus]:
        return self._read("backfills", [])

    def backfill_tables(self) -> list[tuple[str, bool]]:
        return self._read("backfill_tables", [])

    # -- controls ------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._read("paused", False)

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def pause_sink(self, name: str) -> None:
        self._call("pause_sink", name)

    def resume_sink(self, name: str) -> None:
        self._call("resume_sink", name)

    def retry_now(self, name: str) -> None:
        self._call("retry_now", name)

    def skip_to_dead_letters(self, name: str) -> bool:
        return self._call("skip_to_dead_letters", name)

    def list_dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        return self._call("list_dead_letters", limit)

    def replay_dead_letter(self, letter_id: int) -> str | None:
        return self._call("replay_dead_letter", letter_id)

    def drop_dead_letter(self, letter_id: int) -> bool:
        return self._call("drop_dead_letter", letter_id)

    def accept_gap(self) -> None:
        self._call("accept_gap")

    def needs_restart(self, new: ReplicationConfig) -> bool:
        return self._call("needs_restart", new)

    def apply(self, new: ReplicationConfig) -> None:
        self._call("apply", new)

    def test_connection(self, config: ReplicationConfig) -> list[CheckLine]:
        return self._call("test_connection", config)

    def test_sink(self, sink_config: EventSinkConfig) -> str:
        return self._call("test_sink", sink_config)

    def start_backfill(
        self, tables: Sequence[str], sinks: Sequence[str] = (), where: str | None = None
    ) -> str:
        return self._call("start_backfill", list(tables), list(sinks), where)

    def control_backfill(self, kind: str, backfill_id: str) -> None:
        self._call("control_backfill", kind, backfill_id)


def _keeps_the_contract(engine: RemoteEngine) -> EngineControls:
    """Never called: mypy holds ``RemoteEngine`` to the contract the terminal UI drives."""
    return engine
