"""TomlLayout: where the table headers, keys and values of a TOML text are, by line and offset.

tomlkit keeps no positions, so this scans the text itself. The loader uses the lines, to say
where a problem is (``FILE:LINE: KEY: ...``); ``text_edits`` uses the offsets, to change the
text only where an edit is (it says why tomlkit does not write the file back). The scan never
raises: on text tomlkit refused it still finds enough to explain the error (an inline table
spread over several lines, say).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from wal2http_tui.config.keys import BARE_KEY, KeyPath


@dataclass(frozen=True)
class Header:
    """A ``[table]`` or ``[[array.of.tables]]`` line; ``path`` has array indices resolved."""

    path: KeyPath
    start: int  # offset of the line's first character
    bracket_start: int
    bracket_end: int  # just past the closing bracket(s)
    end: int  # just past the line's newline (or the end of the text)


@dataclass(frozen=True)
class Statement:
    """A ``key = value`` line of a table body (keys inside inline tables are not statements)."""

    path: KeyPath
    table: KeyPath  # the table whose body holds it; () is the top level
    start: int
    value_start: int
    value_end: int
    end: int


_SCALAR = re.compile(r"[^,\]}\n#]*")
_STRING_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)")
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}


def _unescape(raw: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) > 1:
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES.get(code, code)

    return _STRING_ESCAPE.sub(replace, raw)


class TomlLayout:
    """The lines and byte spans of the headers, keys and values of a TOML text.

    It never raises: on text tomlkit refused it still finds enough to explain the error.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.headers: list[Header] = []
        self.statements: dict[KeyPath, Statement] = {}
        self.multiline_inline_tables: list[tuple[KeyPath, int, int]] = []  # path, first, last line
        self._lines: dict[KeyPath, int] = {}
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._array_counts: dict[KeyPath, int] = {}
        self._scan()

    def line_at(self, offset: int) -> int:
        return bisect_left(self._newlines, offset) + 1

    def line_of(self, path: KeyPath) -> int | None:
        """The line of a key or table; else of the first thing under it; else of its parent."""
        if not path:
            return None
        if path in self._lines:
            return self._lines[path]
        below = [line for key, line in self._lines.items() if key[: len(path)] == path]
        return min(below) if below else self.line_of(path[:-1])

    def header(self, path: KeyPath) -> Header | None:
        """The ``[table]`` or ``[[array]]`` line that opens the table at ``path``, if any."""
        return next((header for header in self.headers if header.path == path), None)

    def child_keys(self, path: KeyPath) -> list[str | int]:
        """The keys found directly under a table or inline table, in text order."""
        depth = len(path)
        return [key[depth] for key in self._lines if len(key) == depth + 1 and key[:depth] == path]

    def _note(self, path: KeyPath, offset: int) -> None:
        self._lines.setdefault(path, self.line_at(offset))

    def _skip(self, pos: int, *, newlines: bool) -> int:
        """Skip blanks and comments (and newlines when asked)."""
        text = self.text
        blanks = " \t\r\n" if newlines else " \t\r"
        while pos < len(text):
            if text[pos] in blanks:
                pos += 1
            elif text[pos] == "#" and newlines:
                end = text.find("\n", pos)
                pos = len(text) if end < 0 else end
            else:
                break
        return pos

    def _line_end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end + 1

    def _scan(self) -> None:
        text, pos = self.text, 0
        table: KeyPath = ()
        while True:
            pos = self._skip(pos, newlines=True)
            if pos >= len(text):
                return
            line_start = text.rfind("\n", 0, pos) + 1
            if text[pos] == "[":
                array = text.startswith("[[", pos)
                keys, after = self._key(pos + (2 if array else 1))
                after = self._skip(after, newlines=False)
                closing = "]]" if array else "]"
                bracket_end = after + len(closing) if text.startswith(closing, after) else after
                end = self._line_end(bracket_end)
                table = self._open_table(keys, array)
                self.headers.append(Header(table, line_start, pos, bracket_end, end))
                self._note(table, pos)
                pos = end
                continue
            keys, after = self._key(pos)
            if not keys:
                pos = self._line_end(pos)
                continue
            after = self._skip(after, newlines=False)
            if text.startswith("=", after):
                after = self._skip(after + 1, newlines=False)
            path = table + keys
            self._note(path, pos)
            value_end = self._value(after, path)
            end = self._line_end(value_end)
            self.statements.setdefault(
                path, Statement(path, table, line_start, after, value_end, end)
            )
            pos = end

    def _open_table(self, keys: KeyPath, array: bool) -> KeyPath:
        resolved: KeyPath = ()
        for i, key in enumerate(keys):
            resolved += (key,)
            if i < len(keys) - 1 and resolved in self._array_counts:
                resolved += (self._array_counts[resolved],)
        if array:
            index = self._array_counts.get(resolved, -1) + 1
            self._array_counts[resolved] = index
            resolved += (index,)
        return resolved

    def _key(self, pos: int) -> tuple[KeyPath, int]:
        text, parts = self.text, []
        while True:
            pos = self._skip(pos, newlines=False)
            if text.startswith('"', pos):
                end = self._value(pos, ())
                parts.append(_unescape(text[pos + 1 : end - 1]))
            elif text.startswith("'", pos):
                end = self._value(pos, ())
                parts.append(text[pos + 1 : end - 1])
            elif match := BARE_KEY.match(text, pos):
                end = match.end()
                parts.append(match.group())
            else:
                return tuple(parts), pos
            pos = end
            after = self._skip(pos, newlines=False)
            if not text.startswith(".", after):
                return tuple(parts), pos
            pos = after + 1

    def _value(self, pos: int, path: KeyPath) -> int:
        """Where the value starting at ``pos`` ends."""
        text = self.text
        for quotes in ('"""', "'''"):
            if text.startswith(quotes, pos):
                return self._multiline_string_end(pos, quotes)
        char = text[pos : pos + 1]
        if char in ('"', "'"):
            i = pos + 1
            while i < len(text) and text[i] not in (char, "\n"):
                i += 2 if char == '"' and text[i] == "\\" else 1
            return i + 1 if text[i : i + 1] == char else min(i, len(text))
        if char == "[":
            return self._array(pos, path)
        if char == "{":
            return self._inline_table(pos, path)
        match = _SCALAR.match(text, pos)
        return pos + len(match.group().rstrip()) if match else pos

    def _multiline_string_end(self, pos: int, quotes: str) -> int:
        text, i = self.text, pos + 3
        while i < len(text):
            if quotes == '"""' and text[i] == "\\":
                i += 2
            elif text.startswith(quotes, i):
                end = i + 3
                while end < min(i + 5, len(text)) and text[end] == quotes[0]:
                    end += 1  # up to two quotes just before the closing ones are content
                return end
            else:
                i += 1
        return len(text)

    def _array(self, pos: int, path: KeyPath) -> int:
        text, pos, index = self.text, pos + 1, 0
        while pos < len(text):
            pos = self._skip(pos, newlines=True)
            char = text[pos : pos + 1]
            if char == "]":
                return pos + 1
            if char == ",":
                index += 1
                pos += 1
                continue
            self._note((*path, index), pos)
            end = self._value(pos, (*path, index))
            pos = end if end > pos else pos + 1
        return pos

    def _inline_table(self, start: int, path: KeyPath) -> int:
        text, pos = self.text, start + 1
        while pos < len(text):
            pos = self._skip(pos, newlines=True)
            char = text[pos : pos + 1]
            if char == "}":
                pos += 1
                break
            keys, after = self._key(pos)
            if not keys:
                pos += 1
                continue
            self._note(path + keys, pos)
            after = self._skip(after, newlines=False)
            if text.startswith("=", after):
                after = self._skip(after + 1, newlines=False)
            end = self._value(after, path + keys)
            pos = end if end > pos else pos + 1
        first, last = self.line_at(start), self.line_at(max(start, pos - 1))
        if last > first:
            self.multiline_inline_tables.append((path, first, last))
        return pos
