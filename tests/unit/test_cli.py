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


def test_attach_with_nothing_listening_says_what_to_start(tmp_path):
    result = cli("attach", "--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"wal2http-tui: no engine answers on {tmp_path / 'none.sock'} (no socket there): is "
        "`wal2http-tui run --headless` running for this configuration, as this user?"
    )


def test_attach_to_the_engine_of_another_file_is_refused(tmp_path, monkeypatch):
    from tests.fakes.engine import sample_world
    from wal2http_tui.engine.control_socket import ControlServer

    world = sample_world(tmp_path, monkeypatch)  # the engine runs tmp_path/wal2http.toml
    other = tmp_path / "other.toml"
    other.write_text(f'connection_string = "host=x"\ncontrol_socket = "{tmp_path / "e.sock"}"\n')
    server = ControlServer(world.engine, tmp_path / "e.sock")
    server.start()
    try:
        result = cli("attach", "--config", str(other))
    finally:
        server.stop()
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"wal2http-tui: the engine on {tmp_path / 'e.sock'} runs {tmp_path / 'wal2http.toml'}, "
        f"not {other}: "
    )
