"""What flows between the panes, the screens and the app: rare, small messages.

Live data never travels as messages: the app polls the engine (see ``monitor.py``). These are
operator intents and state changes, a handful per minute at most.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass(frozen=True)
class Subject:
    """What the inspector shows: the attempts that carried ``event_ids``, and what else is known.

    ``payload`` is a stored copy (a dead letter's) shown when no attempt is recorded any more.
    """

    title: str
    event_ids: frozenset[str]
    facts: tuple[tuple[str, str], ...] = ()
    payload: bytes | None = None
    note: str = ""


@dataclass
class SinkCommand(Message):
    """A pane asks for a sink control; the app applies the read-only rule and confirms skips.

    ``action`` names the ``EngineControls`` method: ``retry_now``, ``skip_to_dead_letters``,
    ``pause_sink`` or ``resume_sink``.
    """

    action: str
    sink: str


@dataclass
class BackfillCommand(Message):
    """A pane asks to start a backfill or to steer one; the app applies the read-only rule,
    opens the start dialog, confirms cancels and calls the engine off the UI thread.

    ``kind``: ``start`` (no ``backfill_id``: the dialog asks what to backfill), or what
    ``EngineControls.control_backfill`` takes: ``pause``, ``resume`` or ``cancel``.
    """

    kind: str
    backfill_id: str = ""


@dataclass
class Inspect(Message):
    """Open the inspector on ``subject``."""

    subject: Subject


@dataclass
class EngineStateChanged(Message):
    """The engine's state changed between two polls; only the newest one matters."""

    previous: str | None
    current: str
    detail: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineStateChanged)
