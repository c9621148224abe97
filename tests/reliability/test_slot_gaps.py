"""A slot that disappears or jumps is a gap: the engine says so and never papers over it (issue
19). Real PostgreSQL, real ``run --headless`` processes, the state file they keep."""

from __future__ import annotations

import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.conftest import Database
from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from tests.support.tcp_proxy import FreezingProxy
from wal2http_tui.config.loader import load_config
from wal2http_tui.demo import throwaway
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.engine.facade import Engine
from wal2http_tui.replication.messages import format_lsn

SLOT = "gaps"


def write_config(tmp_path: Path, dsn: str, url: str) -> Path:
    path = tmp_path / "wal2http.toml"
    path.write_text(config_text(dsn, http_sink(url), slot_name=SLOT, feedback_interval_secs=1))
    return path


def run_until_rows(config: Path, receiver: WebhookReceiver, rows: int) -> Headless:
    """A ``run --headless`` that delivered ``rows`` distinct rows, then stopped with SIGTERM."""
    with Headless(config) as engine:
        wait_until(lambda: len(ids_by_row(receiver)) >= rows, timeout=30, what=f"{rows} rows")
        assert engine.terminate() == 0, engine.log
    return engine


def streamed(config: Path, pg, receiver: WebhookReceiver, row: int | None = None) -> None:
    """A first run: the slot created, ``row`` inserted and delivered, stopped with SIGTERM."""
    with Headless(config) as engine:
        wait_until(lambda: slot_confirmed_lsn(pg, SLOT), what="slot created")
        if row is not None:
            pg.execute(f"INSERT INTO t VALUES ({row})")
            wait_until(lambda: row in ids_by_row(receiver), what=f"row {row}")
        assert engine.terminate() == 0, engine.log


def refused(config: Path, *extra: str) -> Headless:
    """A ``run --headless`` that refuses to start: it exits 2 by itself."""
    engine = Headless(config, extra=list(extra)).start()
    assert engine.process is not None
    try:
        status = engine.process.wait(60)
    except subprocess.TimeoutExpired:
        engine.kill()
        raise AssertionError(f"not refused:\n{engine.log}") from None
    assert status == 2, engine.log
    return engine


def ids_by_row(receiver: WebhookReceiver) -> dict[int, set[str]]:
    ids: dict[int, set[str]] = defaultdict(set)
    for event in list(receiver.events):
        ids[event["new"]["id"]].add(event["event_id"])
    return ids


def remembered(tmp_path: Path) -> tuple[int, float]:
    with sqlite3.connect(tmp_path / "wal2http-state.sqlite") as db:
        return db.execute("SELECT confirmed_lsn, confirmed_at FROM slot_positions").fetchone()


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r


def test_a_first_start_says_nothing_and_a_dropped_slot_is_refused_until_the_gap_is_accepted(
    pg, tmp_path, receiver
):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    config = write_config(tmp_path, pg.dsn, receiver.url)
    pg.execute("INSERT INTO t VALUES (0)")  # before the slot: never streamed
    with Headless(config) as first:
        wait_until(lambda: slot_confirmed_lsn(pg, SLOT), what="slot created")
        pg.execute("INSERT INTO t VALUES (1), (2)")
        wait_until(lambda: len(ids_by_row(receiver)) == 2, what="rows 1 and 2")
        assert first.terminate() == 0
    assert not [line for line in first.lines if "WARNING" in line or "ERROR" in line], first.log
    confirmed, _ = remembered(tmp_path)
    assert confirmed == slot_confirmed_lsn(pg, SLOT)

    pg.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    pg.execute("INSERT INTO t VALUES (3), (4)")  # written while the slot was gone

    checked = cli("check", "--config", str(config))
    assert checked.returncode == 2, checked.stdout
    assert f"[FAIL] slot position: replication slot {SLOT} does not exist" in checked.stdout
    engine = refused(config)
    assert not pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,))
    [line] = [line for line in engine.lines if "not started" in line]
    assert f"replication slot {SLOT} does not exist" in line
    assert f"confirmed up to {format_lsn(confirmed)} at " in line
    assert "--accept-gap" in line

    with Headless(config, extra=["--accept-gap"]) as accepted:
        gap_line = accepted.wait_for_log("gap accepted")
        wait_until(lambda: slot_confirmed_lsn(pg, SLOT), what="slot created again")
        pg.execute("INSERT INTO t VALUES (5)")
        wait_until(lambda: 5 in ids_by_row(receiver), what="row 5")
        assert accepted.terminate() == 0
    assert " ERROR " in gap_line
    assert set(ids_by_row(receiver)) == {1, 2, 5}
    with sqlite3.connect(tmp_path / "wal2http-state.sqlite") as db:
        [(slot, start, end, reason)] = db.execute(
            "SELECT slot, from_lsn, to_lsn, reason FROM gaps"
        ).fetchall()
    assert (slot, start) == (SLOT, confirmed)
    assert end >= start and "does not exist" in reason

    pg.execute("INSERT INTO t VALUES (6)")  # and the next start is an ordinary one
    again = run_until_rows(config, receiver, 4)
    assert "WARNING" not in again.log and "ERROR" not in again.log, again.log


