"""The configuration editor: edits reach the file as ConfigDocument writes them, nothing else
changes, invalid content is never saved, secrets stay masked until revealed."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from tests.fakes.engine import FakeEngine, FrozenClock, World, sample_world, screen_text, toasts
from wal2http_tui.config.loader import load_config
from wal2http_tui.tui.add_sink import AddSinkScreen
from wal2http_tui.tui.app import Wal2HttpApp
from wal2http_tui.tui.dialogs import ConfirmScreen
from wal2http_tui.tui.editor import ConfigEditorScreen, FieldRow, SectionList
from wal2http_tui.tui.main_screen import MainScreen

# slow: each drives the editor through whole edit-save-apply sessions (2 to 6 s apiece).
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPLICATION, ORDERS_API, AUDIT, HOOK0 = range(4)  # the sections of sample.toml


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return sample_world(tmp_path, monkeypatch)


def changes(before: str, after: str) -> list[str]:
    """The removed ("- ") and added ("+ ") lines between two texts."""
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [line for line in diff if line.startswith(("- ", "+ "))]


async def open_editor(pilot: Pilot, section: int = REPLICATION) -> ConfigEditorScreen:
    await pilot.pause()
    await pilot.press("e")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ConfigEditorScreen)
    await pilot.press(*["down"] * section)
    await pilot.pause()
    assert screen.current == section
    return screen


def field(screen: ConfigEditorScreen, key: str) -> FieldRow:
    return next(row for row in screen.rows if row.path[-1] == key)


async def type_into(pilot: Pilot, row: FieldRow, text: str) -> None:
    """Clear the field and type ``text`` key by key, as an operator would."""
    control = row.query_one(Input)
    control.focus()
    await pilot.press("end", "ctrl+u", *text)
    await pilot.pause()


def message_of(row: FieldRow) -> str:
    line = row.query_one(".field-message", Static)
    return str(line.content) if line.display else ""


async def test_changing_a_sink_url_changes_that_line_of_the_file_and_nothing_else(world):
    path = world.path
    original = path.read_text()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, AUDIT)
        await type_into(pilot, field(screen, "url"), "https://audit.example/v2/events")
        assert message_of(field(screen, "url")) == ""
        await pilot.press("ctrl+s", "y")
        await pilot.pause()
        assert not screen.document.modified
    assert changes(original, path.read_text()) == [
        '- url = "https://audit.internal.example:8443/events"\n',
        '+ url = "https://audit.example/v2/events"\n',
    ]
    assert path.with_name("wal2http.toml.bak").read_text() == original
    assert load_config(path).event_sinks[1].url == "https://audit.example/v2/events"


async def test_a_sink_added_in_the_editor_is_saved_after_the_other_http_sinks(world):
    path = world.path
    original = path.read_text()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot)
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, AddSinkScreen)
        await pilot.press(*"billing", "tab", *"https://billing.example/hooks", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.section.title == "● billing (http)"
        await pilot.press("ctrl+s", "y")
        await pilot.pause()
    block = '[[event_sinks.http]]\nname = "billing"\nenabled = true\nurl = "https://billing.example/hooks"\n'
    hook0 = original.index("# Hook0 (https://www.hook0.com)")
    assert path.read_text() == original[:hook0] + block + "\n" + original[hook0:]
    billing = load_config(path).event_sinks[2]
    assert (billing.name, billing.url, billing.enabled) == (
        "billing",
        "https://billing.example/hooks",
        True,
    )


async def test_the_add_sink_dialog_shows_the_loaders_message_and_adds_nothing(world):
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot)
        await pilot.press("ctrl+n", *"billing", "tab", *"ftp://billing", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AddSinkScreen)
        problem = str(app.screen.query_one("#add-problem", Static).content)
        assert problem == 'expected an http:// or https:// URL, got "ftp://billing"'
        await pilot.press("escape")
        assert [section.title for section in screen.sections][1:] == [
            "● orders-api (http)",
            "○ audit (http)",
            "● hook0 (hook0)",
        ]


async def test_an_invalid_value_is_shown_next_to_its_field_and_cannot_be_saved(world):
    path = world.path
    original = path.read_bytes()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await type_into(pilot, field(screen, "retries"), "abc")
        assert message_of(field(screen, "retries")).endswith(
            'expected an integer >= 0, got a string ("abc")'
        )
        assert "✗" in str(app.screen.query_one(SectionList).get_option_at_index(1).prompt)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any(message.startswith("Not saved: ") for message in toasts(app))
    assert path.read_bytes() == original
    assert not path.with_name("wal2http.toml.bak").exists()


async def test_a_toml_value_that_does_not_parse_is_refused_until_fixed(world):
    path = world.path
    original = path.read_bytes()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await type_into(pilot, field(screen, "headers"), '{ X-Source = "wal2http", X-Env = ')
        assert message_of(field(screen, "headers")).startswith("not a TOML value")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_bytes() == original
        await pilot.press(*'"eu" }', "ctrl+s", "y")
        await pilot.pause()
    assert changes(original.decode(), path.read_text()) == [
        '- headers = { X-Source = "wal2http" }\n',
        '+ headers = { X-Source = "wal2http", X-Env = "eu" }\n',
    ]


async def test_read_only_mode_refuses_every_edit(world):
    path = world.path
    original = path.read_bytes()
    engine = world.engine
    app = world.app(read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        controls = list(screen.form.query("Input, Select"))
        assert controls and all(control.disabled for control in controls)
        await pilot.press("space", "x", "ctrl+n", "ctrl+s", "ctrl+o")
        await pilot.pause()
        assert app.screen is screen
        refused = [message for message in toasts(app) if "read-only" in message]
        assert len(refused) == 5
    assert path.read_bytes() == original
    assert not any(call[0] == "apply" for call in engine.calls)


SECRET_CONFIG = """\
connection_string = "host=db1 dbname=shop user=wal2http password=pg-Pa55word"

