"""The initial snapshot with real processes: rows that exist before the first start arrive as
read events consistent with the stream, even with kill -9 during the snapshot and after it."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

import psycopg

from tests.reliability.test_faults import write_config
from tests.support.engine import current_wal_lsn, http_sink, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from wal2http_tui.demo.receiver import WebhookReceiver

ROWS = 100_000


class Mirror:
    """What a receiver that applies events in arrival order, skipping ids it has applied,
    ends up holding: rows by key for the keyed table, a multiset for the keyless one."""

    def __init__(self) -> None:
        self.keyed: dict[int, dict] = {}
        self.keyless: Counter[str] = Counter()
        self.applied: set[str] = set()
        self.reads = 0

    def apply(self, events: list[dict]) -> None:
        for event in events:
            if event["event_id"] in self.applied:
                continue
            self.applied.add(event["event_id"])
            op, table = event["op"], event["table"]
            self.reads += op == "read"
            if table == "keyed":
                if op == "truncate":
                    self.keyed.clear()
                elif op == "delete":
                    self.keyed.pop(event["old"]["id"], None)
                else:
                    if event.get("old"):  # the key changed: the row left its old key
                        self.keyed.pop(event["old"]["id"], None)
                    self.keyed[event["new"]["id"]] = event["new"]
            elif table == "keyless":
                if op == "truncate":
                    self.keyless.clear()
                    continue
                if op in ("update", "delete"):
                    old = _canonical(event["old"])
                    assert self.keyless[old] > 0, f"{op} of a row the mirror does not hold"
                    self.keyless[old] -= 1
                if op != "delete":
                    self.keyless[_canonical(event["new"])] += 1


def _canonical(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


def write_while(
    dsn: str, stop: threading.Event, seed: int, rows: int = ROWS, *, keyless: bool = True
) -> None:
    """Updates, deletes and inserts on ``keyed`` (and ``keyless``), in small transactions,
    until stopped; without ``keyless``, key changes on ``keyed`` too."""
    rng = random.Random(seed)
    next_id = rows + 1
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            key = rng.randint(1, rows)
            with conn.transaction():
                conn.execute("UPDATE keyed SET v = v + 1 WHERE id = %s", (key,))
                conn.execute("DELETE FROM keyed WHERE id = %s", (key + 1,))
                conn.execute("INSERT INTO keyed VALUES (%s, 0, 'new')", (next_id,))
                if not keyless:
                    conn.execute("UPDATE keyed SET id = -id WHERE id = %s", (key + 2,))
                    next_id += 1
                    continue
                conn.execute(
                    "UPDATE keyless SET v = v + 1 WHERE ctid = "
                    "(SELECT ctid FROM keyless WHERE n = %s LIMIT 1)",
                    (key,),
                )
                conn.execute("DELETE FROM keyless WHERE n = %s", (key + 2,))
                conn.execute("INSERT INTO keyless VALUES (%s, 0, 'new')", (next_id,))
            next_id += 1


def test_initial_snapshot_survives_kill_9_during_it_and_after_it(pg, tmp_path):
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY, v int, pad text)")
    pg.execute("CREATE TABLE keyless (n int, v int, pad text)")
    pg.execute("ALTER TABLE keyless REPLICA IDENTITY FULL")
    pg.execute(f"INSERT INTO keyed SELECT g, 0, repeat('k', 20) FROM generate_series(1, {ROWS}) g")
    pg.execute(
        f"INSERT INTO keyless SELECT g, 0, repeat('l', 20) FROM generate_series(1, {ROWS}) g"
    )
    pg.execute("INSERT INTO keyless SELECT 7, 0, 'twin' FROM generate_series(1, 3)")  # equal rows
    stop = threading.Event()
    writer = threading.Thread(target=write_while, args=(pg.dsn, stop, 13))
    with WebhookReceiver(latency=0.01) as receiver:
        config = write_config(
            tmp_path,
            pg,
            http_sink(receiver.url, batch_max_events=500),
            slot="snap",
            initial_snapshot="true",
            backfill_chunk_rows=7000,
        )
        with Headless(config) as first:
            first.wait_for_log("reading 2 tables in its snapshot", timeout=60)
            writer.start()
            receiver.wait_for_events(20_000, timeout=60)
            first.kill()
            assert "delivered to every sink" not in first.log
        with Headless(config) as second:
            second.wait_for_log("was interrupted: slot dropped", timeout=60)
            second.wait_for_log("delivered to every sink", timeout=120)
            second.wait_for_log("initial snapshot: public.keyed read (", timeout=1)
            second.wait_for_log("initial snapshot: public.keyless read (", timeout=1)
            second.kill()  # while streaming, the writer still writing
        with Headless(config) as third:
            # its own log, not the slot: the second may have confirmed everything already, and
            # a SIGTERM before the third has set up its handlers would kill it outright
            third.wait_for_log("streaming slot snap", timeout=60)
            stop.set()
            writer.join()
            end = current_wal_lsn(pg)
            wait_until(lambda: slot_confirmed_lsn(pg, "snap") >= end, timeout=120, what="the end")
            assert "initial snapshot" not in third.log.replace(
                "initial snapshot of slot snap was delivered", ""
            )
            assert third.terminate() == 0
        events = list(receiver.events)

    mirror = Mirror()
    mirror.apply(events)
    keyed = {row["id"]: row for (row,) in pg.execute("SELECT to_jsonb(k) FROM keyed k")}
    keyless = Counter(_canonical(row) for (row,) in pg.execute("SELECT to_jsonb(l) FROM keyless l"))
    assert mirror.keyed == keyed
    assert mirror.keyless == keyless
    assert mirror.reads >= 2 * ROWS  # the second attempt read every row again
    reads = [e for e in events if e["op"] == "read"]
    assert {e["backfill"]["table"] for e in reads} == {"public.keyed", "public.keyless"}
    restarts = [
        e for e in events if e["op"] == "truncate" and e["truncate"].get("snapshot_restart")
    ]
    assert sorted(e["table"] for e in restarts) == ["keyed", "keyless"]


def test_check_says_what_the_initial_snapshot_will_do(pg, tmp_path):
    pg.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    config = write_config(
        tmp_path, pg, http_sink("http://127.0.0.1:9/"), slot="snap", initial_snapshot="true"
    )
    fresh = cli("check", "--config", config).stdout
    assert "slot snap will be created with a snapshot of 1 table" in fresh, fresh
    pg.execute("SELECT pg_create_logical_replication_slot('snap', 'pgoutput')")
    existing = cli("check", "--config", config).stdout
    line = next(line for line in existing.splitlines() if "initial snapshot" in line)
    assert "WARN" in line and "slot snap already exists and no initial snapshot" in line, existing
    assert "pg_drop_replication_slot('snap')" in line
