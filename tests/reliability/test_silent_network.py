"""When PostgreSQL goes silent, the engine notices and reconnects (issue 18): a TCP proxy between
a real ``run --headless`` and PostgreSQL keeps the connection open and forwards nothing, as a
dead NAT entry or a firewall that drops would."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from psycopg.conninfo import make_conninfo

from tests.conftest import Database
from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.tcp_proxy import FreezingProxy
from wal2http_tui.demo import throwaway
from wal2http_tui.demo.receiver import WebhookReceiver

SERVER_TIMEOUT = 5
WAL_SENDER_TIMEOUT = 10


@pytest.fixture
def impatient(pg_cluster) -> Iterator[Database]:
    """A database on a cluster of the same version whose server drops a silent client after
    10 s (wal_sender_timeout; the other clusters keep 60 s)."""
    settings = {"wal_sender_timeout": f"{WAL_SENDER_TIMEOUT}s"}
    with throwaway.ThrowawayCluster(pg_cluster.server, settings) as cluster:
        yield Database(cluster, "postgres")


def through(proxy: FreezingProxy, pg: Database, tmp_path, url: str) -> str:
    dsn = make_conninfo(pg.dsn, host="127.0.0.1", port=str(proxy.port))
    path = tmp_path / "wal2http.toml"
    path.write_text(
        config_text(
            dsn,
            http_sink(url),
            slot_name="quiet",
            feedback_interval_secs=1,
            server_timeout_secs=SERVER_TIMEOUT,
        )
    )
    return str(path)


def ids_by_row(receiver: WebhookReceiver) -> dict[int, set[str]]:
    ids: dict[int, set[str]] = defaultdict(set)
    for event in list(receiver.events):
        ids[event["new"]["id"]].add(event["event_id"])
    return ids


def test_a_connection_that_goes_silent_is_noticed_and_replaced_without_loss(impatient, tmp_path):
    pg = impatient
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with (
        WebhookReceiver() as receiver,
        FreezingProxy(pg.cluster.port) as proxy,
        Headless(through(proxy, pg, tmp_path, receiver.url)) as engine,
    ):
        engine.wait_for_log("streaming slot quiet")
        pg.execute("INSERT INTO t SELECT generate_series(1, 5)")
        receiver.wait_for_events(5)
        proxy.freeze()  # the connection it holds now stays open and carries nothing
        proxy.thaw()  # ... while new connections work again, as after a lost NAT entry
        frozen_at = time.monotonic()
        pg.execute("INSERT INTO t SELECT generate_series(6, 10)")
        bound = SERVER_TIMEOUT + WAL_SENDER_TIMEOUT + 15
        wait_until(lambda: set(ids_by_row(receiver)) == set(range(1, 11)), timeout=bound)
        took = time.monotonic() - frozen_at
        assert engine.process is not None and engine.process.poll() is None
        assert engine.terminate() == 0
    assert took < bound
    silence = [line for line in engine.lines if "no message from PostgreSQL" in line]
    assert len(silence) == 1, engine.log
    assert f"no message from PostgreSQL for {SERVER_TIMEOUT} s" in silence[0]
    standby = [line for line in engine.lines if "state standby" in line]
    assert all("probably our previous connection" in line for line in standby), standby
    assert all(len(ids) == 1 for ids in ids_by_row(receiver).values()), "a resend changed its id"


def test_a_server_that_goes_silent_during_pre_flight_is_retried(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver, FreezingProxy(pg.cluster.port) as proxy:
        proxy.freeze_on(b"wal_level")  # the pre-flight's SHOW wal_level never gets an answer
        with Headless(through(proxy, pg, tmp_path, receiver.url)) as engine:
            line = engine.wait_for_log("no answer from PostgreSQL", timeout=SERVER_TIMEOUT + 20)
            assert proxy.frozen_on_trigger.is_set()
            assert f"within {SERVER_TIMEOUT}s (the pre-flight checks)" in line
            assert "reconnecting" in line
            wait_until(lambda: slot_confirmed_lsn(pg, "quiet"), timeout=30, what="streaming")
            pg.execute("INSERT INTO t VALUES (1)")
            receiver.wait_for_events(1)
            assert engine.terminate() == 0
