"""Reading one table of the file: typed getters whose errors name the key and its line.

A key the table leaves out reads as the default of the dataclass field of the same name, so the
defaults are the model's; a field without a default makes its key required.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.layout import TomlLayout
from wal2http_tui.config.messages import describe, show, unknown_key_message, unquote_hint
from wal2http_tui.config.model import HOOK0_SINK_KEYS, HTTP_SINK_KEYS, field_defaults
from wal2http_tui.config.secrets import mask_url_password

_REQUIRED: Any = object()
_FIELD_DEFAULT: Any = object()
_SECONDS_EXPECTED = "a number of seconds > 0"
_SECONDS_OR_OFF_EXPECTED = "a number of seconds >= 0 (0 turns it off)"
_URL_EXPECTED = "an http:// or https:// URL"


def resolve_beside(config_path: str | os.PathLike[str], text: str | Path) -> Path:
    """A path the configuration file names: ``~`` expanded, relative to the file's directory."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(config_path).absolute().parent / path


class ConfigSource:
    """The file being validated: its path (for messages and relative paths), its layout (for
    the line of each key) and the warnings found so far."""

    def __init__(self, path: str | os.PathLike[str], layout: TomlLayout) -> None:
        self.path = path
        self.layout = layout
        self.absolute_path = Path(path).absolute()
        self.warnings: list[str] = []

    def error(
        self, key_path: KeyPath, message: str, *, line_of: KeyPath | None = None
    ) -> ConfigError:
        line = self.layout.line_of(key_path if line_of is None else line_of)
        return ConfigError(self.path, message, key=format_key_path(key_path) or None, line=line)

    def warn(self, key_path: KeyPath, message: str) -> None:
        self.warnings.append(str(self.error(key_path, message)))

    def resolve_path(self, text: str | Path) -> Path:
        return resolve_beside(self.absolute_path, text)


class TableReader:
    """One table of the file: ``model`` gives the defaults, ``allowed`` the keys it may hold."""

    def __init__(
        self,
        source: ConfigSource,
        path: KeyPath,
        data: dict,
        model: type,
        allowed: Sequence[str],
        where: str,
        *,
        aliases: Iterable[str] = (),
    ) -> None:
        self.source, self.path, self.data = source, path, data
        self.defaults = field_defaults(model)
        for key in data:
            if key not in allowed and key not in aliases:
                message = unknown_key_message(key, allowed, where)
                if not path and key in HTTP_SINK_KEYS + HOOK0_SINK_KEYS:
                    message = f"unknown key here; `{key}` belongs in a sink table such as " + (
                        "[event_sinks.http]"
                    )
                raise source.error((*path, key), message)

    def fail(self, key: str, message: str) -> ConfigError:
        return self.source.error((*self.path, key), message)

    def default(self, key: str) -> Any:
        """The field's default for ``key``; _REQUIRED when the field has none."""
        return self.defaults.get(key, _REQUIRED)

    def _raw(self, key: str, expected: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _FIELD_DEFAULT:
            default = self.default(key)
        if default is _REQUIRED:
            raise self.source.error(
                (*self.path, key), f"missing required key; expected {expected}", line_of=self.path
            )
        return default

    def string(
        self,
        key: str,
        expected: str,
        default: Any = _FIELD_DEFAULT,
        *,
        secret: bool = False,
        empty_means_default: bool = False,
    ) -> Any:
        value = self._raw(key, expected, default)
        if key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"expected {expected}, got {describe(value, secret=secret)}")
        if empty_means_default and value == "":
            return self.default(key)
        if not value.strip():
            raise self.fail(key, f"expected {expected}, got an empty string")
        return value

    def boolean(self, key: str, default: Any = _FIELD_DEFAULT) -> bool:
        value = self._raw(key, "true or false", default)
        if not isinstance(value, bool):
            hint = unquote_hint(value)
            raise self.fail(key, f"expected true or false, got {describe(value)}{hint}")
        return value

    def integer(self, key: str, *, minimum: int, maximum: int | None = None) -> int:
        if maximum is None:
            expected = f"an integer >= {minimum}"
        else:
            expected = f"an integer from {minimum} to {maximum}"
        value = self._raw(key, expected, _FIELD_DEFAULT)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"expected {expected}, got {describe(value)}{unquote_hint(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            raise self.fail(key, f"expected {expected}, got {value}")
        return value

    def seconds(self, key: str, *, zero_means_off: bool = False) -> float:
        """A number of seconds > 0 (or >= 0, when 0 turns the setting off)."""
        expected = _SECONDS_OR_OFF_EXPECTED if zero_means_off else _SECONDS_EXPECTED
        value = self._raw(key, expected, _FIELD_DEFAULT)
        if not isinstance(value, int | float) or isinstance(value, bool):
            hint = unquote_hint(value)
            raise self.fail(key, f"expected {expected}, got {describe(value)}{hint}")
        if not (math.isfinite(value) and (value > 0 or (zero_means_off and value == 0))):
            raise self.fail(key, f"expected {expected}, got {show(value)}")
        return float(value)

    def choice(self, key: str, choices: Sequence[str]) -> str:
        expected = "one of " + ", ".join(f'"{choice}"' for choice in choices)
        value = self._raw(key, expected, _FIELD_DEFAULT)
        canonical = {choice.lower(): choice for choice in choices}
        if not isinstance(value, str) or value.lower() not in canonical:
            raise self.fail(key, f"expected {expected}, got {describe(value)}")
        return canonical[value.lower()]

    def string_table(self, key: str, *, secret: bool) -> dict:
        value = self._raw(key, "a table of strings", _FIELD_DEFAULT)
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of strings, got {describe(value)}")
        for name, item in value.items():
            if not isinstance(item, str):
                raise self.source.error(
                    (*self.path, key, name),
                    f"expected a string, got {describe(item, secret=secret)}",
                )
        return dict(value)

    def file(self, key: str) -> Path | None:
        text = self.string(key, "a file path")
        if text is None:
            return None
        path = self.source.resolve_path(text)
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


def _url_problem(url: str) -> str | None:
    shown = show(mask_url_password(url))
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
