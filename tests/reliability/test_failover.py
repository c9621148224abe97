"""Surviving a primary failover with a failover slot (PostgreSQL 17+), with real processes: a
primary and a streaming standby made with pg_basebackup that keeps the slot in step, ``run
--headless`` streaming a steady workload to a receiver, then the primary stopped hard and the
standby promoted. Every row the new primary holds reaches the receiver, no row it does not
hold does, resends carry the same ids, and the engine streams from the new primary."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import SERVERS
from tests.support.engine import http_sink, wait_until
from tests.support.headless import Headless
from wal2http_tui.demo import throwaway
from wal2http_tui.demo.receiver import WebhookReceiver

NEWEST = max(SERVERS) if SERVERS else 0
pytestmark = pytest.mark.skipif(NEWEST < 17, reason="failover slots need PostgreSQL 17+")


class Writer(threading.Thread):
    """One row per transaction into ``t``, through whichever host accepts writes."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.next_id = 1
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                    while not self.stop.is_set():
                        conn.execute("INSERT INTO t VALUES (%s)", (self.next_id,))
                        self.next_id += 1
                        time.sleep(0.02)
            except psycopg.Error:
                self.next_id += 1  # that row's commit may or may not have happened
                time.sleep(0.2)


def _slot_on(cluster: throwaway.ThrowawayCluster, slot: str) -> tuple | None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        return conn.execute(
            "SELECT synced, temporary, failover FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()


def test_a_promoted_standby_goes_on_from_the_synchronised_slot(tmp_path):
    server = SERVERS[NEWEST]
    with (
        throwaway.ThrowawayCluster(server) as primary,
        WebhookReceiver() as receiver,
    ):
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        with throwaway.ThrowawayCluster(server).start_standby(primary) as standby:
            with psycopg.connect(primary.dsn(), autocommit=True) as conn:
                conn.execute(
                    f"ALTER SYSTEM SET synchronized_standby_slots = '{throwaway.STANDBY_SLOT}'"
                )
                conn.execute("SELECT pg_reload_conf()")
            both = (
                f"host=127.0.0.1,127.0.0.1 port={primary.port},{standby.port} user=postgres "
                "dbname=postgres target_session_attrs=read-write"
            )
            config = Path(tmp_path / "wal2http.toml")
            config.write_text(
                f'connection_string = "{both}"\nslot_name = "fo"\npublication_name = "fo_pub"\n'
                "failover_slot = true\nfeedback_interval_secs = 1\nserver_timeout_secs = 5\n"
                f"{http_sink(receiver.url)}"
            )
            writer = Writer(both)
            with Headless(config) as engine:
                engine.wait_for_log("streaming slot fo")
                writer.start()
                receiver.wait_for_events(50, timeout=60)

                def synced() -> bool:
                    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
                        conn.execute("SELECT pg_log_standby_snapshot()")
                    return _slot_on(standby, "fo") == (True, False, True)

                wait_until(synced, timeout=60, what="the slot synchronised to the standby")
                receiver.wait_for_events(len(receiver.events) + 20, timeout=60)
                primary.stop_server("immediate")
                standby.promote()
                engine.wait_for_log("failover: the server at", timeout=90)
                count = len(receiver.events)
                receiver.wait_for_events(count + 50, timeout=90)  # streaming from the new one
                writer.stop.set()
                writer.join(10)
                with psycopg.connect(standby.dsn(), autocommit=True) as conn:
                    held = {row[0] for row in conn.execute("SELECT id FROM t")}
                wait_until(
                    lambda: {e["new"]["id"] for e in list(receiver.events)} >= held,
                    timeout=60,
                    what="every row the new primary holds delivered",
                )
                assert engine.process.poll() is None
                log = engine.log
            received: dict[int, set[str]] = {}
            for event in list(receiver.events):
                received.setdefault(event["new"]["id"], set()).add(event["event_id"])
    assert set(received) == held  # nothing the new primary does not hold was delivered
    assert all(len(ids) == 1 for ids in received.values())  # a resend has the same id
    assert "slot fo was synchronised to it from the former primary" in log
