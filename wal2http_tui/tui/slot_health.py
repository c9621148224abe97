"""Slot health: this slot's row of pg_replication_slots, judged for the operator.

A slot holds WAL on the server until the engine confirms it: retained WAL that grows, or a
``wal_status`` that leaves ``reserved``, is how a stuck consumer fills a production disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Sparkline

from wal2http_tui.engine.controls import SlotHealth
from wal2http_tui.replication.messages import parse_lsn
from wal2http_tui.replication.replica_identity import named
from wal2http_tui.replication.slot_row import INVALIDATIONS
from wal2http_tui.tui.keyed_table import KeyedTable
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.units import UNKNOWN, human_bytes, human_duration

GiB = 1024**3
RETAINED_WARNING_BYTES = 1 * GiB
# Retention that rises at every check is normal under load while it is small.
RISING_WARNING_BYTES = 64 * 1024 * 1024
SAFE_WAL_WARNING_BYTES = 1 * GiB
WAL_STATUS_LEVELS = {
    "reserved": "ok",
    "extended": "warning",
    "unreserved": "error",
    "lost": "error",
}
LEVEL_STYLES = {"ok": "green", "warning": "yellow", "error": "bold red"}
_LEVEL_ORDER = ("ok", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One line of the slot health table."""

    label: str
    value: str
    level: str  # ok | warning | error
    note: str = ""


def assess_slot(slot: SlotHealth, *, rising: bool) -> list[Finding]:
    if slot.error:
        return [Finding("slot", slot.slot_name, "error", f"cannot read the slot: {slot.error}")]
    if not slot.exists:
        return [Finding("slot", slot.slot_name, "error", "no such slot on the server (yet)")]
    retained = slot.retained_bytes
    retained_notes = []
    retained_level = "ok"
    if retained is not None and retained >= RETAINED_WARNING_BYTES:
        retained_level = "warning"
        retained_notes.append(f"above {human_bytes(RETAINED_WARNING_BYTES)}")
    if rising and retained is not None and retained >= RISING_WARNING_BYTES:
        retained_level = "warning"
        retained_notes.append("rising at every check")
    wal_status = slot.wal_status or UNKNOWN
    safe = slot.safe_wal_size
    if safe is None:
        safe_level, safe_note = "ok", "no limit (max_slot_wal_keep_size = -1)"
    elif safe <= 0:
        safe_level, safe_note = "error", "the server may remove WAL this slot still needs"
    elif safe < SAFE_WAL_WARNING_BYTES:
        safe_level, safe_note = "warning", "close to max_slot_wal_keep_size"
    else:
        safe_level, safe_note = "ok", ""
    return [
        Finding("slot", slot.slot_name, "ok"),
        Finding(
            "active pid",
            str(slot.active_pid) if slot.active_pid else UNKNOWN,
            "ok" if slot.active_pid else "warning",
            "" if slot.active_pid else "no walsender is using the slot",
        ),
        Finding("restart_lsn", slot.restart_lsn or UNKNOWN, "ok"),
        Finding("confirmed_flush_lsn", slot.confirmed_flush_lsn or UNKNOWN, "ok"),
        *assess_remembered(slot),
        Finding(
            "wal_status",
            wal_status,
            WAL_STATUS_LEVELS.get(wal_status, "ok"),
            {
                "extended": "beyond max_wal_size, still kept",
                "unreserved": "WAL will be removed at the next checkpoint",
                "lost": "required WAL was removed: the slot is unusable",
            }.get(wal_status, ""),
        ),
        Finding("safe_wal_size", human_bytes(safe), safe_level, safe_note),
        Finding("retained WAL", human_bytes(retained), retained_level, ", ".join(retained_notes)),
        *assess_newer_columns(slot),
    ]


def assess_newer_columns(slot: SlotHealth) -> list[Finding]:
    """What PostgreSQL 16+ and 17+ say of a slot: why it was invalidated, whether it survives
    a failover, since when nothing uses it and how long the server lets it idle (18+)."""
    findings = []
    if slot.invalidation_reason is not None:
        what, prevention = INVALIDATIONS.get(slot.invalidation_reason, ("", ""))
        note = f"{what}; {prevention}" if what else "see PostgreSQL's log for why"
        findings.append(Finding("invalidated", slot.invalidation_reason, "error", note))
    if slot.failover is not None:
        note = "kept in step on standbys" if slot.failover else "lost if the primary fails over"
        findings.append(Finding("failover", "yes" if slot.failover else "no", "ok", note))
    if slot.synced:
        findings.append(Finding("synced", "yes", "ok", "a copy from the primary"))
    idle_limit = slot.idle_timeout if slot.idle_timeout not in ("", "0") else ""
    if slot.inactive_since is not None and not slot.active_pid:
        idle = human_duration(max(0.0, slot.checked_at - slot.inactive_since))
        note = f"invalidated after {idle_limit} idle" if idle_limit else ""
        findings.append(Finding("inactive for", idle, "warning", note))
    if idle_limit:
        # idle_replication_slot_timeout (18+), shortened to fit 80 columns
        findings.append(Finding("idle timeout", idle_limit, "ok", "then the server invalidates it"))
    return findings