def test_a_slot_advanced_behind_the_engines_back_is_refused_with_both_positions(
    pg, tmp_path, receiver
):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    config = write_config(tmp_path, pg.dsn, receiver.url)
    streamed(config, pg, receiver, row=1)
    confirmed, _ = remembered(tmp_path)
    # Flushed at once (the throwaway cluster commits asynchronously): a slot advances only as
    # far as the WAL that is flushed.
    pg.execute("SET synchronous_commit = on; INSERT INTO t VALUES (2)")
    pg.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (SLOT,))
    ahead = slot_confirmed_lsn(pg, SLOT)

    engine = refused(config)
    [line] = [line for line in engine.lines if "not started" in line]
    assert f"confirmed up to {format_lsn(ahead)}, ahead of {format_lsn(confirmed)}" in line
    assert "pg_replication_slot_advance" in line
    assert set(ids_by_row(receiver)) == {1}


def test_a_slot_behind_the_record_is_a_warning_and_resends_keep_their_ids(pg, tmp_path, receiver):
    """A server restored to an older position: here the slot is put back where a copy of it
    stood, before rows 1 to 3 were delivered."""
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    pg.execute("CREATE PUBLICATION wal2http_pub FOR ALL TABLES")
    pg.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))
    pg.execute("SELECT pg_copy_logical_replication_slot(%s, 'older')", (SLOT,))
    config = write_config(tmp_path, pg.dsn, receiver.url)
    pg.execute("INSERT INTO t VALUES (1), (2), (3)")
    run_until_rows(config, receiver, 3)
    first_ids = ids_by_row(receiver)

    pg.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    pg.execute("SELECT pg_copy_logical_replication_slot('older', %s)", (SLOT,))
    pg.execute("SELECT pg_drop_replication_slot('older')")
    with Headless(config) as engine:
        warning = engine.wait_for_log("WARNING")
        wait_until(lambda: len(receiver.events) >= 6, timeout=30, what="the resends")
        assert engine.terminate() == 0
    assert "behind" in warning and "sent again, with the same event ids" in warning
    assert ids_by_row(receiver) == first_ids  # every row again, each with its one id


def test_another_cluster_behind_the_same_connection_string_is_refused(pg, tmp_path, receiver):
    """The connection string names a proxy; the cluster behind it changes between two runs, as
    when a DNS name or a load balancer now leads elsewhere."""
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with (
        FreezingProxy(pg.cluster.port) as proxy,
        throwaway.ThrowawayCluster(pg.cluster.server) as other,
    ):
        dsn = make_conninfo(pg.dsn, host="127.0.0.1", port=str(proxy.port))
        config = write_config(tmp_path, dsn, receiver.url)
        streamed(config, pg, receiver, row=1)
        with psycopg.connect(other.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {pg.name}")
        proxy.target = ("127.0.0.1", other.port)
        engine = refused(config)
        systems = [
            db.execute("SELECT system_identifier::text FROM pg_control_system()")[0][0]
            for db in (pg, Database(other, pg.name))
        ]
    [line] = [line for line in engine.lines if "not started" in line]
    assert "the connection string now reaches another cluster" in line
    assert f"system identifier {systems[1]}, where slot {SLOT} was streamed from" in line
    assert f"system identifier {systems[0]}" in line


def test_the_state_file_survives_kill_9(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    config = write_config(tmp_path, pg.dsn, receiver.url)
    with Headless(config) as first:
        wait_until(lambda: slot_confirmed_lsn(pg, SLOT), what="slot created")
        for row in range(1, 40):
            pg.execute(f"INSERT INTO t VALUES ({row})")
        wait_until(lambda: len(ids_by_row(receiver)) == 39, what="39 rows")
        first.kill()
    confirmed, _ = remembered(tmp_path)
    assert confirmed >= slot_confirmed_lsn(pg, SLOT)  # written before PostgreSQL was told
    pg.execute("INSERT INTO t VALUES (40)")
    again = run_until_rows(config, receiver, 40)
    assert "not started" not in again.log


def test_the_engine_the_ui_drives_reports_a_gap_and_starts_again_when_it_is_accepted(
    pg, tmp_path, receiver
):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    config = write_config(tmp_path, pg.dsn, receiver.url)
    streamed(config, pg, receiver)
    pg.execute("SELECT pg_drop_replication_slot(%s)", (SLOT,))
    engine = Engine(load_config(config), slot_health_interval=60)
    engine.start()
    try:
        wait_until(lambda: engine.snapshot().gap_refused, what="the refusal")
        assert engine.snapshot().state == "error"
        assert f"replication slot {SLOT} does not exist" in engine.snapshot().gap_refused
        engine.accept_gap()
        wait_until(lambda: engine.snapshot().state == "streaming", what="streaming again")
        pg.execute("INSERT INTO t VALUES (1)")
        wait_until(lambda: 1 in ids_by_row(receiver), what="row 1")
    finally:
        engine.stop()
    with sqlite3.connect(tmp_path / "wal2http-state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM gaps").fetchone() == (1,)
