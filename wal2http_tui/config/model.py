"""The configuration as the program uses it: frozen dataclasses, their defaults, and the choices.

Every default is written once, on its dataclass field: the loader fills absent keys from there,
and the retry policy and the delivery worker take their own defaults from the same fields. The
keys a table of the file may hold are the dataclass fields, so a new setting is one new field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from wal2http_tui.config.files import STATE_FILE_NAME
from wal2http_tui.config.secrets import (
    MASK,
    is_secret_field,
    mask_conninfo,
    mask_headers,
    secret_field,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEAD_LETTER_FILE_NAME = "wal2http-dead-letters.sqlite"
SINK_KINDS = ("http", "hook0")
LEGACY_HTTP_KEY = "http"  # the seed's single [http] table, read as an HTTP sink
EVENT_FORMATS = ("json", "debezium", "cloudevents")
ON_FAILURE_CHOICES = ("block", "dead_letter")
ORDERING_CHOICES = ("commit", "key")
MAX_IN_FLIGHT = 256
HTTP_METHODS = ("POST", "PUT", "PATCH")
# What a publication may publish (CREATE PUBLICATION ... WITH (publish = '...')).
PUBLISHED_OPERATIONS = ("insert", "update", "delete", "truncate")
# What a sink may receive (`ops`): the row changes, truncates, logical decoding messages and the
# rows a backfill reads.
SINK_OPERATIONS = ("insert", "update", "delete", "truncate", "message", "read")
MAX_BATCH_EVENTS = 10_000
MAX_SOCKET_PATH_BYTES = 107  # a Unix socket's sun_path holds 108 bytes with its NUL


def socket_path_too_long(path: Path) -> str | None:
    """What is wrong with ``path`` as a Unix socket's, when it is too long: None if it fits."""
    size = len(os.fsencode(path))
    if size <= MAX_SOCKET_PATH_BYTES:
        return None
    return f"{path} is {size} bytes, and a Unix socket path is at most {MAX_SOCKET_PATH_BYTES}"


DEFAULT_HOOK0_LABELS: Mapping[str, str] = {"source": "wal2http"}
MAX_HOOK0_LABELS = 8  # Hook0 accepts 10; the sink adds `schema` and `table`
RESERVED_HOOK0_LABELS = ("schema", "table")
HOOK0_ALIASES = {"project_id": "application_id", "workspace_id": "organization_id"}


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9187"`` -> ``("127.0.0.1", 9187)``; ``"[::1]:9187"`` -> ``("::1", 9187)``.
    ValueError when it is not a host and a port from 1 to 65535."""
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"not host:port: {text!r}")
    return host, int(port)


@dataclass(frozen=True, kw_only=True)
class BaseSinkConfig:
    """What every event sink has: its name, whether it runs, and how its events are delivered.

    Not used on its own: each kind sets ``kind`` and the default ``name`` (the kind).
    """

    kind: str = field(init=False)
    name: str
    enabled: bool = False
    event_format: str = "json"
    timeout: float = 10.0
    retries: int = 5
    retry_backoff_ms: int = 500
    retry_max_backoff_secs: float = 60.0
    on_failure: str = "block"
    # "commit": every event in commit order, one request at a time. "key": the events of one
    # row in commit order, one at a time; different rows concurrently, up to max_in_flight.
    ordering: str = "commit"
    max_in_flight: int = 16
    verify_tls: bool = True
    ca_file: Path | None = None
    # Routing: the tables (patterns) and operations this sink receives, None for all; the
    # columns it never sees, per table pattern.
    tables: tuple[str, ...] | None = None
    ops: tuple[str, ...] | None = None
    exclude_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def redacted(self) -> dict[str, Any]:
        """A plain view for display, the secrets masked."""
        view = _plain(self)
        for config_field in fields(self):
            if is_secret_field(config_field) and view[config_field.name] is not None:
                view[config_field.name] = MASK
        return view


@dataclass(frozen=True, kw_only=True)
class HttpSinkConfig(BaseSinkConfig):
    """An HTTP endpoint that receives every event (the seed's ``HttpSinkConfig``)."""

    kind: Literal["http"] = field(default="http", init=False)
    name: str = "http"
    url: str
    method: str = "POST"
    auth_header: str | None = secret_field(default=None)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    signing_secret: str | None = secret_field(default=None)
    batch_max_events: int = 1

    def redacted(self) -> dict[str, Any]:
        """A plain view for display: secrets masked, credential-like header values masked."""
        return {**super().redacted(), "headers": mask_headers(self.headers)}


@dataclass(frozen=True, kw_only=True)
class Hook0SinkConfig(BaseSinkConfig):
    """A Hook0 application that receives every event as a Hook0 event."""

    kind: Literal["hook0"] = field(default="hook0", init=False)
    name: str = "hook0"
    api_url: str
    api_key: str = secret_field()
    application_id: str
    organization_id: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_HOOK0_LABELS))


