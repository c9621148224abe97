"""The full keymap (``?`` or F1), built from the bindings themselves so it cannot drift."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

KeymapSection = tuple[str, Sequence[BindingType]]


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]

    def __init__(self, sections: Sequence[KeymapSection], intro: Content) -> None:
        super().__init__()
        self.sections = sections
        self.intro = intro

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.intro, id="help-intro")
            yield Static(self._keymap())

    def _keymap(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True, min_width=14)
        table.add_column()
        for title, bindings in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for keys, description in self._rows(bindings):
                table.add_row(keys, description)
            table.add_row("", "")
        return table

    def _rows(self, bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
        """One row per action: its keys together (``? / f1``)."""
        keys: dict[tuple[str, str], list[str]] = {}
        for binding in Binding.make_bindings(bindings):
            if binding.description:
                display = self.app.get_key_display(binding)
                text = binding.tooltip or binding.description
                keys.setdefault((binding.action, text), []).append(display)
        return [(" / ".join(shown), text) for (_, text), shown in keys.items()]
