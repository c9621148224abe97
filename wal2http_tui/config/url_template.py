"""An HTTP sink's URL with placeholders: ``{schema}``, ``{table}`` and ``{op}`` are filled per
event, URL-encoded (``https://indexer.internal/hooks/{schema}/{table}``). ``{{`` and ``}}``
stand for a literal brace. Placeholders fill the path and the query, never the host."""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit

URL_PLACEHOLDERS = ("schema", "table", "op")
_FORMATTER = string.Formatter()


class UrlTemplate:
    """A URL split once into literal text and placeholders; ValueError for a URL whose braces
    are not placeholders this sink knows, naming the first such."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pieces: list[tuple[str, str | None]] = []
        try:
            parsed = list(_FORMATTER.parse(url))
        except ValueError as exc:
            raise ValueError(f"{exc} (write {{{{ or }}}} for a literal brace)") from None
        for literal, name, spec, conversion in parsed:
            if name is not None and (name not in URL_PLACEHOLDERS or spec or conversion):
                written = "{" + name + (f"!{conversion}" if conversion else "")
                written += (f":{spec}" if spec else "") + "}"
                raise ValueError(
                    f"{written} is not a placeholder; the URL may hold "
                    + ", ".join("{" + known + "}" for known in URL_PLACEHOLDERS)
                )
            self._pieces.append((literal, name))
        self.placeholders = tuple(name for _, name in self._pieces if name is not None)
        self._plain = "".join(literal for literal, _ in self._pieces)
        if self.placeholders and "{" in (urlsplit(url).hostname or ""):
            raise ValueError("placeholders fill the path and the query, not the host")

    def fill(self, schema: str, table: str, op: str) -> str:
        """The URL of one event."""
        if not self.placeholders:
            return self._plain
        values = {"schema": schema, "table": table, "op": op}
        return "".join(
            literal + ("" if name is None else quote(values[name], safe=""))
            for literal, name in self._pieces
        )
