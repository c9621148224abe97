"""The command line: help, version, and each command it lists."""

from __future__ import annotations

from tests.support.process import cli
from wal2http_tui import __version__


def test_version():
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wal2http-tui {__version__}"


def test_help_lists_commands():
    result = cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
