"""Write-back: the configuration editor changes the user's file in place, never regenerates it.

``ConfigDocument`` keeps the file's text and its tomlkit document. Each edit replaces only the
bytes it must (a value, a line, a table's block of lines), located with ``TomlLayout``; the text
is then parsed again, so the document always matches it. Comments, key order, blank lines and
the formatting of everything not edited survive byte for byte.

``save()`` validates with the same loader as ``load_config`` (``${VAR}`` references are
validated expanded but written as they are), keeps the previous file as ``FILE.bak``, writes
atomically (temporary file in the same directory, fsync, rename) and makes the file 0600 when it
holds a literal secret.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from wal2http_tui.config.loader import (
    HOOK0_SINK_KEYS,
    HTTP_SINK_KEYS,
    LEGACY_HTTP_KEY,
    SECRET_SINK_KEYS,
    SINK_KINDS,
    ConfigError,
    Header,
    KeyPath,
    ReplicationConfig,
    Statement,
    conninfo_password,
    env_references,
    format_key_path,
    is_sensitive_header,
    load_config_text,
    parse_config_text,
    read_config_text,
    sink_names,
)

_MISSING: Any = object()


@dataclass(frozen=True)
class SinkEntry:
    """A sink as written in the file (not validated).

    ``index`` is its position in its kind's array of tables (0 for a single table and for the
    legacy ``[http]`` table); ``path`` is the key path of its table, for ``get``/``set``.
    """

    kind: str
    index: int
    name: str
    enabled: bool
    path: KeyPath


class ConfigDocument:
    """A configuration file opened for editing."""

    def __init__(
        self, path: str | os.PathLike[str], text: str, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.path = Path(path)
        self.environ = environ
        self._disk_text = text
        self._set_text(text)

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
    ) -> ConfigDocument:
        """Read the file; ConfigError if it cannot be read or is not TOML (it may be invalid)."""
        return cls(path, read_config_text(path), environ=environ)

    @property
    def text(self) -> str:
        """The text as edited so far."""
        return self._text

    @property
    def original_text(self) -> str:
        """The text as it is on disk (as read, or as last saved)."""
        return self._disk_text

    @property
    def modified(self) -> bool:
        return self._text != self._disk_text

    # --- reading ---------------------------------------------------------------------------------

    def get(self, key_path: KeyPath, default: Any = _MISSING) -> Any:
        """The value at a key path, as written (``${VAR}`` not expanded); KeyError if absent."""
        path, depth, value = self._locate(key_path)
        if depth < len(path):
            if default is _MISSING:
                raise KeyError(format_key_path(key_path))
            return default
        return copy.deepcopy(value)

    def sinks(self) -> list[SinkEntry]:
        """The sinks in file order, the legacy ``[http]`` table first."""
        data = self.document.unwrap()
        found: list[tuple[str, KeyPath, int, dict[str, Any]]] = []
        if isinstance(data.get(LEGACY_HTTP_KEY), dict):
            found.append(("http", (LEGACY_HTTP_KEY,), 0, data[LEGACY_HTTP_KEY]))
        sinks = data.get("event_sinks")
        for kind, value in sinks.items() if isinstance(sinks, dict) else ():
            if kind in SINK_KINDS and isinstance(value, dict):
                found.append((kind, ("event_sinks", kind), 0, value))
            elif kind in SINK_KINDS and isinstance(value, list):
                found += [
                    (kind, ("event_sinks", kind, index), index, table)
                    for index, table in enumerate(value)
                    if isinstance(table, dict)
                ]
        names = sink_names((kind, table.get("name")) for kind, _, _, table in found)
        return [
            SinkEntry(
                kind, index, name, table.get("enabled", path == (LEGACY_HTTP_KEY,)) is True, path
            )
            for (kind, path, index, table), name in zip(found, names, strict=True)
        ]

    def validate(self) -> ReplicationConfig:
        """Load the edited text exactly as ``load_config`` would load it from the file."""
        return load_config_text(self._text, self.path, environ=self.environ)

    def holds_literal_secret(self) -> bool:
        """Whether a secret is written in the file itself rather than as a ``${VAR}`` reference."""
        data = self.document.unwrap()
        connection_string = data.get("connection_string")
        values = (
            [conninfo_password(connection_string)] if isinstance(connection_string, str) else []
        )
        for sink in self.sinks():
            table = self.get(sink.path)
            values += [table.get(key) for key in SECRET_SINK_KEYS]
            headers = table.get("headers")
            if isinstance(headers, dict):
                values += [value for name, value in headers.items() if is_sensitive_header(name)]
        return any(
            isinstance(value, str) and value and not env_references(value) for value in values
        )

    # --- editing ---------------------------------------------------------------------------------

    def set(self, key_path: KeyPath, value: Any) -> None:
        """Set a value, adding the key if needed; ``None`` deletes it.

        Key paths name tables as in the file: ``("event_sinks", "http", 0, "url")`` for an array
        of tables, ``("event_sinks", "http", "url")`` for a single or inline table (index 0 is
        accepted there too), ``("http", "url")`` for the legacy table.
        """
        if not key_path:
            raise ValueError("an empty key path names the whole file")
        path, depth, current = self._locate(key_path)
        found = depth == len(path)
        if value is None:
            if found:
                self.delete(path)
            return
        if not found and isinstance(current, list):
            raise KeyError(f"{format_key_path(path[: depth + 1])} does not exist")
        if not found and not isinstance(current, dict):
            raise ValueError(f"{format_key_path(path[:depth])} is not a table")
        statement = self._layout.statements.get(path)
        if statement is not None:
            old = self._text[statement.value_start : statement.value_end]
            self._splice(statement.value_start, statement.value_end, _render(value, old))
        elif (owner := self._statement_above(path)) is not None:
            self._edit_inside(owner, path, value)
        elif found and isinstance(current, dict) and isinstance(value, Mapping):
            for key, item in value.items():
                self.set((*path, key), item)
            for key in current:
                if key not in value:
                    self.delete((*path, key))
        elif found:
            raise ValueError(f"{format_key_path(path)} is written as tables; set its keys instead")
        else:
            self._add_key(path, depth, value)

    def delete(self, key_path: KeyPath) -> None:
        """Remove a key, or a whole table with the comment lines just above its header."""
        path, depth, _ = self._locate(key_path)
        if depth < len(path):
            raise KeyError(format_key_path(key_path))
        statement = self._layout.statements.get(path)
        if statement is not None:
            self._remove_spans([(statement.start, statement.end)])
        elif (owner := self._statement_above(path)) is not None:
            self._edit_inside(owner, path, _MISSING)
        else:
            blocks = [self._block(header) for header in self._headers_under(path)]
            spans = [(start, end) for start, _, end in blocks]
            spans += [
                (s.start, s.end)
                for s in self._layout.statements.values()
                if s.path[: len(path)] == path
                and not any(start <= s.start < end for start, end in spans)
            ]
            self._remove_spans(spans)

    def add_sink(self, kind: str, values: Mapping[str, Any]) -> str:
        """Append a sink of ``kind`` (``"http"`` or ``"hook0"``) with these keys; its name.

        The name is written explicitly (``values["name"]`` or the first free of ``kind``,
        ``kind-2``, ...), so it does not change when other sinks are added or removed.
        """
        if kind not in SINK_KINDS:
            raise ValueError(f"unknown sink kind {kind!r}; expected one of {', '.join(SINK_KINDS)}")
        taken = {sink.name for sink in self.sinks()}
        values = dict(values)
        name = values.pop("name", None) or next(
            candidate
            for candidate in (kind, *(f"{kind}-{n}" for n in range(2, len(taken) + 3)))
            if candidate not in taken
        )
        if name in taken:
            raise ValueError(f'a sink named "{name}" already exists')
        order = HTTP_SINK_KEYS if kind == "http" else HOOK0_SINK_KEYS
        keys = sorted(values, key=lambda key: order.index(key) if key in order else len(order))
        table = {"name": name, **{key: values[key] for key in keys}}

        path: KeyPath = ("event_sinks", kind)
        current = self.get(path, None)
        headers = {header.path: header for header in self._layout.headers}
        if path in self._layout.statements or self._statement_above(path) is not None:
            self._add_to_inline(path, current, table)
        elif current is None:
            self._add_block(f"[{_render_key(path)}]", table, ("event_sinks",))
        elif isinstance(current, dict) and path in headers:
            header = headers[path]
            inner = self._text[header.bracket_start + 1 : header.bracket_end - 1]
            self._splice(header.bracket_start, header.bracket_end, f"[[{inner}]]")
            self._add_block(f"[[{_render_key(path)}]]", table, path)
        elif isinstance(current, list):
            self._add_block(f"[[{_render_key(path)}]]", table, path)
        else:
            raise ValueError(
                f"cannot add to {format_key_path(path)} as it is written; edit the file"
            )
        return name

    def remove_sink(self, kind: str, name: str) -> None:
        """Remove a sink's table (or inline entry); KeyError if there is no such sink."""
        for sink in self.sinks():
            if sink.kind == kind and sink.name == name:
                self.delete(sink.path)
                return
        raise KeyError(f'no {kind} sink named "{name}"')

    # --- saving ----------------------------------------------------------------------------------

    def save(self) -> ReplicationConfig:
        """Validate, then write atomically, keeping the previous file as ``FILE.bak``.

        ConfigError (and the file untouched) when the edited text does not load, or when the
        file changed on disk since it was opened or last saved.
        """
        config = self.validate()
        target = self.path.resolve()
        try:
            previous, previous_stat = target.read_bytes(), target.stat()
        except FileNotFoundError:
            previous, previous_stat = None, None
        if previous is None or previous_stat is None or previous != self._disk_text.encode():
            raise ConfigError(
                self.path,
                "the file was changed or removed by something else since it was opened; "
                "reopen it and edit again (nothing was saved)",
            )
        old_mode = stat.S_IMODE(previous_stat.st_mode)
        mode = 0o600 if self.holds_literal_secret() else old_mode
        owner = (previous_stat.st_uid, previous_stat.st_gid)
        _write_atomically(target.with_name(target.name + ".bak"), previous, old_mode & mode, owner)
        _write_atomically(target, self._text.encode(), mode, owner)
        self._disk_text = self._text
        return config

    # --- internals -------------------------------------------------------------------------------

    def _set_text(self, text: str) -> None:
        document, layout = parse_config_text(text, self.path)
        self._text, self.document, self._layout = text, document, layout
        self._newline = "\r\n" if "\r\n" in text else "\n"

    def _splice(self, start: int, end: int, replacement: str) -> None:
        self._set_text(self._text[:start] + replacement + self._text[end:])

    def _locate(self, key_path: KeyPath) -> tuple[KeyPath, int, Any]:
        """The key path as the file writes it (index 0 of a single table dropped), how many of
        its parts exist, and the value the last of those names."""
        node: Any = self.document.unwrap()
        path: list[str | int] = []
        for i, part in enumerate(key_path):
            in_table = isinstance(node, dict) and isinstance(part, str) and part in node
            in_array = isinstance(node, list) and type(part) is int and 0 <= part < len(node)
            if in_table or in_array:
                node = node[part]
            elif isinstance(node, dict) and type(part) is int and part == 0:
                continue
            else:
                return (*path, *key_path[i:]), len(path), node
            path.append(part)
        return tuple(path), len(path), node

    def _statement_above(self, path: KeyPath) -> Statement | None:
        """The ``key = value`` line whose value (an inline table or array) holds ``path``."""
        for length in range(len(path) - 1, 0, -1):
            if (statement := self._layout.statements.get(path[:length])) is not None:
                return statement
        return None

    def _edit_inside(self, owner: Statement, path: KeyPath, value: Any) -> None:
        """Set (or delete, for _MISSING) a key inside the inline table or array of ``owner``.

        Changing a value or an array goes through tomlkit, which keeps the formatting around it;
        adding or removing a key writes that inline table anew (tomlkit would leave odd spaces).
        """
        item: Any = self.document
        for part in owner.path:
            item = item[part]
        relative = path[len(owner.path) :]
        containers = [item]
        for part in relative[:-1]:
            if isinstance(containers[-1], Mapping) and part not in containers[-1]:
                break
            containers.append(containers[-1][part])
        target, rest = containers[-1], relative[len(containers) - 1 :]
        if isinstance(target, Mapping) and (
            value is _MISSING or len(rest) > 1 or rest[0] not in target
        ):
            table = target.unwrap()
            if value is _MISSING:
                del table[rest[0]]
            else:
                table[rest[0]] = _nest(rest[1:], value)
            if len(containers) == 1:
                self._splice(owner.value_start, owner.value_end, _render(table))
                return
            containers[-2][relative[len(containers) - 2]] = _toml_item(table)
        elif value is _MISSING:
            del target[rest[0]]
        else:
            target[rest[0]] = _toml_item(value)
        self._splice(owner.value_start, owner.value_end, item.as_string())

    def _add_key(self, path: KeyPath, depth: int, value: Any) -> None:
        """Add a key under the table ``path[:depth]``, in the body of the table that holds it."""
        if isinstance(path[depth], int):
            raise KeyError(f"{format_key_path(path[: depth + 1])} does not exist")
        table, key = path[:depth], path[depth]
        value = _nest(path[depth + 1 :], value)
        headers = {header.path for header in self._layout.headers}
        if table == () or table in headers:
            self._insert_statement(table, (key,), value)
            return
        # The table is made by dotted keys (``a.b = 1`` makes ``a``), or only by its sub-tables.
        dotted = [
            s
            for s in self._layout.statements.values()
            if s.path[: len(table)] == table and len(s.table) < len(table)
        ]
        if dotted:
            anchor = max(dotted, key=lambda s: s.end)
            self._insert_line(anchor.end, anchor, (*table[len(anchor.table) :], key), value)
        elif not any(isinstance(part, int) for part in table):
            self._add_block(f"[{_render_key(table)}]", {key: value}, None)
        else:
            raise ValueError(f"cannot add {format_key_path(path)} as the file is written")

    def _insert_statement(self, table: KeyPath, key: KeyPath, value: Any) -> None:
        body = [s for s in self._layout.statements.values() if s.table == table]
        if body:
            anchor = max(body, key=lambda s: s.end)
            self._insert_line(anchor.end, anchor, key, value)
        elif table:
            header = next(h for h in self._layout.headers if h.path == table)
            self._insert_line(header.end, None, key, value)
        elif self._layout.headers:
            start = self._block(self._layout.headers[0])[0]
            line = f"{_render_key(key)} = {_render(value)}{self._newline}"
            self._splice(start, start, line + self._newline)
        else:
            self._insert_line(len(self._text), None, key, value)

    def _insert_line(self, pos: int, like: Statement | None, key: KeyPath, value: Any) -> None:
        """Insert ``key = value`` at ``pos`` (a line start), indented like ``like``."""
        indent = ""
        if like is not None:
            line = self._text[like.start : like.value_start]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
        text = f"{indent}{_render_key(key)} = {_render(value)}{self._newline}"
        if pos > 0 and not self._text[:pos].endswith("\n"):
            text = self._newline + text
        self._splice(pos, pos, text)

    def _add_block(self, header: str, table: Mapping[str, Any], after: KeyPath | None) -> None:
        """Add a table after the last table under ``after`` (else at the end of the file)."""
        nl = self._newline
        lines = [header, *(f"{_render_key((k,))} = {_render(v)}" for k, v in table.items())]
        block = nl + nl.join(lines) + nl
        below = [] if after is None else self._headers_under(after)
        pos = self._block(below[-1])[1] if below else len(self._text)
        if pos > 0 and not self._text[:pos].endswith("\n"):
            block = nl + block
        self._splice(pos, pos, block.removeprefix(nl) if pos == 0 else block)

    def _add_to_inline(self, path: KeyPath, current: Any, table: dict[str, Any]) -> None:
        """Add a sink where the file writes sinks as inline tables (``http = { ... }``)."""
        statement = self._layout.statements.get(path)
        if statement is not None and isinstance(current, dict):
            old = self._text[statement.value_start : statement.value_end]
            self._splice(statement.value_start, statement.value_end, f"[{old}, {_render(table)}]")
        elif statement is not None and isinstance(current, list):
            item: Any = self.document
            for part in path:
                item = item[part]
            item.append(_toml_item(table))
            self._splice(statement.value_start, statement.value_end, item.as_string())
        else:
            self.set(path, table)

    def _headers_under(self, path: KeyPath) -> list[Header]:
        return [h for h in self._layout.headers if h.path[: len(path)] == path]

    def _block(self, header: Header) -> tuple[int, int, int]:
        """Where a table's lines start (with the comment lines just above its header), where its
        keys end (with comment lines right after them), and where it ends (with the blank lines
        after it). A comment paragraph after a blank line is left to what follows."""
        headers = self._layout.headers
        following = headers[headers.index(header) + 1 :]
        limit = self._block_start(following[0]) if following else len(self._text)
        ends = [s.end for s in self._layout.statements.values() if header.start <= s.start < limit]
        body_end = self._skip_lines(max([header.end, *ends]), limit, comments=True)
        return (
            self._block_start(header),
            body_end,
            self._skip_lines(body_end, limit, comments=False),
        )

    def _skip_lines(self, pos: int, limit: int, *, comments: bool) -> int:
        """Past the lines from ``pos`` that are comments (or, ``comments=False``, blank)."""
        while pos < limit:
            end = self._text.find("\n", pos, limit)
            line = self._text[pos : limit if end < 0 else end].strip()
            if not (line.startswith("#") if comments else not line):
                break
            pos = limit if end < 0 else end + 1
        return pos

    def _block_start(self, header: Header) -> int:
        start = header.start
        while start > 0:
            previous = self._text.rfind("\n", 0, start - 1) + 1
            if not self._text[previous:start].lstrip().startswith("#"):
                break
            start = previous
        return start

    def _remove_spans(self, spans: list[tuple[int, int]]) -> None:
        text = self._text
        for start, end in sorted(spans, reverse=True):
            if end >= len(text):
                while re.search(r"\n[ \t]*\r?\n$", text[:start]):
                    start = text.rfind("\n", 0, start - 1) + 1
            text = text[:start] + text[end:]
        self._set_text(text)


def _nest(keys: KeyPath, value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _render_key(key: KeyPath) -> str:
    return ".".join(tomlkit.key(part).as_string() for part in key)


def _render(value: Any, old: str = "") -> str:
    """TOML text for a value: inline tables and arrays on one line; a string replacing a
    'literal string' stays literal when it can."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        literal = old.startswith("'") and not old.startswith("'''")
        literal = literal and not re.search(r"['\x00-\x08\x0a-\x1f\x7f]", value)
        return tomlkit.string(value, literal=literal).as_string()
    if isinstance(value, bool | int | float):
        return tomlkit.item(value).as_string()
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{_render_key((str(k),))} = {_render(v)}" for k, v in value.items())
        return f"{{ {pairs} }}" if pairs else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")


def _toml_item(value: Any) -> Any:
    """A tomlkit item formatted as ``_render`` formats it."""
    return tomlkit.parse(f"v = {_render(value)}")["v"]


def _write_atomically(path: Path, data: bytes, mode: int, owner: tuple[int, int]) -> None:
    """Write a temporary file next to ``path``, fsync it, rename it over ``path``."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            with contextlib.suppress(PermissionError):
                os.fchown(file.fileno(), *owner)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(directory)
    finally:
        os.close(directory)
