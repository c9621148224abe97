"""The control socket's contract, over a real Unix socket with the UI tests' fake engine behind
it: every read arrives equal to what the engine holds (bytes, tuples, nested dataclasses, the
configuration with its sinks), errors arrive as their own types, and the rules about who may
connect, which protocol and which file hold."""

from __future__ import annotations

import dataclasses
import socket
import stat

import orjson
import pytest

from tests.fakes.engine import sample_world
from wal2http_tui.engine.control_protocol import PROTOCOL, ControlError, encode
from wal2http_tui.engine.control_socket import (
    BESIDE_CONFIG_DIR_NAME,
    ControlServer,
    default_socket_path,
    socket_path_of_file,
)
from wal2http_tui.engine.remote import RemoteEngine
from wal2http_tui.replication.state import StateSnapshot


@pytest.fixture
def served(tmp_path, monkeypatch):
    world = sample_world(tmp_path, monkeypatch)
    path = tmp_path / "ctl" / "engine.sock"
    server = ControlServer(world.engine, path)
    server.start()
    yield world.engine, path
    server.stop()


def test_every_read_arrives_as_the_engine_holds_it(served):
    engine, path = served
    remote = RemoteEngine(path)
    state = [field.name for field in dataclasses.fields(StateSnapshot)]
    assert [getattr(remote.snapshot(), name) for name in state] == [
        getattr(engine.snapshot(), name) for name in state
    ]
    assert remote.config == engine.config
    assert [type(sink).__name__ for sink in remote.config.event_sinks] == [
        type(sink).__name__ for sink in engine.config.event_sinks
    ]
    assert remote.sinks() == engine.sinks()
    assert remote.transactions() == engine.transactions()
    attempts = remote.attempts()
    assert attempts == engine.attempts() and isinstance(attempts[0].payload, bytes)
    assert remote.retries() == engine.retries()
    assert remote.slot_health() == engine.slot_health()
    assert remote.log_lines() == engine.log_lines()
    assert remote.backfills() == engine.backfills()
    assert remote.list_dead_letters() == engine.list_dead_letters()
    assert remote.needs_restart(engine.config) is False
    assert remote.test_connection(engine.config) == engine.test_connection(engine.config)


def test_controls_reach_the_engine_and_errors_keep_their_types(served):
    engine, path = served
    remote = RemoteEngine(path)
    remote.pause_sink("audit")
    assert engine.calls[-1] == ("pause_sink", "audit")
    with pytest.raises(KeyError, match="no-such-sink"):
        remote.pause_sink("no-such-sink")
    remote.pause()
    assert remote.paused is True


def test_a_read_only_client_reads_but_changes_nothing(served):
    engine, path = served
    watcher = RemoteEngine(path, read_only=True)
    assert watcher.sinks() == engine.sinks()
    before = list(engine.calls)
    for control, args in (("pause", ()), ("retry_now", ("audit",)), ("drop_dead_letter", (1,))):
        with pytest.raises(PermissionError, match=f"{control}: this UI attached read-only"):
            getattr(watcher, control)(*args)
    assert engine.calls == before


def _hello(path, message: bytes) -> dict:
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
        client.sendall(message)
        return orjson.loads(client.makefile("rb").readline())


def test_another_protocol_is_refused_with_both_versions(served):
    _, path = served
    answer = _hello(path, encode({"protocol": PROTOCOL + 1}))
    assert answer == {
        "refused": f"the engine speaks control protocol {PROTOCOL}, the client {PROTOCOL + 1}: "
        "attach with the same version of wal2http-tui as the engine runs "
        "(`wal2http-tui --version` on both)"
    }


def test_the_socket_is_private_and_a_second_engine_is_told_it_is_taken(served):
    engine, path = served
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(ControlError, match="another engine answers on"):
        ControlServer(engine, path)


def test_a_stale_socket_is_replaced_and_a_file_is_never_removed(tmp_path, monkeypatch):
    world = sample_world(tmp_path, monkeypatch)
    path = tmp_path / "ctl" / "engine.sock"
    path.parent.mkdir(mode=0o700)
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(path))  # bound, never listening, then gone: what kill -9 leaves behind
    left.close()
    server = ControlServer(world.engine, path)
    server.start()
    try:
        assert RemoteEngine(path).sinks() == world.engine.sinks()
    finally:
        server.stop()
    assert not path.exists()
    path.write_text("an operator's file")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        ControlServer(world.engine, path)
    assert path.read_text() == "an operator's file"


def test_a_path_too_long_for_a_socket_names_the_fix(tmp_path, monkeypatch):
    world = sample_world(tmp_path, monkeypatch)
    path = tmp_path / ("d" * 120) / "engine.sock"
    with pytest.raises(ControlError, match="set control_socket to a shorter path"):
        ControlServer(world.engine, path)


def test_nothing_listening_says_what_to_start(tmp_path):
    with pytest.raises(ControlError, match="is `wal2http-tui run --headless` running"):
        RemoteEngine(tmp_path / "none.sock")


def test_the_socket_of_a_file_is_found_without_its_secrets(tmp_path, monkeypatch):
    """``attach --config`` reads control_socket and slot_name alone: the ${VAR}s the sinks use
    need not be set in the operator's shell."""
    config = tmp_path / "wal2http.toml"
    config.write_text(
        'connection_string = "host=x"\nslot_name = "orders"\n'
        '[event_sinks.http]\nurl = "http://x"\nauth_header = "${NOT_SET_HERE}"\n'
    )
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert socket_path_of_file(config) == tmp_path / "run" / "wal2http-tui" / "orders.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert socket_path_of_file(config) == tmp_path / BESIDE_CONFIG_DIR_NAME / "orders.sock"
    config.write_text(
        config.read_text().replace("slot_name", 'control_socket = "c.sock"\nslot_name')
    )
    assert socket_path_of_file(config) == tmp_path / "c.sock"
    assert default_socket_path("s", None, {"XDG_RUNTIME_DIR": "/run/u"}).as_posix() == (
        "/run/u/wal2http-tui/s.sock"
    )


def test_a_client_that_says_nothing_is_dropped(served, monkeypatch):
    from wal2http_tui.engine import control_socket

    monkeypatch.setattr(control_socket, "HELLO_TIMEOUT", 0.3)
    engine, path = served
    with socket.socket(socket.AF_UNIX) as silent:
        silent.connect(str(path))
        silent.settimeout(5)
        assert silent.recv(100) == b""  # closed by the engine, not left holding a place
    assert RemoteEngine(path).sinks() == engine.sinks()
