"""Validating the event sinks: ``[event_sinks.http]``, ``[event_sinks.hook0]`` and the legacy
``[http]`` table, each as a table, an array of tables or inline tables."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.messages import describe, show, unknown_key_message
from wal2http_tui.config.model import (
    EVENT_FORMATS,
    HOOK0_ALIASES,
    HOOK0_SINK_KEYS,
    HTTP_METHODS,
    HTTP_SINK_KEYS,
    LEGACY_HTTP_KEY,
    MAX_BATCH_EVENTS,
    MAX_HOOK0_LABELS,
    MAX_IN_FLIGHT,
    ON_FAILURE_CHOICES,
    ORDERING_CHOICES,
    RESERVED_HOOK0_LABELS,
    SINK_KINDS,
    SINK_OPERATIONS,
    EventSinkConfig,
    Hook0SinkConfig,
    HttpSinkConfig,
    sink_names,
)
from wal2http_tui.config.table_names import parse_table_pattern
from wal2http_tui.config.table_reader import ConfigSource, TableReader
from wal2http_tui.config.url_template import UrlTemplate

_SINK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_LINE_BREAK = re.compile(r"[\r\n\x00]")
_PATTERN_EXPECTED = (
    'a table pattern "schema.table", `*` for a whole part ("public.*", "*.audit_log"), '
    "a part that holds a dot double-quoted ('\"my.schema\".orders')"
)
_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_SIGNING_SECRET_EXPECTED = (
    'a Standard Webhooks secret: "whsec_" then the base64 of 24 to 64 random bytes '
    "(make one with: python -c \"import base64, os; print('whsec_' + "
    'base64.b64encode(os.urandom(32)).decode())")'
)


def read_sinks(source: ConfigSource, data: dict[str, Any]) -> list[EventSinkConfig]:
    """Every sink of the (expanded) file, the legacy ``[http]`` table first."""
    entries: list[tuple[str, KeyPath, dict[str, Any]]] = []
    if LEGACY_HTTP_KEY in data:
        legacy_path = (LEGACY_HTTP_KEY,)
        entries.append(
            ("http", legacy_path, _sink_table(source, legacy_path, data[LEGACY_HTTP_KEY]))
        )
        source.warn(
            legacy_path,
            '[http] is the legacy single-sink table: it is read as an HTTP sink named "http", '
            "enabled unless it says enabled = false. To migrate, rename the header to "
            "[event_sinks.http] and add enabled = true (sinks under event_sinks are disabled "
            "unless enabled = true)",
        )
    sinks_table = data.get("event_sinks", {})
    if not isinstance(sinks_table, dict):
        raise source.error(("event_sinks",), f"expected a table, got {describe(sinks_table)}")
    for kind, value in sinks_table.items():
        path: KeyPath = ("event_sinks", kind)
        if kind not in SINK_KINDS:
            raise source.error(path, unknown_key_message(kind, SINK_KINDS, "event_sinks"))
        if isinstance(value, list):
            entries.extend(
                (kind, (*path, i), _sink_table(source, (*path, i), item))
                for i, item in enumerate(value)
            )
        else:
            entries.append((kind, path, _sink_table(source, path, value)))
    names = sink_names((kind, table.get("name")) for kind, _, table in entries)
    sinks: list[EventSinkConfig] = []
    seen: dict[str, KeyPath] = {}
    for (kind, path, table), name in zip(entries, names, strict=True):
        legacy = path == (LEGACY_HTTP_KEY,)
        sink = (
            _http_sink(source, path, table, name, legacy)
            if kind == "http"
            else _hook0_sink(source, path, table, name)
        )
        if sink.name in seen:
            key = (*path, "name") if "name" in table else path
            how = "" if "name" in table else f" (the default name of an unnamed {kind} sink)"
            raise source.error(
                key,
                f'duplicate sink name "{sink.name}"{how}: {format_key_path(seen[sink.name])} '
                "has it too; give each sink a distinct `name`",
            )
        seen[sink.name] = path
        sinks.append(sink)
    return sinks


def _sink_table(source: ConfigSource, path: KeyPath, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        expected = "a table" if isinstance(path[-1], int) else "a table or an array of tables"
        raise source.error(path, f"expected {expected}, got {describe(value)}")
    return value


def _http_sink(
    source: ConfigSource, path: KeyPath, data: dict, name: str, legacy: bool
) -> HttpSinkConfig:
    table = TableReader(source, path, data, HttpSinkConfig, HTTP_SINK_KEYS, "an HTTP sink")
    headers = table.string_table("headers", secret=True)
    signing_secret = table.string("signing_secret", _SIGNING_SECRET_EXPECTED, secret=True)
    if signing_secret is not None and not _signing_secret_ok(signing_secret):
        raise table.fail("signing_secret", f"expected {_SIGNING_SECRET_EXPECTED}")
    for header, value in headers.items():
        header_path = (*path, "headers", header)
        if not _HEADER_NAME.fullmatch(header):
            raise source.error(header_path, "not a valid HTTP header name")
        if _LINE_BREAK.search(value):
            raise source.error(header_path, "header values cannot contain line breaks")
        if header.lower() == "authorization":
            raise source.error(
                header_path,
                "set the Authorization header with `auth_header`, which is kept out of logs "
                "and displays",
            )
        if signing_secret is not None and header.lower() in _SIGNATURE_HEADERS:
            raise source.error(
                header_path, "this header is set by the sink when signing_secret is set"
            )
    auth_header = table.string("auth_header", "an Authorization header value", secret=True)
    if auth_header is not None and _LINE_BREAK.search(auth_header):
        raise table.fail("auth_header", "header values cannot contain line breaks")
    url = table.url("url")
    try:
        UrlTemplate(url)
    except ValueError as exc:
        raise table.fail("url", str(exc)) from None
    return HttpSinkConfig(
        name=_sink_name(table, name),
        enabled=table.boolean("enabled", legacy),
        url=url,
        method=table.choice("method", HTTP_METHODS),
        auth_header=auth_header,
        headers=headers,
        signing_secret=signing_secret,
        batch_max_events=table.integer("batch_max_events", minimum=1, maximum=MAX_BATCH_EVENTS),
        **_delivery(table),
    )


def _hook0_sink(source: ConfigSource, path: KeyPath, data: dict, name: str) -> Hook0SinkConfig:
    table = TableReader(
        source, path, data, Hook0SinkConfig, HOOK0_SINK_KEYS, "a Hook0 sink", aliases=HOOK0_ALIASES
    )
    ids: dict[str, str | None] = {}
    for alias, key in HOOK0_ALIASES.items():
        given = key
        if alias in data:
            if key in data:
                raise table.fail(alias, f"give either {key} or {alias} (its old name), not both")
            source.warn((*path, alias), f"`{alias}` is the seed's name for `{key}`; rename it")
            given = alias
        expected = f"the UUID of the Hook0 {key.split('_')[0]}"
        value = table.string(given, expected, table.default(key))
        if value is not None and not _UUID.fullmatch(value):
            raise table.fail(
                given,
                "expected a UUID like 3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c (Hook0 shows it "
                f"in the application's settings), got {show(value)}",
            )
        ids[key] = None if value is None else value.lower()
    api_url = table.url("api_url")
    if not api_url.rstrip("/").endswith("/api/v1"):
        source.warn(
            (*path, "api_url"),
            "Hook0's API is under /api/v1 (e.g. https://app.hook0.com/api/v1); events will "
            f"be sent to {api_url.rstrip('/')}/event/",
        )
    application_id = ids["application_id"]
    assert application_id is not None  # a required key: table.string raised if it was missing
    return Hook0SinkConfig(
        name=_sink_name(table, name),
        enabled=table.boolean("enabled"),
        api_url=api_url,
        api_key=table.string("api_key", "a Hook0 API key", secret=True),
        application_id=application_id,
        organization_id=ids["organization_id"],
        labels=_hook0_labels(source, table),
        **_delivery(table),
    )


def _delivery(table: TableReader) -> dict[str, Any]:
    """The retry, timeout, TLS and format settings both sink kinds share."""
    backoff_ms = table.integer("retry_backoff_ms", minimum=0)
    max_backoff = table.seconds("retry_max_backoff_secs")
    if max_backoff * 1000 < backoff_ms:
        raise table.fail(
            "retry_max_backoff_secs",
            f"expected at least retry_backoff_ms ({backoff_ms} ms), got {show(max_backoff)}",
        )
    return {
        "event_format": table.choice("event_format", EVENT_FORMATS),
        "timeout": table.seconds("timeout"),
        "retries": table.integer("retries", minimum=0),
        "retry_backoff_ms": backoff_ms,
        "retry_max_backoff_secs": max_backoff,
        "on_failure": table.choice("on_failure", ON_FAILURE_CHOICES),
        "ordering": table.choice("ordering", ORDERING_CHOICES),
        "max_in_flight": table.integer("max_in_flight", minimum=1, maximum=MAX_IN_FLIGHT),
        "verify_tls": table.boolean("verify_tls"),
        "ca_file": table.file("ca_file"),
        **_routing(table),
    }


def _routing(table: TableReader) -> dict[str, Any]:
    """``tables``, ``ops`` and ``exclude_columns``: what the sink receives."""
    return {
        "tables": _list(
            table,
            "tables",
            _pattern,
            "receives nothing; remove `tables` to receive "
            "every table of the publication, or disable the sink",
        ),
        "ops": _list(
            table,
            "ops",
            _operation,
            "receives nothing; remove `ops` to receive every operation, or disable the sink",
        ),
        "exclude_columns": _exclusions(table),
    }


def _pattern(text: object) -> str:
    parse_table_pattern(text)
    assert isinstance(text, str)
    return text


def _operation(text: object) -> str:
    if text not in SINK_OPERATIONS:
        raise ValueError(f"an operation: one of {', '.join(SINK_OPERATIONS)}")
    assert isinstance(text, str)
    return text


def _list(table: TableReader, key: str, item: Any, empty: str) -> tuple[str, ...] | None:
    """An array whose items ``item`` checks (ValueError, naming what is expected)."""
    if key not in table.data:
        return None
    value = table.data[key]
    what = {"tables": _PATTERN_EXPECTED, "ops": "one of " + ", ".join(SINK_OPERATIONS)}[key]
    if not isinstance(value, list):
        raise table.fail(key, f"expected an array of {what}, got {describe(value)}")
    if not value:
        raise table.fail(key, f"an empty list {empty}")
    for i, element in enumerate(value):
        try:
            item(element)
        except ValueError:
            raise table.source.error(
                (*table.path, key, i), f"expected {what}, got {describe(element)}"
            ) from None
        if element in value[:i]:
            raise table.source.error((*table.path, key, i), f"{show(element)} is listed twice")
    return tuple(value)


def _exclusions(table: TableReader) -> dict[str, tuple[str, ...]]:
    key = "exclude_columns"
    expected = 'a table of table patterns to arrays of column names ({ "public.users" = ["ssn"] })'
    value = table.data.get(key, {})
    if not isinstance(value, dict):
        raise table.fail(key, f"expected {expected}, got {describe(value)}")
    exclusions: dict[str, tuple[str, ...]] = {}
    for pattern, columns in value.items():
        path = (*table.path, key, pattern)
        try:
            parse_table_pattern(pattern)
        except ValueError:
            raise table.source.error(
                path, f"expected {_PATTERN_EXPECTED} as the key, got {show(pattern)}"
            ) from None
        if not isinstance(columns, list) or not columns:
            raise table.source.error(
                path, f"expected a non-empty array of column names, got {describe(columns)}"
            )
        for column in columns:
            if not isinstance(column, str) or not column:
                raise table.source.error(
                    path, f"expected column names (strings), got {describe(column)}"
                )
        exclusions[pattern] = tuple(columns)
    return exclusions


def _sink_name(table: TableReader, default: str) -> str:
    name = table.string("name", "a sink name", default)
    if not _SINK_NAME.fullmatch(name):
        raise table.fail(
            "name",
            'expected a sink name: letters, digits, "-", "_" or ".", starting with a letter '
            f"or digit, at most 64 characters; got {show(name)}",
        )
    return name


def _signing_secret_ok(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


def _hook0_labels(source: ConfigSource, table: TableReader) -> dict[str, str]:
    labels = table.string_table("labels", secret=False)
    if len(labels) > MAX_HOOK0_LABELS:
        raise table.fail(
            "labels",
            f"expected at most {MAX_HOOK0_LABELS} labels (Hook0 accepts 10 and the sink adds "
            f"`schema` and `table`), got {len(labels)}",
        )
    for key, value in labels.items():
        label_path = (*table.path, "labels", key)
        if key in RESERVED_HOOK0_LABELS:
            raise source.error(label_path, "the sink sets the `schema` and `table` labels itself")
        for what, text in (("label name", key), ("label value", value)):
            if not 1 <= len(text.encode()) <= 50:
                raise source.error(
                    label_path, f"expected a {what} of 1 to 50 bytes, got {len(text.encode())}"
                )
    return labels
