"""On-demand backfills with real processes: `backfill start|pause|resume|cancel` steer a running
`run --headless` through the database, and a receiver that applies events in arrival order,
skipping ids it has applied, ends equal to the source, with a writer busy on the same table and
kill -9 in the middle."""

from __future__ import annotations

import json
import re
import threading
import time

from tests.reliability.test_faults import write_config
from tests.reliability.test_initial_snapshot import Mirror, write_while
from tests.support.engine import current_wal_lsn, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.replication.backfill_store import BackfillStore

ROWS = 200_000


def _backfill(config: str, *args: str) -> str:
    done = cli("backfill", *args, "--config", config)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _reads(receiver: WebhookReceiver) -> int:
    return sum(event["op"] == "read" for event in list(receiver.events))


def _source(pg) -> dict[int, dict]:
    return {row["id"]: row for (row,) in pg.execute("SELECT to_jsonb(k) FROM keyed k")}


def test_backfill_while_writing_paused_resumed_and_killed(pg_newest, tmp_path):
    pg = pg_newest
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY, v int, pad text)")
    pg.execute(f"INSERT INTO keyed SELECT g, 0, repeat('k', 20) FROM generate_series(1, {ROWS}) g")
    pg.execute("ANALYZE keyed")
    stop = threading.Event()
    writer = threading.Thread(
        target=write_while, args=(pg.dsn, stop, 5, ROWS), kwargs={"keyless": False}
    )
    with WebhookReceiver() as receiver:
        config = write_config(
            tmp_path, pg, http_sink(receiver.url, batch_max_events=500), slot="fill"
        )
        with Headless(config) as first:
            first.wait_for_log("streaming slot fill", timeout=60)
            writer.start()
            started = _backfill(config, "start", "keyed")
            backfill_id = re.search(r"backfill (\w+) requested", started).group(1)
            assert re.search(r"public.keyed \(about [\d,]+ rows\) to every enabled sink", started)
            first.wait_for_log(f"backfill {backfill_id} requested: public.keyed")
            wait_until(lambda: _reads(receiver) >= 30_000, timeout=60, what="30,000 reads")
            _backfill(config, "pause", backfill_id)
            first.wait_for_log(f"backfill {backfill_id} paused after")
            time.sleep(1.5)  # what was read before the pause may still be on its way
            paused_at = _reads(receiver)
            time.sleep(2)
            assert _reads(receiver) == paused_at, "reads went on while paused"
            listed = _backfill(config, "list")
            assert re.search(rf"{backfill_id}\s+paused", listed), listed
            _backfill(config, "resume", backfill_id)
            wait_until(lambda: _reads(receiver) >= paused_at + 60_000, timeout=60, what="more")
            first.kill()
        with Headless(config) as second:
            second.wait_for_log(f"backfill {backfill_id} done", timeout=120)
            stop.set()
            writer.join()
            end = current_wal_lsn(pg)
            wait_until(lambda: slot_confirmed_lsn(pg, "fill") >= end, timeout=60, what="the end")
            assert second.terminate() == 0
        events = list(receiver.events)
    listed = _backfill(config, "list")
    assert re.search(rf"{backfill_id}\s+done", listed), listed

    mirror = Mirror()
    mirror.apply(events)
    assert mirror.keyed == _source(pg)
    reads = [e for e in events if e["op"] == "read"]
    assert {e["backfill"]["id"] for e in reads} == {backfill_id}
    by_key: dict[int, set[str]] = {}
    for event in reads:
        by_key.setdefault(event["new"]["id"], set()).add(event["event_id"])
    assert all(len(ids) == 1 for ids in by_key.values()), "a row read twice got two ids"
    assert len(by_key) > ROWS * 0.9  # the writer changed some: those went out as changes


