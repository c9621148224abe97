"""The terminal UI over the real engine: rows inserted in PostgreSQL show up as transactions
delivered to a real receiver, and quitting stops the engine (final confirmation included)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.support.engine import config_text, http_sink, slot_confirmed_lsn
from wal2http_tui.config.loader import load_config
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.engine.facade import Engine
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.transactions import TransactionTable

pytestmark = pytest.mark.anyio


async def wait_for(pilot: Pilot, predicate: Callable[[], object], what: str, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.1)


def delivered_rows(app: Wal2HttpApp) -> list[tuple[str, str, str]]:
    """(changes, tables, mark at the receiver sink) of each transaction shown, top down."""
    table = app.screen.query_one(TransactionTable)
    return [
        tuple(str(table.get_cell(row.key, column)) for column in ("changes", "tables", "receiver"))
        for row in table.ordered_rows
    ]


async def test_inserted_rows_show_as_delivered_and_q_stops_the_engine(pg, tmp_path):
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    with WebhookReceiver() as receiver:
        path = tmp_path / "wal2http.toml"
        sink = http_sink(receiver.url, name="receiver")
        path.write_text(config_text(pg.dsn, sink, slot_name="tui_e2e", feedback_interval_secs=1))
        engine = Engine(load_config(path), slot_health_interval=0.5)
        app = Wal2HttpApp(engine, path)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: engine.snapshot().state == "streaming", "streaming")
            pg.execute("INSERT INTO orders VALUES (1, 10.50)")
            pg.execute("INSERT INTO orders SELECT g, g * 2 FROM generate_series(2, 4) AS g")
            expected = [("3", "public.orders", "✓"), ("1", "public.orders", "✓")]
            await wait_for(pilot, lambda: delivered_rows(app) == expected, "delivered marks")
            assert [event["new"]["id"] for event in receiver.events] == [1, 2, 3, 4]
            last_commit = engine.snapshot().last_commit_lsn
            await pilot.press("q")
            await wait_for(pilot, lambda: engine_stopped(app), "the engine to stop")
    assert app.return_code == 0
    assert not engine.server.running
    active = pg.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'tui_e2e'")
    assert active == [(None,)]
    assert slot_confirmed_lsn(pg, "tui_e2e") >= last_commit  # the final confirmation


def engine_stopped(app: Wal2HttpApp) -> bool:
    return app.engine_stopped
