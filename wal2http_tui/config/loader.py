"""The configuration file: where to replicate from and which event sinks receive the events.

The file is TOML, read with tomlkit so that ``config_file.ConfigDocument`` can later write edits
back without disturbing comments or layout. It is validated into frozen dataclasses (the seed's
``ReplicationConfig``, ``HttpSinkConfig`` and ``Hook0SinkConfig``); every problem is one
``ConfigError`` naming the file, the line, the key and what is expected.

tomlkit keeps no positions, so ``TomlLayout`` scans the text to find the line and the byte span
of every table header and key; the loader uses the lines, the write-back API the spans.

Secrets (``auth_header``, ``signing_secret``, ``api_key``, the password in ``connection_string``)
never appear in reprs or error messages; ``redacted()`` gives a view that is safe to display.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import os
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

import psycopg
import tomlkit
from psycopg.conninfo import conninfo_to_dict
from tomlkit.exceptions import ParseError

KeyPath: TypeAlias = tuple[str | int, ...]

DEAD_LETTER_FILE_NAME = "wal2http-dead-letters.sqlite"
SINK_KINDS = ("http", "hook0")
EVENT_FORMATS = ("json", "debezium", "cloudevents")
ON_FAILURE_CHOICES = ("block", "dead_letter")
HTTP_METHODS = ("POST", "PUT", "PATCH")
DEFAULT_HOOK0_LABELS: Mapping[str, str] = {"source": "wal2http"}
MAX_HOOK0_LABELS = 8  # Hook0 accepts 10; the sink adds `schema` and `table`
RESERVED_HOOK0_LABELS = ("schema", "table")
MASK = "***"

ROOT_KEYS = (
    "connection_string",
    "publication_name",
    "slot_name",
    "feedback_interval_secs",
    "tables",
    "create_publication",
    "create_slot",
    "dead_letter_path",
    "queue_max_events",
    "event_sinks",
)
LEGACY_HTTP_KEY = "http"
HTTP_SINK_KEYS = (
    "name",
    "enabled",
    "url",
    "method",
    "timeout",
    "retries",
    "auth_header",
    "headers",
    "event_format",
    "signing_secret",
    "batch_max_events",
    "verify_tls",
    "ca_file",
    "retry_backoff_ms",
    "retry_max_backoff_secs",
    "on_failure",
)
HOOK0_SINK_KEYS = (
    "name",
    "enabled",
    "api_url",
    "api_key",
    "application_id",
    "organization_id",
    "labels",
    "event_format",
    "timeout",
    "retries",
    "retry_backoff_ms",
    "retry_max_backoff_secs",
    "on_failure",
    "verify_tls",
    "ca_file",
)
HOOK0_ALIASES = {"project_id": "application_id", "workspace_id": "organization_id"}
SECRET_SINK_KEYS = ("auth_header", "signing_secret", "api_key")


class ConfigError(Exception):
    """One configuration problem: ``FILE:LINE: KEY: MESSAGE`` (line and key when known)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.key = key
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def format_key_path(path: Sequence[str | int]) -> str:
    """``("event_sinks", "http", 1, "url")`` -> ``event_sinks.http[1].url``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        text += f".{key}" if text else key
    return text


# --- secrets -------------------------------------------------------------------------------------

_URI_START = re.compile(r"postgres(?:ql)?://")
_URI_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)([^@/]*)@")
_URI_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|signature|session", re.I)


_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([^".]+)')


def split_table_name(name: object) -> tuple[str, ...]:
    """``schema.table`` or ``table`` -> its one or two parts; a part may be double-quoted (with
    ``""`` for a quote) to hold dots. Names are taken as written (no case folding).
    ValueError for anything else."""
    if not isinstance(name, str):
        raise ValueError("not a string")
    parts: list[str] = []
    position = 0
    while True:
        match = _NAME_PART.match(name, position)
        if match is None:
            raise ValueError(f"not a table name: {name!r}")
        quoted, bare = match.groups()
        part = quoted.replace('""', '"') if quoted is not None else bare
        if not part.strip():
            raise ValueError(f"not a table name: {name!r}")
        parts.append(part)
        position = match.end()
        if position == len(name):
            break
        if name[position] != "." or len(parts) == 2:
            raise ValueError(f"not a table name: {name!r}")
        position += 1
    return tuple(parts)


def mask_conninfo(dsn: str) -> str:
    """The connection string with its password replaced by ``***`` (key=value and URI forms)."""
    if _URI_START.match(dsn):
        dsn = _URI_USERINFO_PASSWORD.sub(rf"\1{MASK}@", dsn, count=1)
        return _URI_QUERY_PASSWORD.sub(rf"\1{MASK}", dsn)
    return _KEYWORD_PASSWORD.sub(rf"\1{MASK}", dsn)


def conninfo_password(dsn: str) -> str | None:
    """The password as written in the connection string (quotes kept), or None."""
    if _URI_START.match(dsn):
        found = _URI_USERINFO_PASSWORD.search(dsn) or _URI_QUERY_PASSWORD.search(dsn)
    else:
        found = _KEYWORD_PASSWORD.search(dsn)
    return found.group(2) if found and found.group(2) else None


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value is likely a credential (masked in ``redacted()`` views)."""
    return bool(_SENSITIVE_HEADER.search(name))


