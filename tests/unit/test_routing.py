"""Per-sink routing without a server: patterns, the route's decisions, excluded columns cut out
of the exact row text, URL placeholders, the new keys' errors, and a worker's batches."""

from __future__ import annotations

import json

import pytest

from tests.support.engine import wait_until
from tests.unit.test_config import HEAD, error, load
from tests.unit.test_delivery import SOURCE, dispatch
from wal2http_tui.config.model import HttpSinkConfig
from wal2http_tui.config.table_names import TablePattern, parse_table_pattern
from wal2http_tui.config.url_template import UrlTemplate
from wal2http_tui.delivery.activity import ActivityFeed, Mark
from wal2http_tui.delivery.dispatcher import Dispatcher
from wal2http_tui.delivery.retry import RetryPolicy
from wal2http_tui.delivery.worker import SinkWorker
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.event_sinks.event_processor import EventProcessor
from wal2http_tui.event_sinks.http_sink import HttpEventSink
from wal2http_tui.event_sinks.routing import Route, drop_columns
from wal2http_tui.replication.transactions import Change, ChangeBuffer, Transaction


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("public.orders", TablePattern("public", "orders")),
        ("public.*", TablePattern("public", None)),
        ("*.audit_log", TablePattern(None, "audit_log")),
        ("*.*", TablePattern(None, None)),
        ('"my.schema"."*"', TablePattern("my.schema", "*")),
    ],
)
def test_patterns(text, pattern):
    assert parse_table_pattern(text) == pattern
    assert parse_table_pattern(str(pattern)) == pattern


@pytest.mark.parametrize("text", ["orders", "pub*.orders", "a.b.c", "", ".x", 3])
def test_patterns_refused(text):
    with pytest.raises(ValueError):
        parse_table_pattern(text)


def test_the_route_decides_by_table_and_operation():
    route = Route(["public.products", "catalog.*"], ["insert", "update", "message"])
    assert route.wants("insert", "public", "products")
    assert route.wants("update", "catalog", "anything")
    assert not route.wants("delete", "public", "products")
    assert not route.wants("insert", "public", "users")
    assert route.wants("message", "", "")  # messages belong to no table: only ops filter them
    assert not Route(ops=["insert"]).wants("message", "", "")
    assert route.wants_any({("insert", "public", "users"), ("insert", "catalog", "x")})
    assert not route.wants_any({("insert", "public", "users")})
    assert Route().wants_any(set())
    assert route.summary() == "2 tables · 3 ops"
    hidden = Route(exclude_columns={"public.users": ["pw"], "*.*": ["ssn"]})
    assert hidden.summary() == "2 columns hidden"
    assert hidden.hidden_columns("public", "users") == {"pw", "ssn"}
    assert hidden.hidden_columns("other", "t") == {"ssn"}
    assert Route().summary() == "everything"


# Members as the engine renders them (compact), with values that trip a naive cutter.
MEMBERS = [
    '"n":1.500',
    '"ssn":"1,2"',
    '"big":123456789012345678901234567890.000001',
    '"e":-1.5e-300',
    '"s":"a\\",\\"ssn\\":\\"b}"',
    '"nested":{"ssn":[1,{"x":"}"}],"k":null}',
    '"arr":[[],{},"]",true,false]',
    '"pw":"\\u00e9\\n"',
    '"t":"2024-01-02T03:04:05.123456+00:00"',
]


@pytest.mark.parametrize("hidden", [{"ssn"}, {"ssn", "pw"}, {"n", "t"}, {"nested", "arr", "e"}])
def test_excluded_columns_are_cut_and_every_other_member_keeps_its_exact_text(hidden):
    row = "{" + ",".join(MEMBERS) + "}"
    kept = [m for m in MEMBERS if json.loads("{" + m + "}").keys().isdisjoint(hidden)]
    assert drop_columns(row, frozenset(hidden)) == "{" + ",".join(kept) + "}"


@pytest.mark.parametrize(
    ("row", "cut"),
    [
        ('{"a":1,"ssn":"x"}', '{"a":1}'),
        ('{"ssn":"x","a":1.10}', '{"a":1.10}'),
        ('{"ssn":"x"}', "{}"),
        ("{}", "{}"),
        ('{"a": {"ssn": 1}, "b": "\\"ssn\\":"}', '{"a": {"ssn": 1},"b": "\\"ssn\\":"}'),
        (
            '{"a":123456789012345678901234567890,"ssn":[1,{"b":2}],"c":null}',
            '{"a":123456789012345678901234567890,"c":null}',
        ),
        ('{"Sn\\u00e9":1,"ssn":2}', '{"Sn\\u00e9":1}'),
    ],
)
def test_drop_columns(row, cut):
    assert drop_columns(row, frozenset({"ssn"})) == cut


