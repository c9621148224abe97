"""Snapshots of every screen of the terminal UI, at 120x36 and at 80x24.

The fake engine holds fixed numbers and the clock only moves when the test says, so each
screenshot is the same on every run. Update with ``--snapshot-update`` after looking at them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.fakes.engine import NOW, FakeEngine, FrozenClock, GiB, sample_world
from wal2http_tui.tui.app import Wal2HttpApp

# slow: rendering each screen at two sizes and comparing the SVGs takes about 20 s in all.
pytestmark = pytest.mark.slow

SIZES = [pytest.param((120, 36), id="120x36"), pytest.param((80, 24), id="80x24")]
# events per second over the 12 seconds before the screenshot, and the slot's retained WAL
RATES = [120, 340, 410, 380, 150, 90, 520, 640, 300, 210, 260, 480]
RETAINED_GIB = {1: 1.10, 4: 1.16, 7: 1.22, 10: 1.30}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Wal2HttpApp:
    return sample_world(tmp_path, monkeypatch, now=NOW - len(RATES)).app()


def prepared(*keys: str):
    """Twelve seconds of readings (ending at NOW), then ``keys``, then settled."""

    async def run_before(pilot: Pilot) -> None:
        app: Wal2HttpApp = pilot.app  # type: ignore[assignment]
        engine: FakeEngine = app.engine  # type: ignore[assignment]
        clock: FrozenClock = app.clock  # type: ignore[assignment]
        await pilot.pause()
        for second, rate in enumerate(RATES):
            clock.advance(1)
            engine.changes += rate
            if second in RETAINED_GIB:
                retained = int(RETAINED_GIB[second] * GiB)
                engine.slot = replace(engine.slot, retained_bytes=retained, checked_at=clock())
            app.poll()
        await pilot.press(*keys)
        await app.workers.wait_for_complete()
        await pilot.pause()
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared())


@pytest.mark.parametrize("size", SIZES)
def test_inspector_on_a_retrying_transaction(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("down", "down", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_retries_pane(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("3"))


@pytest.mark.parametrize("size", SIZES)
def test_backfills_pane(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("5"))


@pytest.mark.parametrize("size", SIZES)
def test_start_backfill_dialog(snap_compare, app, size):
    # public.orders ticked, the keyless public.app_log greyed and passed over, hook0 ticked
    keys = ("5", "n", "space", "tab", "down", "space", "tab", *"id > 1000")
    assert snap_compare(app, terminal_size=size, run_before=prepared(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_dead_letters_screen(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("d"))


@pytest.mark.parametrize("size", SIZES)
def test_slot_health_screen(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("s"))


@pytest.mark.parametrize("size", SIZES)
def test_config_editor_on_a_sink(snap_compare, app, size):
    # enter: into the sink's first field, whose meaning the help line shows
    assert snap_compare(app, terminal_size=size, run_before=prepared("e", "down", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_save_shows_the_diff(snap_compare, app, size):
    keys = ("e", "down", "enter", "end", "-", "2", "ctrl+s")
    assert snap_compare(app, terminal_size=size, run_before=prepared(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_main_screen_attached_to_a_service(snap_compare, app, size):
    app.engine.attached_to = "pid 4242"  # what `wal2http-tui attach` shows
    assert snap_compare(app, terminal_size=size, run_before=prepared())


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=prepared("question_mark"))
