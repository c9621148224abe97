"""The real thing for reliability tests: ``wal2http-tui run --headless`` as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


class Headless:
    """One ``run --headless`` process; its stderr lines are collected as they come."""

    def __init__(
        self,
        config: Path | str,
        *,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.config = str(config)
        self.extra = extra or []
        self.env = {**os.environ, **(env or {})}
        self.preexec_fn = preexec_fn
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Headless:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wal2http_tui",
                "run",
                "--headless",
                "--config",
                self.config,
                *self.extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r} within {timeout}s; log:\n{self.log}")

    def kill(self) -> None:
        """kill -9: no clean-up, no final confirmation."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def __enter__(self) -> Headless:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
