"""A deterministic ``EngineControls`` (the contract the terminal UI drives, as the real
``Engine`` keeps it), and the world the terminal UI's tests run it in.

Fixed numbers (three sinks: healthy, retrying, failing, each receiving what sample.toml routes
to it; six transactions with mixed marks, some filtered out for a sink; attempts, a dead letter,
slot health, log lines; four backfills: running, paused, done, failed), a clock that only moves
when told, and a record of every control call that reached it. Event ids are the engine's own
(``event_id(system, slot, commit LSN, seq)``), so the inspector finds attempts as it does live.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.support.paths import SAMPLE_CONFIG
from wal2http_tui.config.loader import load_config
from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import AttemptRecord, RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.engine.controls import (
    BackfillRefused,
    BackfillState,
    BackfillStatus,
    CheckLine,
    EngineControls,
    SlotHealth,
)
from wal2http_tui.engine.facade import Engine
from wal2http_tui.event_sinks.event_processor import event_id
from wal2http_tui.event_sinks.routing import Route
from wal2http_tui.replication.backfill_store import BackfillRecord, TableProgress
from wal2http_tui.replication.messages import parse_lsn
from wal2http_tui.replication.state import StateSnapshot
from wal2http_tui.tui.app import Wal2HttpApp

NOW = 1_750_000_000.0  # 2025-06-15 15:06:40Z
SYSTEM_ID = "7380011223344556677"
SLOT = "wal2http_slot"
GiB = 1024**3

SAMPLE = SAMPLE_CONFIG
SAMPLE_ENV = {
    "ORDERS_API_TOKEN": "orders-token",
    "ORDERS_SIGNING_SECRET": "whsec_" + base64.b64encode(bytes(range(32))).decode(),
    "HOOK0_API_KEY": "hook0-key",
}


def copy_sample(directory: Path) -> Path:
    """sample.toml in ``directory`` (mode 0644), with the CA file it names."""
    path = directory / "wal2http.toml"
    shutil.copy(SAMPLE, path)
    path.chmod(0o644)
    (directory / "internal-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return path


@dataclass
class World:
    """A configuration file, a fake engine running it and the clock the UI reads."""

    path: Path
    engine: FakeEngine
    clock: FrozenClock

    def app(self, *, read_only: bool = False) -> Wal2HttpApp:
        return Wal2HttpApp(self.engine, self.path, read_only=read_only, clock=self.clock)


def sample_world(directory: Path, monkeypatch: pytest.MonkeyPatch, *, now: float = NOW) -> World:
    """sample.toml in ``directory``, made the working directory, its ${VAR}s set; a fake engine
    on its configuration and a frozen clock.

    The path is relative, as an operator would give it, so screens show it the same on every
    run.
    """
    for name, value in SAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    copy_sample(directory)
    monkeypatch.chdir(directory)
    path = Path("wal2http.toml")
    return World(path, FakeEngine(load_config(path)), FrozenClock(now))


def toasts(app: Wal2HttpApp) -> list[str]:
    """The notifications the app has shown."""
    return [notification.message for notification in app._notifications]


def screen_text(app: Wal2HttpApp) -> str:
    """What the terminal shows, as text."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


