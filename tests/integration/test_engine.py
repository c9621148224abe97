"""The engine end to end: real PostgreSQL, real HTTP receivers, the real replication loop."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest

from tests.conftest import hot_path_for
from tests.support.engine import http_sink, make_server, running, slot_confirmed_lsn, wait_until
from wal2http_tui.demo.receiver import WebhookReceiver


def _config(pg, sinks: str, **top: object) -> str:
    settings = {"feedback_interval_secs": 1, **top}
    extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
    return (
        f'connection_string = "{pg.dsn}"\nslot_name = "w2h"\npublication_name = "w2h_pub"\n'
        f"{extra}{sinks}"
    )


@pytest.fixture
def receiver():
    with WebhookReceiver() as r:
        yield r


def test_insert_update_delete_arrive_in_order_with_exact_values(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(30,10))")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))):
        pg.execute(
            "INSERT INTO items VALUES (1, 'one', 12345678901234567890.0123456789), (2, 'two', NULL)"
        )
        pg.execute("UPDATE items SET name = 'uno' WHERE id = 1")
        pg.execute("DELETE FROM items WHERE id = 2")
        events = receiver.wait_for_events(4)
    assert [e["op"] for e in events] == ["insert", "insert", "update", "delete"]
    first = json.loads(receiver.requests[0].body, parse_float=str)
    assert first["new"] == {"id": 1, "name": "one", "price": "12345678901234567890.0123456789"}
    assert first["key"] == {"id": 1}
    assert first["event_type"] == "public.items.insert"
    assert first["source"] == {"database": pg.name, "slot": "w2h", "publication": "w2h_pub"}
    assert events[2]["new"]["name"] == "uno"
    assert events[2]["old"] is None  # REPLICA IDENTITY DEFAULT, key unchanged: no old tuple
    assert events[3]["old"] == {"id": 2}
    assert events[3]["new"] is None
    assert events[3]["key"] == {"id": 2}
    assert [e["seq"] for e in events] == [0, 1, 0, 0]
    assert [e["tx_size"] for e in events] == [2, 2, 1, 1]
    assert len(set(receiver.event_ids())) == 4
    assert len({e["lsn"] for e in events}) == 3


def test_each_version_runs_the_hot_path_the_suite_chose_for_it(pg, tmp_path, receiver, caplog):
    """The pure-Python reference on the oldest version, the compiled path on the others
    (tests/conftest.py): the engine says which at start, and its state carries it."""
    caplog.set_level(logging.INFO, logger="wal2http_tui")
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))) as server:
        pg.execute("INSERT INTO t VALUES (1, 'é\n\"')")
        (event,) = receiver.wait_for_events(1)
        row_path = server.snapshot().row_path
    expected = hot_path_for(pg.major)
    assert row_path == expected
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("row path: ")]
    assert said == [f"row path: {expected} (" + said[0].split(" (", 1)[1]]
    assert ("WAL2HTTP_IMPL=python" in said[0]) == (expected == "python")
    assert event["new"] == {"id": 1, "note": 'é\n"'}


def test_confirmed_lsn_follows_delivery(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))) as server:
        pg.execute("INSERT INTO t SELECT generate_series(1, 50)")
        receiver.wait_for_events(50)
        commit = server.snapshot().last_commit_lsn
        wait_until(lambda: slot_confirmed_lsn(pg, "w2h") > commit, what="confirmation")
        assert server.snapshot().flushed_lsn > commit


def test_replica_identity_full_and_key_changes_and_unchanged_toast(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE d (id int PRIMARY KEY, body text, n int)")
    pg.execute("CREATE TABLE f (id int PRIMARY KEY, body text, n int)")
    pg.execute("ALTER TABLE f REPLICA IDENTITY FULL")
    # Stored out of line (TOAST), so an update that does not touch it does not send it.
    pg.execute("ALTER TABLE d ALTER body SET STORAGE EXTERNAL")
    pg.execute("ALTER TABLE f ALTER body SET STORAGE EXTERNAL")
    big = "x" * 100_000
    pg.execute("INSERT INTO d VALUES (1, %s, 1)", (big,))
    pg.execute("INSERT INTO f VALUES (1, %s, 1)", (big,))
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))):
        pg.execute("UPDATE d SET n = 2 WHERE id = 1")
        pg.execute("UPDATE f SET n = 2 WHERE id = 1")
        pg.execute("UPDATE d SET id = 10 WHERE id = 1")
        pg.execute("DELETE FROM f WHERE id = 1")
        events = receiver.wait_for_events(4)
    d_update, f_update, d_key_change, f_delete = events
    assert d_update["new"] == {"id": 1, "n": 2}
    assert d_update["unchanged_toast"] == ["body"]
    assert d_update["old"] is None
    assert f_update["new"] == {"id": 1, "body": big, "n": 2}  # filled from the full old row
    assert f_update["unchanged_toast"] == []
    assert f_update["old"] == {"id": 1, "body": big, "n": 1}
    assert d_key_change["old"] == {"id": 1}
    assert d_key_change["key"] == {"id": 10}
    assert f_delete["old"] == {"id": 1, "body": big, "n": 2}
    assert f_delete["key"] == {"id": 1}


def test_truncate_gives_one_event_per_table(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))):
        pg.execute("TRUNCATE a, b RESTART IDENTITY")
        events = receiver.wait_for_events(2)
    assert [(e["op"], e["table"], e["new"], e["old"]) for e in events] == [
        ("truncate", "a", None, None),
        ("truncate", "b", None, None),
    ]
    assert events[0]["truncate"] == {"cascade": False, "restart_identity": True}
    assert events[0]["lsn"] == events[1]["lsn"]


def test_logical_decoding_messages(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))):
        with psycopg.connect(pg.dsn) as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("SELECT pg_logical_emit_message(true, 'audit', 'in a transaction')")
        pg.execute("SELECT pg_logical_emit_message(false, 'ping', 'outside')")
        events = receiver.wait_for_events(3)
    assert [e["op"] for e in events] == ["insert", "message", "message"]
    assert (events[1]["prefix"], events[1]["content"]) == ("audit", "in a transaction")
    assert events[1]["lsn"] == events[0]["lsn"]  # same transaction
    assert (events[2]["prefix"], events[2]["content"]) == ("ping", "outside")
    assert events[2]["transactional"] is False


@pytest.fixture
def small_decoding_memory(pg):
    """Make the server stream transactions above 64 kB before they commit."""
    pg.execute("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'")
    pg.execute("SELECT pg_reload_conf()")
    yield
    pg.execute("ALTER SYSTEM RESET logical_decoding_work_mem")
    pg.execute("SELECT pg_reload_conf()")


INSERT_BIG = (
    "INSERT INTO big SELECT g, repeat('{letter}', 50) FROM generate_series({first}, {last}) g"
)


def test_streamed_transactions_commit_abort_and_subtransaction_abort(
    pg, tmp_path, receiver, small_decoding_memory
):
    pg.execute("CREATE TABLE big (id int PRIMARY KEY, pad text)")
    text = _config(pg, http_sink(receiver.url, batch_max_events=500))
    server = make_server(tmp_path, text, spool_memory_limit=32 * 1024)
    with running(server):
        with psycopg.connect(pg.dsn) as conn:  # aborted: never delivered
            conn.execute(INSERT_BIG.format(letter="a", first=1, last=3000))
            conn.rollback()
        with psycopg.connect(pg.dsn) as conn:  # committed, with a rolled-back savepoint inside
            conn.execute(INSERT_BIG.format(letter="b", first=1, last=3000))
            conn.execute("SAVEPOINT s")
            conn.execute(INSERT_BIG.format(letter="c", first=3001, last=5000))
            conn.execute("ROLLBACK TO SAVEPOINT s")
            conn.execute(INSERT_BIG.format(letter="d", first=5001, last=6000))
            conn.commit()
        events = receiver.wait_for_events(4000)
        pg.execute("INSERT INTO big VALUES (0, 'marker')")
        events = receiver.wait_for_events(4001)
    ids = [e["new"]["id"] for e in events]
    assert ids == [*range(1, 3001), *range(5001, 6001), 0]
    assert {e["tx_size"] for e in events[:4000]} == {4000}
    assert [e["seq"] for e in events[:4000]] == list(range(4000))
    assert not any(e["new"]["pad"].startswith(("a", "c")) for e in events)


def test_two_phase_commit_is_delivered_once_at_commit_and_rollback_never(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))):
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("PREPARE TRANSACTION 'keep'")
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (2)")
            conn.execute("PREPARE TRANSACTION 'drop'")
            conn.execute("ROLLBACK PREPARED 'drop'")
            conn.execute("INSERT INTO t VALUES (3)")
            conn.execute("COMMIT PREPARED 'keep'")
        events = receiver.wait_for_events(2)
        pg.execute("INSERT INTO t VALUES (4)")
        events = receiver.wait_for_events(3)
    assert [e["new"]["id"] for e in events] == [3, 1, 4]


def test_reconnects_after_walsender_is_terminated_and_loses_nothing(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with running(make_server(tmp_path, _config(pg, http_sink(receiver.url)))) as server:
        pg.execute("INSERT INTO t SELECT generate_series(1, 100)")
        receiver.wait_for_events(100)
        pg.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = 'w2h'"
        )
        pg.execute("INSERT INTO t SELECT generate_series(101, 200)")
        wait_until(
            lambda: server.snapshot().reconnect_attempt or server.snapshot().last_error,
            what="the engine to notice",
        )
        wait_until(lambda: server.snapshot().state == "streaming", what="reconnect")
        pg.execute("INSERT INTO t SELECT generate_series(201, 300)")
        events = receiver.wait_for_events(300)
    ids = [e["new"]["id"] for e in events]
    assert sorted(set(ids)) == list(range(1, 301))
    assert ids == sorted(ids)  # in commit order, and nothing delivered twice this time


def test_restart_mid_stream_loses_nothing_and_resends_keep_their_ids(pg, tmp_path, receiver):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    text = _config(pg, http_sink(receiver.url), feedback_interval_secs=3600)
    with running(make_server(tmp_path, text)):
        pg.execute("INSERT INTO t SELECT generate_series(1, 100)")
        receiver.wait_for_events(100)
    first_ids = receiver.event_ids()
    pg.execute("INSERT INTO t SELECT generate_series(101, 200)")
    with running(make_server(tmp_path, text)):
        events = receiver.wait_for_events(200)
    ids = [e["new"]["id"] for e in events]
    assert set(ids) == set(range(1, 201))
    again = {e["new"]["id"]: e["event_id"] for e in events[100:]}
    originals = dict(zip(ids[:100], first_ids, strict=True))
    for row, event_id in again.items():
        if row in originals:
            assert originals[row] == event_id


def test_no_enabled_sink_refuses_to_stream(pg, tmp_path, receiver):
    text = _config(pg, f'[event_sinks.http]\nurl = "{receiver.url}"\n')
    server = make_server(tmp_path, text)
    server.start()
    wait_until(lambda: server.snapshot().state == "error", what="error state")
    server.stop()
    assert "no enabled sink" in server.snapshot().last_error
    assert not pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'w2h'")
