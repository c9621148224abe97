"""What the app does when a pane or the command palette asks to start or steer a backfill
(``BackfillCommand``): the read-only rule, the start dialog, a confirmation before a cancel, the
engine's blocking calls off the UI thread, and its refusals shown as it words them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from textual.app import App, SystemCommand

from wal2http_tui.engine.controls import (
    BACKFILL_FINISHED,
    BackfillState,
    BackfillStatus,
    EngineControls,
)
from wal2http_tui.tui.dialogs import ConfirmScreen, if_confirmed
from wal2http_tui.tui.messages import BackfillCommand
from wal2http_tui.tui.read_only import refuse_in_read_only
from wal2http_tui.tui.start_backfill import BackfillRequest, StartBackfillScreen

# What each command is called where read-only refuses it, and what it says once asked for.
DOING = {
    "start": "Starting a backfill",
    "pause": "Pausing a backfill",
    "resume": "Resuming a backfill",
    "cancel": "Cancelling a backfill",
}
ASKED = {
    "pause": "Backfill {id}: pause asked for",
    "resume": "Backfill {id}: resume asked for",
    "cancel": "Backfill {id}: cancel asked for",
}


class BackfillActions:
    """The app's half of the Backfills pane; ``poll`` reads the engine again after a change."""

    def __init__(
        self,
        app: App[Any],
        engine: EngineControls,
        *,
        read_only: bool,
        poll: Callable[[], None],
    ) -> None:
        self.app = app
        self.engine = engine
        self.read_only = read_only
        self.poll = poll

    def handle(self, command: BackfillCommand) -> None:
        if refuse_in_read_only(self.app, DOING[command.kind], read_only=self.read_only):
            return
        if command.kind == "start":
            sinks = [sink.name for sink in self.engine.config.enabled_sinks]
            dialog = StartBackfillScreen(self.engine.backfill_tables(), sinks)
            self.app.push_screen(dialog, self._start)
        elif command.kind == "cancel":
            self.app.push_screen(
                ConfirmScreen(
                    f"Cancel backfill {command.backfill_id}?",
                    "The rows sent so far stay sent; no more are read. A cancelled backfill "
                    "cannot be resumed: a new one starts again from the first row.",
                    confirm="Cancel backfill",
                    decline="Keep it",
                ),
                if_confirmed(lambda: self._control("cancel", command.backfill_id)),
            )
        else:
            self._control(command.kind, command.backfill_id)

    def _start(self, request: BackfillRequest | None) -> None:
        if request is not None:
            self.app.run_worker(self._starting(request), group="backfill")

    async def _starting(self, request: BackfillRequest) -> None:
        tables = ", ".join(request.tables)
        self.app.notify(f"Asking for a backfill of {tables}…")
        try:
            backfill_id = await asyncio.to_thread(
                self.engine.start_backfill, request.tables, request.sinks, request.where
            )
        except Exception as exc:  # BackfillRefused says why and the fix; others, what broke
            self.app.notify(str(exc), title="Backfill not started", severity="error")
            return
        self.app.notify(f"Backfill {backfill_id} asked for: {tables}")
        self.poll()

    def _control(self, kind: str, backfill_id: str) -> None:
        self.app.run_worker(self._controlling(kind, backfill_id), group="backfill")

    async def _controlling(self, kind: str, backfill_id: str) -> None:
        try:
            await asyncio.to_thread(self.engine.control_backfill, kind, backfill_id)
        except Exception as exc:  # BackfillRefused says why; others, what broke
            self.app.notify(str(exc), title=f"Backfill {backfill_id} not changed", severity="error")
            return
        self.app.notify(ASKED[kind].format(id=backfill_id))
        self.poll()

    def commands(self, statuses: Sequence[BackfillStatus]) -> Iterable[SystemCommand]:
        """The command palette's: start one, and pause or resume and cancel each unfinished."""
        post = self.app.post_message
        yield SystemCommand(
            "Start a backfill",
            "Tables, sinks, an optional where clause (key n in Backfills)",
            partial(post, BackfillCommand("start")),
        )
        for status in statuses:
            record = status.record
            if record.state in BACKFILL_FINISHED:
                continue
            toggle = "resume" if record.state == BackfillState.PAUSED else "pause"
            about = (
                f"Backfill of {', '.join(table.table for table in record.tables)} ({record.state})"
            )
            for kind in (toggle, "cancel"):
                yield SystemCommand(
                    f"{kind.capitalize()} backfill: {record.id}",
                    about,
                    partial(post, BackfillCommand(kind, record.id)),
                )
