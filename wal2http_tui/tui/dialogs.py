"""Small modal dialogs: confirm an action that cannot be undone or that restarts replication."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True for yes; ``n``, escape or the other button (``decline``, "Cancel"
    unless the action is itself a cancel) dismiss with False."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self,
        question: str,
        detail: str = "",
        *,
        confirm: str = "Yes",
        decline: str = "Cancel",
        listing: Content | None = None,
    ) -> None:
        """``listing``: a long text to read before answering (a diff), shown scrollable."""
        super().__init__()
        self.question = question
        self.detail = detail
        self.confirm = confirm
        self.decline = decline
        self.listing = listing

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -with-listing" if self.listing else "dialog"):
            yield Static(self.question, classes="dialog-question")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            if self.listing is not None:
                with VerticalScroll(classes="dialog-listing"):
                    yield Static(self.listing)
            with Horizontal(classes="dialog-buttons"):
                # Content, not markup: "[y]" would read as a style and vanish
                yield Button(Content(f"{self.confirm} [y]"), variant="error", id="yes")
                yield Button(Content(f"{self.decline} [n]"), id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def if_confirmed(action: Callable[[], object]) -> Callable[[bool | None], Awaitable[None]]:
    """A ``ConfirmScreen`` callback that runs ``action`` on yes and nothing else.

    What ``action`` returns is awaited when it can be (a coroutine, ``dismiss``), as Textual
    awaits what a screen's callback returns, and dropped otherwise (a worker runs on its own).
    """

    async def answered(yes: bool | None) -> None:
        if yes:
            outcome = action()
            if isawaitable(outcome):
                await outcome

    return answered