def assess_remembered(slot: SlotHealth) -> list[Finding]:
    """What wal2http-tui last confirmed (its state file) beside PostgreSQL's position: the slot
    ahead of it means changes were skipped by someone else; behind, that some are sent again."""
    if slot.remembered_lsn is None or slot.confirmed_flush_lsn is None:
        return []
    ours, theirs = parse_lsn(slot.remembered_lsn), parse_lsn(slot.confirmed_flush_lsn)
    if theirs > ours:
        level, note = "error", "the slot is ahead of it: changes skipped (a gap)"
    elif theirs < ours:
        level, note = "warning", "the slot is behind it: changes are sent again"
    else:
        level, note = "ok", "the slot agrees"
    return [Finding("we confirmed", slot.remembered_lsn, level, note)]


def assess_timeouts(wal_sender_timeout: str, server_timeout_secs: float) -> list[Finding]:
    """How long a silent connection lasts on each side: the server drops a silent client after
    wal_sender_timeout, wal2http-tui a silent server after server_timeout_secs."""
    if not wal_sender_timeout:
        return []
    ours = f"{server_timeout_secs:g}s" if server_timeout_secs else "off"
    return [
        Finding("wal_sender_timeout", wal_sender_timeout, "ok", "the server drops a silent client"),
        Finding(
            "server_timeout_secs",
            ours,
            "ok" if server_timeout_secs else "warning",
            "we drop a silent server" if server_timeout_secs else "a silent server goes unnoticed",
        ),
    ]


def assess_identity(keyless_tables: tuple[str, ...]) -> list[Finding]:
    """Published tables PostgreSQL refuses UPDATE and DELETE on (no usable replica identity)."""
    if not keyless_tables:
        return []
    count = len(keyless_tables)
    return [
        Finding(
            "no replica identity",
            f"{count} table{'s' if count > 1 else ''}",
            "error",
            f"UPDATE/DELETE refused: {named(list(keyless_tables))} (the log says the fixes)",
        )
    ]


def slot_summary(slot: SlotHealth, *, rising: bool) -> tuple[str, str] | None:
    """The worst finding as ``(level, text)`` for the status bar; None when all is well."""
    findings = [f for f in assess_slot(slot, rising=rising) if f.level != "ok"]
    if not findings:
        return None
    worst = max(findings, key=lambda f: _LEVEL_ORDER.index(f.level))
    text = f"{worst.label} {worst.value}"
    return worst.level, f"{text}: {worst.note}" if worst.note else text


def trend_label(history: list[int], *, rising: bool) -> Content:
    if len(history) < 2:
        return Content("Retained WAL: the trend shows after a few checks")
    change = f"{human_bytes(history[0])} → {human_bytes(history[-1])}"
    return Content.assemble(
        f"Retained WAL over the last {len(history)} checks: {change}",
        (", rising" if rising else "", "$warning"),
    )


class SlotHealthScreen(Screen):
    """Refreshed with every poll; the engine checks the slot every few seconds.

    ``latest`` is the app's last reading when it opened the screen, if any: shown as soon as
    the screen is mounted rather than a blank screen until the next poll.
    """

    CSS_PATH = "slot_health.tcss"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, latest: Readings | None) -> None:
        super().__init__()
        self.latest = latest

    def compose(self) -> ComposeResult:
        yield LiveStatic(id="slot-title")
        yield KeyedTable(id="slot-table")
        yield LiveStatic(id="slot-trend-label")
        yield Sparkline([], id="slot-trend")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.cursor_type = "none"
        table.zebra_stripes = False
        table.set_columns(["check", "value", "assessment"])
        if self.latest is not None:
            self.show_readings(self.latest)

    def show_readings(self, readings: Readings) -> None:
        slot = readings.slot
        age = human_duration(readings.now - slot.checked_at) if slot.checked_at else "never"
        self.query_one("#slot-title", LiveStatic).show(
            Content.assemble(
                ("Slot health ", "bold"),
                (slot.slot_name, "bold $accent"),
                f" · checked {age} ago · from pg_replication_slots every few seconds",
            )
        )
        rows = {}
        state = readings.state
        findings = assess_slot(slot, rising=readings.slot_rising)
        findings += assess_timeouts(state.wal_sender_timeout, state.server_timeout_secs)
        for finding in findings + assess_identity(state.keyless_tables):
            style = LEVEL_STYLES[finding.level]
            note = finding.note or ("ok" if finding.level == "ok" else "")
            rows[finding.label] = (
                Text(finding.label, style="bold"),
                Text(finding.value, style=style),
                Text(note, style=style),
            )
        self.query_one(KeyedTable).sync(rows)
        history = readings.retained_history
        self.query_one("#slot-trend-label", LiveStatic).show(
            trend_label(history, rising=readings.slot_rising)
        )
        graph = self.query_one("#slot-trend", Sparkline)
        graph.display = len(history) > 1
        trend = [float(value) for value in history]
        if list(graph.data or []) != trend:
            graph.data = trend
