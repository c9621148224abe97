"""The status bar: where the changes come from, the engine's state, LSNs, lag, events/s, and
the backfill running, if one is."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Sparkline

from wal2http_tui.delivery.activity import SinkState
from wal2http_tui.replication.state import EngineState
from wal2http_tui.tui.backfills import running_backfill
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.slot_health import slot_summary
from wal2http_tui.tui.units import (
    UNKNOWN,
    countdown,
    human_bytes,
    human_duration,
    server_version,
    thousands,
)

LAG_WARNING_BYTES = 64 * 1024 * 1024
QUIET_SHOWN_AFTER_SECS = 5.0  # silence from the server shown on the status line beyond this
LEVEL_STYLES = {"ok": "$success", "warning": "$warning", "error": "$error"}

# (glyph, style) per engine state; the words come from the state itself.
_STATE_LOOK = {
    EngineState.STREAMING: ("●", "$success"),
    EngineState.CONNECTING: ("◌", "$accent"),
    EngineState.STANDBY: ("◐", "$accent"),
    EngineState.RECONNECTING: ("↻", "$warning"),
    EngineState.PAUSED: ("‖", "$warning"),
    EngineState.ERROR: ("✗", "$error"),
    EngineState.STOPPED: ("■", "$text-muted"),
}


def state_line(readings: Readings) -> Content:
    """``● streaming``, ``↻ reconnecting in 4s (attempt 3): why``, ``✗ error: why``..."""
    state = readings.state
    if readings.stopping and readings.attached_to:
        return Content.assemble(("■ detaching", "bold $warning"), " the engine goes on streaming")
    if readings.stopping:
        return Content.assemble(
            ("■ stopping", "bold $warning"),
            " sinks finish in-flight deliveries, then the final confirmation to PostgreSQL",
        )
    glyph, style = _STATE_LOOK.get(state.state, ("?", ""))
    parts: list[Content | str | tuple[str, str]] = [(f"{glyph} {state.state}", f"bold {style}")]
    if state.state == EngineState.RECONNECTING:
        parts.append(f" {countdown(state.next_retry_at, readings.now)}")
        parts.append(f" (attempt {state.reconnect_attempt})")
    reason = state.detail
    if state.state in (EngineState.RECONNECTING, EngineState.ERROR) and state.last_error:
        reason = state.last_error
    if reason:
        parts.append(": " if state.state != EngineState.STREAMING else " ")
        parts.append((reason, style if state.state == EngineState.ERROR else ""))
    quiet = readings.now - state.last_message_at if state.last_message_at else 0.0
    if state.state == EngineState.STREAMING and quiet > QUIET_SHOWN_AFTER_SECS:
        limit = state.server_timeout_secs
        parts.append(
            (f" · nothing from PostgreSQL for {human_duration(quiet)}", "$warning")
            if not limit or quiet < limit / 2
            else (f" · nothing from PostgreSQL for {human_duration(quiet)}", "bold $error")
        )
    return Content.assemble(*parts)


# What renders the rows (replication/native.py), last on the source line: a narrow terminal
# cuts it first.
ROW_PATHS: dict[str, tuple[str | tuple[str, str], ...]] = {
    "native": (" · compiled",),
    "python": (" · pure Python",),
    "python, not built": (" · ", ("pure Python: the compiled path is not built", "$warning")),
}


def source_line(readings: Readings) -> Content:
    state = readings.state
    where = f"{state.database or '?'} @ {state.host or '?'}"
    version = f"PostgreSQL {server_version(state.server_version)}"
    protocol = f"pgoutput v{state.protocol_version}" if state.protocol_version else "pgoutput"
    parts: list[Content | str | tuple[str, str]] = []
    if readings.attached_to:
        parts += [(f"⇄ attached to {readings.attached_to}", "bold $accent"), " · "]
    path = ROW_PATHS.get(state.row_path)
    return Content.assemble(*parts, (where, "bold"), f" · {version} · {protocol}", *path or ())


def slot_line(readings: Readings) -> Content:
    """The slot, then its running backfill (before the publication, which a narrow terminal
    cuts off first: it never changes)."""
    state = readings.state
    parts: list[Content | str | tuple[str, str]] = ["slot ", (state.slot_name, "bold")]
    backfill = running_backfill(readings.backfills)
    if backfill is not None:
        parts += [" · ", backfill]
    return Content.assemble(*parts, " · publication ", (state.publication_name, "bold"))


def slot_alert(readings: Readings) -> Content | None:
    """The slot's worst finding, when it is not ok: it belongs on the first line."""
    summary = slot_summary(readings.slot, rising=readings.slot_rising)
    if summary is None:
        return None
    level, text = summary
    return Content.assemble((f"⚠ slot: {text}", LEVEL_STYLES[level]))


def sink_alert(readings: Readings) -> Content | None:
    """Sinks that have work and deliver nothing: never hidden behind a streaming engine."""
    stalled = [sink.name for sink in readings.sinks if sink.state == SinkState.STALLED]
    if not stalled:
        return None
    return Content.assemble((f"⚠ stalled: {', '.join(stalled)}", "bold $error"))


def position_line(readings: Readings) -> Content:
    """Lag first: it is what an operator looks for; then the LSNs, then the total."""
    state = readings.state
    lag_style = "bold $warning" if state.lag_bytes >= LAG_WARNING_BYTES else "bold"
    return Content.assemble(
        "lag ",
        (f"{human_bytes(state.lag_bytes)}, {human_duration(state.lag_seconds)}", lag_style),
        " · received ",
        (state.received, "bold"),
        " · confirmed ",
        (state.flushed, "bold"),
        f" · {thousands(state.changes)} changes",
    )


def rate_line(readings: Readings) -> Content:
    rate = readings.events_per_second
    shown = UNKNOWN if rate is None else f"{rate:,.0f}"
    return Content.assemble((shown, "bold"), " events/s")


class StatusBar(Horizontal):
    """Four lines on the left, events/s and its sparkline on the right."""

    def compose(self) -> ComposeResult:
        with Vertical(id="status-text"):
            yield LiveStatic(id="status-state")
            yield LiveStatic(id="status-source")
            yield LiveStatic(id="status-slot")
            yield LiveStatic(id="status-positions")
        with Vertical(id="status-rate"):
            yield LiveStatic(id="status-rate-value")
            yield Sparkline([], id="status-rate-graph")

    def show_readings(self, readings: Readings, *, read_only: bool) -> None:
        state = state_line(readings)
        if read_only:
            state = Content.assemble(("READ-ONLY", "reverse $warning"), " ", state)
        for alert in (sink_alert(readings), slot_alert(readings)):
            if alert is not None:
                state = Content.assemble(state, "  ", alert)
        self.query_one("#status-state", LiveStatic).show(state)
        self.query_one("#status-source", LiveStatic).show(source_line(readings))
        self.query_one("#status-slot", LiveStatic).show(slot_line(readings))
        self.query_one("#status-positions", LiveStatic).show(position_line(readings))
        self.query_one("#status-rate-value", LiveStatic).show(rate_line(readings))
        graph = self.query_one("#status-rate-graph", Sparkline)
        if list(graph.data or []) != readings.rate_history:
            graph.data = readings.rate_history
