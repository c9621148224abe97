"""``check``: validate the configuration, connect, run the pre-flight, probe every enabled sink."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from wal2http_tui.config.loader import ReplicationConfig
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.replication.preflight import PreflightError, run_preflight
from wal2http_tui.replication.values import session_options

OK, FAIL, NOTE = "ok", "FAIL", "note"


def run_check(config: ReplicationConfig, emit: Callable[[str, str, str], None]) -> bool:
    """Emit one (status, check, message) line per check; True when nothing failed."""
    ok = True
    emit(OK, "configuration", f"{config.source_path} is valid")
    for warning in config.warnings:
        emit(NOTE, "configuration", warning)

    def connect() -> psycopg.Connection:
        return psycopg.connect(config.connection_string, options=session_options())

    try:
        report = run_preflight(
            connect,
            slot_name=config.slot_name,
            publication_name=config.publication_name,
            tables=config.tables,
            create_publication=config.create_publication,
            create_slot=config.create_slot,
            dry_run=True,
        )
        for line in report.lines:
            emit(OK, line.check, line.message)
    except PreflightError as exc:
        ok = False
        emit(FAIL, exc.check, str(exc))

    if not config.enabled_sinks:
        ok = False
        emit(FAIL, "sinks", "no sink is enabled: set enabled = true on at least one sink")
    for sink_config in config.enabled_sinks:
        sink = build_sink(sink_config)
        label = f"sink {sink_config.kind} {sink_config.name}"
        try:
            emit(OK, label, sink.probe())
        except Exception as exc:  # any failure of a probe is a failed check, reported as such
            ok = False
            emit(FAIL, label, str(exc))
        finally:
            sink.close()
    return ok