EventSinkConfig: TypeAlias = HttpSinkConfig | Hook0SinkConfig


@dataclass(frozen=True, kw_only=True)
class ReplicationConfig:
    """Everything the replication server needs (the seed's ``ReplicationConfig``)."""

    connection_string: str = field(repr=False)
    publication_name: str = "wal2http_pub"
    slot_name: str = "wal2http_slot"
    feedback_interval_secs: float = 10.0
    # Silence from PostgreSQL this long (no data, no keepalive) means a dead connection: the
    # engine reconnects. It also bounds every SQL call. 0: wait for ever (TCP keepalives only).
    server_timeout_secs: float = 60.0
    tables: tuple[str, ...] | None = None
    create_publication: bool = True
    # The publication's `publish` option when wal2http-tui creates it; None: every operation.
    publish: str | None = None
    # PostgreSQL 18+: a publication wal2http-tui creates publishes stored generated columns.
    publish_generated_columns: bool = False
    create_slot: bool = True
    # PostgreSQL 17+: the slot wal2http-tui creates is a failover slot (synchronised to standbys).
    failover_slot: bool = False
    # Send every existing row of the publication's tables (as `read` events) when the slot is
    # created, consistent with the stream that follows.
    initial_snapshot: bool = False
    # Rows read per chunk by a snapshot (each chunk is one unit of delivery).
    backfill_chunk_rows: int = 10_000
    dead_letter_path: Path = Path(DEAD_LETTER_FILE_NAME)
    queue_max_events: int = 10_000
    # A sink with work queued and nothing delivered for this long shows STALLED; 0: never.
    stall_warning_secs: float = 60.0
    # host:port where /metrics (Prometheus), /healthz and /readyz are served; None: not served.
    metrics_listen: str | None = None
    # /readyz answers 503 while the newest transaction received is older than this.
    ready_max_lag_secs: float = 300.0
    # Where run --headless listens for attaching UIs (None: the default place for the slot).
    control_socket: Path | None = None
    event_sinks: tuple[EventSinkConfig, ...] = ()
    source_path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def enabled_sinks(self) -> tuple[EventSinkConfig, ...]:
        return tuple(sink for sink in self.event_sinks if sink.enabled)

    @property
    def state_path(self) -> Path:
        """The replication state (what was confirmed, gaps accepted): beside the dead letters."""
        return self.dead_letter_path.with_name(STATE_FILE_NAME)

    def redacted(self) -> dict[str, Any]:
        """A plain view for display: the password masked, each sink's secrets masked."""
        return {
            **_plain(self),
            "connection_string": mask_conninfo(self.connection_string),
            "event_sinks": [sink.redacted() for sink in self.event_sinks],
        }


def _plain(config: DataclassInstance) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for name in config.__dataclass_fields__:
        value = getattr(config, name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        view[name] = value
    return view


# --- the keys of the file ------------------------------------------------------------------------

_SET_BY_LOADER = ("kind", "source_path", "warnings")


def _table_keys(config: type, order: str = "") -> tuple[str, ...]:
    """The keys a table of the file may hold: the fields of ``config`` but those the loader sets;
    in field order, or in the order of the names in ``order`` (a field it leaves out fails at
    import)."""
    names = [config_field.name for config_field in fields(config)]
    names = [name for name in names if name not in _SET_BY_LOADER]
    return tuple(sorted(names, key=order.split().index) if order else names)


def field_defaults(config: type) -> dict[str, Any]:
    """The default of every field of ``config`` that has one (default factories called)."""
    defaults = {}
    for config_field in fields(config):
        if config_field.default is not MISSING:
            defaults[config_field.name] = config_field.default
        elif config_field.default_factory is not MISSING:
            defaults[config_field.name] = config_field.default_factory()
    return defaults


ROOT_KEYS = _table_keys(ReplicationConfig)
# A sink's keys in the order the editor lists them and add_sink writes them. It is not the fields'
# order because a dataclass puts its base's fields first, and both kinds list what they are about
# (url, api_url...) right after `enabled`, HTTP with the shared settings among its own.
HTTP_SINK_KEYS = _table_keys(
    HttpSinkConfig,
    "name enabled url tables ops exclude_columns method timeout retries auth_header headers "
    "event_format signing_secret batch_max_events verify_tls ca_file retry_backoff_ms "
    "retry_max_backoff_secs on_failure ordering max_in_flight",
)
HOOK0_SINK_KEYS = _table_keys(
    Hook0SinkConfig,
    "name enabled api_url api_key application_id organization_id tables ops exclude_columns "
    "labels event_format timeout "
    "retries retry_backoff_ms retry_max_backoff_secs on_failure ordering max_in_flight verify_tls "
    "ca_file",
)
SECRET_SINK_KEYS = tuple(
    config_field.name
    for config in (HttpSinkConfig, Hook0SinkConfig)
    for config_field in fields(config)
    if is_secret_field(config_field)
)


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
