"""ReplicationStream: one slot of one database, read until stopped, as committed transactions.

``run()`` (usually on a thread of its own, see ``start()``) does the pre-flight, opens the
replication connection, streams, decodes and assembles committed transactions, and hands each
to its ``TransactionHandler`` (the engine's sinks). It reconnects by itself with backoff, waits
as a hot standby while another process holds the slot, and confirms to PostgreSQL only what the
handler says is finished. It knows nothing about sinks or any UI: readers poll ``snapshot()``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psycopg

from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.replication import native
from wal2http_tui.replication.assembler import TransactionAssembler
from wal2http_tui.replication.backfill_store import BackfillStore
from wal2http_tui.replication.backfills import Backfills
from wal2http_tui.replication.connections import connect_sql, conninfo
from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import (
    Message,
    ProtocolError,
    RelationInfo,
    ReplicationMessage,
    format_lsn,
    pg_timestamp_to_datetime,
)
from wal2http_tui.replication.positions import PositionError, PositionStore, connection_target
from wal2http_tui.replication.preflight import (
    GAP_CHECK,
    PreflightError,
    PreflightReport,
    run_preflight,
)
from wal2http_tui.replication.replica_identity import (
    PublishedTable,
    relation_lacks_identity,
    relation_warning,
    sql_name,
)
from wal2http_tui.replication.snapshot import read_snapshot
from wal2http_tui.replication.state import EngineState, ReplicationState, StateSnapshot
from wal2http_tui.replication.transactions import (
    Change,
    SpoolDirectory,
    Transaction,
    read_transaction,
)
from wal2http_tui.replication.transport import (
    KEEPALIVE,
    PAYLOAD_OFFSET,
    XLOGDATA_HEADER,
    ReplicationConnection,
    ReplicationError,
    SlotInUse,
    now_pg_micros,
)
from wal2http_tui.replication.values import TypeCatalog, ValueConverter

log = logging.getLogger("wal2http_tui.server")

SNAPSHOT_PROGRESS_SECS = 10.0  # how often a long initial snapshot says how far it got

RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 30.0
STANDBY_RETRY_DELAY = 3.0
DRAIN_TIMEOUT = 10.0  # on stop, how long sinks may go on delivering what is queued
DECODE_FAILURES_BEFORE_ERROR = 3  # the same undecodable message this many times: stop
READ_TIMEOUT = 0.25  # the loop checks its stop event at least this often
MAX_SILENT_FEEDBACK_SECS = 5.0  # while blocked or paused, still tell the server we are alive

NO_CONSUMER = (
    "no enabled sink: not streaming, because changes read with nowhere to send them "
    "would be lost; enable a sink (enabled = true) in the configuration"
)


class FatalReplicationError(Exception):
    """A problem reconnecting will not fix (pre-flight failure other than connecting)."""


class TransactionHandler(Protocol):
    """Where the stream's committed transactions go, and how far they are done with.

    The acknowledgement rule lives behind ``confirmed_lsn``: the stream confirms to PostgreSQL
    nothing beyond it (and, while the handler is ``idle`` and no transaction is open, the WAL
    position of the server's keepalives, which carry no changes).
    """

    @property
    def consumers(self) -> int:
        """How many sinks take the transactions (the stream refuses to run with none)."""
        ...

    @property
    def dispatched_lsn(self) -> int:
        """End LSN of the last transaction handed over (a resent one at or below is dropped)."""
        ...

    @property
    def idle(self) -> bool:
        """Nothing handed over is unfinished."""
        ...

    def start_delivery(self) -> None: ...

    def stop_delivery(self, drain_timeout: float) -> None:
        """Finish what was handed over, for at most ``drain_timeout`` seconds."""
        ...

    def set_source(self, system_id: str, database: str) -> None:
        """The server the transactions come from (part of every event id)."""
        ...

    def dispatch(
        self, tx: Transaction, keep_alive: Callable[[], None], stopped: Callable[[], bool]
    ) -> bool:
        """Take ``tx``; may block (backpressure), calling ``keep_alive`` meanwhile."""
        ...

    def confirmed_lsn(self) -> int:
        """The highest end LSN that may be confirmed to PostgreSQL."""
        ...


@dataclass(frozen=True)
class ProtocolChoice:
    version: int
    options: dict[str, str]
    parallel_streaming: bool


def protocol_options(server_version: int, publication: str) -> ProtocolChoice:
    """pgoutput options for the server: proto 1 (10-13), 2 + streaming (14), 3 (15), 4 (16+)."""
    major = server_version // 10000
    if major >= 16:
        version, streaming = 4, "parallel"
    elif major == 15:
        version, streaming = 3, "on"
    elif major == 14:
        version, streaming = 2, "on"
    else:
        version, streaming = 1, None
    options = {"proto_version": str(version), "publication_names": publication}
    if streaming:
        options["streaming"] = streaming
    if major >= 14:
        options["messages"] = "true"
    return ProtocolChoice(version, options, streaming == "parallel")


READ_BATCH = 256  # messages read per pass of the stream loop (its checks run once a pass)


def reconnect_delay(attempt: int) -> float:
    """1 s doubling to 30 s, with +-20% jitter."""
    base = min(RECONNECT_MAX_DELAY, RECONNECT_FIRST_DELAY * 2 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


class Silence:
    """How long nothing at all (data or keepalive) has arrived, against ``limit`` seconds."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._since: float | None = None
        self._now = 0.0
        self._asked = False

    def reset(self) -> None:
        self._since = None
        self._asked = False

    def grows(self, now: float) -> bool:
        """An empty read: True when a limit is set (there is something to check)."""
        if self._since is None:
            self._since = now - READ_TIMEOUT
        self._now = now
        return bool(self.limit)

    @property
    def seconds(self) -> float:
        return 0.0 if self._since is None else self._now - self._since

    @property
    def over(self) -> bool:
        return self.seconds >= self.limit

    def ask_now(self) -> bool:
        """True once per silence, when it reaches half the limit."""
        if self._asked or self.seconds < self.limit / 2:
            return False
        self._asked = True
        return True


class ReplicationStream:
    """Streams one slot of one database to a ``TransactionHandler``."""

    def __init__(
        self,
        config: ReplicationConfig,
        handler: TransactionHandler,
        *,
        spool_memory_limit: int | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        positions: PositionStore | None = None,
        accept_gap: bool = False,
    ) -> None:
        self.config = config
        self.handler = handler
        self.positions = positions
        self.accept_gap = accept_gap
        self._target = connection_target(config.connection_string)
        self._recorded: int | None = None  # the position last written to the state file
        self._system_id = ""
        self.state = ReplicationState(
            slot_name=config.slot_name,
            publication_name=config.publication_name,
            server_timeout_secs=config.server_timeout_secs,
        )
        self.drain_timeout = drain_timeout
        self._stop = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        self._conn: ReplicationConnection | None = None
        self._spool = SpoolDirectory()
        self._catalog = TypeCatalog(
            lambda: self._connect_sql("catalog"), timeout=config.server_timeout_secs
        )
        self._converter = ValueConverter(self._catalog)
        assembler_kwargs = {}
        if spool_memory_limit is not None:
            assembler_kwargs["memory_limit"] = spool_memory_limit
        self.row_path_error = ""  # WAL2HTTP_IMPL asks for what cannot be: run() refuses to start
        try:
            self.row_path = native.choose()
        except ValueError as exc:
            self.row_path, self.row_path_error = native.Implementation(native.PYTHON, ""), str(exc)
        self.state.row_path = self.row_path.name + (", not built" if self.row_path.warning else "")
        self._assembler = TransactionAssembler(
            self.state.relations,
            self._converter,
            self._spool,
            self._on_transaction,
            on_relation=self._on_relation,
            on_control=self._on_backfill_message,
            compiled=self.row_path.name == native.NATIVE,
            **assembler_kwargs,
        )
        self.backfills: Backfills | None = None  # on-demand backfills (they need the state file)
        if positions is not None:
            self.backfills = Backfills(
                BackfillStore(positions.path),
                config.slot_name,
                config.publication_name,
                self._converter,
                lambda: self._connect_sql("backfill"),
                self._spool,
                chunk_rows=config.backfill_chunk_rows,
                timeout=config.server_timeout_secs,
                warn=self.warn_once,
            )
        self._idle_lsn = 0
        self._last_feedback = 0.0
        self._warned: set[str] = set()  # warnings already logged in this run
        self.published: list[PublishedTable] = []  # what the pre-flight found the publication has
        self._snapshot_lsn: int | None = None  # an initial snapshot dispatched, not yet delivered
        self._identity_needed = True  # the publication publishes updates or deletes
        self._after_silence = False  # the last session ended because the server went silent
        self._streamed = False  # the current session got as far as streaming
        self._decode_failure: tuple[tuple[object, ...], int] = ((), 0)  # what failed, how often
        self.fatal_error: str | None = None  # refused to start: the set-up must be fixed
        self.crash_error: str | None = None  # stopped on an error while running

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Run the replication loop on a thread of its own."""
        self._thread = threading.Thread(target=self._run_guarded, name="replication", daemon=True)
        self.handler.start_delivery()
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading, let sinks finish in-flight deliveries (bounded), confirm, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.drain_timeout + 15)

    @property
    def running(self) -> bool:
        """True while the replication thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def pause(self) -> None:
        """Stop reading while streaming; while connecting, reconnecting or in standby the loop
        goes on and pauses once it streams (the state it was asked in is what it applies to)."""
        self._paused = True
        self.state.replace_state(EngineState.STREAMING, EngineState.PAUSED, "paused by operator")

    def resume(self) -> None:
        """Read again; a state other than PAUSED (reconnecting, standby, error) is left as is."""
        self._paused = False
        self.state.replace_state(EngineState.PAUSED, EngineState.STREAMING, "")

    @property
    def paused(self) -> bool:
        return self._paused

    def snapshot(self) -> StateSnapshot:
        return self.state.snapshot()

    def set_flushed_lsn(self, lsn: int) -> None:
        """Move the position confirmed to PostgreSQL forward (never backwards)."""
        if lsn > self.state.flushed_lsn:
            self.state.flushed_lsn = lsn

    def _run_guarded(self) -> None:
        try:
            self.run()
        except FatalReplicationError:
            pass
        except Exception as exc:  # the thread must never die silently
            self.crash_error = f"replication loop crashed: {type(exc).__name__}: {exc}"
            log.exception("%s", self.crash_error)
            self.state.set_state(EngineState.ERROR, self.crash_error, error=self.crash_error)

    def run(self) -> None:
        """The replication loop, in the calling thread, until ``stop()``."""
        refusal = self.row_path_error or ("" if self.handler.consumers else NO_CONSUMER)
        if refusal:
            self.fatal_error = refusal
            self.state.set_state(EngineState.ERROR, refusal, error=refusal)
            raise FatalReplicationError(refusal)
        path = self.row_path
        log.log(
            logging.WARNING if path.warning else logging.INFO,
            "row path: %s (%s)",
            path.name,
            path.why,
        )
        self.handler.start_delivery()
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    self._connect_and_stream()
                    return
                except SlotInUse as exc:
                    attempt = 0
                    detail = f"slot in use by pid {exc.pid}"
                    if self._after_silence:
                        detail += (
                            " (probably our previous connection, released by the server within "
                            f"wal_sender_timeout = {self.state.wal_sender_timeout or '?'})"
                        )
                    self.state.set_state(EngineState.STANDBY, detail, error=str(exc))
                    self._wait(STANDBY_RETRY_DELAY)
                except PreflightError as exc:
                    if exc.check == GAP_CHECK:
                        self.state.gap_refused = str(exc)
                    if exc.check != "connection":
                        self.fatal_error = str(exc)
                        self.state.set_state(EngineState.ERROR, str(exc), error=str(exc))
                        raise FatalReplicationError(str(exc)) from exc
                    attempt = self._backoff(attempt, str(exc))
                except ProtocolError as exc:
                    self._give_up_if_undecodable(exc)
                    attempt = self._backoff(attempt, str(exc))
                except (ReplicationError, psycopg.Error, OSError) as exc:
                    attempt = self._backoff(attempt, str(exc))
                finally:
                    self._close_connection()
        finally:
            self.handler.stop_delivery(self.drain_timeout)
            why = self.crash_error or self.fatal_error  # an error stays on screen
            self.state.set_state(EngineState.ERROR if why else EngineState.STOPPED, why or "")
            self._spool.cleanup()

    def _give_up_if_undecodable(self, exc: ProtocolError) -> None:
        """The same message at the same LSN failing to decode again and again is not a network
        hiccup: stop with the LSN, the message type and the byte offset (nothing at or after
        that position is confirmed, so a fixed version starts there)."""
        key = (exc.lsn, exc.message_type, exc.offset, exc.problem)
        seen, count = self._decode_failure
        count = count + 1 if seen == key else 1
        self._decode_failure = (key, count)
        if count < DECODE_FAILURES_BEFORE_ERROR:
            return
        where = format_lsn(exc.lsn) if exc.lsn is not None else "an unknown LSN"
        self.crash_error = (
            f"cannot decode what PostgreSQL sent at LSN {where} ({count} times in a row): {exc}. "
            f"Stopped; nothing at or after it is confirmed (confirmed up to "
            f"{format_lsn(self.state.flushed_lsn)}). Please report this with this line"
        )
        self.state.set_state(EngineState.ERROR, self.crash_error, error=self.crash_error)
        raise FatalReplicationError(self.crash_error) from exc

    # -- internals -----------------------------------------------------------------------------
    def _connect_sql(self, purpose: str) -> psycopg.Connection:
        """A plain SQL connection for ``purpose``, bounded like every call the engine makes."""
        return connect_sql(self.config.connection_string, purpose, self.config.server_timeout_secs)

    def _backoff(self, failures: int, error: str) -> int:
        """Wait before reconnecting; the attempt number: one more than ``failures``, or 1 when
        the session that just ended had streamed (the backoff starts over)."""
        attempt = 1 if self._streamed else failures + 1
        self._streamed = False
        delay = reconnect_delay(attempt)
        self.state.next_retry_at = time.time() + delay
        self.state.reconnect_attempt = attempt
        detail = f"attempt {attempt}, next in {delay:.0f}s, last error: {error}"
        self.state.set_state(EngineState.RECONNECTING, detail, error=error)
        self._assembler.reset()
        self._wait(delay)
        return attempt

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _close_connection(self) -> None:
        """After each session: the replication connection, and the catalog's (reopened when
        next needed), so reconnecting never accumulates connections on the server."""
        self._catalog.close()
        if self.backfills is not None:
            self.backfills.end_session()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect_and_stream(self) -> None:
        self.state.set_state(EngineState.CONNECTING, "pre-flight")
        report = run_preflight(
            lambda: self._connect_sql("pre-flight"),
            slot_name=self.config.slot_name,
            publication_name=self.config.publication_name,
            tables=self.config.tables,
            create_publication=self.config.create_publication,
            create_slot=self.config.create_slot,
            failover_slot=self.config.failover_slot,
            publish=self.config.publish,
            publish_generated_columns=self.config.publish_generated_columns,
            timeout=self.config.server_timeout_secs,
            positions=self.positions,
            target=self._target,
            accept_gap=self.accept_gap,
            initial_snapshot=self.config.initial_snapshot,
        )
        if report.gap_accepted is not None:
            log.error("gap accepted and recorded in %s: %s", self._state_file, report.gap_accepted)
            self.accept_gap = False  # accepted once: a later gap is asked about again
        self._system_id = report.system_id
        self._recorded = report.slot_confirmed_lsn if report.system_id else None
        self.set_flushed_lsn(report.slot_confirmed_lsn)
        self.state.host = report.host
        self.state.wal_sender_timeout = report.wal_sender_timeout
        self._identity_needed = report.publishes_updates_or_deletes
        self.published = report.published
        for table in report.keyless_tables:
            self.state.add_keyless_table(table.name)
            self._warned.add(table.name)
        for warning in report.warnings:
            self.warn_once(warning.message)
        conn = ReplicationConnection(
            conninfo(self.config.connection_string, "", replication=True),
            timeout=self.config.server_timeout_secs,
        )
        self._conn = conn
        self.state.set_state(EngineState.CONNECTING, "replication connection")
        identity = conn.connect()
        if report.slot_needs_failover:
            self._make_failover_slot(conn)
        self.state.system_id = identity.system_id
        self.state.database = identity.database
        self.handler.set_source(identity.system_id, identity.database)
        if report.snapshot:
            self._take_snapshot(conn, report)
        choice = protocol_options(conn.server_version, self.config.publication_name)
        self.state.server_version = conn.server_version
        self.state.protocol_version = choice.version
        self._say_if_failed_over(identity.timeline, report)
        self.state.timeline = identity.timeline
        decoder = PgOutputDecoder(
            self.state.relations, self.state.types, parallel_streaming=choice.parallel_streaming
        )
        self._assembler.reset()
        start_lsn = max(self.handler.dispatched_lsn, 0)
        conn.start(self.config.slot_name, start_lsn, choice.options)
        self.state.reconnect_attempt = 0
        self.state.next_retry_at = None
        self._streamed = True
        self.state.set_state(
            EngineState.PAUSED if self._paused else EngineState.STREAMING,
            f"protocol {choice.version}",
        )
        if self.backfills is not None:
            self.backfills.begin_session(self.published, conn.server_version)
        log.info(
            "streaming slot %s from %s (protocol %d, PostgreSQL %d)",
            self.config.slot_name,
            format_lsn(max(start_lsn, self.state.flushed_lsn)),
            choice.version,
            conn.server_version // 10000,
        )
        self._stream(conn, decoder)

    def _make_failover_slot(self, conn: ReplicationConnection) -> None:
        """``failover_slot`` for a slot created without it: altered, or said why not (the
        engine streams on without the failover guarantee rather than not at all)."""
        slot = self.config.slot_name
        try:
            conn.make_failover_slot(slot)
        except ReplicationError as exc:
            log.error("slot %s is not a failover slot, and making it one failed: %s", slot, exc)
            return
        log.info("slot %s is now a failover slot (ALTER_REPLICATION_SLOT ... (FAILOVER))", slot)

    def _say_if_failed_over(self, timeline: int, report: PreflightReport) -> None:
        """A server of the same system on a newer timeline is a promoted standby: say so, and
        whether the slot was one the standby kept in step (a failover slot, 17+)."""
        before = self.state.timeline
        if not before or timeline <= before:
            return
        slot = self.config.slot_name
        kept = (
            f"slot {slot} was synchronised to it from the former primary"
            if report.slot_synced
            else f"slot {slot} was not synchronised from the former primary"
        )
        log.warning(
            "failover: the server at %s is a new primary (timeline %d, was %d); %s; streaming "
            "on from where the slot is (what was sent since may be sent again)",
            report.host,
            timeline,
            before,
            kept,
        )

    def _stream(self, conn: ReplicationConnection, decoder: PgOutputDecoder) -> None:
        state = self.state
        feed_wire = self._assembler.wire_feeder(decoder)
        read_rows, append = self._assembler.read_rows, self._assembler.append
        unpack_xlog = XLOGDATA_HEADER.unpack_from
        interval = float(self.config.feedback_interval_secs)
        silence = Silence(self.config.server_timeout_secs)
        self._send_feedback(conn)
        self._after_silence = False
        while not self._stop.is_set():
            if self._paused:
                self._keep_alive(conn)
                self._stop.wait(READ_TIMEOUT)
                silence.reset()  # nothing is read while paused: that is not the server's silence
                continue
            rows = 0
            if read_rows is not None:  # the compiled path: rows rendered straight from libpq
                batch, rows = self._read_rows(conn, read_rows, decoder.in_stream, append)
            else:
                batch = conn.read_batch(READ_TIMEOUT, READ_BATCH)
            if batch or rows:
                silence.reset()
                state.last_message_at = time.time()
            elif silence.grows(time.monotonic()):
                self._listen_to_the_silence(conn, silence)
            for data in batch:
                tag = data[0]
                if tag == 0x77:  # 'w' XLogData
                    start, end, _ = unpack_xlog(data, 1)
                    if start > state.received_lsn:
                        state.received_lsn = start
                    state.server_wal_end = end
                    state.messages += 1
                    state.bytes += len(data)
                    try:
                        feed_wire(data, PAYLOAD_OFFSET)
                    except ProtocolError as exc:
                        exc.lsn = start
                        raise
                elif tag == 0x6B:  # 'k' primary keepalive
                    wal_end, _, reply = KEEPALIVE.unpack_from(data, 1)
                    if wal_end > state.server_wal_end:
                        state.server_wal_end = wal_end
                    if not self._assembler.in_flight and self.handler.idle:
                        self._idle_lsn = max(self._idle_lsn, wal_end)
                    if reply:
                        self._send_feedback(conn)
            if time.monotonic() - self._last_feedback >= interval:
                self._send_feedback(conn)
        self._finish(conn)

    def _read_rows(
        self,
        conn: ReplicationConnection,
        read_rows: Callable[[int, int, bool], tuple],
        in_stream: bool,
        append: Callable[[int | None, Change], None],
    ) -> tuple[list[memoryview | bytes], int]:
        """One pass of the compiled read loop: the rows libpq already holds, rendered and
        appended to their transaction; returns the message after them for the Python loop
        (waited for, up to READ_TIMEOUT, when libpq held nothing) and how many rows there were."""
        rendered, other, received, wal_end, size, ended = read_rows(
            conn.pgconn_ptr, READ_BATCH, in_stream
        )
        count = len(rendered)
        if count:
            state = self.state
            if received > state.received_lsn:
                state.received_lsn = received
            state.server_wal_end = wal_end
            state.messages += count
            state.bytes += size
            for xid, change in rendered:
                append(xid, change)
        if ended < 0:
            conn.end_of_copy(ended)
        if other is not None:
            return [other], count
        return ([] if count else conn.read_batch(READ_TIMEOUT, 1)), count

    def _listen_to_the_silence(self, conn: ReplicationConnection, silence: Silence) -> None:
        """Halfway through ``server_timeout_secs`` of silence, ask the server for a reply (as
        PostgreSQL's walreceiver does); at its end, give the connection up."""
        if silence.over:
            self._after_silence = True
            raise ReplicationError(
                f"no message from PostgreSQL for {silence.limit:g} s (server_timeout_secs): "
                "reconnecting"
            )
        if silence.ask_now():
            self._update_flushed()
            conn.send_status(self.state.flushed_lsn, reply=True)

    def _finish(self, conn: ReplicationConnection) -> None:
        """Stop requested: let sinks drain (bounded), then send the final confirmation."""
        self.handler.stop_delivery(self.drain_timeout)
        try:
            self._send_feedback(conn)
        except ReplicationError as exc:
            log.warning("final feedback not sent: %s", exc)
        log.info("stopped; confirmed %s", format_lsn(self.state.flushed_lsn))

    def _update_flushed(self) -> None:
        confirmed = self.handler.confirmed_lsn()
        if self.backfills is not None:
            self.backfills.delivered(confirmed, self.handler.idle)
        if self.handler.idle and not self._assembler.in_flight:
            confirmed = max(confirmed, self._idle_lsn)
        self.set_flushed_lsn(confirmed)
        snapshot = self._snapshot_lsn
        if snapshot is not None and (self.handler.idle or confirmed > snapshot):
            # every sink finished the read events (a later transaction finishes after them)
            self._snapshot_lsn = None
            if self.positions is not None and self._system_id:
                self.positions.snapshot_finished(self._system_id, self.config.slot_name)
            log.info("initial snapshot at %s delivered to every sink", format_lsn(snapshot))

    def _take_snapshot(self, conn: ReplicationConnection, report: PreflightReport) -> None:
        """Create the slot with an exported snapshot and hand every row the publication's
        tables hold in it to the sinks, as read events, before the stream starts."""
        slot = self.config.slot_name
        self.state.set_state(EngineState.CONNECTING, "initial snapshot")
        lsn, snapshot_name = conn.create_slot_exporting(slot, failover=self.config.failover_slot)
        if self.positions is not None and self._system_id:
            self.positions.confirm(self._system_id, slot, self._target, lsn)
            self.positions.snapshot_started(self._system_id, slot, lsn)
            self._recorded = lsn
        self.set_flushed_lsn(lsn)
        log.info(
            "slot %s created at %s; reading %d tables in its snapshot",
            slot,
            format_lsn(lsn),
            len(report.published),
        )
        rows = tables_done = table_rows = 0
        shown_at = time.monotonic()
        sql_conn = self._connect_sql("initial snapshot")
        try:
            for changes in read_snapshot(
                sql_conn,
                snapshot_name,
                lsn,
                report.published,
                self._converter,
                chunk_rows=self.config.backfill_chunk_rows,
                restart=report.snapshot == "restart",
                timeout=self.config.server_timeout_secs,
            ):
                for change in changes:
                    if change.op != "read" or change.extra is None:
                        continue
                    rows += 1
                    table_rows += 1
                    if change.extra["last"]:
                        tables_done += 1
                        log.info(
                            "initial snapshot: %s read (%d rows)", change.extra["table"], table_rows
                        )
                        table_rows = 0
                if time.monotonic() - shown_at >= SNAPSHOT_PROGRESS_SECS:
                    shown_at = time.monotonic()
                    self.state.set_state(
                        EngineState.CONNECTING,
                        f"initial snapshot: {rows:,} rows read, {tables_done} of "
                        f"{len(report.published)} tables done",
                    )
                tx = read_transaction(self._spool, lsn, changes, now_pg_micros())
                if not self.handler.dispatch(tx, lambda: None, self._stop.is_set):
                    return
        finally:
            sql_conn.close()
        self._snapshot_lsn = lsn
        log.info(
            "initial snapshot at %s: %d rows read and handed to the sinks", format_lsn(lsn), rows
        )

    @property
    def _state_file(self) -> str:
        return str(self.positions.path) if self.positions else "the state file"

    def _send_feedback(self, conn: ReplicationConnection) -> None:
        self._update_flushed()
        conn.send_status(self._recorded_position(self.state.flushed_lsn))
        self._last_feedback = time.monotonic()
        self.state.last_feedback_time = time.time()

    def _recorded_position(self, lsn: int) -> int:
        """Write ``lsn`` to the state file before it is confirmed; what may be confirmed: ``lsn``,
        or the last position written if the file cannot be written (never more than it says,
        or a later start would take its own confirmation for someone else's)."""
        if self.positions is None or self._recorded is None or lsn == self._recorded:
            return lsn
        try:
            self.positions.confirm(self._system_id, self.config.slot_name, self._target, lsn)
        except PositionError as exc:
            waiting = f"{exc}: confirmations to PostgreSQL wait until it can be written"
            self.warn_once(waiting, level=logging.ERROR)
            return self._recorded
        self._recorded = lsn
        return lsn

    def _keep_alive(self, conn: ReplicationConnection | None = None) -> None:
        """While not reading (paused, or blocked on a full queue): keep feedback flowing."""
        conn = conn or self._conn
        interval = min(float(self.config.feedback_interval_secs), MAX_SILENT_FEEDBACK_SECS)
        if conn is not None and time.monotonic() - self._last_feedback >= interval:
            self._send_feedback(conn)

    def process_replication_message(self, message: ReplicationMessage) -> None:
        """Feed one decoded message (the loop does this for every XLogData it receives)."""
        self._assembler.feed(message)

    def warn_once(self, message: str, key: str | None = None, level: int = logging.WARNING) -> None:
        if (key or message) not in self._warned:
            self._warned.add(key or message)
            log.log(level, "%s", message)

    def _on_relation(self, relation: RelationInfo) -> None:
        """A table announced while streaming: warn (once) when its writes are being refused."""
        if self._identity_needed and relation_lacks_identity(relation):
            name = sql_name(relation.schema, relation.table)
            self.state.add_keyless_table(name)
            self.warn_once(relation_warning(relation), key=name)

    def _on_transaction(self, tx: Transaction) -> None:
        state = self.state
        if tx.end_lsn <= self.handler.dispatched_lsn:
            tx.changes.discard()  # already queued at every sink before a reconnect
            return
        state.transactions += 1
        state.changes += tx.size
        state.last_commit_lsn = tx.commit_lsn
        if tx.commit_time:
            state.last_commit_time = pg_timestamp_to_datetime(tx.commit_time).timestamp()
        if self.backfills is not None and self.backfills.watching:
            self.backfills.observe(tx)
        self.handler.dispatch(tx, self._keep_alive, self._stop.is_set)

    def _on_backfill_message(self, message: Message) -> None:
        """A backfill request or watermark: at a high watermark, a chunk's rows for the sinks."""
        if self.backfills is None:
            return
        reads = self.backfills.on_message(message.lsn, message.content)
        if reads is not None:
            self.handler.dispatch(reads, self._keep_alive, self._stop.is_set)
