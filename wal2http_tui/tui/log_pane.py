"""The Log pane: the last lines of the engine log, appended as they come."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Log

from wal2http_tui.engine.controls import LOG_LINES
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.pane import Pane


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` that ``previous`` (the last reading) did not have.

    The engine keeps the last lines in a bounded buffer, without sequence numbers: ``current``
    is ``previous`` less its first few lines (once the buffer is full) plus the new ones. The
    fewest dropped lines that make them agree win.
    """
    for dropped in range(len(previous) + 1):
        kept = len(previous) - dropped
        if current[:kept] == previous[dropped:]:
            return current[kept:]
    return current


class LogPane(Pane):
    NUMBER = 4
    TITLE = "Log"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._previous: list[str] = []

    def compose(self) -> ComposeResult:
        yield Log(max_lines=LOG_LINES, auto_scroll=True)

    @property
    def focus_target(self) -> Log:
        return self.query_one(Log)

    def show_readings(self, readings: Readings) -> None:
        fresh = new_lines(self._previous, readings.log)
        self._previous = readings.log
        if fresh:
            self.focus_target.write_lines(fresh)
