"""The dead letters screen: events a sink gave up on; inspect, replay or drop them."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.engine.controls import EngineControls
from wal2http_tui.tui.dialogs import ConfirmScreen, if_confirmed
from wal2http_tui.tui.json_view import payload_content
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.messages import Inspect
from wal2http_tui.tui.read_only import refuse_in_read_only
from wal2http_tui.tui.subjects import dead_letter_subject
from wal2http_tui.tui.units import short_path, utc_time

RELOAD_SECONDS = 2.0
REASON_WIDTH = 70
COLUMNS = ["id", "sink", "event type", "LSN", "attempts", "last failure", "reason"]


def dead_letter_row(letter: DeadLetter) -> Row:
    return (
        Text(str(letter.id), justify="right"),
        Text(letter.sink, style="bold"),
        letter.event_type,
        letter.lsn,
        Text(str(letter.attempts), justify="right"),
        utc_time(letter.last_failure),
        Text(letter.reason[:REASON_WIDTH], style="red"),
    )


def letter_preview(letter: DeadLetter) -> Content:
    """What the inspector's heading says of it, then the payload as the sink would send it."""
    subject = dead_letter_subject(letter)
    parts: list[Content | str | tuple[str, str]] = []
    for label, value in subject.facts:
        parts += [(f"{label}: ", "$text-muted"), value, "\n"]
    return Content.assemble(*parts, "\n", payload_content(letter.payload))


class DeadLetterTable(KeyedTable):
    BINDINGS = [Binding("enter", "select_cursor", "Inspect")]


class DeadLettersScreen(Screen):
    """Reloaded every few seconds off the UI thread (the engine reads the dead-letter file);
    replay and drop change that file, so read-only refuses them."""

    CSS_PATH = "dead_letters.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "replay", "Replay"),
        Binding("x,delete", "drop", "Drop"),
    ]

    def __init__(self, engine: EngineControls, *, read_only: bool) -> None:
        super().__init__()
        self.engine = engine
        self.read_only = read_only
        self.letters: dict[str, DeadLetter] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield LiveStatic(id="dead-letters-heading")
        yield DeadLetterTable(id="dead-letters")
        with VerticalScroll(id="dead-letter-detail"):
            yield Static(id="dead-letter-preview")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DeadLetterTable)
        table.set_columns(COLUMNS)
        table.focus()
        self.reload()
        self.set_interval(RELOAD_SECONDS, self.reload)

    @work(exclusive=True, group="dead-letters-load")
    async def reload(self) -> None:
        letters = await asyncio.to_thread(self.engine.list_dead_letters)
        self.show_letters(letters)

    def show_letters(self, letters: list[DeadLetter]) -> None:
        self.loaded = True
        self.letters = {str(letter.id): letter for letter in letters}
        table = self.query_one(DeadLetterTable)
        table.sync({key: dead_letter_row(letter) for key, letter in self.letters.items()})
        if not letters:
            self.query_one("#dead-letter-preview", Static).update(
                Content.styled("No dead letters.", "$text-muted")
            )
        path = short_path(self.engine.config.dead_letter_path)
        count = f"{len(letters)} dead letter{'' if len(letters) == 1 else 's'}"
        self.query_one("#dead-letters-heading", LiveStatic).show(
            Content.assemble(("Dead letters", "bold"), f" · {count} in {path}")
        )

    def selected(self) -> DeadLetter | None:
        key = self.query_one(DeadLetterTable).selected_key
        letter = self.letters.get(key or "")
        if letter is None:
            self.notify("No dead letter selected", severity="warning")
        return letter

    @on(DataTable.RowHighlighted)
    def _preview(self, event: DataTable.RowHighlighted) -> None:
        letter = self.letters.get(str(event.row_key.value))
        self.query_one("#dead-letter-preview", Static).update(
            "" if letter is None else letter_preview(letter)
        )

    @on(DataTable.RowSelected)
    def _inspect(self, event: DataTable.RowSelected) -> None:
        event.stop()
        letter = self.letters.get(str(event.row_key.value))
        if letter is not None:
            self.post_message(Inspect(dead_letter_subject(letter)))

    def action_replay(self) -> None:
        if refuse_in_read_only(self, "Replaying a dead letter", read_only=self.read_only):
            return
        letter = self.selected()
        if letter is not None:
            self.replay(letter)

    @work(group="dead-letters-replay")
    async def replay(self, letter: DeadLetter) -> None:
        self.notify(f"Replaying dead letter {letter.id} to {letter.sink}…")
        problem = await asyncio.to_thread(self.engine.replay_dead_letter, letter.id)
        if problem is None:
            self.notify(f"Dead letter {letter.id} delivered to {letter.sink} and removed")
        else:
            self.notify(f"Dead letter {letter.id} not delivered: {problem}", severity="error")
        self.reload()

    def action_drop(self) -> None:
        if refuse_in_read_only(self, "Dropping a dead letter", read_only=self.read_only):
            return
        letter = self.selected()
        if letter is None:
            return
        question = f"Drop dead letter {letter.id} ({letter.event_type}) of sink {letter.sink}?"
        detail = "The event is deleted for good: it will never be delivered."
        self.app.push_screen(
            ConfirmScreen(question, detail, confirm="Drop"), if_confirmed(lambda: self.drop(letter))
        )

    @work(group="dead-letters-drop")
    async def drop(self, letter: DeadLetter) -> None:
        dropped = await asyncio.to_thread(self.engine.drop_dead_letter, letter.id)
        if dropped:
            self.notify(f"Dead letter {letter.id} dropped")
        else:
            self.notify(f"Dead letter {letter.id} was already gone", severity="warning")
        self.reload()
