"""Write-back: the configuration editor changes the user's file in place, never regenerates it.

``ConfigDocument`` keeps the file's text, its tomlkit document and its ``TomlLayout``. Values are
read from the tomlkit document, and edits inside an inline table or an array are made on its
tomlkit item, which keeps the formatting around them. The text itself changes only where the
edit is, at the offsets ``TomlLayout`` finds (``text_edits``): tomlkit cannot write a whole
document back byte for byte (see there). The text is then parsed again, so text, document and
layout always agree, and whatever was not edited survives byte for byte.

``save()`` validates with the same loader as ``load_config`` (``${VAR}`` references are
validated expanded but written as they are), keeps the previous file as ``FILE.bak``, writes
atomically (temporary file in the same directory, fsync, rename) and makes the file 0600 when it
holds a literal secret.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tomlkit.items import AbstractTable

from wal2http_tui.config import text_edits
from wal2http_tui.config.env import env_references
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.layout import Statement
from wal2http_tui.config.loader import load_config_text, parse_config_text, read_config_text
from wal2http_tui.config.model import (
    HOOK0_SINK_KEYS,
    HTTP_SINK_KEYS,
    LEGACY_HTTP_KEY,
    SECRET_SINK_KEYS,
    SINK_KINDS,
    ReplicationConfig,
    sink_names,
)
from wal2http_tui.config.secrets import MASK, conninfo_password, is_sensitive_header
from wal2http_tui.config.toml_text import (
    is_literal_string,
    nest,
    render_key,
    render_value,
    toml_item,
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
        return bool(self.literal_secrets())

    def pending_diff(self, *, reveal: bool = False) -> str:
        """What saving would change in the file, as a unified diff ("" when nothing). Secrets
        written in the file (before or after the edit) read ``MASK`` unless ``reveal``."""
        lines = difflib.unified_diff(
            self._disk_text.splitlines(keepends=True),
            self._text.splitlines(keepends=True),
            fromfile=f"{self.path} (on disk)",
            tofile=f"{self.path} (to be written)",
        )
        diff = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        if reveal:
            return diff
        before = ConfigDocument(self.path, self._disk_text, environ=self.environ)
        secrets = {*before.literal_secrets(), *self.literal_secrets()}
        for secret in sorted(secrets, key=len, reverse=True):
            diff = diff.replace(secret, MASK)
        return diff

    def literal_secrets(self) -> list[str]:
        """The secrets written in the file itself (a ``${VAR}`` reference is not one)."""
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
        return [
            value
            for value in values
            if isinstance(value, str) and value and not env_references(value)
        ]

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
        if (statement := self._layout.statements.get(path)) is not None:
            literal = is_literal_string(self._item(path))
            self._write_value(statement, render_value(value, literal=literal))
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
            self._set_text(text_edits.add_key(self._layout, path, depth, value))

    def delete(self, key_path: KeyPath) -> None:
        """Remove a key, or a whole table with the comment lines just above its header."""
        path, depth, _ = self._locate(key_path)
        if depth < len(path):
            raise KeyError(format_key_path(key_path))
        if (statement := self._layout.statements.get(path)) is not None:
            self._set_text(text_edits.remove_key(self._layout, statement))
        elif (owner := self._statement_above(path)) is not None:
            self._edit_inside(owner, path, _MISSING)
        else:
            self._set_text(text_edits.remove_table(self._layout, path))

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
        header = self._layout.header(path)
        if path in self._layout.statements or self._statement_above(path) is not None:
            self._add_to_inline(path, current, table)
            return name
        after: KeyPath
        if current is None:
            new_header, after = f"[{render_key(path)}]", ("event_sinks",)
        elif isinstance(current, list) or (isinstance(current, dict) and header is not None):
            new_header, after = f"[[{render_key(path)}]]", path
        else:
            raise ValueError(
                f"cannot add to {format_key_path(path)} as it is written; edit the file"
            )
        if isinstance(current, dict) and header is not None:
            self._set_text(text_edits.make_array_of_tables(self._layout, header))
        self._set_text(text_edits.add_table(self._layout, new_header, table, after))
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

    def _item(self, path: KeyPath) -> Any:
        """The tomlkit item (table, array, value) at a key path as the file writes it."""
        item: Any = self.document
        for part in path:
            item = item[part]
        return item

    def _write_value(self, statement: Statement, value_text: str) -> None:
        self._set_text(text_edits.replace_value(self._layout, statement, value_text))

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

        Changing a value or an array goes through the tomlkit item, which keeps the formatting
        around it; an inline table that gains or loses a key is written anew, as tomlkit would
        leave odd spaces in it (``{ a = 1, b = 2}``).
        """
        item = self._item(owner.path)
        relative = path[len(owner.path) :]
        containers = [item]
        for part in relative[:-1]:
            if isinstance(containers[-1], Mapping) and part not in containers[-1]:
                break
            containers.append(containers[-1][part])
        target, rest = containers[-1], relative[len(containers) - 1 :]
        if isinstance(target, AbstractTable) and (  # an inline table, tomlkit's Mapping
            value is _MISSING or len(rest) > 1 or rest[0] not in target
        ):
            table: dict[Any, Any] = target.unwrap()
            if value is _MISSING:
                del table[rest[0]]
            else:
                table[rest[0]] = nest(rest[1:], value)
            if len(containers) == 1:
                self._write_value(owner, render_value(table))
                return
            containers[-2][relative[len(containers) - 2]] = toml_item(table)
        elif value is _MISSING:
            del target[rest[0]]
        else:
            target[rest[0]] = toml_item(value)
        self._write_value(owner, item.as_string())

    def _add_to_inline(self, path: KeyPath, current: Any, table: dict[str, Any]) -> None:
        """Add a sink where the file writes sinks as inline tables (``http = { ... }``)."""
        statement = self._layout.statements.get(path)
        if statement is not None and isinstance(current, dict):
            self._set_text(text_edits.make_array_of_inline_tables(self._layout, statement, table))
        elif statement is not None and isinstance(current, list):
            item = self._item(path)
            item.append(toml_item(table))
            self._write_value(statement, item.as_string())
        else:
            self.set(path, table)


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
