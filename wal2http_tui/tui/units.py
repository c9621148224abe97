"""How numbers, times and durations read on screen: short, fixed formats, UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

UNKNOWN = "–"  # noqa: RUF001 (an en dash: no value yet)
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(count: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; ``None`` -> an en dash."""
    if count is None:
        return UNKNOWN
    value = float(count)
    for unit in _BYTE_UNITS:
        if abs(value) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """``0.4`` -> ``0.4s``, ``75`` -> ``1m15s``, ``7300`` -> ``2h01m``; ``None`` -> en dash."""
    if seconds is None:
        return UNKNOWN
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def countdown(at: float | None, now: float) -> str:
    """How long until ``at``: ``in 4s``, ``now`` once it has passed, en dash when unknown."""
    if at is None:
        return UNKNOWN
    remaining = at - now
    return "now" if remaining <= 0 else f"in {human_duration(remaining)}"


def utc_time(epoch: float | None) -> str:
    """``2025-06-15 14:26:40Z`` for an epoch in seconds."""
    if epoch is None:
        return UNKNOWN
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def clock_time(rfc3339: str) -> str:
    """``2025-06-15T14:26:40.123456Z`` -> ``14:26:40.123`` (commit times, already UTC)."""
    _, sep, rest = rfc3339.partition("T")
    return rest[:12] if sep else rfc3339


def thousands(count: int) -> str:
    return f"{count:,}"


def milliseconds(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def server_version(number: int) -> str:
    """``160002`` -> ``16.2`` (PostgreSQL 10 and later number their versions this way)."""
    if not number:
        return "?"
    return f"{number // 10000}.{number % 10000}"


def utc_clock(epoch: float) -> str:
    """``14:26:40.123`` (UTC) for an epoch in seconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:12]


def short_path(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (as operators name
    files), else as it is."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
