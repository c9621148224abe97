"""The Sinks pane: one row per running sink, and the controls every sink-row pane shares."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable

from wal2http_tui.delivery.activity import SinkSnapshot, SinkState
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.marks import sink_state_cell
from wal2http_tui.tui.messages import SinkCommand
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.pane import Pane
from wal2http_tui.tui.units import UNKNOWN, milliseconds, thousands

ERROR_WIDTH = 80
SINK_COLUMNS = [
    "sink",
    "state",
    "delivered",
    "failed",
    "dead",
    "queue",
    "sending",  # requests in flight, of the most the sink may have
    "HTTP",
    "p50 / p99",
    "receives",
    "kind",
    "target",
    "last error",
]
# kept in this order when the pane is too narrow for all; the detail line under the table shows
# the selected sink's target and last error whatever the width
SINK_COLUMNS_KEPT = [
    "sink",
    "state",
    "delivered",
    "failed",
    "queue",
    "p50 / p99",
    "dead",
    "sending",
    "HTTP",
    "receives",
    "kind",
    "target",
    "last error",
]


def _count(value: int, style: str) -> Text:
    return Text(thousands(value), style=style if value else "", justify="right")


def sink_row(sink: SinkSnapshot) -> Row:
    status = UNKNOWN if sink.last_status is None else str(sink.last_status)
    status_style = "red" if sink.last_status is not None and sink.last_status >= 400 else ""
    return (
        Text(sink.name, style="bold"),
        sink_state_cell(sink.state),
        _count(sink.delivered, "green"),
        _count(sink.failed, "red"),
        _count(sink.dead_lettered, "magenta"),
        Text(thousands(sink.queue_depth), justify="right"),
        Text(f"{sink.in_flight}/{sink.max_in_flight}", justify="right"),
        Text(status, style=status_style, justify="right"),
        f"{milliseconds(sink.latency_p50_ms)} / {milliseconds(sink.latency_p99_ms)}",
        sink.receives,
        sink.kind,
        sink.target,
        Text(sink.last_error[:ERROR_WIDTH], style="red"),
    )


def sink_detail(sink: SinkSnapshot) -> Content:
    """The selected sink's line under the table: where it sends, and its last error."""
    parts: list[str | tuple[str, str]] = [(sink.name, "bold"), f" {sink.kind} → {sink.target}"]
    if sink.last_error:
        parts += [" · last error: ", (sink.last_error, "red")]
    return Content.assemble(*parts)


class SinkControls(Pane):
    """Retry now, skip to dead letters, pause or resume: on the sink of the selected row."""

    BINDINGS = [
        Binding(
            "r", "sink_command('retry_now')", "Retry", tooltip="Retry the waiting delivery now"
        ),
        Binding(
            "x",
            "sink_command('skip_to_dead_letters')",
            "Skip",
            tooltip="Skip the waiting delivery to the dead letters (asks first)",
        ),
        Binding(
            "space",
            "toggle_sink_pause",
            "Pause sink",
            key_display="␣",  # "space" would push the app's keys past 80 columns
            tooltip="Pause or resume the sink",
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sink_states: dict[str, str] = {}

    @property
    def focus_target(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def selected_sink(self) -> str | None:
        """The sink name of the selected row (row keys are sink names)."""
        return self.focus_target.selected_key

    def remember_sinks(self, readings: Readings) -> None:
        self._sink_states = {sink.name: sink.state for sink in readings.sinks}

    def action_sink_command(self, action: str) -> None:
        sink = self.selected_sink()
        if sink is None:
            self.notify("No sink selected", severity="warning")
            return
        self.post_message(SinkCommand(action, sink))

    def action_toggle_sink_pause(self) -> None:
        sink = self.selected_sink()
        paused = self._sink_states.get(sink or "") == SinkState.PAUSED
        self.action_sink_command("resume_sink" if paused else "pause_sink")


class SinksPane(SinkControls):
    NUMBER = 2
    TITLE = "Sinks"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._sinks: dict[str, SinkSnapshot] = {}

    def compose(self) -> ComposeResult:
        yield KeyedTable()
        yield LiveStatic(id="sink-detail", classes="detail-line")

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_target.set_columns(SINK_COLUMNS, keep=SINK_COLUMNS_KEPT)

    def show_readings(self, readings: Readings) -> None:
        self.remember_sinks(readings)
        self._sinks = {sink.name: sink for sink in readings.sinks}
        self.focus_target.sync({name: sink_row(sink) for name, sink in self._sinks.items()})
        self._show_detail(self.selected_sink())

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(str(event.row_key.value))

    def _show_detail(self, name: str | None) -> None:
        sink = self._sinks.get(name or "")
        self.query_one("#sink-detail", LiveStatic).show(
            Content("") if sink is None else sink_detail(sink)
        )
