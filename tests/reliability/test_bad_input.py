"""Bad input: broken configuration files, and rows that are hard to carry."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.fakes.hook0_api import Hook0Fake
from tests.support.engine import http_sink, make_server, running, wait_until
from tests.support.exact_json import Digits, Pairs, canonical
from tests.support.process import cli
from wal2http_tui.demo.receiver import WebhookReceiver

HEAD = 'connection_string = "host=127.0.0.1 dbname=x"\n'


@pytest.mark.parametrize(
    ("text", "line", "key", "says"),
    [
        (HEAD + "[event_sinks.http\nurl = 1\n", 2, None, "invalid TOML"),
        (
            HEAD + '[event_sinks.http]\nurl = "http://a"\ntimeout = "ten"\n',
            4,
            "event_sinks.http.timeout",
            "expected a number of seconds",
        ),
        (
            HEAD + '[event_sinks.http]\nurl = "http://a"\ntimout = 3\n',
            4,
            "event_sinks.http.timout",
            "did you mean `timeout`",
        ),
        (
            HEAD + "[event_sinks.http]\nenabled = true\n",
            2,
            "event_sinks.http.url",
            "missing required key",
        ),
        (
            HEAD + '[event_sinks.http]\nurl = "htp:/nowhere"\n',
            3,
            "event_sinks.http.url",
            "expected an http:// or https:// URL",
        ),
        (
            HEAD + '[event_sinks.http]\nurl = "http://a"\nauth_header = "${NOT_SET_ANYWHERE}"\n',
            4,
            "event_sinks.http.auth_header",
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            HEAD + '[[event_sinks.http]]\nurl = "http://a"\n[[event_sinks.http]]\nname = "http"\n'
            'url = "http://b"\n',
            5,
            "event_sinks.http[1].name",
            "duplicate sink name",
        ),
    ],
    ids=[
        "invalid-toml",
        "wrong-type",
        "unknown-key",
        "missing-url",
        "bad-url",
        "unset-var",
        "duplicate-name",
    ],
)
def test_config_mistakes_give_one_clear_line_exit_2_and_never_touch_the_file(
    tmp_path, text, line, key, says
):
    path = tmp_path / "wal2http.toml"
    path.write_text(text)
    for command in (["run", "--headless"], ["check"]):
        result = cli(*command, "--config", str(path))
        assert result.returncode == 2
        message = result.stderr.strip()
        assert "\n" not in message and "Traceback" not in message
        assert message.startswith(f"wal2http-tui: {path}:{line}: ")
        if key:
            assert f":{line}: {key}: " in message
        assert says in message
    assert path.read_text() == text


def parse(text: str | bytes) -> Pairs:
    """JSON with numbers kept as written and objects as ordered pairs (see test_values)."""
    return json.loads(text, parse_int=Digits, parse_float=Digits, object_pairs_hook=Pairs)


HARD_TABLE = '"odd.""schema"""."we.ird ""table"""'
TEN_MB = 10 * 1024 * 1024


def test_rows_that_are_hard_to_carry_arrive_intact_or_are_dead_lettered_with_a_reason(pg, tmp_path):
    pg.execute('CREATE SCHEMA "odd.""schema"""')
    pg.execute(f'CREATE TABLE {HARD_TABLE} (id int PRIMARY KEY, "new" text, doc jsonb, raw bytea)')
    application, token = str(uuid.UUID(int=5)), "hard-rows-token"
    with WebhookReceiver() as receiver, Hook0Fake({application: [token]}) as hook0:
        sinks = http_sink(receiver.url) + (
            "[[event_sinks.hook0]]\nenabled = true\n"
            f'api_url = "{hook0.api_url}"\napi_key = "{token}"\n'
            f'application_id = "{application}"\non_failure = "dead_letter"\nretries = 0\n'
        )
        text = f'connection_string = "{pg.dsn}"\nslot_name = "hard"\n{sinks}'
        with running(make_server(tmp_path, text)) as server:
            pg.execute(f"INSERT INTO {HARD_TABLE} (id, \"new\") VALUES (1, repeat('a', {TEN_MB}))")
            pg.execute(
                f"INSERT INTO {HARD_TABLE} (id, doc) SELECT 2, jsonb_object_agg('k' || g, "
                "repeat('v', 90)) FROM generate_series(1, 10000) g"
            )
            pg.execute(f"INSERT INTO {HARD_TABLE} (id, \"new\") VALUES (3, 'Zoë 😀 𝄞 ✓')")
            pg.execute(
                f"INSERT INTO {HARD_TABLE} (id, raw) SELECT 4, string_agg(set_byte('\\x00', 0, "
                "1 + (g * 37) % 255), '') FROM generate_series(1, 4096) g"
            )
            receiver.wait_for_events(4, timeout=60)
            hook0.wait_for_events(2, timeout=60)
            wait_until(lambda: server.worker("hook0").stats.dead_lettered == 2, what="2 dead")
            letters = server.dead_letters.list()
        expected = {
            row_id: {column: canonical(value) for column, value in parse(text)}
            for row_id, text in pg.execute(f"SELECT id, to_jsonb(t)::text FROM {HARD_TABLE} t")
        }
    for request in receiver.requests:
        body = json.loads(
            request.body, parse_int=Digits, parse_float=Digits, object_pairs_hook=Pairs
        )
        fields = dict(body)
        row = {column: canonical(value) for column, value in fields["new"]}
        assert row == expected[int(dict(fields["new"])["id"])]
        assert fields["table"] == 'we.ird "table"' and fields["schema"] == 'odd."schema"'
    assert sorted(e.payload["new"]["id"] for e in hook0.events) == [3, 4]
    assert hook0.events[0].event_type == "odd__schema_.we_ird__table_.insert"
    assert sorted(json.loads(x.payload)["new"]["id"] for x in letters) == [1, 2]
    assert all("over Hook0's payload limit" in x.reason for x in letters)
