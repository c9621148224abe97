"""``backfill start|list|pause|resume|cancel``: on-demand backfills of the engine of a
configuration, running here or on another host (requests travel through the database)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from wal2http_tui.commands.exit_codes import EXIT_CONFIG_ERROR, EXIT_OK
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.engine.backfill_control import (
    BackfillRefused,
    records,
    request,
    request_start,
)
from wal2http_tui.replication.backfill_store import BackfillRecord

HEADER = f"{'ID':<8}  {'STATE':<9}  {'ROWS':>21}  {'SINKS':<14}  {'UPDATED':<19}  TABLES"


def describe(record: BackfillRecord) -> str:
    """One line of ``backfill list`` (the UI's Backfills pane shows the same columns)."""
    share = f"{record.percent:3d}%" if record.percent is not None else "  -"
    rows = f"{record.rows:,}/{record.estimate:,} {share}"
    sinks = record.sinks_label
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.updated_at))
    tables = ", ".join(t.table + (" ✓" if t.done else "") for t in record.tables)
    where = f" where {record.where}" if record.where else ""
    detail = f"  ({record.detail})" if record.detail else ""
    return (
        f"{record.id:<8}  {record.state:<9}  {rows:>21}  {sinks:<14}  {updated:<19}  "
        f"{tables}{where}{detail}"
    )


def run_backfill(
    config: ReplicationConfig,
    action: str,
    args: Sequence[str],
    *,
    sinks: Sequence[str] = (),
    where: str | None = None,
) -> int:
    try:
        if action == "list":
            return _list(config)
        if action == "start":
            return _start(config, args, sinks, where)
        if len(args) != 1:
            raise BackfillRefused(f"backfill {action} takes one backfill id (see backfill list)")
        lsn = request(config, action, args[0])
    except BackfillRefused as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(
        f"{action} of backfill {args[0]} requested at {lsn}; the engine for slot "
        f"{config.slot_name} applies it when its stream reaches that point"
    )
    return EXIT_OK


def _start(
    config: ReplicationConfig, tables: Sequence[str], sinks: Sequence[str], where: str | None
) -> int:
    requested = request_start(config, tables, sinks, where)
    record = requested.record
    print(
        f"backfill {record.id} requested at {requested.lsn}: "
        f"{', '.join(t.table for t in record.tables)} "
        f"(about {requested.estimate:,} rows) to {', '.join(sinks) or 'every enabled sink'}. "
        f"The engine for slot {config.slot_name} starts it when its stream reaches that point; "
        "`wal2http-tui backfill list` shows how far it got"
    )
    return EXIT_OK


def _list(config: ReplicationConfig) -> int:
    found = records(config)
    if not found:
        print(f"no backfills for slot {config.slot_name}")
        return EXIT_OK
    print(HEADER)
    for record in found:
        print(describe(record))
    return EXIT_OK
