"""The terminal UI driven with Pilot against the fake engine: what reaches the engine, what the
operator sees."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Input, Log, Static

from tests.fakes.engine import (
    DEAD_LETTER_ID,
    LOG_LINES,
    NOW,
    RETRYING_IDS,
    FakeEngine,
    World,
    sample_world,
    screen_text,
    toasts,
)
from wal2http_tui.delivery.activity import TxRecord
from wal2http_tui.replication.messages import format_lsn
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.dead_letters import DeadLettersScreen, DeadLetterTable
from wal2http_tui.tui.dialogs import ConfirmScreen
from wal2http_tui.tui.help import HelpScreen
from wal2http_tui.tui.inspector import InspectorScreen
from wal2http_tui.tui.keyed_table import KeyedTable
from wal2http_tui.tui.main_screen import MainScreen
from wal2http_tui.tui.retries import RetriesPane, retry_key
from wal2http_tui.tui.sinks import SinksPane
from wal2http_tui.tui.transactions import TransactionsPane, TransactionTable

pytestmark = pytest.mark.anyio
DASH = "\N{EN DASH}"  # the filtered-out mark


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return sample_world(tmp_path, monkeypatch)


def controls(engine: FakeEngine) -> list[tuple]:
    """The control calls, without the start on mount."""
    return [call for call in engine.calls if call != ("start",)]


def status_text(app: Wal2HttpApp) -> str:
    return str(app.screen.query_one("#status-state", Static).content)


def shown_xids(app: Wal2HttpApp) -> list[str]:
    table = app.screen.query_one(TransactionTable)
    return [str(table.get_row_at(row)[0]) for row in range(table.row_count)]


async def test_the_app_starts_the_engine_and_shows_its_transactions_newest_first(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert world.engine.calls[0] == ("start",)
        assert "streaming" in status_text(app)
        assert shown_xids(app) == ["7306", "7305", "7304", "7303", "7302", "7301"]
        table = app.screen.query_one(TransactionTable)
        audit_marks = [str(table.get_row_at(row)[5]) for row in range(table.row_count)]
        assert audit_marks == ["○", "○", "↻", "⊘", "✓", "✓"]


def screen_line(app: Wal2HttpApp, *words: str) -> str:
    """The one line of the screen that holds all of ``words``."""
    lines = [line for line in screen_text(app).splitlines() if all(w in line for w in words)]
    assert len(lines) == 1, lines
    return lines[0]


async def test_the_sinks_pane_says_what_each_sink_receives(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "receives" in screen_line(app, "sink", "state", "sending", "p50 / p99")
        assert "1 table · 3 ops" in screen_line(app, "orders-api", "healthy", "12/64")
        assert "2/16" in screen_line(app, "audit", "retrying")  # requests in flight, of the most
        assert "1 column hidden" in screen_line(app, "audit", "retrying", "35ms / 210ms")
        assert "1 table · 4 ops · 1 column hidden" in screen_line(app, "hook0", "failing")


async def test_a_transaction_a_sinks_filters_let_nothing_through_is_marked_filtered_out(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(TransactionTable)
        orders_marks = [str(table.get_row_at(row)[4]) for row in range(table.row_count)]
        assert orders_marks == ["→", DASH, "✓", "✓", DASH, "✓"]
        row = screen_line(app, "7305", "0/30003A8").strip("│ ").split()
        assert row == [
            "7305",
            "0/30003A8",
            "15:06:39.004",
            "14",
            DASH,
            "○",
            "○",
            "public.order_lines",
        ]
        assert f"⊘ dead-lettered  {DASH} filtered out ─" in screen_line(app, "✓ delivered")
        await pilot.press("down", "enter")  # 7305, all of it in public.order_lines
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        assert screen_line(app, "sinks:").strip() == (
            "sinks: orders-api filtered out, audit queued, hook0 queued"
        )


async def test_an_engine_already_started_is_not_started_again(world):
    engine = world.engine
    engine.state = "streaming"
    async with world.app().run_test() as pilot:
        await pilot.pause()
    assert ("start",) not in engine.calls


async def test_p_pauses_and_resumes_replication(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("p")
        assert controls(engine) == [("pause",)]
        assert "paused" in status_text(app)
        await pilot.press("p")
        assert controls(engine) == [("pause",), ("resume",)]
        assert "streaming" in status_text(app)


async def test_retry_now_on_a_failing_delivery_reaches_its_sink(world):
    engine = world.engine
    async with world.app().run_test() as pilot:
        await pilot.press("3", "down", "down", "r")  # audit has two waiting deliveries
        assert controls(engine) == [("retry_now", "hook0")]


async def test_skipping_to_the_dead_letters_asks_first(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("3", "x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert controls(engine) == []
        await pilot.press("x", "y")
        assert controls(engine) == [("skip_to_dead_letters", "audit")]


async def test_space_pauses_the_selected_sink_then_resumes_it(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("2", "down", "space")
        await pilot.pause()
        sinks = app.screen.query_one(SinksPane).query_one(KeyedTable)
        assert str(sinks.get_cell("audit", "state")) == "paused"
        await pilot.press("space")
        await pilot.pause()
        assert controls(engine) == [("pause_sink", "audit"), ("resume_sink", "audit")]
        assert str(sinks.get_cell("audit", "state")) == "retrying"


async def test_read_only_refuses_pauses_skips_replays_and_drops(world):
    engine = world.engine
    app = world.app(read_only=True)
    async with app.run_test() as pilot:
        await pilot.press("p")
        assert not engine.paused
        await pilot.press("3", "x")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.press("r", "x")
        await pilot.pause()
        assert controls(engine) == []
        refused = [message for message in toasts(app) if "read-only" in message]
        assert len(refused) == 4
        assert "READ-ONLY" in str(app.screen_stack[0].query_one("#status-state", Static).content)


async def test_a_dead_letter_is_replayed_from_its_screen(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("d")
        await app.workers.wait_for_complete()
        table = app.screen.query_one(DeadLetterTable)
        assert table.row_count == 1
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert controls(engine) == [("replay_dead_letter", DEAD_LETTER_ID)]
        assert table.row_count == 0
        assert f"Dead letter {DEAD_LETTER_ID} delivered to audit and removed" in toasts(app)


async def test_enter_on_a_dead_letter_inspects_its_stored_payload(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.press("enter")
        assert isinstance(app.screen, InspectorScreen)
        letter = world.engine.list_dead_letters()[0]
        assert ("reason", letter.reason) in app.screen.subject.facts
        await pilot.press("v")  # raw: exactly the stored bytes
        assert str(app.screen.query_one("#payload", Static).content).encode() == letter.payload
        await pilot.press("escape")
        assert isinstance(app.screen, DeadLettersScreen)


async def test_a_replay_that_fails_says_why_and_keeps_the_letter(world):
    engine = world.engine
    engine.replay_problem = "HTTP 422 from PUT https://audit.internal.example:8443/events"
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one(DeadLetterTable).row_count == 1
        assert any(engine.replay_problem in message for message in toasts(app))


async def test_dropping_a_dead_letter_needs_a_confirmation(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("d")
        await app.workers.wait_for_complete()
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert controls(engine) == []
        await pilot.press("x", "y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert controls(engine) == [("drop_dead_letter", DEAD_LETTER_ID)]
        assert isinstance(app.screen, DeadLettersScreen)
        assert app.screen.query_one(DeadLetterTable).row_count == 0


@pytest.mark.slow  # types into the filter key by key: about 3 s
async def test_the_filter_keeps_transactions_of_a_table_or_an_xid(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("slash", *"order_lines")
        assert shown_xids(app) == ["7305", "7304"]
        await pilot.press("enter")
        assert isinstance(app.focused, TransactionTable)
        await pilot.press("slash", *(["backspace"] * 11), *"7302")
        assert shown_xids(app) == ["7302"]
        await pilot.press("escape")
        assert len(shown_xids(app)) == 6
        assert not app.screen.query_one(TransactionsPane).query_one(Input).display


async def test_the_inspector_shows_the_payload_as_sent_headers_and_each_attempt(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.subject.event_ids == frozenset(RETRYING_IDS)
        attempts = app.screen.query_one("#attempts", KeyedTable)
        rows = [[str(cell) for cell in attempts.get_row_at(i)] for i in range(attempts.row_count)]
        assert [(row[0], row[1], row[4]) for row in rows] == [
            ("audit", "1", "503"),
            ("audit", "2", "503"),
            ("orders-api", "1", "200"),
            ("audit", "3", "503"),
        ]
        # the latest attempt is selected: audit's third, refused with a 503
        response = str(app.screen.query_one("#response", Static).content)
        assert response.startswith("HTTP 503") and "maintenance window" in response
        payload = str(app.screen.query_one("#payload", Static).content)
        assert '"total": 129.90' in payload  # the number as PostgreSQL rendered it
        await pilot.press("v")
        raw = str(app.screen.query_one("#payload", Static).content)
        assert raw.encode() == world.engine.attempts()[-1].payload  # byte for byte
        await pilot.press("up")  # orders-api's attempt, with its masked credentials
        headers = str(app.screen.query_one("#headers", Static).content).splitlines()
        assert "Authorization:     ***" in headers
        assert "Webhook-Signature: ***" in headers
        response = str(app.screen.query_one("#response", Static).content)
        assert response.startswith("HTTP 200")
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_enter_on_a_retry_inspects_its_events(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("3", "enter")
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.subject.title == "Waiting retry at sink audit: public.orders insert"
        assert ("attempt", "3 of 6") in app.screen.subject.facts


async def test_retries_show_attempts_out_of_the_limit_or_infinity_and_a_countdown(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(RetriesPane).query_one(KeyedTable)
        # a sink delivering by key has a row per waiting delivery
        audit, audit_second, hook0 = (retry_key(retry) for retry in world.engine.retries())
        assert str(table.get_cell(audit, "attempt")) == "3 of 6"
        assert str(table.get_cell(audit_second, "attempt")) == "2 of 6"
        assert str(table.get_cell(hook0, "attempt")) == "12 of ∞"
        assert str(table.get_cell(audit, "next")) == "in 4.0s"
        world.clock.advance(3)
        app.poll()
        assert str(table.get_cell(audit, "next")) == "in 1.0s"


async def test_reconnecting_shows_a_countdown_and_the_error(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        engine.state = "reconnecting"
        engine.next_retry_at = NOW + 4
        engine.reconnect_attempt = 3
        engine.last_error = "connection refused"
        app.poll()
        await pilot.pause()
        expected = "↻ reconnecting in 4.0s (attempt 3): connection refused"
        assert status_text(app).startswith(expected)
        assert any("Replication reconnecting" in (n.title or "") for n in app._notifications)


async def test_new_transactions_appear_on_top_and_changed_marks_update_in_place(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "down")  # on 7304
        table = app.screen.query_one(TransactionTable)
        engine._transactions[3].marks["audit"] = "delivered"
        engine._transactions.append(
            TxRecord(7307, "0/30004D8", "2025-06-15T15:06:40.100000Z", 1, ("public.orders",),
                     NOW, {"orders-api": "queued", "audit": "queued", "hook0": "queued"})
        )  # fmt: skip
        app.poll()
        await pilot.pause()
        assert shown_xids(app)[0] == "7307"
        assert str(table.get_row_at(table.cursor_row)[0]) == "7304"  # the cursor stayed on it
        assert str(table.get_row_at(table.cursor_row)[5]) == "✓"


def burst(first_xid: int, count: int) -> list[TxRecord]:
    marks = {"orders-api": "delivered", "audit": "delivered", "hook0": "delivered"}
    return [
        TxRecord(xid, format_lsn(0x4000000 + xid), "", 1, ("public.t",), NOW, dict(marks))
        for xid in range(first_xid, first_xid + count)
    ]


async def test_a_burst_that_replaces_most_rows_keeps_the_selected_transaction(world):
    engine = world.engine
    engine._transactions = burst(100, 30)
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down")  # on 126
        table = app.screen.query_one(TransactionTable)
        engine._transactions = [engine._transactions[26], *burst(200, 25)]
        app.poll()
        await pilot.pause()
        assert table.row_count == 26
        assert shown_xids(app)[0] == "224"
        assert str(table.get_row_at(table.cursor_row)[0]) == "126"


async def test_the_log_pane_appends_only_new_lines(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        log = app.screen.query_one(Log)
        assert list(log.lines) == LOG_LINES
        engine.log = [*engine.log[1:], "15:06:41 INFO    sink audit reconfigured"]
        app.poll()
        app.poll()
        assert list(log.lines) == [*LOG_LINES, "15:06:41 INFO    sink audit reconfigured"]


async def test_events_per_second_come_from_successive_change_counts(world):
    engine, clock = world.engine, world.clock
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        for added in (300, 500):
            clock.advance(1)
            engine.changes += added
            app.poll()
        assert app.readings.rate_history == [300.0, 500.0]
        rate = str(app.screen.query_one("#status-rate-value", Static).content)
        assert rate == "500 events/s"


async def test_digits_focus_panes_and_a_small_terminal_shows_only_that_pane(world):
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        sinks = app.screen.query_one(SinksPane)
        assert app.focused in sinks.query("*")
        shown = [pane.id for pane in app.screen.panes if pane.display]
        assert shown == ["sinks"]
        await pilot.press("4")
        assert [pane.id for pane in app.screen.panes if pane.display] == ["log"]


async def test_help_lists_the_whole_keymap(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {description for _, bindings in app.screen.sections for description in
                [b.tooltip or b.description for b in bindings]}  # fmt: skip
        for expected in (
            "Pause or resume replication",
            "Retry the waiting delivery now",
            "Pause or resume the backfill",
            "Filter transactions by table or xid",
            "Reveal or mask the secrets",
            "Drop",
        ):
            assert expected in rows
        await pilot.press("escape")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


@pytest.mark.slow  # opens the palette on several screens: about 6 s
async def test_the_command_palette_offers_every_key_action_and_each_sinks_controls(world):
    engine = world.engine
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for title in (
            "Pause or resume replication",
            "Edit, test, save and apply the configuration",
            "Slot health: retained WAL, wal_status",
            "Browse, replay or drop dead letters",
            "Focus Retries",
            "Filter transactions by table or xid",
            "Skip to dead letters: audit",
            "Pause sink: hook0",
        ):
            assert title in titles
        await pilot.press("colon", *"retry now: hook0")
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("colon", *"pause or resume replication")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert controls(engine) == [("retry_now", "hook0"), ("pause",)]


async def test_in_the_editor_the_palette_offers_its_actions_and_not_quit(world):
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Save the edits to the file (validated)", "Reveal or mask the secrets"} <= titles
        assert "Enable or disable the sink" in titles
        assert "Quit: stop the engine (sinks drain), then exit" not in titles


async def test_q_stops_the_engine_off_the_ui_thread_then_exits(world):
    engine = world.engine
    release = threading.Event()
    stopped_on = []

    def slow_stop() -> None:
        stopped_on.append(threading.current_thread() is threading.main_thread())
        release.wait(10)
        FakeEngine.stop(engine)

    engine.stop = slow_stop
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause(0.1)
        assert app.is_running
        assert status_text(app).startswith("■ stopping")
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert stopped_on == [False]
    assert engine.calls[-1] == ("stop",)
    assert app.engine_stopped


async def test_the_status_line_says_when_the_server_has_been_quiet_and_a_sink_stalled(world):
    engine = world.engine
    engine.state = "streaming"
    app = world.app()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "nothing from PostgreSQL" not in status_text(app)
        assert "stalled" not in status_text(app)
        engine.last_message_at = NOW - 40
        engine._sinks["audit"] = replace(engine._sinks["audit"], state="stalled")
        app.poll()
        await pilot.pause()
        assert "nothing from PostgreSQL for 40s" in status_text(app)
        assert "⚠ stalled: audit" in status_text(app)


async def test_slot_health_names_tables_without_a_replica_identity_and_both_timeouts(world):
    engine = world.engine
    engine.keyless_tables = ("public.app_log",)
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        app.poll()
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
    assert str(rows["wal_sender_timeout"][1]) == "1min"
    assert str(rows["server_timeout_secs"][1]) == "60s"
    identity = rows["no replica identity"]
    assert str(identity[1]) == "1 table"
    assert "UPDATE/DELETE refused: public.app_log" in str(identity[2])


GAP = (
    "replication slot wal2http_slot does not exist, but wal2http-tui confirmed up to 0/3000290 "
    "at 2025-06-15 15:06:24 on it"
)


async def test_a_refused_gap_is_explained_and_accepted_only_when_confirmed(world):
    engine = world.engine
    engine.state, engine.gap_refused = "error", GAP
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert GAP in str(app.screen.query_one(".dialog-detail", Static).content)
        await pilot.press("n")
        assert ("accept_gap",) not in engine.calls
        app.poll()  # asked once per refusal, not at every poll
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        engine.gap_refused = GAP + " again"
        app.poll()
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert controls(engine) == [("accept_gap",)]
    assert "Starting again: the gap is recorded" in toasts(app)


async def test_read_only_shows_a_refused_gap_and_never_accepts_it(world):
    engine = world.engine
    engine.state, engine.gap_refused = "error", GAP
    app = world.app(read_only=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert ("accept_gap",) not in engine.calls
    assert any(GAP in toast and "--accept-gap" in toast for toast in toasts(app))
