"""Pre-flight: everything PostgreSQL must provide before streaming, each failure with its fix.

Runs on a normal (non-replication) psycopg connection: server version, ``wal_level``, the role's
REPLICATION attribute, database encoding, the publication (created when missing and allowed),
and the slot (created when missing and allowed; must use ``pgoutput``, live in this database,
and not be invalidated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from wal2http_tui.config.model import PUBLISHED_OPERATIONS
from wal2http_tui.config.table_names import split_table_name
from wal2http_tui.replication.deadlines import Unanswered, deadline
from wal2http_tui.replication.messages import Lsn, format_lsn, parse_lsn
from wal2http_tui.replication.positions import OK, PositionStore, Remembered, Verdict, judge
from wal2http_tui.replication.replica_identity import (
    KeylessTable,
    PublishedTable,
    fixes,
    keyless_published_tables,
    keyless_tables,
    named,
    published_tables,
    publishes_generated_columns,
)
from wal2http_tui.replication.slot_row import invalidation, read_slot_row

log = logging.getLogger("wal2http_tui.server")

MIN_SERVER_VERSION = 100000
GENERATED_COLUMNS_VERSION = 180000  # publish_generated_columns
FAILOVER_SLOTS_VERSION = 170000  # failover_slot
GAP_CHECK = "slot position"  # the check that refuses to stream over a gap


class PreflightError(Exception):
    """A check failed; the message says what is wrong and how to fix it."""

    def __init__(self, check: str, message: str, *, fatal: bool = True) -> None:
        super().__init__(message)
        self.check = check
        self.fatal = fatal


@dataclass(frozen=True)
class CheckLine:
    check: str
    ok: bool
    message: str


@dataclass
class PreflightReport:
    server_version: int = 0
    database: str = ""
    host: str = ""
    slot_confirmed_lsn: Lsn = 0
    slot_created: bool = False
    slot_synced: bool = False  # the slot was synchronised from a primary (17+: a failover)
    slot_needs_failover: bool = False  # failover_slot, and the existing slot is not one yet
    publication_created: bool = False
    lines: list[CheckLine] = field(default_factory=list)
    warnings: list[CheckLine] = field(default_factory=list)
    keyless_tables: list[KeylessTable] = field(default_factory=list)
    # The tables the publication publishes (or, in a dry run, would), for the sinks' routes.
    published: list[PublishedTable] = field(default_factory=list)
    wal_sender_timeout: str = ""  # after which the server drops a silent replication client
    system_id: str = ""  # "" when the role may not read it (no gap detection then)
    position: Verdict = OK  # what comparing with the state file found
    gap_accepted: Verdict | None = None  # a gap the operator accepted, recorded at start
    # Whether the publication publishes updates or deletes, which need a replica identity.
    publishes_updates_or_deletes: bool = True
    # The initial snapshot to take when the stream creates the slot: "" none, "create" (a new
    # slot), "restart" (an earlier snapshot of this slot was interrupted; it was dropped).
    snapshot: str = ""

    def passed(self, check: str, message: str) -> None:
        self.lines.append(CheckLine(check, True, message))

    def warn(self, check: str, message: str) -> None:
        self.warnings.append(CheckLine(check, True, message))


def table_identifiers(tables: Sequence[str]) -> list[sql.Composable]:
    """``schema.table`` or ``table`` -> quoted identifiers, for CREATE PUBLICATION."""
    return [sql.Identifier(*split_table_name(name)) for name in tables]


def run_preflight(
    connect: Callable[[], psycopg.Connection],
    *,
    slot_name: str,
    publication_name: str,
    tables: Sequence[str] | None = None,
    create_publication: bool = True,
    create_slot: bool = True,
    failover_slot: bool = False,
    publish: str | None = None,
    publish_generated_columns: bool = False,
    dry_run: bool = False,
    timeout: float = 0.0,
    positions: PositionStore | None = None,
    target: str = "",
    accept_gap: bool = False,
    initial_snapshot: bool = False,
) -> PreflightReport:
    """Run every check in order; raises PreflightError at the first failure.

    ``dry_run`` (for ``check``) creates nothing: a missing publication or slot that would be
    created at start passes with a note. ``publish`` is the publication's ``publish`` option
    when it is created (None: PostgreSQL's default, every operation), and
    ``publish_generated_columns`` whether it publishes stored generated columns (PostgreSQL
    18+). ``failover_slot``: the slot is created as a failover slot, and what makes failover
    work on this server is checked (PostgreSQL 17+). The checks, and creating
    the slot, are each bounded by ``timeout`` seconds (0: unbounded); a server that does not
    answer in time is a "connection" failure, which the engine retries. With ``positions``,
    the slot is compared with what the engine last confirmed on it (``positions.judge``): a gap
    is refused unless ``accept_gap``, in which case it is recorded. With ``initial_snapshot``
    a missing slot is not created here: the stream creates it with an exported snapshot
    (``report.snapshot``), and a slot whose snapshot was interrupted is dropped to take it
    again.
    """
    report = PreflightReport()
    try:
        conn = connect()
    except psycopg.Error as exc:
        raise PreflightError(
            "connection",
            f"cannot connect to PostgreSQL: {str(exc).strip()} (check connection_string)",
        ) from exc
    try:
        with conn:
            conn.autocommit = True
            with deadline(conn, timeout, "the pre-flight checks"):
                report.server_version = conn.info.server_version
                report.database = conn.info.dbname
                report.host = conn.info.host
                report.passed(
                    "connection", f"connected to {report.host} database {report.database}"
                )
                _check_version(report)
                _check_wal_level(conn, report)
                _check_role(conn, report)
                _check_encoding(conn, report)
                _check_publication(
                    conn,
                    report,
                    publication_name,
                    tables,
                    create_publication,
                    Publish(publish, publish_generated_columns),
                    dry_run,
                )
                slot = _check_slot(conn, report, slot_name, create_slot, dry_run)
                exists = slot is not None
                if failover_slot:
                    _check_failover(conn, report, slot_name, slot)
                interrupted = False
                recorded: tuple[Lsn, bool] | None = None  # the slot's initial snapshot, if any
                if positions is not None:
                    report.system_id = _system_id(conn)
                    if initial_snapshot and report.system_id:
                        recorded = positions.initial_snapshot(report.system_id, slot_name)
                    interrupted = _snapshot_interrupted(
                        conn, report, recorded, slot_name, exists, dry_run
                    )
                    remembered = (
                        positions.remembered(report.system_id, slot_name)
                        if interrupted
                        else _check_position(
                            report, positions, slot_name, target, exists=exists, accept=accept_gap
                        )
                    )
                if initial_snapshot:
                    _plan_snapshot(report, recorded, slot_name, exists, interrupted, dry_run)
            if not exists and not dry_run and not report.snapshot:
                what = (
                    f"creating slot {slot_name}: PostgreSQL first waits for every transaction "
                    "running now to end; look for long-running ones in pg_stat_activity"
                )
                with deadline(conn, timeout, what):
                    _create_slot(conn, report, slot_name, failover_slot)
    except Unanswered as exc:
        raise PreflightError("connection", str(exc)) from exc
    if positions is not None and report.system_id and not dry_run and not report.snapshot:
        _remember(report, positions, slot_name, target, remembered)
    return report


SNAPSHOT_CHECK = "initial snapshot"


def _snapshot_interrupted(
    conn: psycopg.Connection,
    report: PreflightReport,
    recorded: tuple[Lsn, bool] | None,
    slot: str,
    exists: bool,
    dry_run: bool,
) -> bool:
    """Whether the recorded initial snapshot of ``slot`` was started and never delivered; then
    the slot is dropped (not in a dry run), since the snapshot it exported died with its
    connection."""
    if recorded is None or recorded[1]:
        return False
    if dry_run:
        report.warn(
            SNAPSHOT_CHECK,
            f"the initial snapshot of slot {slot} (at {format_lsn(recorded[0])}) was "
            "interrupted: the next start drops the slot and takes the snapshot again",
        )
        return True
    if exists:
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        except psycopg.Error as exc:
            raise PreflightError(
                SNAPSHOT_CHECK,
                f"the initial snapshot of slot {slot} was interrupted and the slot cannot be "
                f"dropped to take it again: {str(exc).strip()}",
                fatal=False,
            ) from exc
    log.warning(
        "the initial snapshot of slot %s (at %s) was interrupted: slot dropped, the snapshot is "
        "taken again (each table first gets a truncate event, then its rows)",
        slot,
        format_lsn(recorded[0]),
    )
    return True


def _plan_snapshot(
    report: PreflightReport,
    recorded: tuple[Lsn, bool] | None,
    slot: str,
    exists: bool,
    interrupted: bool,
    dry_run: bool,
) -> None:
    count = len(report.published)
    tables = f"{count} table" + ("" if count == 1 else "s")
    if interrupted:
        report.snapshot = "restart"
    elif not exists:
        report.snapshot = "create"
        if dry_run:
            report.passed(
                SNAPSHOT_CHECK, f"slot {slot} will be created with a snapshot of {tables}"
            )
    elif recorded is None:
        report.warn(
            SNAPSHOT_CHECK,
            f"initial_snapshot = true, but slot {slot} already exists and no initial snapshot of "
            "it is recorded here: the rows its tables held before it was created were not sent. "
            f"To send them, stop wal2http-tui, drop the slot (SELECT "
            f"pg_drop_replication_slot('{slot}')) and start again (on-demand backfills are not "
            "built yet)",
        )
    else:
        report.passed(SNAPSHOT_CHECK, f"the initial snapshot of slot {slot} was delivered")


def _system_id(conn: psycopg.Connection) -> str:
    """The cluster's system identifier, or "" when this role may not read it."""
    try:
        with conn.transaction():
            return str(_the_row(conn, "SELECT system_identifier FROM pg_control_system()")[0])
    except psycopg.errors.InsufficientPrivilege:
        return ""


def _check_position(
    report: PreflightReport,
    positions: PositionStore,
    slot: str,
    target: str,
    *,
    exists: bool,
    accept: bool,
) -> Remembered | None:
    """Compare the slot with the state file; PreflightError for a gap not accepted."""
    if not report.system_id:
        report.warn(
            GAP_CHECK,
            "this role may not read the system identifier (pg_control_system()): a dropped or "
            "moved slot cannot be detected; GRANT EXECUTE ON FUNCTION pg_control_system() TO it",
        )
        return None
    remembered = positions.remembered(report.system_id, slot)
    other = None if remembered else positions.other_cluster(slot, target, report.system_id)
    verdict = judge(
        remembered,
        other,
        slot=slot,
        system_id=report.system_id,
        slot_exists=exists,
        slot_confirmed=report.slot_confirmed_lsn,
    )
    report.position = verdict
    if verdict.kind == "ok" and remembered is not None:
        report.passed(
            GAP_CHECK,
            f"slot {slot} is where wal2http-tui last confirmed it "
            f"({format_lsn(remembered.confirmed_lsn)})",
        )
    elif verdict.kind == "behind":
        report.warn(GAP_CHECK, verdict.message)
    elif verdict.kind == "gap":
        if not accept:
            raise PreflightError(GAP_CHECK, verdict.message)
        report.gap_accepted = verdict
    return remembered


def _remember(
    report: PreflightReport,
    positions: PositionStore,
    slot: str,
    target: str,
    remembered: Remembered | None,
) -> None:
    """Record an accepted gap, and the slot's position when it is new to the state file."""
    gap = report.gap_accepted
    if gap is not None and gap.gap_from is not None:
        to = gap.gap_to if gap.gap_to is not None else report.slot_confirmed_lsn
        positions.record_gap(report.system_id, slot, gap.gap_from, to, gap.message)
        positions.forget_other_clusters(slot, target, report.system_id)
    if remembered is None or gap is not None or report.position.kind == "behind":
        positions.confirm(report.system_id, slot, target, report.slot_confirmed_lsn)


def _the_row(
    conn: psycopg.Connection, query: LiteralString, params: tuple[object, ...] | None = None
) -> tuple[Any, ...]:
    """The one row of a query that always returns one (SHOW, a set-returning call of one row)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def _check_version(report: PreflightReport) -> None:
    version = report.server_version
    if version < MIN_SERVER_VERSION:
        raise PreflightError(
            "server version",
            f"PostgreSQL {version // 10000} is too old: pgoutput logical replication needs "
            "PostgreSQL 10 or newer; upgrade the server",
        )
    report.passed("server version", f"PostgreSQL {version // 10000}.{version % 10000}")


def _check_wal_level(conn: psycopg.Connection, report: PreflightReport) -> None:
    report.wal_sender_timeout = _the_row(conn, "SHOW wal_sender_timeout")[0]
    (level,) = _the_row(conn, "SHOW wal_level")
    if level != "logical":
        raise PreflightError(
            "wal_level",
            f"wal_level is '{level}': set wal_level = logical and restart PostgreSQL",
        )
    report.passed("wal_level", "wal_level = logical")


def _check_role(conn: psycopg.Connection, report: PreflightReport) -> None:
    role, can_replicate, is_super = _the_row(
        conn, "SELECT rolname, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user"
    )
    if not (can_replicate or is_super):
        raise PreflightError(
            "role",
            f"role {role} may not start replication: run ALTER ROLE {role} WITH REPLICATION "
            "as a superuser (or connect as a role that has it)",
        )
    report.passed("role", f"role {role} has {'SUPERUSER' if is_super else 'REPLICATION'}")


def _check_encoding(conn: psycopg.Connection, report: PreflightReport) -> None:
    (encoding,) = _the_row(conn, "SHOW server_encoding")
    if encoding not in ("UTF8", "SQL_ASCII"):
        raise PreflightError(
            "encoding",
            f"database encoding is {encoding}: wal2http-tui delivers JSON and needs a UTF8 "
            "database (pgoutput sends values in the database encoding)",
        )
    report.passed("encoding", f"server_encoding = {encoding}")


def publishes_updates_or_deletes(publish: str | None) -> bool:
    """Whether a ``publish`` option (None: every operation) includes update or delete."""
    if publish is None:
        return True
    return bool({part.strip() for part in publish.split(",")} & {"update", "delete"})


@dataclass(frozen=True)
class Publish:
    """The options of a publication wal2http-tui creates: ``publish`` (None: every operation)
    and ``publish_generated_columns`` (stored generated columns, PostgreSQL 18+)."""

    operations: str | None
    generated_columns: bool


def _check_publication(
    conn: psycopg.Connection,
    report: PreflightReport,
    name: str,
    tables: Sequence[str] | None,
    create: bool,
    options: Publish,
    dry_run: bool,
) -> None:
    publish = options.operations
    if options.generated_columns and report.server_version < GENERATED_COLUMNS_VERSION:
        raise PreflightError(
            "publication",
            "publish_generated_columns = true needs PostgreSQL 18 or later (the server is "
            f"{report.server_version // 10000}): remove it, or upgrade the server",
        )
    found = conn.execute(
        "SELECT to_jsonb(p) FROM pg_publication p WHERE pubname = %s", (name,)
    ).fetchone()
    if found is not None:
        publication = found[0]
        scope = "all tables" if publication["puballtables"] else "selected tables"
        report.passed("publication", f"publication {name} exists ({scope})")
        published = ", ".join(
            op for op in PUBLISHED_OPERATIONS if publication.get(f"pub{op}", op != "truncate")
        )
        if publish is not None and publish != published:
            report.warn(
                "publication",
                f'publication {name} exists and publishes {published}; publish = "{publish}" '
                "applies only when wal2http-tui creates the publication: run ALTER PUBLICATION "
                f"{name} SET (publish = '{publish}') to change it",
            )
        if options.generated_columns and not publishes_generated_columns(conn, name):
            report.warn(
                "publication",
                f"publication {name} exists and does not publish generated columns; "
                "publish_generated_columns applies only when wal2http-tui creates the "
                f"publication: run ALTER PUBLICATION {name} SET (publish_generated_columns = "
                "stored) to change it",
            )
        report.publishes_updates_or_deletes = publishes_updates_or_deletes(published)
        if report.publishes_updates_or_deletes:
            _warn_keyless(report, name, keyless_published_tables(conn, name))
        report.published = published_tables(conn, name, None)
        return
    if not create:
        raise PreflightError(
            "publication",
            f"publication {name} does not exist: run CREATE PUBLICATION {name} FOR ALL TABLES "
            "(or list tables), or set create_publication = true",
        )
    identifiers = table_identifiers(tables) if tables else None
    report.publishes_updates_or_deletes = publishes_updates_or_deletes(publish)
    if report.publishes_updates_or_deletes:
        _refuse_keyless(name, keyless_tables(conn, identifiers))
    if dry_run:
        report.passed("publication", f"publication {name} does not exist yet; created at start")
        report.published = published_tables(
            conn, None, identifiers, generated_columns=options.generated_columns
        )
        return
    if identifiers:
        statement = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(identifiers)
        )
    else:
        statement = sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(name))
    settings: list[sql.Composable] = []
    if publish is not None:
        settings.append(sql.SQL("publish = {}").format(sql.Literal(publish)))
    if options.generated_columns:
        settings.append(sql.SQL("publish_generated_columns = stored"))
    if settings:
        statement += sql.SQL(" WITH ({})").format(sql.SQL(", ").join(settings))
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        raise PreflightError(
            "publication",
            f"cannot create publication {name}: {str(exc).strip()} (create it as a superuser "
            "or the tables' owner, or fix `tables`)",
        ) from exc
    report.publication_created = True
    report.published = published_tables(conn, name, None)
    operations = f", publishing {publish}" if publish is not None else ""
    report.passed(
        "publication",
        f"publication {name} created ({', '.join(tables or ['all tables'])}{operations})",
    )


def _refuse_keyless(name: str, keyless: list[KeylessTable]) -> None:
    """Creating the publication would make PostgreSQL refuse the application's writes."""
    if not keyless:
        return
    count = f"{len(keyless)} table{'s' if len(keyless) > 1 else ''}"
    raise PreflightError(
        "publication",
        f"publication {name} not created: it would publish updates and deletes of {count} "
        f"without a usable replica identity ({named([t.name for t in keyless])}), and PostgreSQL "
        "would then refuse the application's UPDATE and DELETE on them. Fix, in this order of "
        f"preference: {fixes(keyless[0])}",
    )


def _warn_keyless(report: PreflightReport, name: str, keyless: list[KeylessTable]) -> None:
    """An existing publication already makes PostgreSQL refuse writes to these tables."""
    report.keyless_tables = keyless
    if not keyless:
        return
    report.warn(
        "publication",
        f"publication {name} publishes updates and deletes of tables without a usable replica "
        f"identity: PostgreSQL is refusing the application's UPDATE and DELETE on "
        f"{named([t.name for t in keyless])}. Fix, in this order of preference: "
        f"{fixes(keyless[0])}",
    )


def _check_slot(
    conn: psycopg.Connection, report: PreflightReport, name: str, create: bool, dry_run: bool
) -> dict[str, Any] | None:
    """The slot's row when it exists (and is usable); None when it is missing and may be
    created."""
    row = read_slot_row(conn, name)
    if row is None:
        if not create:
            raise PreflightError(
                "slot",
                f"replication slot {name} does not exist: run SELECT "
                f"pg_create_logical_replication_slot('{name}', 'pgoutput'), or set "
                "create_slot = true",
            )
        if dry_run:
            report.passed("slot", f"slot {name} does not exist yet; created at start")
        return None
    plugin, slot_type, database = row["plugin"], row["slot_type"], row["database"]
    confirmed, wal_status = row["confirmed_flush_lsn"], row["wal_status"]
    if slot_type != "logical" or plugin != "pgoutput":
        raise PreflightError(
            "slot",
            f"replication slot {name} is a {slot_type} slot using {plugin or 'no plugin'}, not "
            f"pgoutput: choose another slot_name, or drop it with "
            f"SELECT pg_drop_replication_slot('{name}')",
        )
    if database != report.database:
        raise PreflightError(
            "slot",
            f"replication slot {name} belongs to database {database}, not {report.database}: "
            "connect to that database or choose another slot_name",
        )
    invalidated = invalidation(name, row["invalidation_reason"], wal_status)
    if invalidated is not None:
        raise PreflightError("slot", invalidated)
    report.slot_confirmed_lsn = parse_lsn(confirmed) if confirmed else 0
    report.slot_synced = bool(row["synced"])
    status = f", wal_status = {wal_status}" if wal_status else ""
    report.passed("slot", f"slot {name} uses pgoutput, confirmed up to {confirmed}{status}")
    return row


def _check_failover(
    conn: psycopg.Connection, report: PreflightReport, name: str, row: dict[str, Any] | None
) -> None:
    """``failover_slot``: the server can keep a failover slot (17+), the slot is one, and the
    primary makes logical walsenders wait for its standbys (``synchronized_standby_slots``),
    without which a promoted standby's copy of the slot may be behind what was received."""
    if report.server_version < FAILOVER_SLOTS_VERSION:
        raise PreflightError(
            "slot",
            "failover_slot = true needs PostgreSQL 17 or later (the server is "
            f"{report.server_version // 10000}): remove it, or upgrade the server",
        )
    if row is not None and not row["failover"]:
        report.slot_needs_failover = True
        report.passed("slot", f"slot {name} is not a failover slot yet: made one at start")
    standbys = _setting(conn, "synchronized_standby_slots")
    if not standbys:
        report.warn(
            "failover",
            "failover_slot = true but synchronized_standby_slots is empty on this server: a "
            "standby's copy of the slot may be behind what wal2http-tui already received, and "
            "after a failover those changes would be gone. Set synchronized_standby_slots = "
            "'<the standby's physical slot>' here, and sync_replication_slots = on, "
            "hot_standby_feedback = on, primary_slot_name and a dbname in primary_conninfo on "
            "the standby",
        )
        return
    physical = {
        slot
        for (slot,) in conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical'"
        )
    }
    missing = [slot.strip() for slot in standbys.split(",") if slot.strip() not in physical]
    if missing:
        report.warn(
            "failover",
            f"synchronized_standby_slots names {', '.join(missing)}, which this server does "
            "not have: logical walsenders wait for it (a promoted standby keeps the setting "
            "pg_basebackup copied from its primary). Remove it from synchronized_standby_slots, "
            "or create that physical slot for the new standby",
        )
        return
    report.passed("failover", f"logical walsenders wait for the standby slots {standbys}")


def _setting(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def _create_slot(
    conn: psycopg.Connection, report: PreflightReport, name: str, failover: bool = False
) -> None:
    try:
        created = _the_row(
            conn,
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'pgoutput'"
            + (", false, false, true)" if failover else ")"),
            (name,),
        )
    except psycopg.Error as exc:
        raise PreflightError(
            "slot",
            f"cannot create replication slot {name}: {str(exc).strip()} "
            "(check max_replication_slots)",
        ) from exc
    report.slot_created = True
    report.slot_confirmed_lsn = parse_lsn(created[0])
    report.passed("slot", f"slot {name} created at {created[0]}")
