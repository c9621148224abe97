"""``check``: validate the configuration, connect, run the pre-flight, probe every enabled sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.event_sinks.route_check import check_route
from wal2http_tui.replication.connections import connect_sql
from wal2http_tui.replication.positions import PositionStore, connection_target
from wal2http_tui.replication.preflight import PreflightError, run_preflight
from wal2http_tui.replication.replica_identity import PublishedTable

OK, FAIL, WARN, NOTE = "ok", "FAIL", "WARN", "note"


@dataclass(frozen=True)
class CheckOutcome:
    """How ``check`` ended: ``refused`` when ``run`` would refuse to start (the set-up must be
    fixed first), ``failed`` when something else failed (a sink, the connection)."""

    refused: bool = False
    failed: bool = False

    @property
    def ok(self) -> bool:
        return not (self.refused or self.failed)


def run_check(config: ReplicationConfig, emit: Callable[[str, str, str], None]) -> CheckOutcome:
    """Emit one (status, check, message) line per check."""
    refused = failed = False
    emit(OK, "configuration", f"{config.source_path} is valid")
    for warning in config.warnings:
        emit(NOTE, "configuration", warning)

    def connect() -> psycopg.Connection:
        return connect_sql(config.connection_string, "check", config.server_timeout_secs)

    # What the engine remembers of the slot, if it ever ran here (check creates no file).
    positions = PositionStore(config.state_path) if config.state_path.exists() else None
    published: list[PublishedTable] | None = None
    try:
        report = run_preflight(
            connect,
            slot_name=config.slot_name,
            publication_name=config.publication_name,
            tables=config.tables,
            create_publication=config.create_publication,
            create_slot=config.create_slot,
            failover_slot=config.failover_slot,
            publish=config.publish,
            publish_generated_columns=config.publish_generated_columns,
            dry_run=True,
            timeout=config.server_timeout_secs,
            positions=positions,
            target=connection_target(config.connection_string),
            initial_snapshot=config.initial_snapshot,
        )
        for line in report.lines:
            emit(OK, line.check, line.message)
        for line in report.warnings:
            emit(WARN, line.check, line.message)
        published = report.published
    except PreflightError as exc:
        if exc.check == "connection":
            failed = True
        else:
            refused = True
        emit(FAIL, exc.check, str(exc))
    finally:
        if positions is not None:
            positions.close()

    if not config.enabled_sinks:
        refused = True
        emit(FAIL, "sinks", "no sink is enabled: set enabled = true on at least one sink")
    for sink_config in config.enabled_sinks:
        sink = build_sink(sink_config)
        label = f"sink {sink_config.kind} {sink_config.name}"
        if published is not None:
            findings = check_route(sink_config, published, config.publication_name)
            emit(NOTE, label, findings.receives)
            for warning in findings.warnings:
                emit(WARN, label, warning)
        try:
            emit(OK, label, sink.probe())
        except Exception as exc:  # any failure of a probe is a failed check, reported as such
            failed = True
            emit(FAIL, label, str(exc))
        finally:
            sink.close()
    return CheckOutcome(refused=refused, failed=failed)
