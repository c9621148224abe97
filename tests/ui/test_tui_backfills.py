"""The Backfills pane and the start dialog, driven with Pilot against the fake engine: what the
pane shows of each backfill, what each key asks of the engine, and what the operator sees when
the engine refuses or the app is read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, SelectionList, Static

from tests.fakes.engine import (
    DONE_BACKFILL,
    FAILED_BACKFILL,
    FAILED_DETAIL,
    NEW_BACKFILL,
    PAUSED_BACKFILL,
    RUNNING_BACKFILL,
    World,
    sample_world,
    toasts,
)
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.backfills import BackfillsPane, display_order
from wal2http_tui.tui.dialogs import ConfirmScreen
from wal2http_tui.tui.keyed_table import KeyedTable
from wal2http_tui.tui.main_screen import MainScreen
from wal2http_tui.tui.start_backfill import StartBackfillScreen
from wal2http_tui.tui.transactions import TransactionsPane
from wal2http_tui.tui.units import UNKNOWN

pytestmark = pytest.mark.anyio
REFUSAL = "PostgreSQL 13 cannot steer backfills: they travel as logical decoding messages"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return sample_world(tmp_path, monkeypatch)


def backfill_calls(world: World) -> list[tuple]:
    return [call for call in world.engine.calls if "backfill" in call[0]]


def pane_table(app: Wal2HttpApp) -> KeyedTable:
    return app.screen.query_one(BackfillsPane).focus_target


def cells(app: Wal2HttpApp, backfill_id: str) -> dict[str, str]:
    table = pane_table(app)
    return {
        str(column.label): str(table.get_cell(backfill_id, column.key))
        for column in table.columns.values()
    }


def detail(app: Wal2HttpApp) -> str:
    return str(app.screen.query_one("#backfill-detail", Static).content)


def errors(app: Wal2HttpApp) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def footer_keys(app: Wal2HttpApp) -> list[str]:
    return [key.key for key in app.screen.query("FooterKey")]  # type: ignore[attr-defined]


async def settled(app: Wal2HttpApp, pilot) -> None:
    """The engine's calls made (workers), and the screen drawn after them."""
    await app.workers.wait_for_complete()
    await pilot.pause()


# --- what the pane shows -------------------------------------------------------------------------


def test_the_running_backfill_comes_first_the_finished_ones_last_newest_first(world):
    order = [status.record.id for status in display_order(world.engine.backfills())]
    assert order == [RUNNING_BACKFILL, PAUSED_BACKFILL, FAILED_BACKFILL, DONE_BACKFILL]


def test_progress_is_rows_sent_against_the_estimate_and_100_only_once_done(world):
    statuses = {status.record.id: status for status in world.engine.backfills()}
    assert statuses[RUNNING_BACKFILL].record.percent == 43  # 29,457 of ~68,113
    assert statuses[PAUSED_BACKFILL].record.percent == 24
    assert statuses[FAILED_BACKFILL].record.percent == 0
    assert statuses[DONE_BACKFILL].record.percent == 100


