"""The "add a sink" dialog: the kind and the keys a sink cannot do without.

What is typed is tried on a copy of the document first; the loader's message for the new sink
is shown here and nothing is added until it is valid.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from wal2http_tui.config.document import ConfigDocument
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.keys import format_key_path
from wal2http_tui.config.model import SINK_KINDS

REQUIRED_KEYS = {
    "http": ("url",),
    "hook0": ("api_url", "api_key", "application_id"),
}
ALL_REQUIRED = tuple(dict.fromkeys(key for keys in REQUIRED_KEYS.values() for key in keys))
PLACEHOLDERS = {
    "name": "a name (letters, digits, - _ .); empty for the kind's name",
    "url": "https://receiver.example/webhooks",
    "api_url": "https://app.hook0.com/api/v1",
    "api_key": "${HOOK0_API_KEY} (keep secrets in the environment)",
    "application_id": "the application's UUID",
}
NewSink = tuple[str, dict[str, Any]]


def try_new_sink(document: ConfigDocument, kind: str, values: dict[str, Any]) -> str | None:
    """Why this sink cannot be added as it is (the loader's message), or None."""
    trial = ConfigDocument(document.path, document.text, environ=document.environ)
    try:
        name = trial.add_sink(kind, values)
    except ValueError as exc:
        return str(exc)
    path = next(sink.path for sink in trial.sinks() if sink.name == name)
    try:
        trial.validate()
    except ConfigError as exc:
        if (exc.key or "").startswith(format_key_path(path)):
            return exc.message
    return None


class AddSinkScreen(ModalScreen[NewSink | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, document: ConfigDocument) -> None:
        super().__init__()
        self.document = document

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="add-sink"):
            yield Static("Add an event sink", classes="dialog-question")
            with Horizontal(classes="add-line"):
                yield Label("kind")
                yield Select(
                    [(kind, kind) for kind in SINK_KINDS],
                    value="http",
                    allow_blank=False,
                    compact=True,
                    id="kind",
                )
            for key in ("name", *ALL_REQUIRED):
                with Horizontal(classes="add-line", id=f"line-{key}"):
                    yield Label(key)
                    yield Input(
                        placeholder=PLACEHOLDERS[key],
                        password=key == "api_key",
                        compact=True,
                        id=key,
                    )
            yield Checkbox("enabled (delivers from the next transaction once applied)", True)
            yield Static(classes="dialog-detail", id="add-problem", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add", variant="primary", id="add")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._show_kind("http")
        self.query_one("#name", Input).focus()

    @property
    def kind(self) -> str:
        return str(self.query_one("#kind", Select).value)

    @on(Select.Changed, "#kind")
    def _kind_changed(self) -> None:
        self._show_kind(self.kind)

    def _show_kind(self, kind: str) -> None:
        for key in ALL_REQUIRED:
            self.query_one(f"#line-{key}").display = key in REQUIRED_KEYS[kind]

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key in ("name", *REQUIRED_KEYS[self.kind]):
            text = self.query_one(f"#{key}", Input).value.strip()
            if text:
                values[key] = text
        values["enabled"] = self.query_one(Checkbox).value
        return values

    @on(Button.Pressed, "#add")
    @on(Input.Submitted)
    def _add(self) -> None:
        values = self.values()
        problem = try_new_sink(self.document, self.kind, values)
        if problem is not None:
            self.query_one("#add-problem", Static).update(problem)
            return
        self.dismiss((self.kind, values))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
