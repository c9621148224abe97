"""EngineProcess: the engine of ``wal2http-tui run`` (with its UI) in a child process of its own.

The terminal UI and the engine in one interpreter share one GIL: rendering took up to a quarter
of the engine's throughput. So ``run`` starts the same engine ``run --headless`` runs, as a
child process, and the UI drives it over its control socket, as ``attach`` does; unlike an
attached UI, this one owns its engine: quitting stops it (SIGTERM: it drains as a service
does) and the UI waits for it, showing it stopping.

The child runs in a session of its own (the terminal's Ctrl+C, Ctrl+Z and hang-up reach the UI,
not the engine), dies with its parent (PR_SET_PDEATHSIG: SIGTERM, so it still drains), and
writes its log to ``<socket>.log`` beside the control socket (private to the user), whose last
lines ``failure()`` gives when the engine ends on an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

from wal2http_tui.engine.control_protocol import ControlError
from wal2http_tui.engine.control_socket import socket_path_of_file
from wal2http_tui.engine.controls import EngineUnreachable
from wal2http_tui.engine.remote import RemoteEngine

START_TIMEOUT = 60.0  # seconds for the child to load its configuration and serve its socket
STOP_TIMEOUT = 120.0  # past the drain (bounded by the sinks' timeouts): SIGKILL
PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 20


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent (the UI) dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EngineNotStarted(RuntimeError):
    """The child exited (``exited``: the message has its log's end), or its control socket
    never answered."""

    def __init__(self, message: str, *, exited: bool) -> None:
        super().__init__(message)
        self.exited = exited


class EngineProcess(RemoteEngine):
    """``run --headless --config config_path`` as a child, driven through its control socket."""

    def __init__(
        self, config_path: Path, *, read_only: bool = False, accept_gap: bool = False
    ) -> None:
        socket = socket_path_of_file(config_path)
        self.log_path = socket.with_name(socket.name + ".log")
        socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        command = [sys.executable, "-m", "wal2http_tui", "run", "--headless"]
        command += ["--config", str(config_path)] + ["--accept-gap"] * accept_gap
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: no thread runs yet (the UI starts after)
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise EngineNotStarted(self.failure() or "the engine exited at start", exited=True)
            try:
                super().__init__(socket, read_only=read_only)
                break
            except ControlError as exc:
                if time.monotonic() > deadline:
                    self.process.kill()
                    self.process.wait()
                    raise EngineNotStarted(
                        f"the engine started but its control socket does not answer ({exc}); "
                        f"its log: {self.log_path}",
                        exited=False,
                    ) from None
                time.sleep(0.05)

    @property
    def attached_to(self) -> str | None:
        """None: this UI hosts the engine (quitting stops it), it is not attached to one."""
        return None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Stop the engine (SIGTERM: it drains, confirms and exits) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        super().stop()

    @property
    def exit_status(self) -> int | None:
        return self.process.poll()

    def unreachable_because(self, exc: EngineUnreachable) -> str:
        """Once the child has exited: its status and the last error it logged."""
        status = self.process.poll()
        if status is None:
            return str(exc)
        errors = [line for line in self._log_tail() if " ERROR " in line]
        said = errors[-1].split(": ", 1)[-1] if errors else f"see {self.log_path}"
        return f"the engine exited with status {status}: {said}"

    def _log_tail(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return []

    def failure(self) -> str:
        """The last lines of the engine's log when it ended on an error ('' otherwise)."""
        status = self.process.poll()
        if status in (None, 0, -signal.SIGTERM):
            return ""
        lines = "\n".join(self._log_tail())
        return f"the engine exited with status {status}; its log ends ({self.log_path}):\n{lines}"