def _masked(value: str | None) -> str | None:
    return None if value is None else MASK


def _redacted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: MASK if is_sensitive_header(k) else v for k, v in headers.items()}


# --- the configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HttpSinkConfig:
    """An HTTP endpoint that receives every event (the seed's ``HttpSinkConfig``)."""

    kind: Literal["http"] = field(default="http", init=False)
    name: str = "http"
    enabled: bool = False
    url: str
    method: str = "POST"
    timeout: float = 10.0
    retries: int = 5
    auth_header: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    event_format: str = "json"
    signing_secret: str | None = field(default=None, repr=False)
    batch_max_events: int = 1
    verify_tls: bool = True
    ca_file: Path | None = None
    retry_backoff_ms: int = 500
    retry_max_backoff_secs: float = 60.0
    on_failure: str = "block"

    def redacted(self) -> dict[str, Any]:
        """A plain view for display: secrets masked, credential-like header values masked."""
        return {
            **_plain(self),
            "auth_header": _masked(self.auth_header),
            "signing_secret": _masked(self.signing_secret),
            "headers": _redacted_headers(self.headers),
        }


@dataclass(frozen=True, kw_only=True)
class Hook0SinkConfig:
    """A Hook0 application that receives every event as a Hook0 event."""

    kind: Literal["hook0"] = field(default="hook0", init=False)
    name: str = "hook0"
    enabled: bool = False
    api_url: str
    api_key: str = field(repr=False)
    application_id: str
    organization_id: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOOK0_LABELS))
    event_format: str = "json"
    timeout: float = 10.0
    retries: int = 5
    retry_backoff_ms: int = 500
    retry_max_backoff_secs: float = 60.0
    on_failure: str = "block"
    verify_tls: bool = True
    ca_file: Path | None = None

    def redacted(self) -> dict[str, Any]:
        """A plain view for display, the API key masked."""
        return {**_plain(self), "api_key": MASK}


EventSinkConfig: TypeAlias = HttpSinkConfig | Hook0SinkConfig


@dataclass(frozen=True, kw_only=True)
class ReplicationConfig:
    """Everything the replication server needs (the seed's ``ReplicationConfig``)."""

    connection_string: str = field(repr=False)
    publication_name: str = "wal2http_pub"
    slot_name: str = "wal2http_slot"
    feedback_interval_secs: float = 10.0
    tables: tuple[str, ...] | None = None
    create_publication: bool = True
    create_slot: bool = True
    dead_letter_path: Path = Path(DEAD_LETTER_FILE_NAME)
    queue_max_events: int = 10_000
    event_sinks: tuple[EventSinkConfig, ...] = ()
    source_path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def enabled_sinks(self) -> tuple[EventSinkConfig, ...]:
        return tuple(sink for sink in self.event_sinks if sink.enabled)

    def redacted(self) -> dict[str, Any]:
        """A plain view for display: the password masked, each sink's secrets masked."""
        return {
            **_plain(self),
            "connection_string": mask_conninfo(self.connection_string),
            "event_sinks": [sink.redacted() for sink in self.event_sinks],
        }


