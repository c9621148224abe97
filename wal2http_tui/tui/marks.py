"""Per-sink delivery marks and sink states: one glyph and one colour each, told apart at a glance
in 256 colours (and by glyph alone in monochrome)."""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text

from wal2http_tui.delivery.activity import Mark, SinkState


class MarkLook(NamedTuple):
    glyph: str
    style: str
    name: str  # as the inspector and the help say it
    short: str  # as a narrow legend says it


MARKS: dict[str, MarkLook] = {
    Mark.DELIVERED: MarkLook("✓", "green", "delivered", "sent"),
    Mark.IN_FLIGHT: MarkLook("→", "cyan", "in flight", "sending"),
    Mark.QUEUED: MarkLook("○", "bright_black", "queued", "queued"),
    Mark.RETRYING: MarkLook("↻", "yellow", "retrying", "retry"),
    Mark.FAILED: MarkLook("✗", "bold red", "failed", "failed"),
    Mark.DEAD_LETTERED: MarkLook("⊘", "magenta", "dead-lettered", "dead"),
    # finished for that sink without a delivery: its tables/ops filters let no change through
    Mark.FILTERED: MarkLook("\N{EN DASH}", "bright_blue", "filtered out", "filtered"),
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
    look = MARKS.get(mark)
    glyph, style = ("?", "") if look is None else (look.glyph, look.style)
    return Text(glyph, style=style, justify="center")


def mark_name(mark: str) -> str:
    look = MARKS.get(mark)
    return mark.replace("_", " ") if look is None else look.name


def _entry(look: MarkLook, name: str) -> Text:
    return Text.assemble((look.glyph, look.style), f" {name}")


def marks_legend(width: int | None = None) -> Text:
    """Every mark's glyph and name on one line; within ``width`` cells when given, the names
    shortened and closer together where the full legend would be cut off."""
    full = Text("  ").join(_entry(look, look.name) for look in MARKS.values())
    if width is None or full.cell_len <= width:
        return full
    return Text(" ").join(_entry(look, look.short) for look in MARKS.values())


def marks_legend_lines(width: int) -> list[Text]:
    """Every mark's glyph and full name, on as many lines of ``width`` cells as it takes, each
    mark whole on one line."""
    lines = [Text()]
    for look in MARKS.values():
        entry = _entry(look, look.name)
        if lines[-1] and lines[-1].cell_len + 2 + entry.cell_len > width:
            lines.append(Text())
        if lines[-1]:
            lines[-1].append("  ")
        lines[-1].append_text(entry)
    return lines


def sink_state_cell(state: str) -> Text:
    return Text(state, style=SINK_STATE_STYLES.get(state, ""))
