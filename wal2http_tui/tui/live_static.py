"""A Static for text re-rendered on every poll: it repaints only when the text or style changed."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class LiveStatic(Static):
    _shown: tuple[str, tuple] | None = None

    def show(self, content: Content) -> None:
        # Content equality ignores styles; a colour change alone must repaint too.
        key = (content.plain, tuple(content.spans))
        if key != self._shown:
            self._shown = key
            self.update(content)