def _plain(config: object) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name in config.__dataclass_fields__:  # type: ignore[attr-defined]
        value = getattr(config, name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        view[name] = value
    return view


# --- where things are in the text ----------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """A ``[table]`` or ``[[array.of.tables]]`` line; ``path`` has array indices resolved."""

    path: KeyPath
    start: int  # offset of the line's first character
    bracket_start: int
    bracket_end: int  # just past the closing bracket(s)
    end: int  # just past the line's newline (or the end of the text)
    array: bool


@dataclass(frozen=True)
class Statement:
    """A ``key = value`` line of a table body (keys inside inline tables are not statements)."""

    path: KeyPath
    table: KeyPath  # the table whose body holds it; () is the top level
    start: int
    value_start: int
    value_end: int
    end: int


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
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
        text, pos, table = self.text, 0, ()
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
                self.headers.append(Header(table, line_start, pos, bracket_end, end, array))
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
            elif match := _BARE_KEY.match(text, pos):
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


# --- reading and parsing -------------------------------------------------------------------------


def read_config_text(path: str | os.PathLike[str]) -> str:
    """The file's text exactly as stored (line endings kept); ConfigError if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(path, "cannot read the file: permission denied") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (invalid byte at offset {exc.start})") from None


_PARSE_ERROR_POSITION = re.compile(r"\s*at line \d+ col \d+$")


def parse_config_text(
    text: str, path: str | os.PathLike[str]
) -> tuple[tomlkit.TOMLDocument, TomlLayout]:
    """The tomlkit document and the layout of ``text``; ConfigError if it is not valid TOML."""
    layout = TomlLayout(text)
    try:
        document = tomlkit.parse(text)
    except ParseError as exc:
        reason = _PARSE_ERROR_POSITION.sub("", str(exc))
        for inline_path, first, last in layout.multiline_inline_tables:
            if first <= exc.line <= last:
                where = f"invalid TOML at line {exc.line}, column {exc.col + 1}: {reason}; "
                raise _multiline_inline_error(path, inline_path, first, layout, where) from None
        message = f"invalid TOML at column {exc.col + 1}: {reason}"
        raise ConfigError(path, message, line=exc.line) from None
    return document, layout


def _multiline_inline_error(
    path: str | os.PathLike[str],
    inline_path: KeyPath,
    line: int,
    layout: TomlLayout,
    parse_error: str = "",
) -> ConfigError:
    """TOML 1.0 inline tables are one line; the seed's example spreads one over several."""
    keys = layout.child_keys(inline_path)
    array = isinstance(inline_path[-1], int)
    table_path = inline_path[:-1] if array else inline_path
    header = f"[[{format_key_path(table_path)}]]" if array else f"[{format_key_path(table_path)}]"
    example = "\n".join([f"    {header}", *(f"    {key} = ..." for key in keys)])
    message = (
        f"{parse_error}this inline table spans several lines, which TOML 1.0 does not allow "
        "(inline tables must fit on one line); write it as a table instead:\n" + example
    )
    return ConfigError(path, message, key=format_key_path(inline_path), line=line)


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> ReplicationConfig:
    """Read, parse and validate a configuration file; ConfigError on the first problem."""
    return load_config_text(read_config_text(path), path, environ=environ)


def load_config_text(
    text: str, path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> ReplicationConfig:
    """Validate configuration text as if read from ``path`` (messages and relative paths)."""
    document, layout = parse_config_text(text, path)
    if layout.multiline_inline_tables:
        inline_path, first, _last = layout.multiline_inline_tables[0]
        raise _multiline_inline_error(path, inline_path, first, layout)
    loader = _Loader(path, layout, os.environ if environ is None else environ)
    return loader.load(document.unwrap())


# --- validation ----------------------------------------------------------------------------------

_REQUIRED: Any = object()
_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)\})?")
_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")
_SINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_TYPE_NAMES = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    ((date, time), "a date/time"),
)
_URL_EXPECTED = "an http:// or https:// URL"
_CONNINFO_EXPECTED = 'a libpq connection string ("host=... dbname=...") or a postgresql:// URI'
_SECONDS_EXPECTED = "a number of seconds > 0"
_SIGNING_SECRET_EXPECTED = (
    'a Standard Webhooks secret: "whsec_" then the base64 of 24 to 64 random bytes '
    "(make one with: python -c \"import base64, os; print('whsec_' + "
    'base64.b64encode(os.urandom(32)).decode())")'
)


