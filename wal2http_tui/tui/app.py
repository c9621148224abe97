"""The Textual application: composes the screens, polls the engine, applies operator intents.

``run_app`` is what the CLI calls. The app starts the engine when it is not started yet, reads
it every ``POLL_SECONDS`` (``monitor.py``) and renders the live screens in one batch. Quitting
stops the engine off the UI thread, showing that it is stopping, then exits.

The engine is anything that keeps ``EngineControls``. Screens get what they need when the app
opens them (the engine, whether it is read-only, the last readings), live screens get each new
reading from ``poll``, and what only the app does (opening the inspector, a sink control) they
ask for with a message: none of them reaches back into the app.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import Screen

from wal2http_tui.config.document import ConfigDocument
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.delivery.activity import SinkState
from wal2http_tui.engine.controls import EngineControls, EngineUnreachable
from wal2http_tui.engine.remote import RemoteEngine
from wal2http_tui.replication.state import EngineState
from wal2http_tui.tui.backfill_actions import BackfillActions
from wal2http_tui.tui.backfills import BackfillsPane
from wal2http_tui.tui.dead_letters import DeadLettersScreen, DeadLetterTable
from wal2http_tui.tui.dialogs import ConfirmScreen, if_confirmed
from wal2http_tui.tui.editor import ConfigEditorScreen, SectionList
from wal2http_tui.tui.help import HelpScreen, KeymapSection
from wal2http_tui.tui.inspector import InspectorScreen
from wal2http_tui.tui.main_screen import MainScreen
from wal2http_tui.tui.marks import marks_legend_lines
from wal2http_tui.tui.messages import BackfillCommand, EngineStateChanged, Inspect, SinkCommand
from wal2http_tui.tui.monitor import Monitor, Readings, ShowsReadings
from wal2http_tui.tui.read_only import refuse_in_read_only
from wal2http_tui.tui.retries import RetryTable
from wal2http_tui.tui.sinks import SinkControls
from wal2http_tui.tui.slot_health import SlotHealthScreen
from wal2http_tui.tui.start_backfill import StartBackfillScreen
from wal2http_tui.tui.transactions import TransactionsPane, TransactionTable

POLL_SECONDS = 0.5

# What each sink control says once the engine took it.
SINK_COMMAND_DONE = {
    "retry_now": "Sink {sink}: retrying now",
    "skip_to_dead_letters": "Sink {sink}: the waiting delivery goes to the dead letters",
    "pause_sink": "Sink {sink} paused",
    "resume_sink": "Sink {sink} resumed",
}
# What each sink control is, as a refusal in read-only mode names it.
SINK_COMMAND_WHAT = {
    "retry_now": "Retrying a delivery now",
    "skip_to_dead_letters": "Skipping a delivery to the dead letters",
    "pause_sink": "Pausing a sink",
    "resume_sink": "Resuming a sink",
}
# What a sink control says when the engine found nothing to apply it to.
SINK_COMMAND_NOT_TAKEN = {
    "skip_to_dead_letters": "Sink {sink} has no delivery waiting for a retry: nothing to skip",
}
TROUBLE_STATES = (EngineState.ERROR, EngineState.RECONNECTING, EngineState.STANDBY)
# Global keys that would drop the editor's unsaved work, or type into it.
NOT_IN_EDITOR = ("quit", "detach", "toggle_pause", "edit_config", "slot_health", "dead_letters")
# The screens holding work those keys would drop: the editor, the start of a backfill.
EDITING_SCREENS = (ConfigEditorScreen, StartBackfillScreen)


SCREEN_OF_ACTION: dict[str, type[Screen]] = {
    "slot_health": SlotHealthScreen,
    "dead_letters": DeadLettersScreen,
}


class Wal2HttpApp(App[None]):
    """The operator's view of one engine and its configuration file."""

    TITLE = "wal2http-tui"
    DEFAULT_MODE = "main"  # added in __init__: as a mode (not the default screen) its CSS loads
    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit: stop the engine (sinks drain), then exit"),
        # attached to a running engine (wal2http-tui attach), q detaches instead: check_action
        Binding("q", "detach", "Detach", tooltip="Detach: close this UI; the engine goes on"),
        Binding("p", "toggle_pause", "Pause", tooltip="Pause or resume replication"),
        Binding(
            "e", "edit_config", "Config", tooltip="Edit, test, save and apply the configuration"
        ),
        Binding("s", "slot_health", "Slot", tooltip="Slot health: retained WAL, wal_status"),
        Binding("d", "dead_letters", "Dead letters", tooltip="Browse, replay or drop dead letters"),
        Binding("question_mark,f1", "help", "Help", tooltip="This keymap"),
        Binding("colon", "command_palette", "Commands", show=False, tooltip="Command palette"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+q", "detach", "Detach", show=False, priority=True),
    ]

    def __init__(
        self,
        engine: EngineControls,
        config_path: Path,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.add_mode("main", lambda: MainScreen(read_only=read_only))
        self.engine = engine
        self.config_path = Path(config_path)
        self.read_only = read_only
        self.clock = clock
        self.monitor = Monitor(engine)
        self.readings: Readings | None = None
        self._reading = False  # a read of a remote engine is under way
        self.stopping = False
        self.engine_stopped = False
        self.gap_asked = ""  # the gap refusal the operator was last asked about
        self.backfill_actions = BackfillActions(self, engine, read_only=read_only, poll=self.poll)

    def on_mount(self) -> None:
        if self.engine.snapshot().state == EngineState.STOPPED:
            self.engine.start()
        self.call_after_refresh(self.poll)
        self.set_interval(POLL_SECONDS, self.poll)

    # -- polling -------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read the engine once and render every live screen in one batch. An engine in
        another process is read on a thread: its answers take a round trip each, through a
        busy process, and keys must not wait for them."""
        if not self.is_running:
            return  # shutting down: the screens are being removed (timers run on their own)
        if isinstance(self.engine, RemoteEngine):
            if not self._reading:
                self._reading = True
                self.read_remote_engine()
            return
        self.render_readings(self.monitor.read(self.clock(), stopping=self.stopping))

    @work(thread=True, group="poll", exit_on_error=False)
    def read_remote_engine(self) -> None:
        try:
            readings = self.monitor.read(self.clock(), stopping=self.stopping)
        finally:
            self._reading = False
        if self.is_running:
            self.call_from_thread(self.render_readings, readings)

    def render_readings(self, readings: Readings) -> None:
        if not self.is_running:
            return
        previous = self.readings.state.state if self.readings is not None else None
        self.readings = readings
        if readings.state.gap_refused and readings.state.gap_refused != self.gap_asked:
            self.gap_asked = readings.state.gap_refused
            self.ask_about_the_gap(readings.state.gap_refused)
        if readings.state.state != previous:
            state = readings.state
            self.post_message(EngineStateChanged(previous, state.state, state.detail))
        with self.batch_update():
            for screen in self.screen_stack:
                # A screen just pushed renders the latest readings in its own on_mount.
                if isinstance(screen, ShowsReadings) and screen.is_mounted:
                    screen.show_readings(readings)

    def on_engine_state_changed(self, message: EngineStateChanged) -> None:
        if self.stopping or message.previous is None:
            return
        if message.current == EngineState.ERROR:
            error = self.readings.state.last_error if self.readings else ""
            self.notify(error or message.detail, title="Replication error", severity="error")
        elif message.current in TROUBLE_STATES:
            self.notify(message.detail, title=f"Replication {message.current}", severity="warning")
        elif message.previous in TROUBLE_STATES and message.current == EngineState.STREAMING:
            self.notify("Replication is streaming again")

    def ask_about_the_gap(self, refusal: str) -> None:
        """Streaming was refused because changes are missing: say why, and let the operator
        start again knowingly (the gap is recorded), unless the app is read-only."""
        if self.read_only:
            self.notify(
                f"{refusal} (read-only: accept it with `wal2http-tui run --accept-gap`)",
                title="Not streaming: changes are missing",
                severity="error",
                timeout=60,
            )
            return
        self.push_screen(
            ConfirmScreen(
                "Not streaming: changes are missing. Start again anyway?",
                f"{refusal}\n\nStarting anyway streams from where the slot is now and records "
                "the gap in the state file; the receivers must then be resynchronised.",
                confirm="Start anyway",
            ),
            if_confirmed(self.accept_gap),
        )

    @work(group="gap", exclusive=True)
    async def accept_gap(self) -> None:
        await asyncio.to_thread(self.engine.accept_gap)
        self.notify("Starting again: the gap is recorded")
        self.poll()

    # -- rules ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        attached = self.engine.attached_to is not None
        if (action == "quit" and attached) or (action == "detach" and not attached):
            return False
        if action in NOT_IN_EDITOR and isinstance(self.screen, EDITING_SCREENS):
            return False
        if isinstance(self.screen, SCREEN_OF_ACTION.get(action, ())):
            return False  # already there
        return not (self.stopping and action in NOT_IN_EDITOR)

    # -- actions -------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.poll()
        self.stop_engine()

    async def action_detach(self) -> None:
        """Attached: close this UI (``stop`` only disconnects); the engine goes on."""
        await self.action_quit()

    @work(group="quit", exclusive=True)
    async def stop_engine(self) -> None:
        await asyncio.to_thread(self.engine.stop)
        self.engine_stopped = True
        self.exit()

    def action_toggle_pause(self) -> None:
        if refuse_in_read_only(self, "Pausing or resuming replication", read_only=self.read_only):
            return
        try:
            if self.engine.paused:
                self.engine.resume()
                self.notify("Replication resumed")
            else:
                self.engine.pause()
                self.notify("Replication paused: PostgreSQL keeps the WAL for the slot meanwhile")
        except (EngineUnreachable, PermissionError) as exc:
            self.notify(str(exc), title="Not done", severity="error")
        self.poll()

    def _show(self, screen: Screen) -> None:
        """Open a screen from the main one (never stacking screens of the same kind)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(screen)

    def action_edit_config(self) -> None:
        """The file validated with the engine's values of its ${VAR}s (an attached UI's shell
        may have none of them), this process's own environment for the rest. Reading them is
        a file read or one local round trip: quick enough for the UI thread."""
        try:
            engine_env = self.engine.config_environment()
        except EngineUnreachable as exc:
            self.notify(str(exc), title="Cannot open the configuration", severity="error")
            return
        try:
            document = ConfigDocument.open(self.config_path, environ={**os.environ, **engine_env})
        except ConfigError as exc:
            self.notify(str(exc), title="Cannot open the configuration", severity="error")
            return
        self._show(ConfigEditorScreen(document, self.engine, read_only=self.read_only))

    def action_slot_health(self) -> None:
        self._show(SlotHealthScreen(self.readings))

    def action_dead_letters(self) -> None:
        self._show(DeadLettersScreen(self.engine, read_only=self.read_only))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            intro = help_intro(self.read_only, self.engine.attached_to)
            self.push_screen(
                HelpScreen(keymap(attached=self.engine.attached_to is not None), intro)
            )

    # -- intents from panes and screens ---------------------------------------------------------
    def on_inspect(self, message: Inspect) -> None:
        self.push_screen(InspectorScreen(self.engine, message.subject))

    def on_sink_command(self, message: SinkCommand) -> None:
        what = SINK_COMMAND_WHAT[message.action]
        if refuse_in_read_only(self, what, read_only=self.read_only):
            return
        if message.action != "skip_to_dead_letters":
            self.sink_command(message.action, message.sink)
            return
        self.push_screen(
            ConfirmScreen(
                f"Skip the waiting delivery of sink {message.sink} to the dead letters?",
                "The sink stops retrying it and goes on with the next events; the dead letter "
                "can be replayed later (d).",
                confirm="Skip",
            ),
            if_confirmed(lambda: self.sink_command(message.action, message.sink)),
        )

    def sink_command(self, action: str, sink: str) -> None:
        try:
            taken = getattr(self.engine, action)(sink)
        except KeyError:
            self.notify(f"Sink {sink} is not running", severity="error")
            return
        except (EngineUnreachable, PermissionError) as exc:
            self.notify(str(exc), title="Not done", severity="error")
            return
        if taken is False:
            self.notify(SINK_COMMAND_NOT_TAKEN[action].format(sink=sink), severity="warning")
        else:
            self.notify(SINK_COMMAND_DONE[action].format(sink=sink))
        self.poll()

    def on_backfill_command(self, message: BackfillCommand) -> None:
        self.backfill_actions.handle(message)

    # -- command palette -----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action a key does here, then each sink's and backfill's controls, then
        Textual's own."""
        yield from self._key_commands(self.BINDINGS, self)
        yield from self._key_commands(screen.BINDINGS, screen)
        if isinstance(screen, ConfigEditorScreen):
            yield from self._key_commands(SectionList.BINDINGS, screen)
        for sink in self.readings.sinks if self.readings else []:
            pause = "resume_sink" if sink.state == SinkState.PAUSED else "pause_sink"
            for action, title in (
                ("retry_now", "Retry now"),
                ("skip_to_dead_letters", "Skip to dead letters"),
                (pause, "Resume sink" if pause == "resume_sink" else "Pause sink"),
            ):
                yield SystemCommand(
                    f"{title}: {sink.name}",
                    f"Sink {sink.name} ({sink.kind}, {sink.state})",
                    partial(self.post_message, SinkCommand(action, sink.name)),
                )
        yield from self.backfill_actions.commands(self.readings.backfills if self.readings else [])
        yield from super().get_system_commands(screen)

    def _key_commands(
        self, bindings: Iterable[BindingType], namespace: DOMNode
    ) -> Iterable[SystemCommand]:
        done: set[str] = set()
        for binding in Binding.make_bindings(bindings):
            if binding.action in done or binding.action == "command_palette":
                continue
            done.add(binding.action)
            if namespace is self and not self.check_action(binding.action, ()):
                continue
            yield SystemCommand(
                binding.tooltip or binding.description,
                f"key {self.get_key_display(binding)}",
                partial(self.run_action, binding.action, namespace),
            )


# The help's text is 73 cells wide on an 80-column terminal (84 at most, less its border,
# padding and scrollbar): the legend keeps each mark whole within that.
HELP_LEGEND_WIDTH = 72
KEYMAP: list[KeymapSection] = [
    ("Everywhere", [*Wal2HttpApp.BINDINGS, Binding("ctrl+p", "command_palette", "Commands")]),
    ("Main screen", [b for b in MainScreen.BINDINGS if b != MainScreen.HELP_KEY]),
    ("Transactions", TransactionsPane.BINDINGS + TransactionTable.BINDINGS),
    ("Sinks and Retries", SinkControls.BINDINGS + RetryTable.BINDINGS),
    ("Backfills", BackfillsPane.BINDINGS),
    ("Inspector", InspectorScreen.BINDINGS),
    ("Dead letters", DeadLettersScreen.BINDINGS + DeadLetterTable.BINDINGS),
    ("Slot health", SlotHealthScreen.BINDINGS),
    ("Config editor", ConfigEditorScreen.BINDINGS + SectionList.BINDINGS),
    ("Confirmations", ConfirmScreen.BINDINGS),
]


def keymap(*, attached: bool) -> list[KeymapSection]:
    """``KEYMAP`` with the one of quit and detach that q does here."""
    hidden = "quit" if attached else "detach"
    return [
        (title, [b for b in Binding.make_bindings(bindings) if b.action != hidden])
        for title, bindings in KEYMAP
    ]


def help_intro(read_only: bool, attached_to: str | None = None) -> Content:
    attached = (
        f"\nAttached to the engine of {attached_to}: q detaches and the engine goes on."
        if attached_to
        else ""
    )
    mode = (
        "Read-only: nothing can be changed (no pausing, retrying, edits, replays, drops, "
        "skips, backfills, saves or applies)."
        if read_only
        else "Use --read-only on production hosts to look without touching."
    )
    head = "Transactions: "
    legend = Text("\n" + " " * len(head)).join(marks_legend_lines(HELP_LEGEND_WIDTH - len(head)))
    return Content.assemble(
        ("wal2http-tui keys", "bold"),
        f" (escape closes)\n\n{head}",
        Content.from_rich_text(legend),
        f"\n{mode}{attached}",
    )


def run_app(
    engine: EngineControls, config_path: Path, *, read_only: bool = False, mouse: bool = True
) -> None:
    """Run the terminal UI until the operator quits; the engine is stopped on the way out."""
    app = Wal2HttpApp(engine, config_path, read_only=read_only)
    try:
        app.run(mouse=mouse)
    finally:
        if not app.engine_stopped:
            engine.stop()
