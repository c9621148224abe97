"""``wal2http-tui attach``: the terminal UI drives a real ``run --headless`` through its control
socket. The panes show that process's stream, pausing in the UI pauses it (its log and
/metrics say so), quitting the UI leaves it streaming; a read-only attach cannot pause; another
uid is refused; a socket left by a killed engine is replaced."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from textual.widgets import Static

from tests.reliability.test_faults import write_config
from tests.reliability.test_metrics import _samples
from tests.support.engine import http_sink, wait_until
from tests.support.headless import Headless
from tests.ui.test_tui_e2e import wait_for
from wal2http_tui.cli import attachable_engine
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.demo.throwaway import _unprivileged_user, free_port
from wal2http_tui.engine.control_protocol import PROTOCOL
from wal2http_tui.engine.control_socket import socket_path_of_file
from wal2http_tui.engine.controls import EngineUnreachable
from wal2http_tui.engine.remote import RemoteEngine
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.editor import ConfigEditorScreen
from wal2http_tui.tui.keyed_table import KeyedTable
from wal2http_tui.tui.main_screen import MainScreen
from wal2http_tui.tui.sinks import SinksPane

pytestmark = pytest.mark.anyio


def _insert(dsn: str, first: int, last: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO t SELECT generate_series(%s::int, %s::int)", (first, last))


def _status(app: Wal2HttpApp, line: str) -> str:
    return str(app.screen.query_one(f"#status-{line}", Static).content)


async def test_attach_drives_the_headless_engine_and_quitting_leaves_it_streaming(
    pg_newest, tmp_path
):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    port = free_port()
    with WebhookReceiver() as receiver:
        path = Path(
            write_config(
                tmp_path,
                pg,
                http_sink(receiver.url, name="orders", auth_header="Bearer ${W2H_ATTACH_TOKEN}"),
                slot="attach",
                metrics_listen=f'"127.0.0.1:{port}"',
            )
        )
        # the service's secret: in its environment, not in the shell that attaches
        assert "W2H_ATTACH_TOKEN" not in os.environ
        with Headless(path, env={"W2H_ATTACH_TOKEN": "t0ken"}) as engine:
            engine.wait_for_log("attach with `wal2http-tui attach --socket")
            engine.wait_for_log("streaming")
            _insert(pg.dsn, 1, 20)
            receiver.wait_for_events(20)

            remote = RemoteEngine(socket_path_of_file(path))
            assert remote.runs(path) and remote.attached_to == f"pid {engine.pid}"
            # `wal2http-tui --config F` attaches to it rather than starting a standby
            found = attachable_engine(path, read_only=False)
            assert isinstance(found, RemoteEngine) and found.attached_to == f"pid {engine.pid}"
            found.stop()
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            other = elsewhere / "wal2http.toml"
            socket = socket_path_of_file(path)
            other.write_text(f'control_socket = "{socket}"\n' + path.read_text())
            assert socket_path_of_file(other) == socket
            assert attachable_engine(other, read_only=False) is None  # another file's engine
            app = Wal2HttpApp(remote, path)
            async with app.run_test(size=(120, 36)) as pilot:
                received = remote.snapshot().received
                await wait_for(
                    pilot, lambda: received in _status(app, "positions"), "the received LSN"
                )
                assert f"attached to pid {engine.pid}" in _status(app, "source")
                sinks = app.screen.query_one(SinksPane).query_one(KeyedTable)
                assert str(sinks.get_cell("orders", "delivered")) == "20"

                await pilot.press("e")  # the editor validates with the engine's ${VAR}s
                await wait_for(pilot, lambda: isinstance(app.screen, ConfigEditorScreen), "editor")
                status = app.screen.query_one("#editor-status", Static)
                assert str(status.content).startswith("✓ valid"), status.content
                await pilot.press("escape")
                await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "main screen")

                await pilot.press("p")
                engine.wait_for_log(f"control socket: pause() asked by pid {os.getpid()}")
                assert remote.snapshot().state == "paused"
                state = ("wal2http_engine_state", (("state", "paused"),))
                wait_until(lambda: _samples(port).get(state) == 1, what="paused in /metrics")
                _insert(pg.dsn, 21, 30)
                await pilot.pause(1.0)
                assert receiver.accepted == 20  # paused: nothing read, nothing sent

                await pilot.press("p")
                receiver.wait_for_events(30)
                await pilot.press("q")
                await wait_for(pilot, lambda: not app.is_running, "the UI to quit")
            assert app.return_code == 0
            engine.wait_for_log(f"the UI of pid {os.getpid()} detached")
            _insert(pg.dsn, 31, 40)
            assert [event["new"]["id"] for event in receiver.wait_for_events(40)] == list(
                range(1, 41)
            )
            assert engine.process.poll() is None

            watcher = RemoteEngine(socket_path_of_file(path), read_only=True)
            with pytest.raises(PermissionError, match="attached read-only"):
                watcher.pause()
            assert watcher.snapshot().state == "streaming" and not watcher.paused
            assert sum("pause() asked" in line for line in engine.lines) == 1  # the UI's only

            engine.kill()  # kill -9: the socket file stays behind
            socket_file = socket_path_of_file(path)
            assert socket_file.exists()
            lost = watcher.snapshot()
            assert lost.state == "error" and "stopped answering" in lost.detail
            with pytest.raises(EngineUnreachable):
                watcher.resume()
        with Headless(path, env={"W2H_ATTACH_TOKEN": "t0ken"}) as second:
            second.wait_for_log("was left by an engine that is gone: replacing it")
            second.wait_for_log("attach with `wal2http-tui attach --socket")
            wait_until(
                lambda: watcher.snapshot().state == "streaming", what="the watcher reconnected"
            )
            assert RemoteEngine(socket_file).attached_to == f"pid {second.pid}"
            assert second.terminate() == 0
        assert not socket_file.exists()


def test_another_uid_is_refused_by_its_credentials(pg_newest, tmp_path, request):
    if os.getuid() != 0:
        pytest.skip("runs a client as another user: needs root")
    other = _unprivileged_user()
    pg = pg_newest
    # outside tmp_path, whose parents only root may enter: the other user must reach the socket
    base = Path(tempfile.mkdtemp(prefix="w2h-ctl-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    control = base / "run" / "engine.sock"
    with WebhookReceiver() as receiver:
        path = write_config(
            tmp_path, pg, http_sink(receiver.url), slot="uid", control_socket=f'"{control}"'
        )
        with Headless(path) as engine:
            engine.wait_for_log("attach with `wal2http-tui attach --socket")
            assert oct(control.parent.stat().st_mode & 0o777) == "0o700"
            assert oct(control.stat().st_mode & 0o777) == "0o600"
            assert _hello_as(other, control) == "PermissionError"  # the directory keeps it out
            control.parent.chmod(0o755)  # an operator loosens the permissions by mistake:
            control.chmod(0o666)  # the peer's credentials still refuse it
            answer = json.loads(_hello_as(other, control))
            assert answer == {"refused": f"uid {other.pw_uid} may not control this engine (uid 0)"}
            engine.wait_for_log("refused pid")
            assert f"of uid {other.pw_uid} (only uid 0 may attach)" in engine.log
            assert engine.terminate() == 0


def _hello_as(user, path: Path) -> str:
    """Say hello on the socket as ``user`` with the system's Python (this project's virtual
    environment may not be readable by that user): the answer line, or the error's type."""
    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({str(path)!r})\n"
        "except OSError as e:\n"
        "    print(type(e).__name__); sys.exit()\n"
        f"s.sendall(b'{{\"protocol\": {PROTOCOL}}}\\n')\n"
        "print(s.makefile().readline().strip())\n"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-c", client],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