def test_a_projected_change_loses_the_column_everywhere():
    change = Change(
        "update",
        "public",
        "users",
        '{"id":1,"pw":"new","big":"b"}',
        '{"id":1,"pw":"old"}',
        '{"id":1,"pw":"old"}',
        ("big", "pw"),
    )
    projected = Route(exclude_columns={"public.*": ["pw"]}).project(change)
    assert projected == change._replace(
        new='{"id":1,"big":"b"}', old='{"id":1}', key='{"id":1}', unchanged_toast=("big",)
    )
    assert Route(exclude_columns={"other.*": ["pw"]}).project(change) is change


def test_url_placeholders_are_filled_and_encoded():
    template = UrlTemplate("https://x.example/h/{schema}/{table}?op={op}&literal={{b}}")
    assert template.fill("my schema", "a/b", "insert") == (
        "https://x.example/h/my%20schema/a%2Fb?op=insert&literal={b}"
    )
    assert UrlTemplate("https://x.example/a").fill("s", "t", "insert") == "https://x.example/a"


SINK = HEAD + '[event_sinks.http]\nurl = "https://x.example/{table}"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            SINK + 'tables = "public.orders"\n',
            "wal2http.toml:4: event_sinks.http.tables: expected an array of a table pattern "
            '"schema.table", `*` for a whole part ("public.*", "*.audit_log"), a part that holds '
            'a dot double-quoted (\'"my.schema".orders\'), got a string ("public.orders")',
            id="tables-type",
        ),
        pytest.param(
            SINK + 'tables = ["public.orders", ""]\n',
            "wal2http.toml:4: event_sinks.http.tables[1]: expected a table pattern "
            '"schema.table", `*` for a whole part ("public.*", "*.audit_log"), a part that holds '
            'a dot double-quoted (\'"my.schema".orders\'), got a string ("")',
            id="empty-pattern",
        ),
        pytest.param(
            SINK + "tables = []\n",
            "wal2http.toml:4: event_sinks.http.tables: an empty list receives nothing; remove "
            "`tables` to receive every table of the publication, or disable the sink",
            id="tables-empty",
        ),
        pytest.param(
            SINK + 'ops = ["insert", "upsert"]\n',
            "wal2http.toml:4: event_sinks.http.ops[1]: expected one of insert, update, delete, "
            'truncate, message, read, got a string ("upsert")',
            id="unknown-op",
        ),
        pytest.param(
            SINK + 'ops = ["insert", "insert"]\n',
            'wal2http.toml:4: event_sinks.http.ops[1]: "insert" is listed twice',
            id="op-twice",
        ),
        pytest.param(
            SINK + 'exclude_columns = ["ssn"]\n',
            "wal2http.toml:4: event_sinks.http.exclude_columns: expected a table of table "
            'patterns to arrays of column names ({ "public.users" = ["ssn"] }), got an array',
            id="exclude-type",
        ),
        pytest.param(
            SINK + 'exclude_columns = { "users" = ["ssn"] }\n',
            "wal2http.toml:4: event_sinks.http.exclude_columns.users: expected a table pattern "
            '"schema.table", `*` for a whole part ("public.*", "*.audit_log"), a part that holds '
            'a dot double-quoted (\'"my.schema".orders\') as the key, got "users"',
            id="exclude-pattern",
        ),
        pytest.param(
            SINK + 'exclude_columns = { "*.*" = "ssn" }\n',
            'wal2http.toml:4: event_sinks.http.exclude_columns."*.*": expected a non-empty array '
            'of column names, got a string ("ssn")',
            id="exclude-columns-type",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://x.example/{tablename}"\n',
            "wal2http.toml:3: event_sinks.http.url: {tablename} is not a placeholder; the URL "
            "may hold {schema}, {table}, {op}",
            id="unknown-placeholder",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://{table}.example/"\n',
            "wal2http.toml:3: event_sinks.http.url: placeholders fill the path and the query, "
            "not the host",
            id="placeholder-in-host",
        ),
        pytest.param(
            HEAD + '[event_sinks.hook0]\napi_url = "https://h.example/api/v1"\napi_key = "k"\n'
            'application_id = "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c"\nops = ["insert", 1]\n',
            "wal2http.toml:6: event_sinks.hook0.ops[1]: expected one of insert, update, delete, "
            "truncate, message, read, got an integer (1)",
            id="hook0-op-type",
        ),
    ],
)
def test_routing_errors_name_the_file_line_and_key(text, message):
    assert error(text) == message


