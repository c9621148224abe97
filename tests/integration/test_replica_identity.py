"""Starting wal2http-tui never breaks the application's writes to a table without a key.

A publication that publishes updates and deletes makes PostgreSQL refuse every UPDATE and DELETE
of a published table that has no usable replica identity. The engine refuses to create such a
publication, warns about an existing one, and warns (once) about such a table created while it
streams.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from wal2http_tui.demo.receiver import WebhookReceiver

# What PostgreSQL itself does: on every version found (tests/conftest.py).
pytestmark = pytest.mark.every_version

FIXES = (
    "add a primary key",
    "REPLICA IDENTITY USING INDEX",
    "REPLICA IDENTITY FULL",
    "`tables`",
    'publish = "insert, truncate"',
)


def write_config(tmp_path, pg, url: str, **top: str) -> str:
    path = tmp_path / "wal2http.toml"
    top = {"slot_name": "ri", "publication_name": "ri_pub", "feedback_interval_secs": 1, **top}
    path.write_text(config_text(pg.dsn, http_sink(url), **top))
    return str(path)


def application_writes_succeed(pg, table: str) -> None:
    """The application's own UPDATE and DELETE on ``table`` are not refused."""
    pg.execute(f"INSERT INTO {table} VALUES ('x', 1)")
    pg.execute(f"UPDATE {table} SET n = 2 WHERE msg = 'x'")
    pg.execute(f"DELETE FROM {table} WHERE msg = 'x'")


def publications(pg) -> list[str]:
    return [row[0] for row in pg.execute("SELECT pubname FROM pg_publication")]


def test_a_keyless_table_and_the_defaults_are_refused_and_nothing_is_created(pg, tmp_path):
    pg.execute("CREATE TABLE app_log (msg text, n int)")
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    config = write_config(tmp_path, pg, "http://127.0.0.1:9/hook")

    checked = cli("check", "--config", config)
    with Headless(config) as engine:
        status = engine.process.wait(60)

    assert checked.returncode == 2, checked.stdout
    refusal = next(line for line in checked.stdout.splitlines() if line.startswith("[FAIL]"))
    assert "publication ri_pub not created" in refusal
    assert "1 table without a usable replica identity (public.app_log)" in refusal
    assert "orders" not in refusal
    assert [refusal.index(fix) for fix in FIXES] == sorted(refusal.index(fix) for fix in FIXES)
    assert status == 2, engine.log
    assert "publication ri_pub not created" in engine.log
    assert "public.app_log" in engine.log
    assert publications(pg) == []
    assert not pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'ri'")
    application_writes_succeed(pg, "app_log")


def test_many_keyless_tables_are_named_up_to_five_then_counted(pg, tmp_path):
    for n in range(7):
        pg.execute(f"CREATE TABLE log_{n} (msg text, n int)")
    result = cli("check", "--config", write_config(tmp_path, pg, "http://127.0.0.1:9/hook"))
    assert result.returncode == 2
    assert (
        "7 tables without a usable replica identity (public.log_0, public.log_1, public.log_2, "
        "public.log_3, public.log_4 and 2 more)"
    ) in result.stdout


def test_publish_insert_truncate_streams_inserts_and_leaves_the_application_alone(pg, tmp_path):
    pg.execute("CREATE TABLE app_log (msg text, n int)")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, receiver.url, publish="insert, truncate")
        with Headless(config) as engine:
            wait_until(lambda: slot_confirmed_lsn(pg, "ri"), what="slot created")
            application_writes_succeed(pg, "app_log")
            pg.execute("INSERT INTO app_log VALUES ('kept', 7)")
            receiver.wait_for_events(2)
            pg.execute("TRUNCATE app_log")
            receiver.wait_for_events(3)
            assert engine.terminate() == 0, engine.log
    ops = [(event["op"], (event["new"] or {}).get("msg")) for event in receiver.events]
    assert ops == [("insert", "x"), ("insert", "kept"), ("truncate", None)]
    assert pg.execute(
        "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication "
        "WHERE pubname = 'ri_pub'"
    ) == [(True, False, False, True)]
    assert "WARNING" not in engine.log


def test_an_existing_publication_with_a_keyless_table_is_named_in_check_and_the_log(pg, tmp_path):
    pg.execute("CREATE TABLE app_log (msg text, n int)")
    pg.execute("CREATE PUBLICATION ri_pub FOR ALL TABLES")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, receiver.url)
        checked = cli("check", "--config", config)
        with Headless(config) as engine:
            warning = engine.wait_for_log("WARNING")
            engine.wait_for_log("streaming slot ri")
            assert engine.terminate() == 0
    assert checked.returncode == 0, checked.stdout
    [line] = [line for line in checked.stdout.splitlines() if line.startswith("[WARN]")]
    for text in (line, warning):
        assert "refusing the application's UPDATE and DELETE on public.app_log" in text
        assert all(fix in text for fix in FIXES)
    assert engine.log.count("WARNING") == 1, engine.log


def test_a_keyless_table_created_while_streaming_is_warned_about_once(pg, tmp_path):
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    pg.execute("CREATE TABLE by_index (id int NOT NULL, v text)")
    pg.execute("CREATE UNIQUE INDEX by_index_id ON by_index (id)")
    pg.execute("ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id")
    pg.execute("CREATE TABLE whole_row (v text)")
    pg.execute("ALTER TABLE whole_row REPLICA IDENTITY FULL")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, receiver.url)
        with Headless(config) as engine:
            wait_until(lambda: slot_confirmed_lsn(pg, "ri"), what="slot created")
            pg.execute("INSERT INTO orders VALUES (1)")
            pg.execute("INSERT INTO by_index VALUES (1, 'a')")
            pg.execute("UPDATE by_index SET v = 'b'")
            pg.execute("INSERT INTO whole_row VALUES ('a')")
            pg.execute("UPDATE whole_row SET v = 'b'")
            receiver.wait_for_events(5)
            assert "WARNING" not in engine.log
            pg.execute("CREATE TABLE app_log (msg text, n int)")
            pg.execute("INSERT INTO app_log VALUES ('a', 1)")
            with psycopg.connect(pg.dsn) as conn:
                conn.execute("INSERT INTO app_log VALUES ('b', 2)")
            pg.execute("INSERT INTO app_log VALUES ('c', 3)")
            receiver.wait_for_events(8)
            warning = engine.wait_for_log("WARNING")
            assert engine.terminate() == 0
    assert "table public.app_log has no usable replica identity" in warning
    assert all(fix in warning for fix in FIXES)
    assert engine.log.count("WARNING") == 1, engine.log
