"""Pre-flight failures: each one names the problem and the fix. And the hot standby."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import SERVERS
from tests.support.engine import http_sink, make_server, running, wait_until
from wal2http_tui.demo import throwaway
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.engine.facade import read_slot_health
from wal2http_tui.replication.preflight import (
    PreflightError,
    PreflightReport,
    _check_version,
    run_preflight,
)

# What PostgreSQL itself does: on every version found (tests/conftest.py).
pytestmark = pytest.mark.every_version


def preflight(dsn: str, **kwargs) -> PreflightReport:
    options = {"slot_name": "pf", "publication_name": "pf_pub", **kwargs}
    return run_preflight(lambda: psycopg.connect(dsn), **options)


def test_a_good_database_passes_and_gets_publication_and_slot(pg):
    report = preflight(pg.dsn)
    assert report.publication_created and report.slot_created
    assert [line.check for line in report.lines] == [
        "connection",
        "server version",
        "wal_level",
        "role",
        "encoding",
        "publication",
        "slot",
    ]
    again = preflight(pg.dsn)
    assert not again.publication_created and not again.slot_created
    assert again.slot_confirmed_lsn == report.slot_confirmed_lsn


def test_publication_for_listed_tables(pg):
    pg.execute('CREATE SCHEMA "My.Schema"')
    pg.execute('CREATE TABLE "My.Schema"."Odd ""Name""" (id int PRIMARY KEY)')
    pg.execute("CREATE TABLE plain (id int PRIMARY KEY)")
    preflight(pg.dsn, tables=['"My.Schema"."Odd ""Name"""', "plain"])
    tables = pg.execute("SELECT schemaname, tablename FROM pg_publication_tables ORDER BY 2")
    assert tables == [("My.Schema", 'Odd "Name"'), ("public", "plain")]


def test_missing_publication_without_create(pg):
    with pytest.raises(PreflightError) as info:
        preflight(pg.dsn, create_publication=False)
    assert str(info.value).startswith("publication pf_pub does not exist: run CREATE PUBLICATION")


def test_role_without_replication(pg):
    pg.execute("CREATE ROLE plain_user LOGIN")
    try:
        with pytest.raises(PreflightError) as info:
            preflight(pg.cluster.dsn(pg.name, user="plain_user"))
        assert str(info.value) == (
            "role plain_user may not start replication: run ALTER ROLE plain_user WITH "
            "REPLICATION as a superuser (or connect as a role that has it)"
        )
    finally:
        pg.execute("DROP ROLE plain_user")


def test_slot_that_is_not_a_pgoutput_slot(pg):
    pg.execute("SELECT pg_create_physical_replication_slot('pf')")
    try:
        with pytest.raises(PreflightError) as info:
            preflight(pg.dsn)
    finally:
        pg.execute("SELECT pg_drop_replication_slot('pf')")
    assert "replication slot pf is a physical slot using no plugin, not pgoutput" in str(info.value)
    assert "pg_drop_replication_slot('pf')" in str(info.value)


def test_unreachable_server_names_the_connection_string():
    with pytest.raises(PreflightError) as info:
        preflight(f"host=127.0.0.1 port={throwaway.free_port()} user=x dbname=x connect_timeout=2")
    assert info.value.check == "connection"
    assert str(info.value).endswith("(check connection_string)")


def test_too_old_a_server():
    with pytest.raises(PreflightError, match="PostgreSQL 9 is too old"):
        _check_version(PreflightReport(server_version=90624))


def test_wal_level_replica_is_refused_with_the_fix():
    settings = {"wal_level": "replica"}
    with (
        throwaway.ThrowawayCluster(throwaway.find_server(), settings) as cluster,
        pytest.raises(PreflightError) as info,
    ):
        preflight(cluster.dsn())
    assert (
        str(info.value) == "wal_level is 'replica': set wal_level = logical and restart PostgreSQL"
    )