def test_backfill_to_one_sink_with_a_where_clause_and_cancel(pg, tmp_path):
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY, v int, pad text)")
    pg.execute("CREATE TABLE other (id int PRIMARY KEY)")
    pg.execute("INSERT INTO keyed SELECT g, g % 10, 'x' FROM generate_series(1, 5000) g")
    pg.execute("INSERT INTO other SELECT generate_series(1, 3000)")
    with WebhookReceiver() as new_one, WebhookReceiver() as old_one:
        sinks = http_sink(new_one.url, name="fresh", batch_max_events=100) + http_sink(
            old_one.url, name="old", batch_max_events=100
        )
        config = write_config(tmp_path, pg, sinks, slot="fill", backfill_chunk_rows=500)
        with Headless(config) as engine:
            engine.wait_for_log("streaming slot fill", timeout=60)
            started = _backfill(config, "start", "keyed", "--sink", "fresh", "--where", "v = 3")
            first = re.search(r"backfill (\w+) requested", started).group(1)
            engine.wait_for_log(f"backfill {first} done: 500 rows", timeout=60)
            engine.wait_for_log(f"backfill {first}: public.keyed done (500 rows)", timeout=1)
            pg.execute("INSERT INTO keyed VALUES (-1, 3, 'after')")
            wait_until(lambda: len(old_one.events) == 1, what="the insert at both sinks")
            reads = [e for e in new_one.events if e["op"] == "read"]
            assert sorted(e["new"]["id"] for e in reads) == list(range(3, 5001, 10))
            assert [e["op"] for e in old_one.events] == ["insert"]

            started = _backfill(config, "start", "other", "--sink", "old")
            second = re.search(r"backfill (\w+) requested", started).group(1)
            _backfill(config, "cancel", second)
            engine.wait_for_log(f"backfill {second} cancelled after")
            time.sleep(1)
            assert len([e for e in old_one.events if e["op"] == "read"]) < 3000
            listed = _backfill(config, "list")
            assert re.search(rf"{second}\s+cancelled", listed), listed
            assert re.search(rf"{first}\s+done\s+500/", listed), listed
            assert engine.terminate() == 0
    assert all(e["op"] != "read" for e in new_one.events if e["table"] == "other")


def test_backfill_refusals_say_what_is_wrong_and_exit_2(pg, tmp_path):
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    pg.execute("CREATE TABLE keyless (n int)")
    pg.execute("CREATE TABLE outside (id int PRIMARY KEY)")
    pg.execute("CREATE PUBLICATION rel_pub FOR TABLE keyed, keyless")
    config = write_config(tmp_path, pg, http_sink("http://127.0.0.1:9/"), slot="fill")
    BackfillStore(tmp_path / "wal2http-state.sqlite").key()  # as the engine's first start does
    cases = {
        ("keyless",): "public.keyless has no primary key or replica identity index",
        ("missing",): "no table public.missing in the database",
        ("outside",): "public.outside is not in the publication rel_pub",
        ("keyed", "--where", "id = = 1"): 'syntax error at or near "="',
        ("keyed", "--sink", "nope"): "no enabled sink named 'nope'",
    }
    for args, expected in cases.items():
        done = cli("backfill", "start", *args, "--config", config)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, done.stderr)
    keyless = cli("backfill", "start", "keyless", "--config", config).stderr
    assert "ALTER TABLE public.keyless ADD PRIMARY KEY" in keyless
    assert "REPLICA IDENTITY USING INDEX" in keyless
    unknown = cli("backfill", "pause", "abc", "--config", config)
    assert unknown.returncode == 2 and "no backfill 'abc'" in unknown.stderr


def test_a_forged_request_is_ignored(pg, tmp_path):
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    pg.execute("INSERT INTO keyed SELECT generate_series(1, 100)")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, http_sink(receiver.url), slot="fill")
        with Headless(config) as engine:
            engine.wait_for_log("streaming slot fill", timeout=60)
            forged = {
                "v": 1,
                "kind": "start",
                "slot": "fill",
                "id": "evil",
                "tables": ["public.keyed"],
                "sinks": [],
                "where": None,
                "chunk": 0,
                "run": "",
                "sig": "0" * 64,
            }
            pg.execute(
                "SELECT pg_logical_emit_message(false, 'wal2http-tui.backfill', %s)",
                (json.dumps(forged),),
            )
            engine.wait_for_log("ignored: not signed with this engine's key")
            pg.execute("INSERT INTO keyed VALUES (101)")
            wait_until(lambda: len(receiver.events) == 1, what="the insert")
            assert engine.terminate() == 0
    assert [e["op"] for e in receiver.events] == ["insert"]