async def test_the_pane_shows_each_backfill_its_progress_rate_and_time_left(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        running = cells(app, RUNNING_BACKFILL)
        assert running["state"] == "running"
        assert running["progress"].endswith(" 43%")
        assert (running["rows"], running["rows/s"], running["ETA"]) == ("29,457", "1,250", "31s")
        assert running["sinks"] == "all"
        assert running["tables"] == "public.orders, public.order_lines"
        paused = cells(app, PAUSED_BACKFILL)
        assert (paused["state"], paused["sinks"], paused["rows/s"]) == (
            "paused",
            "orders-api",
            UNKNOWN,
        )
        assert cells(app, DONE_BACKFILL)["progress"].endswith("100%")
        subtitle = str(app.screen.query_one(BackfillsPane).border_subtitle)
        assert subtitle == "4 backfills · 1 running"


async def test_the_selected_backfill_says_why_it_failed_and_what_it_reads(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5")
        assert "public.order_lines 9,344 of ~48,000" in detail(app)  # the running one
        await pilot.press("down", "down")
        assert pane_table(app).selected_key == FAILED_BACKFILL
        assert detail(app).startswith(f"{FAILED_BACKFILL}: {FAILED_DETAIL} · where region = 'eu'")


async def test_the_status_bar_shows_the_running_backfill(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        slot = str(app.screen.query_one("#status-slot", Static).content)
        assert slot == (
            f"slot wal2http_slot · backfill {RUNNING_BACKFILL} 43% · 1,250 rows/s · "
            "publication wal2http_pub"
        )
        await pilot.press("5", "space")  # paused: no backfill runs now
        await settled(app, pilot)
        slot = str(app.screen.query_one("#status-slot", Static).content)
        assert slot == "slot wal2http_slot · publication wal2http_pub"


async def test_slash_still_filters_the_transactions_though_this_footer_leaves_it_out(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "slash" in footer_keys(app)
        await pilot.press("5")
        assert "slash" not in footer_keys(app)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one(TransactionsPane).filter_input


# --- pausing, resuming, cancelling -------------------------------------------------------------


def shown_ids(app: Wal2HttpApp) -> list[str]:
    table = pane_table(app)
    return [str(table.get_row_at(row)[0]) for row in range(table.row_count)]


async def test_space_pauses_the_selected_backfill_then_resumes_it(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("5", "space")
        await settled(app, pilot)
        assert cells(app, RUNNING_BACKFILL)["state"] == "paused"
        assert f"Backfill {RUNNING_BACKFILL}: pause asked for" in toasts(app)
        # paused, it goes below the one paused before it; the cursor stays on it
        assert shown_ids(app)[:2] == [PAUSED_BACKFILL, RUNNING_BACKFILL]
        assert pane_table(app).selected_key == RUNNING_BACKFILL
        await pilot.press("space")
        await settled(app, pilot)
    assert backfill_calls(world) == [
        ("control_backfill", "pause", RUNNING_BACKFILL),
        ("control_backfill", "resume", RUNNING_BACKFILL),
    ]


async def test_cancelling_a_backfill_asks_first(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("5", "down", "x")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == f"Cancel backfill {PAUSED_BACKFILL}?"
        await pilot.press("n")
        await settled(app, pilot)
        assert backfill_calls(world) == []
        await pilot.press("x", "y")
        await settled(app, pilot)
        assert isinstance(app.screen, MainScreen)
        assert cells(app, PAUSED_BACKFILL)["state"] == "cancelled"
    assert backfill_calls(world) == [("control_backfill", "cancel", PAUSED_BACKFILL)]


async def test_a_refusal_is_shown_with_the_engines_message(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("5", "down", "down", "down", "space")  # the done one
        await settled(app, pilot)
        assert errors(app) == [f"backfill {DONE_BACKFILL} is done: nothing to pause"]
        world.engine.backfill_refusal = REFUSAL
        await pilot.press("up", "up", "up", "space")
        await settled(app, pilot)
        assert errors(app)[-1] == REFUSAL
        assert cells(app, RUNNING_BACKFILL)["state"] == "running"


async def test_read_only_refuses_starting_pausing_and_cancelling_backfills(world):
    app = world.app(read_only=True)
    async with app.run_test() as pilot:
        await pilot.press("5", "n", "space", "x")
        await settled(app, pilot)
        assert isinstance(app.screen, MainScreen)
    assert backfill_calls(world) == []
    assert [message for message in toasts(app) if "read-only" in message] == [
        "Starting a backfill is not allowed in read-only mode",
        "Pausing a backfill is not allowed in read-only mode",
        "Cancelling a backfill is not allowed in read-only mode",
    ]


# --- the start dialog ----------------------------------------------------------------------------


async def test_starting_a_backfill_sends_the_ticked_tables_sinks_and_where_clause(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5", "n")
        assert isinstance(app.screen, StartBackfillScreen)
        await pilot.press("space", "down", "down", "space")  # orders, order_lines
        await pilot.press("tab", "down", "space")  # hook0
        await pilot.press("tab")
        app.screen.query_one("#backfill-where", Input).value = " id > 1000 "
        await pilot.press("enter")
        await settled(app, pilot)
        assert isinstance(app.screen, MainScreen)
        assert f"Backfill {NEW_BACKFILL} asked for: public.orders, public.order_lines" in toasts(
            app
        )
        assert cells(app, NEW_BACKFILL)["state"] == "queued"
    assert backfill_calls(world) == [
        ("start_backfill", ("public.orders", "public.order_lines"), ("hook0",), "id > 1000")
    ]


async def test_the_dialog_offers_the_enabled_sinks_and_none_ticked_means_every_one(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5", "n")
        sinks = app.screen.query_one("#backfill-sinks", SelectionList)
        assert [sinks.get_option_at_index(i).value for i in range(sinks.option_count)] == [
            "orders-api",
            "hook0",
        ]  # audit is disabled in sample.toml
        await pilot.press("down", "space")  # customers
        await pilot.click("#start")
        await settled(app, pilot)
    assert backfill_calls(world) == [("start_backfill", ("public.customers",), (), None)]


async def test_a_table_without_a_key_is_shown_with_why_but_cannot_be_ticked(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5", "n")
        tables = app.screen.query_one("#backfill-tables", SelectionList)
        keyless = tables.get_option_at_index(3)
        assert keyless.value == "public.app_log" and keyless.disabled
        assert "no primary key or replica identity index" in str(keyless.prompt)
        await pilot.press("end")  # the last one that can be ticked
        assert tables.highlighted == 2
        await pilot.press("down", "down", "down")  # passes over it: around to order_lines again
        assert tables.highlighted == 2
        await pilot.press("space")
        assert tables.selected == ["public.order_lines"]
        tables.select("public.app_log")  # ticked by the program: still not asked for
        await pilot.press("tab", "tab", "enter")
        await settled(app, pilot)
    assert backfill_calls(world) == [("start_backfill", ("public.order_lines",), (), None)]


async def test_the_dialog_asks_for_a_table_and_escape_closes_it_without_a_request(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("5", "n")
        await pilot.click("#start")
        problem = app.screen.query_one("#backfill-problem", Static)
        assert problem.display and "Tick at least one table" in str(problem.content)
        assert isinstance(app.screen, StartBackfillScreen)
        await pilot.press("p", "d")  # the app's keys do not act behind the dialog
        await pilot.press("escape")
        await settled(app, pilot)
        assert isinstance(app.screen, MainScreen)
    assert [call for call in world.engine.calls if call != ("start",)] == []


async def test_a_refused_start_shows_the_engines_message(world):
    world.engine.backfill_refusal = REFUSAL
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("5", "n", "space")
        app.screen.query_one("#backfill-where", Input).focus()
        await pilot.press("enter")
        await settled(app, pilot)
        assert errors(app) == [REFUSAL]
        assert NEW_BACKFILL not in pane_table(app).rows


async def test_the_palette_offers_starting_and_each_unfinished_backfills_controls(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {
        "Start a backfill",
        f"Pause backfill: {RUNNING_BACKFILL}",
        f"Cancel backfill: {RUNNING_BACKFILL}",
        f"Resume backfill: {PAUSED_BACKFILL}",
    } <= titles
    assert not [title for title in titles if DONE_BACKFILL in title or FAILED_BACKFILL in title]