[[event_sinks.http]]
name = "orders-api"
enabled = true
url = "https://orders.example.com/hooks"
auth_header = "Bearer s3cr3t-token"
headers = { X-Source = "wal2http", X-Api-Key = "hdr-s3cr3t" }

[event_sinks.hook0]
enabled = true
api_url = "https://app.hook0.com/api/v1"
api_key = "hk0-s3cr3t-key"
application_id = "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c"
"""
SECRETS = ("pg-Pa55word", "s3cr3t-token", "hdr-s3cr3t", "hk0-s3cr3t-key")


async def test_secrets_are_masked_until_revealed(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = Path("wal2http.toml")
    path.write_text(SECRET_CONFIG)
    app = Wal2HttpApp(FakeEngine(load_config(path)), path, clock=FrozenClock())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert not any(secret in screen_text(app) for secret in SECRETS)
        shown: list[str] = []
        for section in (REPLICATION, ORDERS_API, 2):
            screen = await open_editor(pilot, section)
            shown += [control.value for control in screen.form.query(Input)]
            shown.append(screen_text(app))
            await pilot.press("escape")
        assert not any(secret in text for secret in SECRETS for text in shown)
        screen = await open_editor(pilot, REPLICATION)
        masked = field(screen, "connection_string")
        assert masked.query_one(Input).value == "host=db1 dbname=shop user=wal2http password=***"
        assert masked.query_one(Input).disabled
        assert message_of(masked).startswith("masked: ctrl+r reveals it")
        await pilot.press("ctrl+r")
        await pilot.pause()
        revealed = field(screen, "connection_string").query_one(Input)
        assert revealed.value.endswith("password=pg-Pa55word") and not revealed.disabled
        await pilot.press("down")
        await pilot.pause()
        assert field(screen, "auth_header").query_one(Input).value == "Bearer s3cr3t-token"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert field(screen, "auth_header").query_one(Input).value == "***"
        assert field(screen, "headers").query_one(Input).value == (
            '{X-Source = "wal2http", X-Api-Key = "***"}'
        )


async def test_a_sink_change_applies_live_and_a_slot_change_asks_before_restarting(world):
    engine = world.engine
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await type_into(pilot, field(screen, "timeout"), "2.5")
        await pilot.press("ctrl+o")
        await app.workers.wait_for_complete()
        applied = [call[1] for call in engine.calls if call[0] == "apply"]
        assert [config.event_sinks[0].timeout for config in applied] == [2.5]
        screen.query_one(SectionList).focus()
        await pilot.press("home")  # the Replication section
        await pilot.pause()
        await type_into(pilot, field(screen, "slot_name"), "wal2http_slot_b")
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        applied = [call[1] for call in engine.calls if call[0] == "apply"]
        assert [config.slot_name for config in applied] == ["wal2http_slot", "wal2http_slot_b"]
        assert any(message.startswith("Applied: replication restarted") for message in toasts(app))


async def test_testing_a_sink_and_the_connection_shows_what_the_engine_said(world):
    engine = world.engine
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await pilot.press("ctrl+t")
        await app.workers.wait_for_complete()
        result = screen.form.query_one(".test-result", Static)
        assert str(result.content) == "✓ orders-api reachable (HEAD answered 200)"
        engine.sink_probe_error = "cannot connect to https://orders.example.com: refused"
        await pilot.press("ctrl+t")
        await app.workers.wait_for_complete()
        assert str(result.content) == (
            "✗ orders-api: cannot connect to https://orders.example.com: refused"
        )
        await pilot.press("up")
        await pilot.press("ctrl+t")
        await app.workers.wait_for_complete()
        lines = str(screen.form.query_one(".test-result", Static).content).splitlines()
        assert lines[-1] == '✗ slot: slot "wal2http_slot" is active for another process (pid 4242)'
    tested = [call[0] if call[0] != "test_sink" else call for call in engine.calls[1:]]
    assert tested == [("test_sink", "orders-api"), ("test_sink", "orders-api"), "test_connection"]


async def test_space_enables_a_sink_and_x_removes_one_after_a_confirmation(world):
    path = world.path
    original = path.read_text()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, AUDIT)
        await pilot.press("space")
        await pilot.pause()
        assert screen.section.title == "● audit (http)"
        assert field(screen, "enabled").query_one(Select).value == "true"
        await pilot.press("down", "x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert [section.title for section in screen.sections] == [
            "Replication",
            "● orders-api (http)",
            "● audit (http)",
        ]
        await pilot.press("ctrl+s", "y")
        await pilot.pause()
    saved = path.read_text()
    assert "- enabled = false\n" in changes(original, saved)
    assert "[event_sinks.hook0]" not in saved
    assert "# An internal audit endpoint" in saved
    assert [sink.name for sink in load_config(path).event_sinks] == ["orders-api", "audit"]


async def test_closing_with_unsaved_changes_asks_and_leaves_the_file_alone(world):
    path = world.path
    original = path.read_bytes()
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await type_into(pilot, field(screen, "retries"), "7")
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.screen is screen
        await pilot.press("escape", "y")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert path.read_bytes() == original


async def insert_before_the_end(pilot: Pilot, row: FieldRow, text: str) -> None:
    """Type ``text`` just before the last character of the field (an array's ``]``)."""
    row.query_one(Input).focus()
    await pilot.press("end", "left", *text)
    await pilot.pause()


async def test_a_sinks_routing_is_edited_as_toml_and_an_unknown_op_is_named(world):
    path = world.path
    original = path.read_text()
    engine = world.engine
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await insert_before_the_end(pilot, field(screen, "tables"), ', "public.order_lines"')
        await insert_before_the_end(pilot, field(screen, "ops"), ', "upsert"')
        assert message_of(field(screen, "tables")) == ""
        assert message_of(field(screen, "ops")).endswith(
            "expected one of insert, update, delete, truncate, message, read, "
            'got a string ("upsert")'
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_text() == original
        await pilot.press(*["backspace"] * len(', "upsert", "delete"'))
        await pilot.pause()
        assert field(screen, "ops").query_one(Input).value == '["insert", "update"]'
        assert message_of(field(screen, "ops")) == ""
        screen.query_one(SectionList).focus()
        await pilot.press("down")  # the audit sink, which receives every table
        await pilot.pause()
        tables = field(screen, "tables")
        assert tables.query_one(Input).placeholder == "default: every table"
        assert field(screen, "ops").query_one(Input).placeholder == "default: every operation"
        await type_into(pilot, tables, '["public.orders"]')
        assert message_of(tables) == ""
        await pilot.press("ctrl+s", "y")
        await pilot.pause()
        await pilot.press("ctrl+o")
        await app.workers.wait_for_complete()
    saved = path.read_text()
    tables_note = '                   # "schema.table" patterns, * for a whole part\n'
    ops_note = "         # of insert update delete truncate message read\n"
    assert changes(original, saved) == [
        '- tables = ["public.orders"]' + tables_note,
        '+ tables = ["public.orders", "public.order_lines"]' + tables_note,
        '- ops = ["insert", "update", "delete"]' + ops_note,
        '+ ops = ["insert", "update"]' + ops_note,
        '+ tables = ["public.orders"]\n',
    ]
    assert '"internal-ca.pem"  # PEM certificates that verify the server\ntables = [' in saved
    orders, audit, _ = load_config(path).event_sinks
    assert (orders.tables, orders.ops) == (
        ("public.orders", "public.order_lines"),
        ("insert", "update"),
    )
    assert audit.tables == ("public.orders",)
    applied = [call[1].event_sinks for call in engine.calls if call[0] == "apply"]
    assert [(sinks[0].ops, sinks[1].tables) for sinks in applied] == [(orders.ops, audit.tables)]


async def test_saving_shows_the_diff_first_with_literal_secrets_masked(world):
    path = world.path
    literal = path.read_text().replace("Bearer ${ORDERS_API_TOKEN}", "Bearer s3cr3t-token")
    path.write_text(literal)
    app = world.app()
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        await type_into(pilot, field(screen, "headers"), '{ X-Source = "w2h" }')
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen) and dialog.listing is not None
        shown = dialog.listing.plain.splitlines()
        assert '-headers = { X-Source = "wal2http" }' in shown
        assert '+headers = { X-Source = "w2h" }' in shown
        assert ' auth_header = "***"   # the whole Authorization header value' in shown
        assert "s3cr3t-token" not in dialog.listing.plain
        await pilot.press("n")
        assert app.screen is screen and path.read_text() == literal  # nothing written on no
        await pilot.press("ctrl+r", "ctrl+s")
        await pilot.pause()
        assert "s3cr3t-token" in app.screen.listing.plain  # revealed: the diff shows them too
        await pilot.press("y")
        await pilot.pause()
    assert changes(literal, path.read_text()) == [
        '- headers = { X-Source = "wal2http" }\n',
        '+ headers = { X-Source = "w2h" }\n',
    ]


async def test_the_help_line_says_what_the_focused_key_means(world):
    app = world.app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_editor(pilot, ORDERS_API)
        help_line = screen.query_one("#field-help", Static)
        field(screen, "url").query_one(Input).focus()
        await pilot.pause()
        assert str(help_line.content) == (
            "url  http:// or https:// endpoint; may hold {schema}, {table}, {op} (see Routing)."
            "  required"
        )
        field(screen, "retries").query_one(Input).focus()
        await pilot.pause()
        assert str(help_line.content) == (
            "retries  Further attempts before on_failure applies.  default: 5"
        )
