"""Per-sink delivery marks and sink states: one glyph and one colour each, told apart at a glance
in 256 colours (and by glyph alone in monochrome)."""

from __future__ import annotations

from rich.text import Text

from wal2http_tui.delivery.activity import Mark, SinkState

MARKS: dict[str, tuple[str, str, str]] = {
    Mark.DELIVERED: ("✓", "green", "delivered"),
    Mark.IN_FLIGHT: ("→", "cyan", "in flight"),
    Mark.QUEUED: ("○", "bright_black", "queued"),
    Mark.RETRYING: ("↻", "yellow", "retrying"),
    Mark.FAILED: ("✗", "bold red", "failed"),
    Mark.DEAD_LETTERED: ("⊘", "magenta", "dead-lettered"),
}

SINK_STATE_STYLES: dict[str, str] = {
    SinkState.HEALTHY: "green",
    SinkState.RETRYING: "yellow",
    SinkState.FAILING: "bold red",
    SinkState.STALLED: "bold red",
    SinkState.PAUSED: "yellow",
    SinkState.DISABLED: "bright_black",
    SinkState.STOPPED: "bright_black",
}


def mark_cell(mark: str | None) -> Text:
    """The glyph of a mark; a blank for a sink that did not exist when the transaction came."""
    if mark is None:
        return Text(" ")
    glyph, style, _ = MARKS.get(mark, ("?", "", mark))
    return Text(glyph, style=style, justify="center")


def marks_legend() -> Text:
    legend = Text()
    for glyph, style, name in MARKS.values():
        if legend:
            legend.append("  ")
        legend.append(glyph, style=style)
        legend.append(f" {name}")
    return legend


def sink_state_cell(state: str) -> Text:
    return Text(state, style=SINK_STATE_STYLES.get(state, ""))
