"""Per-sink routing on real PostgreSQL: two HTTP receivers and the Hook0 fake, each with its own
tables, ops and excluded columns, over one workload."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlsplit

import pytest

from tests.fakes.hook0_api import Hook0Fake
from tests.support.engine import (
    current_wal_lsn,
    make_server,
    running,
    slot_confirmed_lsn,
    wait_until,
)
from tests.support.hook0 import APPLICATION, TOKEN, hook0_sink
from tests.support.process import cli
from wal2http_tui.demo.receiver import WebhookReceiver


@pytest.fixture
def hook0():
    with Hook0Fake({APPLICATION: [TOKEN]}) as fake:
        yield fake


def _config(pg, sinks: str) -> str:
    return (
        f'connection_string = "{pg.dsn}"\nslot_name = "routes"\npublication_name = "routes_pub"\n'
        f"feedback_interval_secs = 1\n{sinks}"
    )


WORKLOAD = [
    "INSERT INTO products VALUES (1, 'pen', 1.50), (2, 'ink', 2.00), (3, 'nib', 0.10)",
    "INSERT INTO users VALUES (1, 'a@example.com', 'hash-one', 'ssn-111')",
    "INSERT INTO catalog.items VALUES (1, 'ssn-cat')",
    "UPDATE products SET price = 1.75 WHERE id = 1",
    "UPDATE users SET email = 'b@example.com' WHERE id = 1",
    "DELETE FROM products WHERE id = 3",
    "INSERT INTO audit_log VALUES (1, 'logged')",
    "SELECT pg_logical_emit_message(true, 'app', 'hello')",
    "TRUNCATE audit_log",
    "TRUNCATE users",
]


def test_each_sink_receives_exactly_its_slice(pg, tmp_path, hook0):
    pg.execute("CREATE TABLE products (id int PRIMARY KEY, name text, price numeric)")
    pg.execute("CREATE TABLE users (id int PRIMARY KEY, email text, password_hash text, ssn text)")
    pg.execute("CREATE TABLE audit_log (n int PRIMARY KEY, msg text)")
    pg.execute("CREATE SCHEMA catalog")
    pg.execute("CREATE TABLE catalog.items (id int PRIMARY KEY, ssn text)")
    with WebhookReceiver() as search, WebhookReceiver() as crm:
        sinks = (
            "[[event_sinks.http]]\n"
            'name = "search"\nenabled = true\n'
            f'url = "{search.url}/hooks/{{schema}}/{{table}}"\n'
            'tables = ["public.products", "catalog.*"]\n'
            'ops = ["insert", "update", "delete"]\n'
            'exclude_columns = { "*.*" = ["ssn"] }\n'
            "batch_max_events = 50\n"
            "[[event_sinks.http]]\n"
            'name = "crm"\nenabled = true\n'
            f'url = "{crm.url}/crm/{{op}}"\n'
            'tables = ["public.users"]\n'
            'exclude_columns = { "public.users" = ["password_hash"] }\n'
            + hook0_sink(
                hook0.api_url,
                ops=["insert", "truncate", "message"],
                exclude_columns={"public.users": ["password_hash", "ssn"]},
            )
        )
        with running(make_server(tmp_path, _config(pg, sinks))) as server:
            for statement in WORKLOAD:
                pg.execute(statement)
            search_events = search.wait_for_events(6)
            crm_events = crm.wait_for_events(4)
            hook0_events = hook0.wait_for_events(9, timeout=30)
            end = current_wal_lsn(pg)
            wait_until(lambda: slot_confirmed_lsn(pg, "routes") >= end, what="the end confirmed")
            marks = [(tx.tables, dict(tx.marks)) for tx in server.feed.recent_transactions()]
        search_requests, crm_requests = list(search.requests), list(crm.requests)
        base = urlsplit(search.url).path

    # Each receiver gets exactly its slice, in commit order.
    assert [(e["table"], e["op"]) for e in search_events] == [
        ("products", "insert"),
        ("products", "insert"),
        ("products", "insert"),
        ("items", "insert"),
        ("products", "update"),
        ("products", "delete"),
    ]
    assert [(e["table"], e["op"]) for e in crm_events] == [
        ("users", "insert"),
        ("users", "update"),
        (None, "message"),
        ("users", "truncate"),
    ]
    assert [e.event_type for e in hook0_events] == [
        "public.products.insert",
        "public.products.insert",
        "public.products.insert",
        "public.users.insert",
        "catalog.items.insert",
        "public.audit_log.insert",
        "logical_message.app.message",
        "public.audit_log.truncate",
        "public.users.truncate",
    ]
    assert sorted(hook0.event_types(APPLICATION)) == sorted({e.event_type for e in hook0_events})

    # An excluded column is in no byte sent to that sink; the other sinks still get it.
    search_bytes = b"".join(r.body for r in search_requests)
    crm_bytes = b"".join(r.body for r in crm_requests)
    hook0_users = [e.raw_payload for e in hook0_events if e.event_type == "public.users.insert"]
    assert b"ssn" not in search_bytes
    assert b"password_hash" not in crm_bytes and b"hash-one" not in crm_bytes
    assert b"ssn-111" in crm_bytes
    assert "ssn" not in hook0_users[0] and "hash-one" not in hook0_users[0]
    assert json.loads(hook0_users[0])["new"] == {"id": 1, "email": "a@example.com"}
    catalog = next(e for e in hook0_events if e.event_type == "catalog.items.insert")
    assert catalog.payload["new"] == {"id": 1, "ssn": "ssn-cat"}
    assert crm_events[1]["new"] == {"id": 1, "email": "b@example.com", "ssn": "ssn-111"}
    assert crm_events[1]["key"] == {"id": 1}

    # The same change has the same event id at every sink that receives it.
    crm_insert = crm_events[0]["event_id"]
    assert crm_insert == next(
        e.event_id for e in hook0_events if e.event_type == "public.users.insert"
    )

    # URL placeholders route to the right paths; a batch never mixes URLs.
    paths = Counter()
    for request in search_requests:
        batch = json.loads(request.body)
        assert {f"{base}/hooks/{e['schema']}/{e['table']}" for e in batch} == {request.path}
        paths[request.path] += len(batch)
    assert paths == {f"{base}/hooks/public/products": 5, f"{base}/hooks/catalog/items": 1}
    assert [r.path for r in crm_requests] == [
        f"{base}/crm/insert",
        f"{base}/crm/update",
        f"{base}/crm/message",
        f"{base}/crm/truncate",
    ]

    # A transaction a sink's filters leave empty is marked filtered for it, not delivered.
    audit = [m for tables, m in marks if tables == ("public.audit_log",)]
    filtered = {"search": "filtered", "crm": "filtered", "hook0": "delivered"}
    assert audit == [filtered, filtered]  # the insert, the truncate
    message = [m for tables, m in marks if not tables]
    assert message == [{"search": "filtered", "crm": "delivered", "hook0": "delivered"}]


def test_a_sink_that_receives_nothing_never_holds_back_the_slot(pg, tmp_path, caplog):
    pg.execute("CREATE TABLE busy (id serial PRIMARY KEY, n int)")
    with WebhookReceiver() as receiver:
        sinks = (
            "[[event_sinks.http]]\n"
            f'name = "quiet"\nenabled = true\nurl = "{receiver.url}"\n'
            'tables = ["public.elsewhere"]\n'
        )
        with running(make_server(tmp_path, _config(pg, sinks))):
            pg.execute(
                "DO $$ BEGIN FOR i IN 1..10000 LOOP "
                "INSERT INTO busy (n) VALUES (i); COMMIT; END LOOP; END $$"
            )
            end = current_wal_lsn(pg)
            wait_until(lambda: slot_confirmed_lsn(pg, "routes") >= end, timeout=60, what="the end")
        assert list(receiver.requests) == []
    assert (
        "sink quiet: tables pattern public.elsewhere matches no table of publication routes_pub "
        "(yet)" in caplog.messages
    )
    assert pg.execute("SELECT count(*) FROM busy")[0][0] == 10000


def test_check_names_what_each_sink_receives_and_warns_about_its_patterns(pg, tmp_path):
    pg.execute("CREATE TABLE products (id int PRIMARY KEY, name text)")
    pg.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
    path = tmp_path / "wal2http.toml"
    path.write_text(
        _config(
            pg,
            "[[event_sinks.http]]\n"
            'name = "search"\nenabled = true\nurl = "http://127.0.0.1:9/{table}"\n'
            'tables = ["public.prodcts", "public.users"]\nops = ["insert"]\n'
            'exclude_columns = { "public.users" = ["id"] }\n',
        )
    )
    result = cli("check", "--config", str(path))
    lines = result.stdout.splitlines()
    assert any(
        "sink search receives insert of 1 of the 2 tables of routes_pub: public.users" in line
        for line in lines
    ), result.stdout
    assert any(
        "WARN" in line
        and "tables pattern public.prodcts matches no table of publication "
        "routes_pub (yet); did you mean public.products?"
        in line
        for line in lines
    ), result.stdout
    assert any(
        "WARN" in line and "exclude_columns hides id of the key of public.users (id)" in line
        for line in lines
    ), result.stdout
