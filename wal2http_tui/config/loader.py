"""Loading the configuration file: read it, parse it, validate it into a ``ReplicationConfig``.

The file is TOML, parsed with tomlkit so that ``ConfigDocument`` can later write edits back
without disturbing comments or layout, and scanned by ``TomlLayout`` for the line of each key,
which tomlkit does not keep. Every problem is one ``ConfigError`` naming the file, the line, the
key and what is expected (``validation`` and ``sink_validation`` hold the rules).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import tomlkit
from tomlkit.exceptions import ParseError

from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.layout import TomlLayout
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.config.table_reader import ConfigSource
from wal2http_tui.config.validation import validate

_PARSE_ERROR_POSITION = re.compile(r"\s*at line \d+ col \d+$")


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
    source = ConfigSource(path, layout)
    return validate(document.unwrap(), source, os.environ if environ is None else environ)


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
