"""The main screen: status bar and the five panes.

Wide and tall terminals show every pane at once; below ``WIDE`` columns or ``TALL`` rows the
screen collapses to the focused pane, with a bar naming the others (digits or a click switch).
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer

from wal2http_tui.tui.backfills import BackfillsPane
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.log_pane import LogPane
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.pane import Pane
from wal2http_tui.tui.retries import RetriesPane
from wal2http_tui.tui.sinks import SinksPane
from wal2http_tui.tui.status import StatusBar
from wal2http_tui.tui.transactions import TransactionsPane

WIDE = 100
TALL = 30


class MainScreen(Screen):
    CSS_PATH = "main_screen.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL, "-tall")]
    # The app's key, repeated here so that the footer shows it before the app's other keys:
    # at 80 columns the panes' keys and the app's do not all fit, and help lists them all.
    HELP_KEY = Binding("question_mark,f1", "app.help", "Help", tooltip="This keymap")
    BINDINGS = [
        Binding("1", "show_pane(1)", "Transactions", show=False, tooltip="Focus Transactions"),
        Binding("2", "show_pane(2)", "Sinks", show=False, tooltip="Focus Sinks"),
        Binding("3", "show_pane(3)", "Retries", show=False, tooltip="Focus Retries"),
        Binding("4", "show_pane(4)", "Log", show=False, tooltip="Focus the engine log"),
        Binding("5", "show_pane(5)", "Backfills", show=False, tooltip="Focus Backfills"),
        Binding("slash", "filter", "Filter", tooltip="Filter transactions by table or xid"),
        HELP_KEY,
    ]

    def __init__(self, *, read_only: bool) -> None:
        super().__init__()
        self.read_only = read_only
        self.active_pane = 0

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield LiveStatic(id="pane-bar")
        with Container(id="panes"):
            yield TransactionsPane(id="transactions")
            yield SinksPane(id="sinks")
            yield RetriesPane(id="retries")
            yield LogPane(id="log")
            yield BackfillsPane(id="backfills")
        yield Footer(compact=True)

    @property
    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

    def pane(self, number: int) -> Pane:
        return next(pane for pane in self.panes if number == pane.NUMBER)

    def on_mount(self) -> None:
        self.action_show_pane(TransactionsPane.NUMBER)

    def action_show_pane(self, number: int) -> None:
        self._activate(number)
        self.pane(number).focus_target.focus()

    def action_filter(self) -> None:
        self.action_show_pane(TransactionsPane.NUMBER)
        self.query_one(TransactionsPane).start_filter()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        pane = next((node for node in event.widget.ancestors if isinstance(node, Pane)), None)
        if pane is not None and self.active_pane != pane.NUMBER:
            self._activate(pane.NUMBER)

    def _activate(self, number: int) -> None:
        self.active_pane = number
        for pane in self.panes:
            pane.set_class(number == pane.NUMBER, "-active")
        self.query_one("#pane-bar", LiveStatic).show(self._pane_bar())

    def _pane_bar(self) -> Content:
        parts: list[Content | str | tuple[str, str]] = []
        for pane in self.panes:
            label = f" {pane.NUMBER} {pane.TITLE} "
            style = "reverse $accent" if self.active_pane == pane.NUMBER else "$text-muted"
            parts.append(
                Content.assemble((label, style)).stylize(f"@click=screen.show_pane({pane.NUMBER})")
            )
            parts.append(" ")
        return Content.assemble(*parts)

    def show_readings(self, readings: Readings) -> None:
        self.query_one(StatusBar).show_readings(readings, read_only=self.read_only)
        for pane in self.panes:
            pane.show_readings(readings)
