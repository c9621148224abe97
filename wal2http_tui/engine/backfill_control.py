"""Asking the engine of a configuration for a backfill, and to pause, resume or cancel one: the
rules the command line (``backfill start|pause|resume|cancel``) and the UI share.

A request is checked here first (tables published and keyed, sinks enabled, the where clause
accepted by PostgreSQL), then written into the WAL as a signed logical decoding message
(``replication.backfill_requests``), which the engine for the slot reads in stream order,
wherever it runs. Each refusal is a ``BackfillRefused`` whose message names the problem and the
fix; nothing is written then.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.config.table_names import split_table_name
from wal2http_tui.replication.backfill_requests import MIN_SERVER_VERSION, BackfillMessage, emit
from wal2http_tui.replication.backfill_store import (
    FINISHED,
    BackfillRecord,
    BackfillState,
    BackfillStore,
    BackfillStoreError,
    TableProgress,
)
from wal2http_tui.replication.connections import connect_sql
from wal2http_tui.replication.deadlines import deadline
from wal2http_tui.replication.messages import format_lsn
from wal2http_tui.replication.replica_identity import PublishedTable, published_tables, sql_name


class BackfillRefused(Exception):
    """A request that was not written; the message says why and what to do."""


@dataclass(frozen=True)
class Requested:
    record: BackfillRecord  # as `backfill list` shows it until the engine reads the request
    lsn: str
    estimate: int  # the planner's estimate of the rows it will send


def records(config: ReplicationConfig) -> list[BackfillRecord]:
    """The backfills the engine of ``config`` knows of (none when it never ran here)."""
    if not config.state_path.exists():
        return []
    with _opened(config) as store:
        return store.records(config.slot_name)


def request_start(
    config: ReplicationConfig,
    tables: Sequence[str],
    sinks: Sequence[str] = (),
    where: str | None = None,
) -> Requested:
    """Ask for a backfill of ``tables`` (to ``sinks``, or every enabled sink)."""
    if not tables:
        raise BackfillRefused("name at least one table to backfill")
    enabled = [sink.name for sink in config.enabled_sinks]
    for name in sinks:
        if name not in enabled:
            raise BackfillRefused(
                f"no enabled sink named {name!r} (enabled: {', '.join(enabled) or 'none'})"
            )
    where = where.strip() if where else None
    with _opened(config) as store:
        key = store.key()
    timeout = config.server_timeout_secs
    with _connect(config) as conn:
        with deadline(conn, timeout, "reading the publication's tables"):
            published = published_tables(conn, config.publication_name, None)
        chosen = [_published(conn, config, published, name, timeout) for name in tables]
        estimate = 0
        for table in chosen:
            estimate += _check_where(conn, table, where, timeout)
        backfill_id = uuid.uuid4().hex[:8]
        names = tuple(dict.fromkeys(table.name for table in chosen))
        message = BackfillMessage(
            "start", config.slot_name, backfill_id, names, tuple(sinks), where
        )
        with deadline(conn, timeout, "writing the backfill request"):
            lsn = emit(conn, message, key)
    record = BackfillRecord(
        backfill_id,
        config.slot_name,
        tuple(TableProgress(name) for name in names),
        tuple(sinks),
        where,
        BackfillState.REQUESTED,
        request_lsn=lsn,
    )
    with _opened(config) as store:
        store.save(record)
    return Requested(record, format_lsn(lsn), estimate)


def request(config: ReplicationConfig, kind: str, backfill_id: str) -> str:
    """Ask to ``pause``, ``resume`` or ``cancel`` a backfill; the LSN of the request."""
    with _opened(config) as store:
        key = store.key()
        record = store.get(backfill_id)
    if record is None or record.slot != config.slot_name:
        raise BackfillRefused(
            f"no backfill {backfill_id!r} for slot {config.slot_name} "
            "(`wal2http-tui backfill list` shows them)"
        )
    if record.state in FINISHED:
        raise BackfillRefused(f"backfill {backfill_id} is {record.state}: nothing to {kind}")
    with _connect(config) as conn:
        message = BackfillMessage(kind, config.slot_name, backfill_id)
        with deadline(conn, config.server_timeout_secs, f"writing the backfill {kind} request"):
            return format_lsn(emit(conn, message, key))


@contextlib.contextmanager
def _opened(config: ReplicationConfig) -> Iterator[BackfillStore]:
    """The engine's state file, which must exist: its key signs the requests."""
    try:
        store = BackfillStore(config.state_path, create=False)
        try:
            yield store
        finally:
            store.close()
    except BackfillStoreError as exc:  # missing, unreadable, or not a state file
        raise BackfillRefused(str(exc)) from exc


def _connect(config: ReplicationConfig) -> psycopg.Connection:
    try:
        conn = connect_sql(config.connection_string, "backfill", config.server_timeout_secs)
    except psycopg.Error as exc:
        raise BackfillRefused(f"cannot connect to PostgreSQL: {str(exc).strip()}") from exc
    if conn.info.server_version < MIN_SERVER_VERSION:
        conn.close()
        raise BackfillRefused(
            f"PostgreSQL {conn.info.server_version // 10000} cannot steer backfills: they travel "
            "as logical decoding messages, which pgoutput sends from PostgreSQL 14 on; "
            "`initial_snapshot = true` on a new slot still sends every existing row"
        )
    return conn


def _published(
    conn: psycopg.Connection,
    config: ReplicationConfig,
    published: Sequence[PublishedTable],
    name: str,
    timeout: float,
) -> PublishedTable:
    """``name``'s table among the ``published`` ones; refused, saying why, when it cannot be
    backfilled."""
    try:
        parts = split_table_name(name)
    except ValueError as exc:
        raise BackfillRefused(f"{exc}: write a table as schema.table or table") from exc
    schema, table = parts if len(parts) == 2 else ("public", parts[0])
    full = sql_name(schema, table)
    found = next((t for t in published if (t.schema, t.table) == (schema, table)), None)
    if found is None:
        with deadline(conn, timeout, "looking the table up"):
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (full,)).fetchone()
        if not (exists and exists[0]):
            raise BackfillRefused(f"no table {full} in the database: check the name")
        raise BackfillRefused(
            f"{full} is not in the publication {config.publication_name}, so the engine does "
            f"not stream it: add it (ALTER PUBLICATION {config.publication_name} ADD TABLE "
            f"{full}) or list it in `tables`"
        )
    if not found.key_columns:
        raise BackfillRefused(
            f"{full} has no primary key or replica identity index, so it cannot be read in key "
            f"order: ALTER TABLE {full} ADD PRIMARY KEY (...), or ALTER TABLE {full} REPLICA "
            "IDENTITY USING INDEX <a unique index on NOT NULL columns>; `initial_snapshot = "
            "true` on a new slot covers keyless tables"
        )
    return found


def _check_where(
    conn: psycopg.Connection, table: PublishedTable, where: str | None, timeout: float
) -> int:
    """The planner's row estimate for the table (and the clause); PostgreSQL's own error, as
    it is, when it refuses the clause."""
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY {}{}").format(
        sql.Identifier(table.schema, table.table),
        sql.SQL(" WHERE ({})").format(sql.SQL(where)) if where else sql.SQL(""),
    )
    try:
        with deadline(conn, timeout, "checking the where clause"):
            row = conn.execute(query).fetchone()
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        said = exc.diag.message_primary or str(exc).strip()
        raise BackfillRefused(f"--where refused by PostgreSQL for {table.name}: {said}") from exc
    plan = row[0][0]["Plan"] if row else {}
    return int(plan.get("Plan Rows", 0))