@pytest.mark.parametrize("major", sorted(SERVERS))
def test_invalidated_slot_is_fatal_with_the_reason_and_the_fix(major):
    settings = {"max_slot_wal_keep_size": "1MB", "max_wal_size": "32MB", "min_wal_size": "32MB"}
    with throwaway.ThrowawayCluster(SERVERS[major], settings) as cluster:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_create_logical_replication_slot('pf', 'pgoutput')")
            conn.execute("CREATE TABLE filler (id serial PRIMARY KEY, pad text)")
            for _ in range(4):
                conn.execute(
                    "INSERT INTO filler (pad) "
                    "SELECT repeat('x', 1000) FROM generate_series(1, 20000)"
                )
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
            status = conn.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'pf'"
            ).fetchone()[0]
        assert status == "lost"
        with pytest.raises(PreflightError) as info:
            preflight(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            health = read_slot_health(conn, "pf")
    message = str(info.value)
    said = "invalidation_reason = wal_removed" if major >= 16 else "wal_status = lost"
    assert message.startswith(f"replication slot pf is invalidated ({said}): the WAL it needed")
    assert "pg_drop_replication_slot('pf')" in message
    assert "max_slot_wal_keep_size" in message
    assert health.invalidation_reason == ("wal_removed" if major >= 16 else None)
    assert health.failover is (False if major >= 17 else None)
    assert (health.inactive_since is not None) is (major >= 17)


def test_second_instance_waits_as_standby_and_takes_over(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        text = (
            f'connection_string = "{pg.dsn}"\nslot_name = "pf"\npublication_name = "pf_pub"\n'
            f"feedback_interval_secs = 1\n{http_sink(receiver.url)}"
        )
        first = make_server(tmp_path, text)
        second = make_server(tmp_path, text, dead_letters=first.dead_letters)
        with running(first):
            pid = pg.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name='pf'")
            with running(second, state="standby"):
                assert second.snapshot().detail == f"slot in use by pid {pid[0][0]}"
                pg.execute("INSERT INTO t VALUES (1)")
                receiver.wait_for_events(1)
                first.stop()
                wait_until(
                    lambda: second.snapshot().state == "streaming", timeout=20, what="takeover"
                )
                pg.execute("INSERT INTO t VALUES (2)")
                events = receiver.wait_for_events(2)
    assert [e["new"]["id"] for e in events] == [1, 2]


def test_failover_slot_says_what_the_primary_lacks(pg):
    """Without synchronized_standby_slots a standby's copy of the slot may be behind what was
    received: pre-flight says so and the fix; before 17 there are no failover slots."""
    if pg.major < 17:
        with pytest.raises(PreflightError) as info:
            preflight(pg.dsn, slot_name="fo", failover_slot=True)
        assert str(info.value) == (
            f"failover_slot = true needs PostgreSQL 17 or later (the server is {pg.major}): "
            "remove it, or upgrade the server"
        )
        return
    report = preflight(pg.dsn, slot_name="fo", failover_slot=True)
    assert pg.execute("SELECT failover FROM pg_replication_slots WHERE slot_name = 'fo'") == [
        (True,)
    ]
    warnings = [line.message for line in report.warnings if line.check == "failover"]
    assert len(warnings) == 1, report.warnings
    assert "synchronized_standby_slots is empty on this server" in warnings[0]
    assert "sync_replication_slots = on, hot_standby_feedback = on" in warnings[0]


def test_a_standby_slot_the_server_lacks_is_named():
    """A promoted standby keeps the synchronized_standby_slots that pg_basebackup copied from
    its primary, and logical walsenders then wait for a slot it does not have."""
    newest = max(SERVERS)
    if newest < 17:
        pytest.skip("failover slots need PostgreSQL 17+")
    settings = {"synchronized_standby_slots": "gone_standby"}
    with throwaway.ThrowawayCluster(SERVERS[newest], settings) as cluster:
        report = preflight(cluster.dsn(), slot_name="fo", failover_slot=True)
    [warning] = [line.message for line in report.warnings if line.check == "failover"]
    assert warning.startswith(
        "synchronized_standby_slots names gone_standby, which this server does not have: "
        "logical walsenders wait for it"
    )


def test_an_existing_slot_is_made_a_failover_slot_at_start(pg, tmp_path):
    if pg.major < 17:
        pytest.skip("failover slots need PostgreSQL 17+")
    pg.execute("SELECT pg_create_logical_replication_slot('made_fo', 'pgoutput')")
    with WebhookReceiver() as receiver:
        text = (
            f'connection_string = "{pg.dsn}"\nslot_name = "made_fo"\n'
            f'publication_name = "made_fo_pub"\nfailover_slot = true\n{http_sink(receiver.url)}'
        )
        with running(make_server(tmp_path, text)):
            failover = pg.execute(
                "SELECT failover FROM pg_replication_slots WHERE slot_name = 'made_fo'"
            )
    assert failover == [(True,)]
