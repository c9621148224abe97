"""Running the ``wal2http-tui`` command as operators do: a child process of this interpreter."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    """``wal2http-tui ARGS``, to completion, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "wal2http_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
