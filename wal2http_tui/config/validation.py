"""Validating a parsed file into a ``ReplicationConfig``: the top level here, the sinks in
``sink_validation``. The first problem raises a ``ConfigError``; what is worth knowing but not
wrong (a legacy table, no enabled sink) becomes one of the config's ``warnings``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from wal2http_tui.config.env import expand_env
from wal2http_tui.config.messages import describe, show
from wal2http_tui.config.model import (
    LEGACY_HTTP_KEY,
    PUBLISHED_OPERATIONS,
    ROOT_KEYS,
    ReplicationConfig,
    parse_listen,
    socket_path_too_long,
)
from wal2http_tui.config.secrets import is_uri_conninfo, mask_conninfo
from wal2http_tui.config.sink_validation import read_sinks
from wal2http_tui.config.table_names import split_table_name
from wal2http_tui.config.table_reader import ConfigSource, TableReader

_SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")
_LISTEN_EXPECTED = 'an address and port such as "127.0.0.1:9187" ("" for off)'
_CONNINFO_EXPECTED = 'a libpq connection string ("host=... dbname=...") or a postgresql:// URI'


def validate(
    data: dict[str, Any], source: ConfigSource, environ: Mapping[str, str]
) -> ReplicationConfig:
    """The configuration ``data`` (the unwrapped document) describes, ``${VAR}`` expanded."""
    data = expand_env(data, (), environ, source.error)
    root = TableReader(
        source, (), data, ReplicationConfig, (*ROOT_KEYS, LEGACY_HTTP_KEY), "the top level"
    )
    connection_string = root.string("connection_string", _CONNINFO_EXPECTED, secret=True)
    if problem := _conninfo_problem(connection_string):
        raise root.fail("connection_string", problem)
    publication_name = root.string("publication_name", "a publication name (1 to 63 bytes)")
    if len(publication_name.encode()) > 63:
        raise root.fail("publication_name", "expected at most 63 bytes (NAMEDATALEN - 1)")
    slot_name = root.string("slot_name", "a replication slot name")
    if not _SLOT_NAME.fullmatch(slot_name):
        raise root.fail(
            "slot_name",
            "expected a replication slot name: lower-case letters, digits and underscores, "
            f"at most 63 characters; got {show(slot_name)}",
        )
    dead_letter_path = source.resolve_path(root.string("dead_letter_path", "a file path"))
    if not dead_letter_path.parent.is_dir():
        raise root.fail("dead_letter_path", f"directory not found: {dead_letter_path.parent}")
    sinks = read_sinks(source, data)
    if sinks and not any(sink.enabled for sink in sinks):
        source.warn(
            ("event_sinks",),
            "no event sink is enabled (sinks are disabled unless they say enabled = true)",
        )
    return ReplicationConfig(
        connection_string=connection_string,
        publication_name=publication_name,
        slot_name=slot_name,
        feedback_interval_secs=root.seconds("feedback_interval_secs"),
        server_timeout_secs=root.seconds("server_timeout_secs", zero_means_off=True),
        tables=_tables(source, root),
        create_publication=root.boolean("create_publication"),
        publish=_publish(root),
        publish_generated_columns=root.boolean("publish_generated_columns"),
        create_slot=root.boolean("create_slot"),
        failover_slot=root.boolean("failover_slot"),
        initial_snapshot=root.boolean("initial_snapshot"),
        backfill_chunk_rows=root.integer("backfill_chunk_rows", minimum=1, maximum=1_000_000),
        dead_letter_path=dead_letter_path,
        queue_max_events=root.integer("queue_max_events", minimum=1),
        stall_warning_secs=root.seconds("stall_warning_secs", zero_means_off=True),
        metrics_listen=_listen(root),
        ready_max_lag_secs=root.seconds("ready_max_lag_secs"),
        control_socket=_control_socket(source, root),
        event_sinks=tuple(sinks),
        source_path=source.absolute_path,
        warnings=tuple(source.warnings),
    )


def _listen(root: TableReader) -> str | None:
    """``metrics_listen``: ``host:port`` (``[::1]:9187`` for IPv6); absent or "" for off."""
    value = root.string("metrics_listen", _LISTEN_EXPECTED, empty_means_default=True)
    if not value:
        return None
    try:
        parse_listen(value)
    except ValueError:
        raise root.fail(
            "metrics_listen", f"expected {_LISTEN_EXPECTED}, got {show(value)}"
        ) from None
    return value


def _control_socket(source: ConfigSource, root: TableReader) -> Path | None:
    """``control_socket``: a path (relative to the configuration file); absent or "" for the
    default place. A Unix socket path holds at most ``MAX_SOCKET_PATH_BYTES``."""
    value = root.string(
        "control_socket", 'a socket path ("" for the default place)', empty_means_default=True
    )
    if not value:
        return None
    path = source.resolve_path(value)
    if problem := socket_path_too_long(path):
        raise root.fail("control_socket", f"{problem}: choose a shorter path")
    return path


def _tables(source: ConfigSource, root: TableReader) -> tuple[str, ...] | None:
    if "tables" not in root.data:
        return None
    tables = root.data["tables"]
    expected = 'an array of table names ("schema.table" or "table")'
    if not isinstance(tables, list):
        raise root.fail("tables", f"expected {expected}, got {describe(tables)}")
    if not tables:
        raise root.fail(
            "tables", "an empty list publishes nothing; remove `tables` to publish all tables"
        )
    for i, name in enumerate(tables):
        try:
            split_table_name(name)
        except ValueError:
            raise source.error(
                ("tables", i),
                'expected "schema.table" or "table" (double-quote a part that holds a dot: '
                f"'\"my.schema\".orders'), got {describe(name)}",
            ) from None
    return tuple(tables)


def _publish(root: TableReader) -> str | None:
    """``publish``: operations from PUBLISHED_OPERATIONS, comma-separated; written back
    normalised (``"insert, truncate"``)."""
    expected = "a comma-separated list of " + ", ".join(PUBLISHED_OPERATIONS)
    text = root.string("publish", expected)
    if text is None:
        return None
    operations = [part.strip().lower() for part in text.split(",")]
    unknown = [part for part in operations if part not in PUBLISHED_OPERATIONS]
    if unknown or len(set(operations)) != len(operations):
        what = f"unknown operation {show(unknown[0])}" if unknown else "an operation twice"
        raise root.fail("publish", f"expected {expected} (each once), got {what}")
    return ", ".join(op for op in PUBLISHED_OPERATIONS if op in operations)


def _conninfo_problem(dsn: str) -> str | None:
    if "://" in dsn.split("=", 1)[0] and not is_uri_conninfo(dsn):
        return f"expected {_CONNINFO_EXPECTED}, got {show(mask_conninfo(dsn))}"
    try:
        conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        reason = str(exc).strip().replace(dsn, mask_conninfo(dsn))
        return f"expected {_CONNINFO_EXPECTED}: {reason}"
    return None
