"""A slot's row of ``pg_replication_slots``, with the columns the server has.

Each PostgreSQL version added columns: ``wal_status`` and ``safe_wal_size`` (13),
``conflicting`` (16), ``invalidation_reason``, ``inactive_since``, ``failover`` and ``synced``
(17). A column the server lacks reads None. ``INVALIDATIONS`` says, for each reason PostgreSQL
gives for invalidating a slot, what happened and how to keep it from happening again: the
pre-flight's refusal and the slot health screen use the same words.
"""

from __future__ import annotations

from typing import Any

import psycopg

# (name, SQL expression, first server version that has it)
_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("plugin", "plugin", 0),
    ("slot_type", "slot_type", 0),
    ("database", "database", 0),
    ("active_pid", "active_pid", 0),
    ("restart_lsn", "restart_lsn::text", 0),
    ("confirmed_flush_lsn", "confirmed_flush_lsn::text", 0),
    ("wal_status", "wal_status", 130000),
    ("safe_wal_size", "safe_wal_size", 130000),
    ("conflicting", "conflicting", 160000),
    ("invalidation_reason", "invalidation_reason", 170000),
    ("inactive_since", "extract(epoch FROM inactive_since)::float8", 170000),
    ("failover", "failover", 170000),
    ("synced", "synced", 170000),
)

# invalidation_reason -> (what happened, how to keep it from happening again)
INVALIDATIONS: dict[str, tuple[str, str]] = {
    "wal_removed": (
        "the WAL it needed was removed, so changes since its last confirmed position are gone",
        "raise max_slot_wal_keep_size to keep this from happening again",
    ),
    "rows_removed": (
        "the catalog rows it needs to decode were removed (on a standby: a conflict with recovery)",
        "on a standby, set hot_standby_feedback = on with a physical slot (primary_slot_name)",
    ),
    "wal_level_insufficient": (
        "the primary's wal_level is no longer logical",
        "set wal_level = logical on the primary and restart it",
    ),
    "idle_timeout": (
        "it was inactive for longer than idle_replication_slot_timeout",
        "raise idle_replication_slot_timeout (0 turns it off), and keep the engine running",
    ),
}
CONFLICT = "conflict"  # PostgreSQL 16 says only that a standby's slot conflicted
INVALIDATIONS[CONFLICT] = (
    "it conflicted with recovery on this standby (rows it needed were removed, or the "
    "primary's wal_level changed)",
    "set hot_standby_feedback = on with a physical slot (primary_slot_name)",
)


def read_slot_row(conn: psycopg.Connection, slot_name: str) -> dict[str, Any] | None:
    """The slot's row by column name (None where the server lacks the column), plus
    ``retained_bytes``; None when there is no such slot."""
    version = conn.info.server_version
    columns = [(name, sql if version >= since else "NULL") for name, sql, since in _COLUMNS]
    # a standby has no current WAL position: pg_current_wal_lsn() would fail there
    retained = (
        "CASE WHEN pg_is_in_recovery() THEN NULL "
        "ELSE (pg_current_wal_lsn() - restart_lsn)::bigint END"
    )
    columns.append(("retained_bytes", retained))
    select = ", ".join(sql for _, sql in columns)
    row = conn.execute(
        f"SELECT {select} FROM pg_replication_slots WHERE slot_name = %s", (slot_name,)
    ).fetchone()
    if row is None:
        return None
    values = dict(zip((name for name, _ in columns), row, strict=True))
    # 16 has no reason and says "conflicting" of any invalidated slot: WAL removed shows as lost
    if values["invalidation_reason"] is None and values["conflicting"]:
        values["invalidation_reason"] = (
            "wal_removed" if values["wal_status"] == "lost" else CONFLICT
        )
    return values


def invalidation(slot_name: str, reason: str | None, wal_status: str | None) -> str | None:
    """Why the slot can no longer be used, and the fix; None while it can be."""
    if reason is None and wal_status != "lost":
        return None
    key = reason or "wal_removed"
    what, prevention = INVALIDATIONS.get(
        key, ("PostgreSQL invalidated it", "see PostgreSQL's log for why")
    )
    said = f"invalidation_reason = {reason}" if reason else "wal_status = lost"
    return (
        f"replication slot {slot_name} is invalidated ({said}): {what}. Drop and recreate it "
        f"(SELECT pg_drop_replication_slot('{slot_name}')) and resynchronise the receivers; "
        f"{prevention}"
    )
