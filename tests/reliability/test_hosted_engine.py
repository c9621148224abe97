"""``wal2http-tui run`` with its UI: the engine runs in a child process of the UI (engine/child.py),
driven over its control socket. The UI shows that child's stream, quitting stops it (it drains
and exits 0, its socket removed); a child that cannot start, or dies, is said with its log."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest
from textual.widgets import Static
from textual.widgets.data_table import CellDoesNotExist

from tests.reliability.test_faults import write_config
from tests.support.engine import http_sink, slot_confirmed_lsn, wait_until
from tests.ui.test_tui_e2e import wait_for
from wal2http_tui.cli import _hosted_exit, hosted_engine
from wal2http_tui.commands.exit_codes import EXIT_FAILURE, EXIT_OK
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.engine.child import EngineNotStarted, EngineProcess
from wal2http_tui.engine.control_socket import socket_path_of_file
from wal2http_tui.replication.messages import parse_lsn
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.keyed_table import KeyedTable
from wal2http_tui.tui.sinks import SinksPane

pytestmark = pytest.mark.anyio


def _insert(dsn: str, first: int, last: int) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO t SELECT generate_series(%s::int, %s::int)", (first, last))
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def _delivered(sinks: KeyedTable, name: str) -> str:
    try:
        return str(sinks.get_cell(name, "delivered"))
    except CellDoesNotExist:
        return ""


def _status(app: Wal2HttpApp, line: str) -> str:
    return str(app.screen.query_one(f"#status-{line}", Static).content)


async def test_the_ui_runs_its_engine_in_a_child_and_quitting_stops_it(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        path = Path(
            write_config(tmp_path, pg, http_sink(receiver.url, name="orders"), slot="hosted")
        )
        engine = hosted_engine(path, read_only=False, accept_gap=False)
        assert isinstance(engine, EngineProcess) and engine.pid != os.getpid()
        socket = socket_path_of_file(path)
        assert socket.exists()
        app = Wal2HttpApp(engine, path)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: engine.snapshot().state == "streaming", "streaming")
            last = _insert(pg.dsn, 1, 25)
            receiver.wait_for_events(25)
            sinks = app.screen.query_one(SinksPane).query_one(KeyedTable)
            await wait_for(pilot, lambda: _delivered(sinks, "orders") == "25", "25 delivered")
            source = _status(app, "source")
            assert "attached" not in source  # this UI hosts its engine
            assert source.endswith(" · compiled")  # the child's row path, as it reports it
            await pilot.press("q")  # Quit, not Detach: the engine stops with the UI
            await wait_for(pilot, lambda: not app.is_running, "the UI to quit", timeout=60)
        assert engine.exit_status == 0
        assert _hosted_exit(engine) == EXIT_OK
        assert not socket.exists()
        log = engine.log_path.read_text()
        assert "received SIGTERM: stopping" in log and "stopped; confirmed" in log
        assert slot_confirmed_lsn(pg, "hosted") >= parse_lsn(last)
        assert [event["new"]["id"] for event in receiver.events] == list(range(1, 26))


async def test_an_engine_child_that_dies_is_said_on_screen_and_in_the_exit_status(
    pg_newest, tmp_path, capsys
):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        path = Path(write_config(tmp_path, pg, http_sink(receiver.url), slot="hosted_dies"))
        engine = hosted_engine(path, read_only=False, accept_gap=False)
        assert isinstance(engine, EngineProcess)
        app = Wal2HttpApp(engine, path)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: engine.snapshot().state == "streaming", "streaming")
            os.kill(engine.pid, signal.SIGKILL)
            wait_until(lambda: engine.exit_status is not None, what="the child to die")
            await wait_for(
                pilot,
                lambda: "the engine exited with status -9" in _status(app, "state"),
                "the UI to say the engine died",
            )
            await pilot.press("q")
            await wait_for(pilot, lambda: not app.is_running, "the UI to quit")
        assert _hosted_exit(engine) == EXIT_FAILURE
        said = capsys.readouterr().err
        assert "the engine exited with status -9; its log ends" in said
        assert str(engine.log_path) in said and "streaming" in said


def test_an_engine_child_that_cannot_start_says_why(pg_newest, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    path = Path(
        write_config(
            tmp_path,
            pg_newest,
            http_sink("http://127.0.0.1:9/", on_failure="dead_letter"),
            slot="hosted_refused",
            dead_letter_path=f'"{blocker}/dead_letters.db"',
        )
    )
    with pytest.raises(EngineNotStarted) as refused:
        hosted_engine(path, read_only=False, accept_gap=False)
    assert refused.value.exited
    message = str(refused.value)
    assert message.startswith("the engine exited with status 2; its log ends")
    assert "dead_letter_path: directory not found" in message and "not-a-directory" in message
