"""``ordering = "key"``: rows delivered concurrently, each row's events in commit order, barriers
around truncates, and the acknowledgement rule unchanged when events finish out of order.

Real PostgreSQL, a real receiver that answers slowly, at random, with 503s, and (for the kill
test) a real ``run --headless`` process killed with 256 requests in flight.
"""

from __future__ import annotations

from collections import defaultdict

import psycopg

from tests.reliability.test_faults import write_config
from tests.support.engine import (
    http_sink,
    make_server,
    running,
    slot_confirmed_lsn,
    wait_until,
)
from tests.support.headless import Headless
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.replication.messages import parse_lsn

KEYS = 200
UPDATES_PER_KEY = 30
ROWS_PER_TX = 10


def _config(pg, receiver: WebhookReceiver, **sink: object) -> str:
    keyed = {
        "ordering": "key",
        "retry_backoff_ms": 5,
        "retry_max_backoff_secs": 0.2,
        **sink,
    }
    return (
        f'connection_string = "{pg.dsn}"\nslot_name = "keyed"\npublication_name = "keyed_pub"\n'
        f"feedback_interval_secs = 1\n{http_sink(receiver.url, **keyed)}"
    )


def _first_arrivals(receiver: WebhookReceiver) -> list[dict]:
    """Accepted events in arrival order, a resend (same id) counted once, where it came first."""
    seen: set[str] = set()
    events = []
    for event in list(receiver.events):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            events.append(event)
    return events


def test_each_key_arrives_in_commit_order_while_keys_go_out_together(pg, tmp_path):
    pg.execute("CREATE TABLE kv (id int PRIMARY KEY, n int NOT NULL)")
    pg.execute(f"INSERT INTO kv SELECT g, 0 FROM generate_series(1, {KEYS}) g")
    receiver = WebhookReceiver(jitter=0.03, failure_rate=0.1, seed=14)
    total = KEYS * UPDATES_PER_KEY
    with (
        receiver,
        running(make_server(tmp_path, _config(pg, receiver, max_in_flight=32))) as server,
    ):
        with psycopg.connect(pg.dsn) as conn:
            for tx in range(total // ROWS_PER_TX):  # 600 transactions of 10 updates
                first = (tx * ROWS_PER_TX) % KEYS
                ids = [first + offset + 1 for offset in range(ROWS_PER_TX)]
                conn.execute("UPDATE kv SET n = n + 1 WHERE id = ANY(%s)", (ids,))
                conn.commit()
        wait_until(lambda: len(_first_arrivals(receiver)) >= total, timeout=120, what="every event")
        end = server.snapshot().last_commit_lsn
        wait_until(lambda: slot_confirmed_lsn(pg, "keyed") > end, what="the slot confirmed")
        sink = server.sinks()[0]
    events = _first_arrivals(receiver)
    assert len(events) == total
    values: dict[int, list[int]] = defaultdict(list)
    for event in events:
        values[event["key"]["id"]].append(event["new"]["n"])
    assert set(values) == set(range(1, KEYS + 1))
    for key, seen in values.items():
        assert seen == list(range(1, UPDATES_PER_KEY + 1)), f"key {key} out of commit order"
    assert receiver.most_at_once > 1, "no two requests were ever in flight together"
    assert sum(r.status == 503 for r in receiver.requests) > 0  # the 503s were really retried
    assert sink.failed > 0 and sink.delivered >= total


def test_a_truncate_waits_for_everything_before_it_and_holds_everything_after(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    pg.execute("CREATE TABLE other (id int PRIMARY KEY)")
    receiver = WebhookReceiver(jitter=0.02, seed=7)
    with receiver, running(make_server(tmp_path, _config(pg, receiver, max_in_flight=16))):
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            for i in range(1, 101):
                conn.execute("INSERT INTO t VALUES (%s)", (i,))
            conn.execute("TRUNCATE t")
            for i in range(1, 101):
                conn.execute("INSERT INTO other VALUES (%s)", (i,))
        wait_until(lambda: len(_first_arrivals(receiver)) >= 201, what="every event")
    ops = [(e["op"], e["table"]) for e in _first_arrivals(receiver)]
    barrier = ops.index(("truncate", "t"))
    assert ops[:barrier] == [("insert", "t")] * 100
    assert ops[barrier + 1 :] == [("insert", "other")] * 100
    assert receiver.most_at_once > 1


def test_killed_with_256_requests_in_flight_loses_nothing_and_never_confirmed_past_them(
    pg_newest, tmp_path
):
    pg = pg_newest
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    rows = 1200
    with WebhookReceiver(latency=1.0) as receiver:
        sink = http_sink(
            receiver.url, ordering="key", max_in_flight=256, timeout=30, retry_backoff_ms=10
        )
        config = write_config(tmp_path, pg, sink, slot="kill256")
        first = Headless(config).start()
        try:
            first.wait_for_log("streaming")
            created = slot_confirmed_lsn(pg, "kill256")
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                for i in range(1, rows + 1):  # one row per transaction
                    conn.execute("INSERT INTO t VALUES (%s, 'x')", (i,))
            wait_until(lambda: receiver.at_once >= 256, timeout=60, what="256 requests at once")
            # some answered and confirmed, and the next ones in flight: kill it now
            wait_until(lambda: slot_confirmed_lsn(pg, "kill256") > created, what="a confirmation")
            wait_until(lambda: receiver.at_once >= 200, what="requests in flight again")
        finally:
            first.kill()
        # what the receiver had taken when the engine died (a superset of what the engine knew
        # was delivered: the receiver records an event before it answers)
        accepted_before = {e["new"]["id"] for e in list(receiver.events)}
        confirmed = slot_confirmed_lsn(pg, "kill256")
        assert 0 < len(accepted_before) < rows
        second = Headless(config).start()
        try:
            second.wait_for_log("streaming")
            wait_until(
                lambda: {e["new"]["id"] for e in list(receiver.events)} >= set(range(1, rows + 1)),
                timeout=120,
                what="every row after the restart",
            )
        finally:
            second.terminate()
    ids_by_row: dict[int, set[str]] = defaultdict(set)
    commit_lsn: dict[int, int] = {}
    for event in list(receiver.events):
        ids_by_row[event["new"]["id"]].add(event["event_id"])
        commit_lsn[event["new"]["id"]] = parse_lsn(event["lsn"])
    assert all(len(ids) == 1 for ids in ids_by_row.values()), "a resend got a new event id"
    # Nothing the slot had confirmed was unfinished: every row committed below it had arrived.
    confirmed_rows = {row for row, lsn in commit_lsn.items() if lsn < confirmed}
    assert confirmed_rows, "the slot confirmed nothing before the kill"
    assert confirmed_rows <= accepted_before
