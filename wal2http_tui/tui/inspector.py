"""The inspector: the delivery attempts that carried a transaction, a retry or a dead letter.

For each attempt: the payload exactly as sent (pretty-printed without touching a value, or raw
with ``v``), the request headers (the engine masks credentials before they reach the UI), the
status, latency and the receiver's response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from wal2http_tui.delivery.activity import AttemptRecord
from wal2http_tui.tui.json_view import payload_content
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.messages import Subject
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.units import UNKNOWN, milliseconds, utc_clock

if TYPE_CHECKING:
    from wal2http_tui.engine.controls import EngineControls

ATTEMPT_COLUMNS = ["sink", "#", "at (UTC)", "result", "status", "latency", "error"]
ERROR_WIDTH = 60


def attempt_key(attempt: AttemptRecord) -> str:
    return f"{attempt.sink}/{attempt.at!r}/{attempt.attempt}"


def attempt_row(attempt: AttemptRecord) -> Row:
    result = Text("ok", style="green") if attempt.ok else Text("failed", style="bold red")
    return (
        Text(attempt.sink, style="bold"),
        Text(str(attempt.attempt), justify="right"),
        utc_clock(attempt.at),
        result,
        UNKNOWN if attempt.status is None else str(attempt.status),
        Text(milliseconds(attempt.latency_ms), justify="right"),
        Text(attempt.error[:ERROR_WIDTH], style="red"),
    )


def headers_content(headers: dict[str, str]) -> Content:
    if not headers:
        return Content.styled("no request headers recorded", "$text-muted")
    width = max(len(name) for name in headers) + 2
    lines = [
        Content.assemble((f"{name}:".ljust(width), "bold"), value)
        for name, value in headers.items()
    ]
    return Content("\n").join(lines)


def response_content(attempt: AttemptRecord) -> Content:
    status = "no HTTP answer" if attempt.status is None else f"HTTP {attempt.status}"
    parts: list[Content | str | tuple[str, str]] = [
        (status, "bold $success" if attempt.ok else "bold $error"),
        f" after {milliseconds(attempt.latency_ms)}",
    ]
    if attempt.error:
        parts += ["\n", (attempt.error, "$error")]
    parts.append("\n\n")
    if attempt.response_body:
        parts.append(payload_content(attempt.response_body.encode()))
    else:
        parts.append(("(empty body)", "$text-muted"))
    return Content.assemble(*parts)


NO_ATTEMPT = Content.styled(
    "No delivery attempt recorded for these events (the engine keeps the last ones only).",
    "$text-muted",
)


class InspectorScreen(Screen):
    CSS_PATH = "inspector.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("v", "toggle_raw", "Raw / pretty"),
    ]

    def __init__(self, engine: EngineControls, subject: Subject) -> None:
        super().__init__()
        self.engine = engine
        self.subject = subject
        self.raw = False
        self._attempts: dict[str, AttemptRecord] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._heading(), id="inspector-heading")
        yield KeyedTable(id="attempts")
        with TabbedContent(id="inspector-tabs"):
            with TabPane("Payload", id="tab-payload"), VerticalScroll():
                yield Static(id="payload")
            with TabPane("Request headers", id="tab-headers"), VerticalScroll():
                yield Static(id="headers")
            with TabPane("Response", id="tab-response"), VerticalScroll():
                yield Static(id="response")
        yield Footer(compact=True)

    def _heading(self) -> Content:
        lines: list[Content | str | tuple[str, str]] = [(self.subject.title, "bold $accent")]
        for label, value in self.subject.facts:
            lines += ["\n", (f"{label}: ", "$text-muted"), value]
        if self.subject.note:
            lines += ["\n", (self.subject.note, "$warning")]
        return Content.assemble(*lines)

    def on_mount(self) -> None:
        table = self.query_one("#attempts", KeyedTable)
        table.set_columns(ATTEMPT_COLUMNS)
        self._refresh_attempts()
        table.focus()

    def show_readings(self, readings: Readings) -> None:
        self._refresh_attempts()

    def _refresh_attempts(self) -> None:
        ids = self.subject.event_ids
        attempts = [a for a in self.engine.attempts() if not ids.isdisjoint(a.event_ids)]
        self._attempts = {attempt_key(a): a for a in attempts}
        table = self.query_one("#attempts", KeyedTable)
        following = table.row_count == 0 or table.cursor_row == table.row_count - 1
        added = table.sync({key: attempt_row(a) for key, a in self._attempts.items()})
        if added and following:
            table.move_cursor(row=table.row_count - 1)
        if not self._attempts:
            self._show_attempt(None)

    @on(DataTable.RowHighlighted, "#attempts")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_attempt(self._attempts.get(str(event.row_key.value)))

    def _show_attempt(self, attempt: AttemptRecord | None) -> None:
        payload = attempt.payload if attempt is not None else self.subject.payload
        body = NO_ATTEMPT if payload is None else payload_content(payload, raw=self.raw)
        self.query_one("#payload", Static).update(body)
        headers = attempt.request_headers if attempt is not None else {}
        self.query_one("#headers", Static).update(headers_content(headers))
        response = NO_ATTEMPT if attempt is None else response_content(attempt)
        self.query_one("#response", Static).update(response)

    def action_toggle_raw(self) -> None:
        self.raw = not self.raw
        self._show_attempt(
            self._attempts.get(self.query_one("#attempts", KeyedTable).selected_key or "")
        )
