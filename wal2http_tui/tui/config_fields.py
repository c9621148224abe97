"""The editor's fields: one per configuration key, typed from the config dataclasses.

Nothing here validates: the editor writes what was typed into the ``ConfigDocument`` and asks
``ConfigDocument.validate()``, so the messages are the loader's own. This module only turns
text into a TOML value (a number when it reads as one), values back into text, and decides what
a masked secret looks like.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError

from wal2http_tui.config.env import env_references
from wal2http_tui.config.keys import KeyPath
from wal2http_tui.config.model import (
    EVENT_FORMATS,
    HOOK0_ALIASES,
    HOOK0_SINK_KEYS,
    HTTP_METHODS,
    HTTP_SINK_KEYS,
    ON_FAILURE_CHOICES,
    ORDERING_CHOICES,
    ROOT_KEYS,
    SECRET_SINK_KEYS,
    Hook0SinkConfig,
    HttpSinkConfig,
    ReplicationConfig,
)
from wal2http_tui.config.secrets import MASK, is_sensitive_header, mask_conninfo

CHOICES: dict[str, tuple[str, ...]] = {
    "method": HTTP_METHODS,
    "event_format": EVENT_FORMATS,
    "on_failure": ON_FAILURE_CHOICES,
    "ordering": ORDERING_CHOICES,
}
REQUIRED = "required"
# What leaving a key out means, where the dataclass default does not say it well.
DEFAULT_MEANINGS = {
    "tables": "every table",
    "ops": "every operation",
    "exclude_columns": "no column hidden",
    "ca_file": "the system's certificates",
    "auth_header": "no Authorization header",
    "signing_secret": "not signed",
    "organization_id": "none",
    "name": "the kind, then kind-2, kind-3...",
    "metrics_listen": "not served",
}


@dataclass(frozen=True)
class FieldSpec:
    """``kind``: text, number (int or float), choice (incl. booleans) or toml (arrays, tables)."""

    key: str
    kind: str
    default: str  # shown as the placeholder; REQUIRED when the key must be given
    choices: tuple[str, ...] = ()

    @property
    def boolean(self) -> bool:
        return self.choices == ("true", "false")


def _default_text(field: dataclasses.Field) -> str:
    if field.name in DEFAULT_MEANINGS:
        return DEFAULT_MEANINGS[field.name]
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return REQUIRED
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return to_text(dict(value) if isinstance(value, dict) else list(value))
    return str(value)


def _spec(key: str, annotation: Any, field: dataclasses.Field) -> FieldSpec:
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    base = next((arg for arg in options if arg is not type(None)), annotation)
    origin = typing.get_origin(base) or base
    default = _default_text(field)
    if base is bool:
        return FieldSpec(key, "choice", default, ("true", "false"))
    if base in (int, float):
        return FieldSpec(key, "number", default)
    if origin in (dict, tuple, list):
        return FieldSpec(key, "toml", default)
    if key in CHOICES:
        return FieldSpec(key, "choice", default, CHOICES[key])
    if base in (str, Path):
        return FieldSpec(key, "text", default)
    raise TypeError(f"no editor field for {key}: {annotation}")


def _specs(config_class: type, keys: tuple[str, ...]) -> tuple[FieldSpec, ...]:
    hints = typing.get_type_hints(config_class)
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    return tuple(_spec(key, hints[key], fields[key]) for key in keys)


def field_key(spec: FieldSpec, table: dict[str, Any]) -> str:
    """The key as the file writes it: a Hook0 table may use the seed's alias names."""
    aliases = [alias for alias, key in HOOK0_ALIASES.items() if key == spec.key]
    return next((alias for alias in aliases if alias in table), spec.key)


def to_text(value: Any) -> str:
    """A value read from the document, as the field shows it ("" when the key is absent)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string().strip()
    return tomlkit.item(value).as_string()


def from_text(spec: FieldSpec, text: str) -> Any:
    """The value to write for what was typed; None (remove the key) for an empty field.

    ValueError when a TOML-valued field does not hold a TOML value.
    """
    if not text.strip():
        return None
    if spec.boolean:
        return text == "true"
    if spec.kind == "number":
        for number in (int, float):
            try:
                return number(text.strip())
            except ValueError:
                pass
        return text  # the loader says what it expects
    if spec.kind == "toml":
        try:
            return tomlkit.parse(f"value = {text}")["value"].unwrap()
        except ParseError as exc:
            raise ValueError(f"not a TOML value: {exc}") from None
    return text


ROOT_FIELDS = _specs(ReplicationConfig, tuple(key for key in ROOT_KEYS if key != "event_sinks"))
SINK_FIELDS = {
    "http": _specs(HttpSinkConfig, HTTP_SINK_KEYS),
    "hook0": _specs(Hook0SinkConfig, HOOK0_SINK_KEYS),
}


def is_secret(path: KeyPath) -> bool:
    key = path[-1]
    return key == "connection_string" or key in SECRET_SINK_KEYS or key == "headers"


def masked(path: KeyPath, value: Any) -> str | None:
    """How a secret field reads until revealed; None when it shows nothing secret as it is.

    A ``${VAR}`` reference is not the secret (the environment holds it), so it stays readable,
    which is also the rule ``ConfigDocument.holds_literal_secret`` follows.
    """
    if value is None or not is_secret(path):
        return None
    key = path[-1]
    if key == "connection_string" and isinstance(value, str):
        shown = mask_conninfo(value)
    elif key == "headers" and isinstance(value, dict):
        shown = to_text(
            {
                name: MASK if is_sensitive_header(name) and not _is_reference(item) else item
                for name, item in value.items()
            }
        )
    else:
        shown = to_text(value) if _is_reference(value) else MASK
    return None if shown == to_text(value) else shown


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(env_references(value))