class FrozenClock:
    """``time.time`` for the UI, moved only by ``advance``."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class FakeStateSnapshot(StateSnapshot):
    """A snapshot whose lag in seconds does not depend on the wall clock."""

    fixed_lag_seconds: float | None = 0.8

    @property
    def lag_seconds(self) -> float | None:
        return self.fixed_lag_seconds


def ids_of(lsn: str, size: int) -> tuple[str, ...]:
    return tuple(event_id(SYSTEM_ID, SLOT, parse_lsn(lsn), seq) for seq in range(size))


def payload(xid: int, lsn: str, seq: int, size: int, order_id: int) -> bytes:
    """A json-format event as the engine renders it: numeric values byte-exact (129.90)."""
    head = json.dumps(
        {
            "event_id": event_id(SYSTEM_ID, SLOT, parse_lsn(lsn), seq),
            "event_type": "public.orders.insert",
            "op": "insert",
            "schema": "public",
            "table": "orders",
        }
    )[:-1]
    return (
        f'{head}, "new": {{"id": {order_id}, "customer_id": 311, "total": 129.90, '
        f'"status": "paid", "tags": ["web", "eu"], "note": null}}, "old": null, '
        f'"xid": {xid}, "lsn": "{lsn}", "commit_time": "2025-06-15T15:06:38.120000Z", '
        f'"seq": {seq}, "tx_size": {size}, '
        f'"source": {{"database": "shop", "slot": "{SLOT}", "publication": "wal2http_pub"}}}}'
    ).encode()


# (xid, commit LSN, commit time, changes, tables, marks: orders-api, audit, hook0). orders-api
# receives public.orders only (sample.toml): the other tables' transactions are filtered out.
TRANSACTIONS = [
    (7301, "0/3000150", "2025-06-15T15:06:31.004512Z", 1, ("public.orders",), "DDD"),
    (7302, "0/30001F8", "2025-06-15T15:06:33.250001Z", 3, ("public.customers",), "-DD"),
    (7303, "0/3000290", "2025-06-15T15:06:35.871200Z", 2, ("public.orders",), "DXD"),
    (
        7304,
        "0/3000310",
        "2025-06-15T15:06:38.120000Z",
        2,
        ("public.orders", "public.order_lines"),
        "DRF",
    ),
    (7305, "0/30003A8", "2025-06-15T15:06:39.004000Z", 14, ("public.order_lines",), "-QQ"),
    (7306, "0/3000440", "2025-06-15T15:06:39.950000Z", 1, ("public.orders",), "IQQ"),
]
MARK_CODES = {
    "D": "delivered",
    "X": "dead_lettered",
    "R": "retrying",
    "F": "failed",
    "Q": "queued",
    "I": "in_flight",
    "-": "filtered",
}
SINK_NAMES = ("orders-api", "audit", "hook0")
RETRYING_TX = TRANSACTIONS[3]
RETRYING_IDS = ids_of(RETRYING_TX[1], RETRYING_TX[3])
ORDERS_TARGET = "POST https://orders.example.com/webhooks/postgres"
AUDIT_TARGET = "PUT https://audit.internal.example:8443/events"
HOOK0_TARGET = (
    "https://hook0.internal.example/api/v1 (application 3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c)"
)
AUDIT_ERROR = f"HTTP 503 from {AUDIT_TARGET}: Service Unavailable"
HOOK0_ERROR = "cannot connect to https://hook0.internal.example/api/v1: connection refused"
DEAD_LETTER_ID = 17


def _transactions() -> list[TxRecord]:
    return [
        TxRecord(
            xid=xid,
            lsn=lsn,
            commit_time=commit_time,
            size=size,
            tables=tables,
            received_at=NOW - 10 + index,
            marks={name: MARK_CODES[code] for name, code in zip(SINK_NAMES, codes, strict=True)},
        )
        for index, (xid, lsn, commit_time, size, tables, codes) in enumerate(TRANSACTIONS)
    ]


def _sinks(config: ReplicationConfig) -> dict[str, SinkSnapshot]:
    audit_retry = RetryInfo(
        sink="audit",
        event_ids=RETRYING_IDS,
        table_op="public.orders insert",
        attempt=3,
        max_attempts=6,
        next_attempt_at=NOW + 4,
        last_error=AUDIT_ERROR,
    )
    hook0_retry = RetryInfo(
        sink="hook0",
        event_ids=RETRYING_IDS[:1],
        table_op="public.orders insert",
        attempt=12,
        max_attempts=None,
        next_attempt_at=NOW + 60,
        last_error=HOOK0_ERROR,
    )
    audit_second_retry = replace(
        audit_retry, event_ids=RETRYING_IDS[1:], attempt=2, next_attempt_at=NOW + 2
    )
    # (name, kind, target, state, delivered, failed, dead_lettered, queue_depth, last_status,
    #  latency_p50_ms, latency_p99_ms, last_error, retries, finished_lsn), then the ordering
    sinks = [
        SinkSnapshot("orders-api", "http", ORDERS_TARGET, "healthy", 1204, 0, 0, 0, 200, 12.4,
                     48.0, "", (), parse_lsn("0/3000440"), ordering="key", in_flight=12,
                     max_in_flight=64),
        SinkSnapshot("audit", "http", AUDIT_TARGET, "retrying", 1150, 7, 1, 42, 503, 35.0, 210.0,
                     AUDIT_ERROR, (audit_retry, audit_second_retry), parse_lsn("0/3000290"),
                     ordering="key", in_flight=2, max_in_flight=16),
        SinkSnapshot("hook0", "hook0", HOOK0_TARGET, "failing", 980, 12, 0, 120, None, 80.0,
                     150.0, HOOK0_ERROR, (hook0_retry,), parse_lsn("0/3000290"), in_flight=1),
    ]  # fmt: skip
    # what each receives, as the engine says it (Route.summary), where the configuration has it
    routes = {sink.name: Route.of(sink).summary() for sink in config.event_sinks}
    return {
        sink.name: replace(sink, receives=routes.get(sink.name, sink.receives)) for sink in sinks
    }


def _attempts() -> list[AttemptRecord]:
    xid, lsn, _, size, _, _ = RETRYING_TX
    body = b"[" + b", ".join(payload(xid, lsn, seq, size, 1042 + seq) for seq in range(size)) + b"]"
    headers = {
        "Content-Type": "application/json",
        "Authorization": "***",
        "Webhook-Id": RETRYING_IDS[0],
        "Webhook-Signature": "***",
        "X-Source": "wal2http",
    }
    delivered = [
        AttemptRecord(
            "orders-api",
            NOW - 3,
            1,
            RETRYING_IDS,
            "public.orders.insert",
            True,
            200,
            12.4,
            "",
            '{"ok": true}',
            headers,
            body,
        )
    ]
    failed = []
    for number in (1, 2, 3):
        failed.append(
            AttemptRecord(
                "audit",
                NOW - 8 + 2 * number,
                number,
                RETRYING_IDS,
                "public.orders.insert",
                False,
                503,
                31.5 + number,
                AUDIT_ERROR,
                '{"error": "maintenance window", "retry_in": 30}',
                {"Content-Type": "application/json", "X-Source": "wal2http"},
                body,
            )
        )
    return sorted(delivered + failed, key=lambda attempt: attempt.at)


def _dead_letter() -> DeadLetter:
    xid, lsn, commit_time, size, _, _ = TRANSACTIONS[2]
    return DeadLetter(
        id=DEAD_LETTER_ID,
        sink="audit",
        event_id=ids_of(lsn, size)[0],
        event_type="public.orders.insert",
        op="insert",
        schema="public",
        table="orders",
        lsn=lsn,
        commit_time=commit_time,
        seq=0,
        xid=xid,
        payload=payload(xid, lsn, 0, size, 1041),
        reason=f"HTTP 422 from {AUDIT_TARGET}: unprocessable entity",
        attempts=6,
        first_failure=NOW - 600,
        last_failure=NOW - 540,
    )


# The backfills, oldest request first as the engine lists them: one done, one failed on its
# where clause, one paused, and one running (its first table done, its second part way).
DONE_BACKFILL, FAILED_BACKFILL, PAUSED_BACKFILL, RUNNING_BACKFILL = (
    "5d09e6f1",
    "c4e8b210",
    "a71c0e42",
    "3f2a1b9c",
)
NEW_BACKFILL = "9e3b7d15"  # the id start_backfill answers with
RUNNING_ROWS_PER_SEC = 1_250.0
RUNNING_ETA_SECS = 31.0
FAILED_DETAIL = 'reading public.order_lines: column "region" does not exist'
# (name, whether it can be backfilled on demand): app_log has no key to read it in order by
BACKFILL_TABLES = [
    ("public.orders", True),
    ("public.customers", True),
    ("public.order_lines", True),
    ("public.app_log", False),
]
FINISHED_BACKFILL_STATES = (BackfillState.DONE, BackfillState.CANCELLED, BackfillState.FAILED)


def _backfills() -> dict[str, BackfillStatus]:
    orders_done = TableProgress("public.orders", 20_000, 20_113, ("20113",), True)
    records = [
        BackfillRecord(
            DONE_BACKFILL, SLOT, (orders_done,), ("hook0",), None, BackfillState.DONE,
            requested_at=NOW - 3000, updated_at=NOW - 2900,
        ),
        BackfillRecord(
            FAILED_BACKFILL, SLOT, (TableProgress("public.order_lines", 48_000),), (),
            "region = 'eu'", BackfillState.FAILED, FAILED_DETAIL,
            requested_at=NOW - 2400, updated_at=NOW - 2399,
        ),
        BackfillRecord(
            PAUSED_BACKFILL, SLOT, (TableProgress("public.customers", 5_000, 1_200, ("1200",)),),
            ("orders-api",), "created_at >= '2025-01-01'", BackfillState.PAUSED,
            "paused by operator", requested_at=NOW - 1200, updated_at=NOW - 1100,
        ),
        BackfillRecord(
            RUNNING_BACKFILL, SLOT,
            (orders_done, TableProgress("public.order_lines", 48_000, 9_344, ("9344",))),
            state=BackfillState.RUNNING, requested_at=NOW - 300, updated_at=NOW - 1,
        ),
    ]  # fmt: skip
    running = {RUNNING_BACKFILL: (RUNNING_ROWS_PER_SEC, RUNNING_ETA_SECS)}
    return {
        record.id: BackfillStatus(record, *running.get(record.id, (0.0, None)))
        for record in records
    }


LOG_LINES = [
    "15:05:58 INFO    state connecting: db1.internal.example:5432",
    "15:05:58 INFO    state streaming",
    "15:06:12 WARNING sink hook0: attempt 1 failed (connection refused); next attempt in 0.5s",
    "15:06:36 WARNING sink audit: 1 event(s) dead-lettered: HTTP 422 unprocessable entity",
    "15:06:38 WARNING sink audit: attempt 3 failed (HTTP 503); next attempt in 4.0s",
    "15:06:40 WARNING sink hook0: attempt 12 failed (connection refused); next attempt in 60.0s",
]


class FakeEngine:
    """``EngineControls`` with fixed data; ``calls`` records every control that reached it."""

    def __init__(self, config: ReplicationConfig) -> None:
        self.config = config
        self.calls: list[tuple] = []
        self.state = "stopped"
        self.detail = ""
        self.last_error = ""
        self.last_message_at = NOW - 0.3
        self.keyless_tables: tuple[str, ...] = ()
        self.gap_refused = ""
        self.next_retry_at: float | None = None
        self.reconnect_attempt = 0
        self.changes = 56_789
        self.paused = False
        self._sinks = _sinks(config)
        self._paused_sinks: dict[str, SinkSnapshot] = {}
        self._transactions = _transactions()
        self._attempts = _attempts()
        self._dead_letters = {DEAD_LETTER_ID: _dead_letter()}
        self.slot = SlotHealth(
            slot_name=SLOT,
            exists=True,
            active_pid=4242,
            restart_lsn="0/2F00028",
            confirmed_flush_lsn="0/3000290",
            wal_status="extended",
            safe_wal_size=None,
            retained_bytes=int(1.05 * GiB),
            checked_at=NOW - 15,
            remembered_lsn="0/3000290",
            remembered_at=NOW - 16,
        )
        self.log = list(LOG_LINES)
        self.replay_problem: str | None = None
        self.sink_probe_error: str | None = None
        self._backfills = _backfills()
        self.backfill_refusal: str | None = None  # what start/control_backfill refuse with

    # -- lifecycle -----------------------------------------------------------------------------
    attached_to: str | None = None

    def config_environment(self) -> dict[str, str]:
        return {}  # sample_world sets the sample's variables in the UI's own environment

    def start(self) -> None:
        self.calls.append(("start",))
        self.state = "streaming"

    def stop(self) -> None:
        self.calls.append(("stop",))
        self.state = "stopped"

    # -- reading -------------------------------------------------------------------------------
    def snapshot(self) -> FakeStateSnapshot:
        return FakeStateSnapshot(
            state="paused" if self.paused else self.state,
            detail="paused by operator" if self.paused else self.detail,
            host="db1.internal.example:5432",
            database="shop",
            server_version=160004,
            system_id=SYSTEM_ID,
            timeline=1,
            slot_name=SLOT,
            publication_name="wal2http_pub",
            protocol_version=4,
            received_lsn=parse_lsn("0/3000440"),
            flushed_lsn=parse_lsn("0/3000290"),
            server_wal_end=parse_lsn("0/3180000"),
            last_feedback_time=NOW - 1,
            messages=98_765,
            bytes=45_678_901,
            transactions=7_306,
            changes=self.changes,
            last_commit_lsn=parse_lsn("0/3000440"),
            last_commit_time=NOW - 0.8,
            next_retry_at=self.next_retry_at,
            reconnect_attempt=self.reconnect_attempt,
            last_error=self.last_error,
            last_message_at=self.last_message_at,
            keyless_tables=self.keyless_tables,
            gap_refused=self.gap_refused,
            wal_sender_timeout="1min",
            server_timeout_secs=60.0,
            row_path="native",
        )

    def sinks(self) -> list[SinkSnapshot]:
        return list(self._sinks.values())

    def transactions(self) -> list[TxRecord]:
        return list(self._transactions)

    def attempts(self) -> list[AttemptRecord]:
        return list(self._attempts)

    def retries(self) -> list[RetryInfo]:
        return [retry for sink in self._sinks.values() for retry in sink.retries]

    def slot_health(self) -> SlotHealth:
        return self.slot

    def log_lines(self) -> list[str]:
        return list(self.log)

    # -- controls ------------------------------------------------------------------------------
    def pause(self) -> None:
        self.calls.append(("pause",))
        self.paused = True

    def resume(self) -> None:
        self.calls.append(("resume",))
        self.paused = False

    def _sink(self, name: str) -> SinkSnapshot:
        if name not in self._sinks:
            raise KeyError(f"no running sink named {name!r}")
        return self._sinks[name]

    def pause_sink(self, name: str) -> None:
        self.calls.append(("pause_sink", name))
        sink = self._sink(name)
        self._paused_sinks[name] = sink
        self._sinks[name] = replace(sink, state="paused")

    def resume_sink(self, name: str) -> None:
        self.calls.append(("resume_sink", name))
        self._sink(name)
        self._sinks[name] = self._paused_sinks.pop(name, self._sinks[name])

    def retry_now(self, name: str) -> None:
        self.calls.append(("retry_now", name))
        self._sink(name)

    def skip_to_dead_letters(self, name: str) -> bool:
        self.calls.append(("skip_to_dead_letters", name))
        return bool(self._sink(name).retries)

    def accept_gap(self) -> None:
        self.calls.append(("accept_gap",))
        self.gap_refused = ""
        self.state = "streaming"

    # -- dead letters --------------------------------------------------------------------------
    def list_dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        return list(self._dead_letters.values())[:limit]

    def replay_dead_letter(self, letter_id: int) -> str | None:
        self.calls.append(("replay_dead_letter", letter_id))
        if self.replay_problem is None:
            self._dead_letters.pop(letter_id, None)
        return self.replay_problem

    def drop_dead_letter(self, letter_id: int) -> bool:
        self.calls.append(("drop_dead_letter", letter_id))
        return self._dead_letters.pop(letter_id, None) is not None

    # -- configuration -------------------------------------------------------------------------
    def needs_restart(self, new: ReplicationConfig) -> bool:
        # The real rule, which reads nothing but ``self.config``: the fake is no Engine.
        return Engine.needs_restart(self, new)  # type: ignore[arg-type]

    def apply(self, new: ReplicationConfig) -> None:
        self.calls.append(("apply", new))
        self.config = new

    def test_connection(self, config: ReplicationConfig) -> list[CheckLine]:
        self.calls.append(("test_connection", config))
        return [
            ("ok", "configuration", "wal2http.toml is valid"),
            ("ok", "connect", "PostgreSQL 16.4 on db1.internal.example:5432, database shop"),
            ("FAIL", "slot", 'slot "wal2http_slot" is active for another process (pid 4242)'),
        ]

    def test_sink(self, sink_config: EventSinkConfig) -> str:
        self.calls.append(("test_sink", sink_config.name))
        if self.sink_probe_error is not None:
            raise RuntimeError(self.sink_probe_error)
        return f"{sink_config.name} reachable (HEAD answered 200)"

    # -- on-demand backfills -------------------------------------------------------------------
    def backfills(self) -> list[BackfillStatus]:
        return list(self._backfills.values())

    def backfill_tables(self) -> list[tuple[str, bool]]:
        return list(BACKFILL_TABLES)

    def start_backfill(
        self, tables: Sequence[str], sinks: Sequence[str] = (), where: str | None = None
    ) -> str:
        self.calls.append(("start_backfill", tuple(tables), tuple(sinks), where))
        if self.backfill_refusal is not None:
            raise BackfillRefused(self.backfill_refusal)
        progress = tuple(TableProgress(table) for table in tables)
        record = BackfillRecord(
            NEW_BACKFILL, SLOT, progress, tuple(sinks), where, BackfillState.QUEUED,
            requested_at=NOW, updated_at=NOW,
        )  # fmt: skip
        self._backfills[NEW_BACKFILL] = BackfillStatus(record)
        return NEW_BACKFILL

    def control_backfill(self, kind: str, backfill_id: str) -> None:
        """As the engine once its stream reaches the request: at once, here."""
        self.calls.append(("control_backfill", kind, backfill_id))
        if self.backfill_refusal is not None:
            raise BackfillRefused(self.backfill_refusal)
        record = self._backfills[backfill_id].record
        if record.state in FINISHED_BACKFILL_STATES:
            raise BackfillRefused(f"backfill {backfill_id} is {record.state}: nothing to {kind}")
        state = {
            "pause": BackfillState.PAUSED,
            "resume": BackfillState.QUEUED,
            "cancel": BackfillState.CANCELLED,
        }[kind]
        self._backfills[backfill_id] = BackfillStatus(replace(record, state=state))


def _keeps_the_contract(engine: FakeEngine) -> EngineControls:
    """Never called: here mypy holds the fake to the contract the terminal UI drives, as it
    holds the real engine, and names any member that is missing or mistyped."""
    return engine
