"""The Backfills pane: the on-demand backfills of the slot (the rows tables already hold, sent
as ``read`` events while streaming), how far each got, and the keys that start, pause, resume
and cancel one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable

from wal2http_tui.engine.controls import BACKFILL_FINISHED, BackfillState, BackfillStatus
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.messages import BackfillCommand
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.pane import Pane
from wal2http_tui.tui.transactions import tables_cell
from wal2http_tui.tui.units import UNKNOWN, human_duration, thousands, utc_time

# The numbers before the names: on a narrow terminal the names are cut off, and the selected
# backfill's line below the table says them in full.
BACKFILL_COLUMNS = ["id", "state", "progress", "rows", "rows/s", "ETA", "sinks", "tables"]
STATE_STYLES = {
    BackfillState.REQUESTED: "bright_black",
    BackfillState.QUEUED: "bright_black",
    BackfillState.RUNNING: "cyan",
    BackfillState.PAUSED: "yellow",
    BackfillState.DONE: "green",
    BackfillState.CANCELLED: "bright_black",
    BackfillState.FAILED: "bold red",
}
# Where the pane lists a backfill, by state: the one reading rows first, the finished last.
WAITING_PLACE, FINISHED_PLACE = 1, 3
RUN_ORDER = {BackfillState.RUNNING: 0, BackfillState.PAUSED: 2}
BAR_CELLS = 10
# Rows at most: the state file keeps every backfill ever asked for; the oldest finished go.
TABLE_ROWS = 50


def progress_cell(status: BackfillStatus) -> Text:
    """``━━━━━━────  62%``: the part done in the colour of the state, and heavier, which the
    cursor's row (one colour) still shows."""
    percent = status.record.percent
    if percent is None:
        return Text(UNKNOWN)
    filled = percent * BAR_CELLS // 100
    return Text.assemble(
        ("━" * filled, STATE_STYLES.get(status.record.state, "")),
        ("─" * (BAR_CELLS - filled), "bright_black"),
        f" {percent:>3}%",
    )


def backfill_row(status: BackfillStatus) -> Row:
    record = status.record
    running = record.state == BackfillState.RUNNING
    eta = status.eta_secs if running else None
    return (
        Text(record.id, style="bold"),
        Text(record.state, style=STATE_STYLES.get(record.state, "")),
        progress_cell(status),
        Text(thousands(record.rows), justify="right"),
        Text(thousands(round(status.rows_per_sec)) if running else UNKNOWN, justify="right"),
        Text(human_duration(eta) if eta is not None else UNKNOWN, justify="right"),
        record.sinks_label,
        tables_cell(tuple(table.table for table in record.tables)),
    )


def display_order(statuses: Sequence[BackfillStatus]) -> list[BackfillStatus]:
    """The running one, those waiting their turn (oldest request first, as the engine lists
    and runs them), the paused ones, then the finished ones, newest first."""

    def place(status: BackfillStatus) -> tuple[int, float]:
        record = status.record
        if record.state in BACKFILL_FINISHED:
            return (FINISHED_PLACE, -record.requested_at)
        return (RUN_ORDER.get(record.state, WAITING_PLACE), 0.0)

    return sorted(statuses, key=place)[:TABLE_ROWS]


def backfill_detail(status: BackfillStatus) -> Content:
    """Everything known of one backfill on a line: why it stopped, its where clause, where it
    sends, each table's progress, when it was asked for."""
    record = status.record
    parts: list[Content | str | tuple[str, str]] = [(record.id, "bold")]
    if record.detail:
        parts += [": ", (record.detail, "red" if record.state == BackfillState.FAILED else "")]
    if record.where:
        parts += [" · where ", (record.where, "bold")]
    parts.append(f" · to {', '.join(record.sinks) or 'every enabled sink'}")
    for table in record.tables:
        rows = thousands(table.rows)
        if table.done:
            parts += [f" · {table.table} ", ("✓", "green"), f" {rows}"]
        else:
            estimate = thousands(max(table.estimate, table.rows))
            parts.append(f" · {table.table} {rows} of ~{estimate}")
    parts.append(f" · requested {utc_time(record.requested_at)}")
    return Content.assemble(*parts)


def running_backfill(statuses: Sequence[BackfillStatus]) -> Content | None:
    """``backfill 3f2a1b9c 43% · 1,250 rows/s`` for the status bar, while one runs."""
    status = next((s for s in statuses if s.record.state == BackfillState.RUNNING), None)
    if status is None:
        return None
    percent = status.record.percent
    done = f"{percent}%" if percent is not None else f"{thousands(status.record.rows)} rows"
    return Content.assemble(
        "backfill ",
        (status.record.id, "bold"),
        " ",
        (done, "bold $accent"),
        f" · {thousands(round(status.rows_per_sec))} rows/s",
    )


class BackfillsPane(Pane):
    """In ``display_order``; the line below the table says all of the selected backfill."""

    NUMBER = 5
    TITLE = "Backfills"
    BINDINGS = [
        Binding(
            "n",
            "backfill_command('start')",
            "New",
            tooltip="Start a backfill: tables, sinks, an optional where clause",
        ),
        Binding(
            "space",
            "toggle_backfill_pause",
            "Pause",
            key_display="␣",
            tooltip="Pause or resume the backfill",
        ),
        Binding(
            "x",
            "backfill_command('cancel')",
            "Cancel",
            tooltip="Cancel the backfill (asks first)",
        ),
        # Still the screen's key here, kept out of this footer: with the keys above and the
        # app's, it would run past 80 columns.
        Binding("slash", "screen.filter", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._statuses: dict[str, BackfillStatus] = {}
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        yield KeyedTable()
        yield LiveStatic(id="backfill-detail", classes="detail-line")

    @property
    def focus_target(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_target.set_columns(BACKFILL_COLUMNS)

    def show_readings(self, readings: Readings) -> None:
        shown = display_order(readings.backfills)
        self._statuses = {status.record.id: status for status in shown}
        table = self.focus_target
        selected = table.selected_key
        table.sync(
            {key: backfill_row(status) for key, status in self._statuses.items()}, in_order=True
        )
        if selected in self._statuses:
            table.select_key(selected)
        self._show_detail(table.selected_key)
        running = sum(s.record.state == BackfillState.RUNNING for s in shown)
        count = f"{len(shown)} backfill{'' if len(shown) == 1 else 's'}"
        subtitle = f"{count} · {running} running" if shown else "no backfills · n starts one"
        if subtitle != self._subtitle:
            self._subtitle = subtitle
            self.border_subtitle = subtitle

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(str(event.row_key.value))

    def _show_detail(self, key: str | None) -> None:
        status = self._statuses.get(key or "")
        detail = Content("") if status is None else backfill_detail(status)
        self.query_one("#backfill-detail", LiveStatic).show(detail)

    def selected(self) -> BackfillStatus | None:
        status = self._statuses.get(self.focus_target.selected_key or "")
        if status is None:
            self.notify("No backfill selected", severity="warning")
        return status

    def action_backfill_command(self, kind: str) -> None:
        if kind == "start":
            self.post_message(BackfillCommand("start"))
            return
        status = self.selected()
        if status is not None:
            self.post_message(BackfillCommand(kind, status.record.id))

    def action_toggle_backfill_pause(self) -> None:
        status = self.selected()
        if status is not None:
            paused = status.record.state == BackfillState.PAUSED
            self.post_message(BackfillCommand("resume" if paused else "pause", status.record.id))
