"""A pane of the main screen: a bordered box with a number (digits focus it) and a title."""

from __future__ import annotations

from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget

from wal2http_tui.tui.monitor import Readings


class Pane(Vertical):
    """Subclasses set NUMBER and TITLE, and name the widget that takes focus."""

    DEFAULT_CLASSES = "pane"
    NUMBER = 0
    TITLE = ""

    def on_mount(self) -> None:
        self.border_title = Content.assemble((str(self.NUMBER), "bold $accent"), f" {self.TITLE}")

    @property
    def focus_target(self) -> Widget:
        raise NotImplementedError

    def show_readings(self, readings: Readings) -> None:
        raise NotImplementedError
