"""The read-only rule (``--read-only``): nothing may change, and what is refused says so.

The app knows whether it is read-only and hands that down to the screens it opens; each of them
(and the app, for the controls it applies itself) asks here before it changes anything.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widget import Widget


def refuse_in_read_only(where: App[Any] | Widget, what: str, *, read_only: bool) -> bool:
    """True, and a warning toast from ``where``, when the app is read-only."""
    if read_only:
        where.notify(f"{what} is not allowed in read-only mode", severity="warning")
    return read_only