def env_references(text: str) -> list[str]:
    """The names of the ``${VAR}`` references in a string (``$${`` escapes are not references)."""
    return [m.group(1) for m in _ENV_REFERENCE.finditer(text) if m.group(1)]


def sink_names(entries: Iterable[tuple[str, object]]) -> list[str]:
    """Each sink's name: its own, else the kind, then ``kind-2``, ``kind-3``... per unnamed one."""
    unnamed: dict[str, int] = {}
    names = []
    for kind, name in entries:
        if isinstance(name, str):
            names.append(name)
            continue
        unnamed[kind] = unnamed.get(kind, 0) + 1
        names.append(kind if unnamed[kind] == 1 else f"{kind}-{unnamed[kind]}")
    return names


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '..."'
    return str(value)


def _describe(value: object, *, secret: bool = False) -> str:
    """``a string ("10")``: the TOML type of a value, and the value unless it is secret."""
    name = next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), "a value")
    if secret or isinstance(value, list | dict):
        return name
    return f"{name} ({_show(value)})"


def _unquote_hint(value: object) -> str:
    if isinstance(value, str) and re.fullmatch(r"\s*(true|false|[-+]?[0-9_.eE+-]+)\s*", value):
        return "; write it without quotes"
    return ""


def _unknown_key_message(key: str, allowed: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean `{close[0]}`?"
    return f"unknown key; the keys of {where} are: {', '.join(allowed)}"


def _url_problem(url: str) -> str | None:
    shown = _show(_URI_USERINFO_PASSWORD.sub(rf"\1{MASK}@", url, count=1))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return f"expected {_URL_EXPECTED} with a valid host and port, got {shown}"
    if parts.scheme not in ("http", "https") or not url.startswith(f"{parts.scheme}://"):
        return f"expected {_URL_EXPECTED}, got {shown}"
    if parts.password is not None or parts.username is not None:
        return (
            "credentials in the URL would show wherever the URL is displayed; remove them and "
            'set auth_header = "Basic <base64 of user:password>" instead'
        )
    if not parts.hostname or re.search(r"\s", url):
        return f"expected {_URL_EXPECTED} with a host and no spaces, got {shown}"
    return None


def _signing_secret_ok(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


class _Loader:
    def __init__(
        self, path: str | os.PathLike[str], layout: TomlLayout, environ: Mapping[str, str]
    ) -> None:
        self.path = path
        self.layout = layout
        self.environ = environ
        self.source_path = Path(path).absolute()
        self.warnings: list[str] = []

    def error(
        self, key_path: KeyPath, message: str, *, line_of: KeyPath | None = None
    ) -> ConfigError:
        line = self.layout.line_of(key_path if line_of is None else line_of)
        return ConfigError(self.path, message, key=format_key_path(key_path) or None, line=line)

    def warn(self, key_path: KeyPath, message: str) -> None:
        self.warnings.append(str(self.error(key_path, message)))

    def expand(self, value: Any, path: KeyPath) -> Any:
        """``${VAR}`` replaced in every string value; ``$${`` stands for a literal ``${``."""
        if isinstance(value, dict):
            return {key: self.expand(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.expand(item, (*path, i)) for i, item in enumerate(value)]
        if not isinstance(value, str):
            return value

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if match.group() == "$${":
                return "${"
            if name is None:
                raise self.error(
                    path,
                    'malformed variable reference: expected ${NAME} (letters, digits and "_"); '
                    'write $${ for a literal "${"',
                )
            if name not in self.environ:
                raise self.error(
                    path, f"environment variable {name} is not set (the value uses ${{{name}}})"
                )
            return self.environ[name]

        return _ENV_REFERENCE.sub(substitute, value)

    def resolve_path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.source_path.parent / path

    def load(self, data: dict[str, Any]) -> ReplicationConfig:
        data = self.expand(data, ())
        root = _Table(self, (), data, (*ROOT_KEYS, LEGACY_HTTP_KEY), "the top level")
        connection_string = root.string("connection_string", _CONNINFO_EXPECTED, secret=True)
        if problem := _conninfo_problem(connection_string):
            raise root.fail("connection_string", problem)
        publication_name = root.string(
            "publication_name", "a publication name (1 to 63 bytes)", "wal2http_pub"
        )
        if len(publication_name.encode()) > 63:
            raise root.fail("publication_name", "expected at most 63 bytes (NAMEDATALEN - 1)")
        slot_name = root.string("slot_name", "a replication slot name", "wal2http_slot")
        if not _SLOT_NAME.fullmatch(slot_name):
            raise root.fail(
                "slot_name",
                "expected a replication slot name: lower-case letters, digits and underscores, "
                f"at most 63 characters; got {_show(slot_name)}",
            )
        dead_letter = root.string("dead_letter_path", "a file path", DEAD_LETTER_FILE_NAME)
        dead_letter_path = self.resolve_path(dead_letter)
        if not dead_letter_path.parent.is_dir():
            raise root.fail("dead_letter_path", f"directory not found: {dead_letter_path.parent}")
        sinks = self._sinks(data)
        if sinks and not any(sink.enabled for sink in sinks):
            self.warn(
                ("event_sinks",),
                "no event sink is enabled (sinks are disabled unless they say enabled = true)",
            )
        return ReplicationConfig(
            connection_string=connection_string,
            publication_name=publication_name,
            slot_name=slot_name,
            feedback_interval_secs=root.seconds("feedback_interval_secs", 10.0),
            tables=self._tables(root),
            create_publication=root.boolean("create_publication", True),
            create_slot=root.boolean("create_slot", True),
            dead_letter_path=dead_letter_path,
            queue_max_events=root.integer("queue_max_events", 10_000, minimum=1),
            event_sinks=tuple(sinks),
            source_path=self.source_path,
            warnings=tuple(self.warnings),
        )

    def _tables(self, root: _Table) -> tuple[str, ...] | None:
        if "tables" not in root.data:
            return None
        tables = root.data["tables"]
        expected = 'an array of table names ("schema.table" or "table")'
        if not isinstance(tables, list):
            raise root.fail("tables", f"expected {expected}, got {_describe(tables)}")
        if not tables:
            raise root.fail(
                "tables", "an empty list publishes nothing; remove `tables` to publish all tables"
            )
        for i, name in enumerate(tables):
            try:
                split_table_name(name)
            except ValueError:
                raise self.error(
                    ("tables", i),
                    'expected "schema.table" or "table" (double-quote a part that holds a dot: '
                    f"'\"my.schema\".orders'), got {_describe(name)}",
                ) from None
        return tuple(tables)

    def _sinks(self, data: dict[str, Any]) -> list[EventSinkConfig]:
        entries: list[tuple[str, KeyPath, dict[str, Any]]] = []
        if LEGACY_HTTP_KEY in data:
            legacy = (LEGACY_HTTP_KEY,)
            entries.append(("http", legacy, self._sink_table(legacy, data[LEGACY_HTTP_KEY])))
            self.warn(
                legacy,
                '[http] is the legacy single-sink table: it is read as an HTTP sink named "http", '
                "enabled unless it says enabled = false. To migrate, rename the header to "
                "[event_sinks.http] and add enabled = true (sinks under event_sinks are disabled "
                "unless enabled = true)",
            )
        sinks_table = data.get("event_sinks", {})
        if not isinstance(sinks_table, dict):
            raise self.error(("event_sinks",), f"expected a table, got {_describe(sinks_table)}")
        for kind, value in sinks_table.items():
            path = ("event_sinks", kind)
            if kind not in SINK_KINDS:
                raise self.error(path, _unknown_key_message(kind, SINK_KINDS, "event_sinks"))
            if isinstance(value, list):
                entries.extend(
                    (kind, (*path, i), self._sink_table((*path, i), item))
                    for i, item in enumerate(value)
                )
            else:
                entries.append((kind, path, self._sink_table(path, value)))
        names = sink_names((kind, table.get("name")) for kind, _, table in entries)
        sinks: list[EventSinkConfig] = []
        seen: dict[str, KeyPath] = {}
        for (kind, path, table), name in zip(entries, names, strict=True):
            legacy = path == (LEGACY_HTTP_KEY,)
            sink = (
                _http_sink(self, path, table, name, legacy)
                if kind == "http"
                else _hook0_sink(self, path, table, name)
            )
            if sink.name in seen:
                key = (*path, "name") if "name" in table else path
                how = "" if "name" in table else f" (the default name of an unnamed {kind} sink)"
                raise self.error(
                    key,
                    f'duplicate sink name "{sink.name}"{how}: {format_key_path(seen[sink.name])} '
                    "has it too; give each sink a distinct `name`",
                )
            seen[sink.name] = path
            sinks.append(sink)
        return sinks

    def _sink_table(self, path: KeyPath, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            expected = "a table" if isinstance(path[-1], int) else "a table or an array of tables"
            raise self.error(path, f"expected {expected}, got {_describe(value)}")
        return value


def _conninfo_problem(dsn: str) -> str | None:
    if "://" in dsn.split("=", 1)[0] and not _URI_START.match(dsn):
        return f"expected {_CONNINFO_EXPECTED}, got {_show(mask_conninfo(dsn))}"
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        reason = str(exc).strip().replace(dsn, mask_conninfo(dsn))
        return f"expected {_CONNINFO_EXPECTED}: {reason}"
    return None


class _Table:
    """One TOML table being validated: typed getters whose errors name the key and its line."""

    def __init__(
        self,
        loader: _Loader,
        path: KeyPath,
        data: dict,
        allowed: Sequence[str],
        where: str,
        *,
        aliases: Iterable[str] = (),
    ) -> None:
        self.loader, self.path, self.data = loader, path, data
        for key in data:
            if key not in allowed and key not in aliases:
                message = _unknown_key_message(key, allowed, where)
                if not path and key in HTTP_SINK_KEYS + HOOK0_SINK_KEYS:
                    message = f"unknown key here; `{key}` belongs in a sink table such as " + (
                        "[event_sinks.http]"
                    )
                raise loader.error((*path, key), message)

    def fail(self, key: str, message: str) -> ConfigError:
        return self.loader.error((*self.path, key), message)

    def _raw(self, key: str, expected: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.loader.error(
                (*self.path, key), f"missing required key; expected {expected}", line_of=self.path
            )
        return default

    def string(
        self, key: str, expected: str, default: Any = _REQUIRED, *, secret: bool = False
    ) -> Any:
        value = self._raw(key, expected, default)
        if key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"expected {expected}, got {_describe(value, secret=secret)}")
        if not value.strip():
            raise self.fail(key, f"expected {expected}, got an empty string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key, "true or false", default)
        if not isinstance(value, bool):
            hint = _unquote_hint(value)
            raise self.fail(key, f"expected true or false, got {_describe(value)}{hint}")
        return value

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        if maximum is None:
            expected = f"an integer >= {minimum}"
        else:
            expected = f"an integer from {minimum} to {maximum}"
        value = self._raw(key, expected, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(
                key, f"expected {expected}, got {_describe(value)}{_unquote_hint(value)}"
            )
        if value < minimum or (maximum is not None and value > maximum):
            raise self.fail(key, f"expected {expected}, got {value}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self._raw(key, _SECONDS_EXPECTED, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            hint = _unquote_hint(value)
            raise self.fail(key, f"expected {_SECONDS_EXPECTED}, got {_describe(value)}{hint}")
        if not (math.isfinite(value) and value > 0):
            raise self.fail(key, f"expected {_SECONDS_EXPECTED}, got {_show(value)}")
        return float(value)

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        expected = "one of " + ", ".join(f'"{choice}"' for choice in choices)
        value = self._raw(key, expected, default)
        canonical = {choice.lower(): choice for choice in choices}
        if not isinstance(value, str) or value.lower() not in canonical:
            raise self.fail(key, f"expected {expected}, got {_describe(value)}")
        return canonical[value.lower()]

    def string_table(self, key: str, default: Mapping[str, str], *, secret: bool) -> dict:
        value = self._raw(key, "a table of strings", default)
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of strings, got {_describe(value)}")
        for name, item in value.items():
            if not isinstance(item, str):
                raise self.loader.error(
                    (*self.path, key, name),
                    f"expected a string, got {_describe(item, secret=secret)}",
                )
        return dict(value)

    def file(self, key: str) -> Path | None:
        text = self.string(key, "a file path", None)
        if text is None:
            return None
        path = self.loader.resolve_path(text)
        if not path.is_file():
            where = "" if Path(text).is_absolute() else " (relative to the configuration file)"
            raise self.fail(key, f"file not found: {path}{where}")
        if not os.access(path, os.R_OK):
            raise self.fail(key, f"file not readable (permission denied): {path}")
        return path

    def url(self, key: str) -> str:
        url = self.string(key, _URL_EXPECTED)
        if problem := _url_problem(url):
            raise self.fail(key, problem)
        return url

    def delivery(self) -> dict[str, Any]:
        """The retry, timeout, TLS and format settings both sink kinds share."""
        backoff_ms = self.integer("retry_backoff_ms", 500, minimum=0)
        max_backoff = self.seconds("retry_max_backoff_secs", 60.0)
        if max_backoff * 1000 < backoff_ms:
            raise self.fail(
                "retry_max_backoff_secs",
                f"expected at least retry_backoff_ms ({backoff_ms} ms), got {_show(max_backoff)}",
            )
        return {
            "event_format": self.choice("event_format", EVENT_FORMATS, "json"),
            "timeout": self.seconds("timeout", 10.0),
            "retries": self.integer("retries", 5, minimum=0),
            "retry_backoff_ms": backoff_ms,
            "retry_max_backoff_secs": max_backoff,
            "on_failure": self.choice("on_failure", ON_FAILURE_CHOICES, "block"),
            "verify_tls": self.boolean("verify_tls", True),
            "ca_file": self.file("ca_file"),
        }

    def sink_name(self, default: str) -> str:
        name = self.string("name", "a sink name", default)
        if not _SINK_NAME.fullmatch(name):
            raise self.fail(
                "name",
                'expected a sink name: letters, digits, "-", "_" or ".", starting with a letter '
                f"or digit, at most 64 characters; got {_show(name)}",
            )
        return name


def _http_sink(
    loader: _Loader, path: KeyPath, data: dict, name: str, legacy: bool
) -> HttpSinkConfig:
    table = _Table(loader, path, data, HTTP_SINK_KEYS, "an HTTP sink")
    headers = table.string_table("headers", {}, secret=True)
    signing_secret = table.string("signing_secret", _SIGNING_SECRET_EXPECTED, None, secret=True)
    if signing_secret is not None and not _signing_secret_ok(signing_secret):
        raise table.fail("signing_secret", f"expected {_SIGNING_SECRET_EXPECTED}")
    for header, value in headers.items():
        header_path = (*path, "headers", header)
        if not _HEADER_NAME.fullmatch(header):
            raise loader.error(header_path, "not a valid HTTP header name")
        if re.search(r"[\r\n\x00]", value):
            raise loader.error(header_path, "header values cannot contain line breaks")
        if header.lower() == "authorization":
            raise loader.error(
                header_path,
                "set the Authorization header with `auth_header`, which is kept out of logs "
                "and displays",
            )
        if signing_secret is not None and header.lower() in _SIGNATURE_HEADERS:
            raise loader.error(
                header_path, "this header is set by the sink when signing_secret is set"
            )
    auth_header = table.string("auth_header", "an Authorization header value", None, secret=True)
    if auth_header is not None and re.search(r"[\r\n\x00]", auth_header):
        raise table.fail("auth_header", "header values cannot contain line breaks")
    return HttpSinkConfig(
        name=table.sink_name(name),
        enabled=table.boolean("enabled", legacy),
        url=table.url("url"),
        method=table.choice("method", HTTP_METHODS, "POST"),
        auth_header=auth_header,
        headers=headers,
        signing_secret=signing_secret,
        batch_max_events=table.integer("batch_max_events", 1, minimum=1, maximum=10_000),
        **table.delivery(),
    )


def _hook0_sink(loader: _Loader, path: KeyPath, data: dict, name: str) -> Hook0SinkConfig:
    table = _Table(loader, path, data, HOOK0_SINK_KEYS, "a Hook0 sink", aliases=HOOK0_ALIASES)
    ids: dict[str, str | None] = {}
    for alias, key in HOOK0_ALIASES.items():
        source = key
        if alias in data:
            if key in data:
                raise table.fail(alias, f"give either {key} or {alias} (its old name), not both")
            loader.warn((*path, alias), f"`{alias}` is the seed's name for `{key}`; rename it")
            source = alias
        required = _REQUIRED if key == "application_id" else None
        value = table.string(source, f"the UUID of the Hook0 {key.split('_')[0]}", required)
        if value is not None and not _UUID.fullmatch(value):
            raise table.fail(
                source,
                "expected a UUID like 3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c (Hook0 shows it "
                f"in the application's settings), got {_show(value)}",
            )
        ids[key] = None if value is None else value.lower()
    api_url = table.url("api_url")
    if not api_url.rstrip("/").endswith("/api/v1"):
        loader.warn(
            (*path, "api_url"),
            "Hook0's API is under /api/v1 (e.g. https://app.hook0.com/api/v1); events will "
            f"be sent to {api_url.rstrip('/')}/event/",
        )
    return Hook0SinkConfig(
        name=table.sink_name(name),
        enabled=table.boolean("enabled", False),
        api_url=api_url,
        api_key=table.string("api_key", "a Hook0 API key", secret=True),
        application_id=ids["application_id"],
        organization_id=ids["organization_id"],
        labels=_hook0_labels(loader, table),
        **table.delivery(),
    )


def _hook0_labels(loader: _Loader, table: _Table) -> dict[str, str]:
    labels = table.string_table("labels", DEFAULT_HOOK0_LABELS, secret=False)
    if len(labels) > MAX_HOOK0_LABELS:
        raise table.fail(
            "labels",
            f"expected at most {MAX_HOOK0_LABELS} labels (Hook0 accepts 10 and the sink adds "
            f"`schema` and `table`), got {len(labels)}",
        )
    for key, value in labels.items():
        label_path = (*table.path, "labels", key)
        if key in RESERVED_HOOK0_LABELS:
            raise loader.error(label_path, "the sink sets the `schema` and `table` labels itself")
        for what, text in (("label name", key), ("label value", value)):
            if not 1 <= len(text.encode()) <= 50:
                raise loader.error(
                    label_path, f"expected a {what} of 1 to 50 bytes, got {len(text.encode())}"
                )
    return labels
