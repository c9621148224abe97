"""The Retries pane: deliveries waiting for their next attempt, one per sink at most."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from wal2http_tui.delivery.activity import RetryInfo
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.messages import Inspect
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.sinks import ERROR_WIDTH, SinkControls
from wal2http_tui.tui.subjects import retry_subject
from wal2http_tui.tui.units import UNKNOWN, countdown

RETRY_COLUMNS = ["sink", "event", "table / op", "attempt", "next", "last error"]
# kept in this order when the pane is too narrow for all (enter shows everything)
RETRY_COLUMNS_KEPT = ["sink", "event", "attempt", "next", "table / op", "last error"]


def attempt_text(retry: RetryInfo) -> str:
    """``3 of 6``; ``3 of ∞`` when the sink retries until it works (on_failure = "block")."""
    return f"{retry.attempt} of {retry.max_attempts if retry.max_attempts else '∞'}"


SHORT_ID = 8  # the inspector (enter) shows the whole ids


def event_text(retry: RetryInfo) -> str:
    """The start of the first event id, and how many more events the batch holds."""
    first = retry.event_ids[0][:SHORT_ID] + "…" if retry.event_ids else UNKNOWN
    more = len(retry.event_ids) - 1
    return f"{first} +{more}" if more > 0 else first


def retry_key(retry: RetryInfo) -> str:
    """A row per waiting delivery: a sink delivering by key may have several."""
    return f"{retry.sink}\x00{retry.event_ids[0] if retry.event_ids else ''}"


def retry_row(retry: RetryInfo, now: float) -> Row:
    return (
        Text(retry.sink, style="bold"),
        event_text(retry),
        retry.table_op,
        Text(attempt_text(retry), style="yellow", justify="right"),
        Text(countdown(retry.next_attempt_at, now), justify="right"),
        Text(retry.last_error[:ERROR_WIDTH], style="red"),
    )


class RetryTable(KeyedTable):
    BINDINGS = [Binding("enter", "select_cursor", "Inspect")]


class RetriesPane(SinkControls):
    NUMBER = 3
    TITLE = "Retries"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._retries: dict[str, RetryInfo] = {}  # by row key
        self._now = 0.0

    def compose(self) -> ComposeResult:
        yield RetryTable()

    def on_mount(self) -> None:
        super().on_mount()
        self.focus_target.set_columns(RETRY_COLUMNS, keep=RETRY_COLUMNS_KEPT)

    def show_readings(self, readings: Readings) -> None:
        self.remember_sinks(readings)
        self._now = readings.now
        self._retries = {retry_key(retry): retry for retry in readings.retries}
        rows = {key: retry_row(retry, readings.now) for key, retry in self._retries.items()}
        self.focus_target.sync(rows)
        subtitle = f"{len(rows)} waiting" if rows else "nothing waiting"
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def selected_sink(self) -> str | None:
        retry = self._retries.get(self.focus_target.selected_key or "")
        return None if retry is None else retry.sink

    @on(DataTable.RowSelected)
    def _inspect(self, event: DataTable.RowSelected) -> None:
        event.stop()
        retry = self._retries.get(str(event.row_key.value))
        if retry is not None:
            self.post_message(Inspect(retry_subject(retry, self._now)))
