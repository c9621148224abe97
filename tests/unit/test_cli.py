"""The command line: help, version, and each command it lists."""

from __future__ import annotations

import subprocess
import sys

from wal2http_tui import __version__


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wal2http_tui", *args], capture_output=True, text=True, timeout=60
    )


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wal2http-tui {__version__}"


def test_help_lists_commands():
    result = _run("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
