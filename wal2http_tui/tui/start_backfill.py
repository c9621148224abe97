"""The "start a backfill" dialog: which tables (those without a key shown, not selectable, and
why), to which sinks (none chosen: every enabled one), and an optional where clause.

It only gathers the request: the engine checks it (``start_backfill``) and says why when it
refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

KEYLESS = "no primary key or replica identity index"
NO_TABLES = "No tables known yet: the engine lists the publication's tables once it has connected."


@dataclass(frozen=True)
class BackfillRequest:
    """What ``EngineControls.start_backfill`` is asked for; no sinks: every enabled sink."""

    tables: tuple[str, ...]
    sinks: tuple[str, ...] = ()
    where: str | None = None


def table_choice(name: str, keyed: bool) -> Selection[str]:
    """A table to tick; one without a key is shown greyed, with why, and cannot be ticked."""
    if keyed:
        return Selection(name, name)
    return Selection(Content.assemble(name, (f"  {KEYLESS}", "italic")), name, disabled=True)


class StartBackfillScreen(ModalScreen[BackfillRequest | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, tables: Sequence[tuple[str, bool]], sinks: Sequence[str]) -> None:
        super().__init__()
        self.tables = list(tables)
        self.sinks = list(sinks)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="start-backfill"):
            yield Static(
                Content.assemble(
                    ("Start a backfill", "bold"),
                    (": the rows tables hold now, sent as read events", "$text-muted"),
                )
            )
            yield Label("Tables", classes="backfill-label")
            if self.tables:
                choices = [table_choice(name, keyed) for name, keyed in self.tables]
                yield SelectionList[str](*choices, compact=True, id="backfill-tables")
            else:
                yield Static(NO_TABLES, classes="dialog-detail", id="backfill-no-tables")
            yield Label("Sinks (none ticked: every enabled sink)", classes="backfill-label")
            yield SelectionList[str](
                *((name, name) for name in self.sinks), compact=True, id="backfill-sinks"
            )
            with Horizontal(classes="add-line"):
                yield Label("where")
                yield Input(
                    placeholder="optional: only the rows matching, e.g. created_at > '2025-01-01'",
                    compact=True,
                    id="backfill-where",
                )
            yield Static(classes="dialog-detail", id="backfill-problem", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = "#backfill-tables" if self.tables else "#backfill-where"
        self.query_one(first).focus()

    def request(self) -> BackfillRequest:
        where = self.query_one("#backfill-where", Input).value.strip()
        return BackfillRequest(
            self._ticked("#backfill-tables", [name for name, keyed in self.tables if keyed]),
            self._ticked("#backfill-sinks", self.sinks),
            where or None,
        )

    def _ticked(self, selector: str, names: list[str]) -> tuple[str, ...]:
        """Those of ``names`` ticked in that list, in the list's order (not the order ticked)."""
        ticked = {
            value
            for found in self.query(selector).results(SelectionList)
            for value in found.selected
        }
        return tuple(name for name in names if name in ticked)

    @on(Button.Pressed, "#start")
    @on(Input.Submitted)
    def _start(self) -> None:
        request = self.request()
        if not request.tables:
            problem = self.query_one("#backfill-problem", Static)
            problem.update("Tick at least one table (space or enter ticks the highlighted one).")
            problem.display = True
            return
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