def test_routing_keys_load():
    config = load(
        SINK
        + 'tables = ["public.orders", "catalog.*"]\nops = ["insert", "delete"]\n'
        + 'exclude_columns = { "public.users" = ["password_hash"], "*.*" = ["ssn"] }\n'
    )
    (sink,) = config.event_sinks
    assert sink.tables == ("public.orders", "catalog.*")
    assert sink.ops == ("insert", "delete")
    assert sink.exclude_columns == {"public.users": ("password_hash",), "*.*": ("ssn",)}
    assert load(SINK).event_sinks[0].tables is None


def _tx(tmp_path, end_lsn: int, changes: list[Change]) -> Transaction:
    buffer = ChangeBuffer(tmp_path)
    for change in changes:
        buffer.append(change)
    buffer.finish()
    return Transaction(
        xid=end_lsn, commit_lsn=end_lsn - 8, end_lsn=end_lsn, commit_time=0, changes=buffer
    )


def _row(op: str, table: str, n: int) -> Change:
    row = json.dumps({"id": n})
    return Change(op, "public", table, row, None, row)


def _worker(url: str, **keys) -> SinkWorker:
    config = HttpSinkConfig(name=keys.pop("name", "s"), enabled=True, url=url, **keys)
    return SinkWorker(
        HttpEventSink(config),
        EventProcessor(SOURCE),
        retry=RetryPolicy(retries=1, backoff_ms=10, max_backoff_secs=0.05),
        dead_letters=None,
        feed=ActivityFeed(),
    )


def test_batches_hold_one_url_in_commit_order_and_ids_do_not_depend_on_the_route(tmp_path):
    changes = [_row("insert", t, n) for n, t in enumerate("aabbbabcc")]
    with WebhookReceiver() as receiver:
        routed = _worker(
            receiver.url + "/{table}",
            name="routed",
            batch_max_events=10,
            tables=["public.a", "public.b"],
        )
        plain = _worker(receiver.url + "/all", name="plain", batch_max_events=100)
        dispatcher = Dispatcher()
        for w in (routed, plain):
            dispatcher.add(w)
            w.start()
        tx = _tx(tmp_path, 1000, changes)
        dispatch(dispatcher, tx)
        wait_until(lambda: dispatcher.confirmed_lsn() == 1000, what="both sinks")
        for w in (routed, plain):
            w.stop()
        requests = list(receiver.requests)
    base = receiver.url.removeprefix(receiver.url.split("/events")[0])
    routed_requests = [r for r in requests if not r.path.endswith("/all")]
    assert [(r.path, [e["new"]["id"] for e in json.loads(r.body)]) for r in routed_requests] == [
        (f"{base}/a", [0, 1]),
        (f"{base}/b", [2, 3, 4]),
        (f"{base}/a", [5]),
        (f"{base}/b", [6]),
    ]
    (everything,) = [json.loads(r.body) for r in requests if r.path.endswith("/all")]
    ids = {e["seq"]: e["event_id"] for e in everything}
    for request in routed_requests:
        for event in json.loads(request.body):
            assert event["event_id"] == ids[event["seq"]]
    assert tx.marks == {"routed": Mark.DELIVERED, "plain": Mark.DELIVERED}


def test_a_filtered_transaction_is_finished_at_once_even_behind_a_blocked_one(tmp_path):
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=500))
        blocked = _worker(receiver.url, tables=["public.a"])
        blocked.start()
        dispatcher = Dispatcher()
        dispatcher.add(blocked)
        dispatch(dispatcher, _tx(tmp_path, 100, [_row("insert", "a", 1)]))
        skipped = _tx(tmp_path, 200, [_row("insert", "z", 2)])
        dispatch(dispatcher, skipped)
        assert skipped.marks == {"s": Mark.FILTERED}
        assert dispatcher.confirmed_lsn() == 0  # the first still waits
        blocked.stop()


@pytest.mark.parametrize("event_format", ["json", "debezium", "cloudevents"])
def test_no_payload_format_carries_an_excluded_column(tmp_path, event_format):
    row = '{"id":1,"ssn":"123-45","name":"a"}'
    old = '{"id":1,"ssn":"999-99","name":"b"}'
    change = Change("update", "public", "users", row, old, '{"id":1,"ssn":"999-99"}', ("ssn",))
    tx = _tx(tmp_path, 300, [change])
    route = Route(exclude_columns={"*.users": ["ssn"]})
    processor = EventProcessor(SOURCE, event_format)
    payload = processor.process_event(tx, route.project(change), 0).payload
    assert b"ssn" not in payload and b"123-45" not in payload and b"999-99" not in payload
    assert b'"name":"a"' in payload and b'"name":"b"' in payload
    unfiltered = processor.process_event(tx, change, 0)
    assert b"123-45" in unfiltered.payload
    assert unfiltered.event_id == processor.process_event(tx, route.project(change), 0).event_id
