"""Loading and validating the configuration file: values, defaults, and the error messages."""

from __future__ import annotations

import base64
import functools
import shutil
import textwrap
from pathlib import Path

import pytest
import tomlkit
from hypothesis import given
from hypothesis import strategies as st

from tests.support.paths import SAMPLE_CONFIG
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.layout import TomlLayout
from wal2http_tui.config.loader import load_config, load_config_text
from wal2http_tui.config.model import (
    HOOK0_SINK_KEYS,
    HTTP_SINK_KEYS,
    ROOT_KEYS,
    Hook0SinkConfig,
    HttpSinkConfig,
    ReplicationConfig,
)
from wal2http_tui.config.secrets import mask_conninfo
from wal2http_tui.config.table_names import split_table_name

SAMPLE = SAMPLE_CONFIG
SIGNING_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
SAMPLE_ENV = {
    "ORDERS_API_TOKEN": "orders-token",
    "ORDERS_SIGNING_SECRET": SIGNING_SECRET,
    "HOOK0_API_KEY": "hook0-key",
}
APP_ID = "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c"
HEAD = 'connection_string = "host=db dbname=shop"\n'


def load(text: str, environ: dict[str, str] | None = None) -> ReplicationConfig:
    """Load text as the file ``wal2http.toml`` in the current directory would be loaded."""
    return load_config_text(textwrap.dedent(text), "wal2http.toml", environ=environ or {})


def error(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(text, environ)
    return str(caught.value)


# --- values and defaults -------------------------------------------------------------------------


def test_minimal_file_gets_every_default(tmp_path):
    path = tmp_path / "wal2http.toml"
    path.write_text(HEAD + '[event_sinks.http]\nurl = "https://example.com/events"\n')

    config = load_config(path, environ={})

    assert config == ReplicationConfig(
        connection_string="host=db dbname=shop",
        publication_name="wal2http_pub",
        slot_name="wal2http_slot",
        feedback_interval_secs=10.0,
        tables=None,
        create_publication=True,
        create_slot=True,
        dead_letter_path=tmp_path / "wal2http-dead-letters.sqlite",
        queue_max_events=10_000,
        event_sinks=(
            HttpSinkConfig(
                name="http",
                enabled=False,
                url="https://example.com/events",
                method="POST",
                timeout=10.0,
                retries=5,
                auth_header=None,
                headers={},
                event_format="json",
                signing_secret=None,
                batch_max_events=1,
                verify_tls=True,
                ca_file=None,
                retry_backoff_ms=500,
                retry_max_backoff_secs=60.0,
                on_failure="block",
            ),
        ),
        source_path=path,
        warnings=(
            f"{path}:2: event_sinks: no event sink is enabled (sinks are disabled unless "
            "they say enabled = true)",
        ),
    )
    assert config.enabled_sinks == ()


def test_hook0_defaults():
    config = load(
        HEAD
        + f"""
        [event_sinks.hook0]
        enabled = true
        api_url = "https://app.hook0.com/api/v1"
        api_key = "key"
        application_id = "{APP_ID.upper()}"
        """
    )
    assert config.event_sinks == (
        Hook0SinkConfig(
            name="hook0",
            enabled=True,
            api_url="https://app.hook0.com/api/v1",
            api_key="key",
            application_id=APP_ID,
            organization_id=None,
            labels={"source": "wal2http"},
            event_format="json",
            timeout=10.0,
            retries=5,
            retry_backoff_ms=500,
            retry_max_backoff_secs=60.0,
            on_failure="block",
            verify_tls=True,
            ca_file=None,
        ),
    )
    assert config.enabled_sinks == config.event_sinks
    assert config.event_sinks[0].kind == "hook0"
    assert config.warnings == ()


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ca.pem").write_text("pem")
    (tmp_path / "conf" / "state").mkdir()
    path = tmp_path / "conf" / "wal2http.toml"
    path.write_text(
        HEAD + 'dead_letter_path = "state/dl.sqlite"\n'
        '[event_sinks.http]\nurl = "https://example.com"\nca_file = "ca.pem"\n'
    )
    monkeypatch.chdir(tmp_path)

    config = load_config("conf/wal2http.toml", environ={})

    assert config.dead_letter_path == tmp_path / "conf" / "state" / "dl.sqlite"
    assert config.event_sinks[0].ca_file == tmp_path / "conf" / "ca.pem"
    assert config.source_path == path


def test_the_three_layouts_of_sinks_read_the_same():
    single = load(HEAD + '[event_sinks.http]\nurl = "https://a.example"\nenabled = true\n')
    inline = load(HEAD + '[event_sinks]\nhttp = { url = "https://a.example", enabled = true }\n')
    array = load(HEAD + '[[event_sinks.http]]\nurl = "https://a.example"\nenabled = true\n')
    assert single.event_sinks == inline.event_sinks == array.event_sinks
    assert single.event_sinks[0].name == "http"


def test_unnamed_sinks_are_numbered_per_kind():
    config = load(
        HEAD
        + f"""
        [[event_sinks.http]]
        url = "https://a.example"
        [[event_sinks.http]]
        name = "b"
        url = "https://b.example"
        [[event_sinks.http]]
        url = "https://c.example"
        enabled = true
        [event_sinks.hook0]
        api_url = "https://app.hook0.com/api/v1"
        api_key = "k"
        application_id = "{APP_ID}"
        """
    )
    assert [(s.kind, s.name, s.enabled) for s in config.event_sinks] == [
        ("http", "http", False),
        ("http", "b", False),
        ("http", "http-2", True),
        ("hook0", "hook0", False),
    ]
    assert [s.name for s in config.enabled_sinks] == ["http-2"]


def test_every_value_is_read():
    config = load(
        f"""
        connection_string = "postgresql://wal@db/shop"
        publication_name = "pub"
        slot_name = "slot_1"
        feedback_interval_secs = 2.5
        tables = ["public.orders", "customers"]
        create_publication = false
        create_slot = false
        queue_max_events = 7
        [event_sinks.http]
        enabled = true
        url = "http://localhost:3000/events"
        method = "patch"
        timeout = 3
        retries = 0
        auth_header = "Basic dTpw"
        headers = {{ X-Source = "wal2http" }}
        event_format = "cloudevents"
        signing_secret = "{SIGNING_SECRET}"
        batch_max_events = 10000
        verify_tls = false
        retry_backoff_ms = 0
        retry_max_backoff_secs = 1
        on_failure = "dead_letter"
        """
    )
    assert (config.publication_name, config.slot_name, config.feedback_interval_secs) == (
        "pub",
        "slot_1",
        2.5,
    )
    assert config.tables == ("public.orders", "customers")
    assert (config.create_publication, config.create_slot, config.queue_max_events) == (
        False,
        False,
        7,
    )
    (sink,) = config.event_sinks
    assert sink == HttpSinkConfig(
        enabled=True,
        url="http://localhost:3000/events",
        method="PATCH",
        timeout=3.0,
        retries=0,
        auth_header="Basic dTpw",
        headers={"X-Source": "wal2http"},
        event_format="cloudevents",
        signing_secret=SIGNING_SECRET,
        batch_max_events=10000,
        verify_tls=False,
        retry_backoff_ms=0,
        retry_max_backoff_secs=1.0,
        on_failure="dead_letter",
    )


def test_hook0_aliases_from_the_seed_are_read_with_a_warning():
    config = load(
        HEAD
        + f"""
        [event_sinks.hook0]
        enabled = true
        api_url = "https://app.hook0.com/api/v1"
        api_key = "k"
        project_id = "{APP_ID}"
        workspace_id = "8b0e4f1d-2c6a-4e9b-a7d3-5f1e2c3b4a59"
        labels = {{ env = "prod" }}
        """
    )
    (sink,) = config.event_sinks
    assert sink.application_id == APP_ID
    assert sink.organization_id == "8b0e4f1d-2c6a-4e9b-a7d3-5f1e2c3b4a59"
    assert sink.labels == {"env": "prod"}
    assert config.warnings == (
        "wal2http.toml:7: event_sinks.hook0.project_id: `project_id` is the seed's name for "
        "`application_id`; rename it",
        "wal2http.toml:8: event_sinks.hook0.workspace_id: `workspace_id` is the seed's name for "
        "`organization_id`; rename it",
    )


def test_hook0_api_url_outside_api_v1_is_a_warning():
    config = load(
        HEAD
        + f"""
        [event_sinks.hook0]
        enabled = true
        api_url = "https://api.hook0.com"
        api_key = "k"
        application_id = "{APP_ID}"
        """
    )
    assert config.warnings == (
        "wal2http.toml:5: event_sinks.hook0.api_url: Hook0's API is under /api/v1 (e.g. "
        "https://app.hook0.com/api/v1); events will be sent to https://api.hook0.com/event/",
    )


def test_legacy_http_table_is_an_enabled_sink_with_a_migration_warning():
    config = load(
        HEAD
        + """
        [http]
        url = "https://legacy.example/events"
        method = "PUT"
        timeout = 5
        retries = 2
        auth_header = "Bearer t"
        """
    )
    assert config.event_sinks == (
        HttpSinkConfig(
            name="http",
            enabled=True,
            url="https://legacy.example/events",
            method="PUT",
            timeout=5.0,
            retries=2,
            auth_header="Bearer t",
        ),
    )
    assert config.warnings == (
        "wal2http.toml:3: http: [http] is the legacy single-sink table: it is read as an HTTP sink "
        'named "http", enabled unless it says enabled = false. To migrate, rename the header to '
        "[event_sinks.http] and add enabled = true (sinks under event_sinks are disabled unless "
        "enabled = true)",
    )


def test_legacy_sink_and_an_unnamed_new_one_are_numbered():
    config = load(HEAD + '[http]\nurl = "https://a"\n[event_sinks.http]\nurl = "https://b"\n')
    assert [(s.name, s.url, s.enabled) for s in config.event_sinks] == [
        ("http", "https://a", True),
        ("http-2", "https://b", False),
    ]


def test_environment_variables_are_expanded_in_every_string():
    config = load(
        """
        connection_string = "host=${PGHOST} dbname=shop"
        [event_sinks.http]
        url = "https://${API_HOST}/events"
        headers = { X-Template = "$${not_a_variable}", X-Env = "${ENV_NAME}" }
        """,
        {"PGHOST": "db.internal", "API_HOST": "api.example", "ENV_NAME": "prod"},
    )
    assert config.connection_string == "host=db.internal dbname=shop"
    (sink,) = config.event_sinks
    assert sink.url == "https://api.example/events"
    assert sink.headers == {"X-Template": "${not_a_variable}", "X-Env": "prod"}


def test_sample_loads_and_uses_every_key(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "sample.toml")
    (tmp_path / "internal-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")

    config = load_config(tmp_path / "sample.toml", environ=SAMPLE_ENV)

    assert config.warnings == ()
    assert [(s.kind, s.name, s.enabled) for s in config.event_sinks] == [
        ("http", "orders-api", True),
        ("http", "audit", False),
        ("hook0", "hook0", True),
    ]
    orders, audit, hook0 = config.event_sinks
    assert orders.auth_header == "Bearer orders-token"
    assert orders.signing_secret == SIGNING_SECRET
    assert audit.ca_file == hook0.ca_file == tmp_path / "internal-ca.pem"
    assert hook0.api_key == "hook0-key"

    data = tomlkit.parse(SAMPLE.read_text()).unwrap()
    http_keys = set().union(*data["event_sinks"]["http"])
    assert set(ROOT_KEYS) <= set(data)
    assert set(HTTP_SINK_KEYS) <= http_keys
    assert set(HOOK0_SINK_KEYS) <= set(data["event_sinks"]["hook0"])
    assert "http" not in data
    assert "\n# [http]\n" in SAMPLE.read_text()


# --- error messages: one line naming the file, the line, the key and what is expected -----------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: file not found"
    assert (caught.value.path, caught.value.key, caught.value.line) == (
        str(tmp_path / "nope.toml"),
        None,
        None,
    )


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: is a directory, not a configuration file"


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "wal2http.toml"
    path.write_text(HEAD)

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: cannot read the file: permission denied"


def test_not_utf8(tmp_path):
    path = tmp_path / "wal2http.toml"
    path.write_bytes(b'connection_string = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (invalid byte at offset 24)"


def test_invalid_toml_names_line_and_column():
    assert error(HEAD + "[event_sinks.http\n") == (
        "wal2http.toml:2: invalid TOML at column 18: Unexpected character: '\\n'"
    )
    assert error(HEAD + HEAD) == (
        'wal2http.toml:2: invalid TOML at column 1: Key "connection_string" already exists.'
    )


SEED_EXAMPLE = """\
# Example configuration
connection_string = "host=db dbname=shop"
[event_sinks]
http = { url = "http://localhost:3000/events", enabled = true }
hook0 = {
    api_url = "https://api.hook0.com",
    api_key = "sk_test_...",
    workspace_id = "ws_...",
    project_id = "proj_...",
    enabled = true
}
"""
SEED_HINT = """\
this inline table spans several lines, which TOML 1.0 does not allow (inline tables must fit \
on one line); write it as a table instead:
    [event_sinks.hook0]
    api_url = ...
    api_key = ...
    workspace_id = ...
    project_id = ...
    enabled = ..."""


def test_the_seeds_multiline_inline_table_gets_a_table_suggestion():
    assert error(SEED_EXAMPLE) == f"wal2http.toml:5: event_sinks.hook0: {SEED_HINT}"
    assert "sk_test_" not in error(SEED_EXAMPLE)


def test_a_parse_error_inside_a_multiline_inline_table_gets_the_same_suggestion():
    broken = SEED_EXAMPLE.replace('"sk_test_...",', '"sk_test_..."')
    assert error(broken) == (
        "wal2http.toml:5: event_sinks.hook0: invalid TOML at line 8, column 5: Unexpected "
        f"character: 'w'; {SEED_HINT}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\ntimeout = "10"\n',
            "wal2http.toml:4: event_sinks.http.timeout: expected a number of seconds > 0, got a "
            'string ("10"); write it without quotes',
            id="number-as-string",
        ),
        pytest.param(
            HEAD + "[event_sinks.http]\nurl = 5\n",
            "wal2http.toml:3: event_sinks.http.url: expected an http:// or https:// URL, got an "
            "integer (5)",
            id="integer-for-url",
        ),
        pytest.param(
            HEAD + 'create_slot = "yes"\n',
            'wal2http.toml:2: create_slot: expected true or false, got a string ("yes")',
            id="boolean",
        ),
        pytest.param(
            HEAD + "tables = 'public.orders'\n",
            'wal2http.toml:2: tables: expected an array of table names ("schema.table" or '
            '"table"), got a string ("public.orders")',
            id="tables-not-array",
        ),
        pytest.param(
            HEAD + 'tables = [\n  "public.orders",\n  "a.b.c",\n]\n',
            'wal2http.toml:4: tables[1]: expected "schema.table" or "table" (double-quote a part '
            'that holds a dot: \'"my.schema".orders\'), got a string ("a.b.c")',
            id="tables-element-line",
        ),
        pytest.param(
            HEAD + "tables = []\n",
            "wal2http.toml:2: tables: an empty list publishes nothing; remove `tables` to publish "
            "all tables",
            id="tables-empty",
        ),
        pytest.param(
            HEAD + "event_sinks = 3\n",
            "wal2http.toml:2: event_sinks: expected a table, got an integer (3)",
            id="event-sinks-not-table",
        ),
        pytest.param(
            HEAD + '[event_sinks]\nhttp = "https://a.example"\n',
            "wal2http.toml:3: event_sinks.http: expected a table or an array of tables, got a "
            'string ("https://a.example")',
            id="sink-not-table",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\ntimout = 3\n',
            "wal2http.toml:4: event_sinks.http.timout: unknown key; did you mean `timeout`?",
            id="unknown-key-suggestion",
        ),
        pytest.param(
            HEAD + 'wal_level = "logical"\n',
            "wal2http.toml:2: wal_level: unknown key; the keys of the top level are: "
            "connection_string, publication_name, slot_name, feedback_interval_secs, "
            "server_timeout_secs, tables, create_publication, publish, publish_generated_columns, "
            "create_slot, failover_slot, "
            "initial_snapshot, backfill_chunk_rows, dead_letter_path, queue_max_events, "
            "stall_warning_secs, metrics_listen, ready_max_lag_secs, control_socket, event_sinks, "
            "http",
            id="unknown-key-list",
        ),
        pytest.param(
            HEAD + 'url = "https://a.example"\n',
            "wal2http.toml:2: url: unknown key here; `url` belongs in a sink table such as "
            "[event_sinks.http]",
            id="sink-key-at-top-level",
        ),
        pytest.param(
            HEAD + '[event_sinks.kafka]\nurl = "https://a"\n',
            "wal2http.toml:2: event_sinks.kafka: unknown key; the keys of event_sinks are: "
            "http, hook0",
            id="unknown-sink-kind",
        ),
        pytest.param(
            "[event_sinks.http]\nurl = 'https://a'\n",
            "wal2http.toml: connection_string: missing required key; expected a libpq connection "
            'string ("host=... dbname=...") or a postgresql:// URI',
            id="missing-top-level-key",
        ),
        pytest.param(
            HEAD + "\n[[event_sinks.http]]\nurl = 'https://a'\n\n[[event_sinks.http]]\n"
            "name = 'b'\n",
            "wal2http.toml:6: event_sinks.http[1].url: missing required key; expected an http:// "
            "or https:// URL",
            id="missing-key-line-of-table",
        ),
        pytest.param(
            HEAD + "[event_sinks]\nhttp = { enabled = true }\n",
            "wal2http.toml:3: event_sinks.http.url: missing required key; expected an http:// or "
            "https:// URL",
            id="missing-key-in-inline-table",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\n[[event_sinks.http]]\nurl = "ftp://x"\n',
            'wal2http.toml:5: invalid TOML at column 1: Key "http" already exists.',
            id="single-and-array-mixed",
        ),
        pytest.param(
            HEAD
            + '[[event_sinks.http]]\nurl = "https://a"\n[[event_sinks.http]]\nurl = "ftp://x"\n',
            "wal2http.toml:5: event_sinks.http[1].url: expected an http:// or https:// URL, got "
            '"ftp://x"',
            id="bad-url-scheme",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https:///events"\n',
            "wal2http.toml:3: event_sinks.http.url: expected an http:// or https:// URL with a "
            'host and no spaces, got "https:///events"',
            id="bad-url-host",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a.example:99999/"\n',
            "wal2http.toml:3: event_sinks.http.url: expected an http:// or https:// URL with a "
            'valid host and port, got "https://a.example:99999/"',
            id="bad-url-port",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://user:pw@a.example/"\n',
            "wal2http.toml:3: event_sinks.http.url: credentials in the URL would show wherever "
            'the URL is displayed; remove them and set auth_header = "Basic <base64 of '
            'user:password>" instead',
            id="credentials-in-url",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "ftp://user:pw@a.example:99999/"\n',
            "wal2http.toml:3: event_sinks.http.url: expected an http:// or https:// URL with a "
            'valid host and port, got "ftp://user:***@a.example:99999/"',
            id="bad-url-password-masked",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nmethod = "GET"\n',
            'wal2http.toml:4: event_sinks.http.method: expected one of "POST", "PUT", "PATCH", '
            'got a string ("GET")',
            id="bad-method",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nevent_format = "avro"\n',
            'wal2http.toml:4: event_sinks.http.event_format: expected one of "json", "debezium", '
            '"cloudevents", got a string ("avro")',
            id="bad-event-format",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\non_failure = "drop"\n',
            'wal2http.toml:4: event_sinks.http.on_failure: expected one of "block", '
            '"dead_letter", got a string ("drop")',
            id="bad-on-failure",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nbatch_max_events = 10001\n',
            "wal2http.toml:4: event_sinks.http.batch_max_events: expected an integer from 1 to "
            "10000, got 10001",
            id="batch-too-large",
        ),
        pytest.param(
            HEAD + 'metrics_listen = "9187"\n',
            "wal2http.toml:2: metrics_listen: expected an address and port such as "
            '"127.0.0.1:9187" ("" for off), got "9187"',
            id="metrics-listen-without-host",
        ),
        pytest.param(
            HEAD + f'control_socket = "/{"s" * 120}.sock"\n',
            f"wal2http.toml:2: control_socket: /{'s' * 120}.sock is 126 bytes, and a Unix socket "
            "path is at most 107: choose a shorter path",
            id="control-socket-too-long",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nordering = "row"\n',
            'wal2http.toml:4: event_sinks.http.ordering: expected one of "commit", "key", got a '
            'string ("row")',
            id="bad-ordering",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nmax_in_flight = 257\n',
            "wal2http.toml:4: event_sinks.http.max_in_flight: expected an integer from 1 to "
            "256, got 257",
            id="too-many-in-flight",
        ),
        pytest.param(
            HEAD + '[event_sinks.hook0]\napi_url = "https://h/api/v1"\napi_key = "k"\n'
            'application_id = "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c"\nmax_in_flight = 0\n',
            "wal2http.toml:6: event_sinks.hook0.max_in_flight: expected an integer from 1 to "
            "256, got 0",
            id="hook0-no-flight",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nretries = -1\n',
            "wal2http.toml:4: event_sinks.http.retries: expected an integer >= 0, got -1",
            id="negative-retries",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nretries = 2.5\n',
            "wal2http.toml:4: event_sinks.http.retries: expected an integer >= 0, got a float "
            "(2.5)",
            id="float-retries",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\ntimeout = 0\n',
            "wal2http.toml:4: event_sinks.http.timeout: expected a number of seconds > 0, got 0",
            id="zero-timeout",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\ntimeout = inf\n',
            "wal2http.toml:4: event_sinks.http.timeout: expected a number of seconds > 0, got inf",
            id="infinite-timeout",
        ),
        pytest.param(
            HEAD + "queue_max_events = 0\n",
            "wal2http.toml:2: queue_max_events: expected an integer >= 1, got 0",
            id="queue-zero",
        ),
        pytest.param(
            HEAD + "feedback_interval_secs = -1\n",
            "wal2http.toml:2: feedback_interval_secs: expected a number of seconds > 0, got -1",
            id="negative-feedback-interval",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nretry_backoff_ms = 5000\n'
            "retry_max_backoff_secs = 2\n",
            "wal2http.toml:5: event_sinks.http.retry_max_backoff_secs: expected at least "
            "retry_backoff_ms (5000 ms), got 2.0",
            id="max-backoff-below-backoff",
        ),
        pytest.param(
            HEAD + 'slot_name = "Wal2Http-Slot"\n',
            "wal2http.toml:2: slot_name: expected a replication slot name: lower-case letters, "
            'digits and underscores, at most 63 characters; got "Wal2Http-Slot"',
            id="bad-slot-name",
        ),
        pytest.param(
            HEAD + f'publication_name = "{"p" * 64}"\n',
            "wal2http.toml:2: publication_name: expected at most 63 bytes (NAMEDATALEN - 1)",
            id="long-publication-name",
        ),
        pytest.param(
            HEAD + 'dead_letter_path = "no/such/dir/dl.sqlite"\n',
            f"wal2http.toml:2: dead_letter_path: directory not found: {Path.cwd()}/no/such/dir",
            id="dead-letter-directory-missing",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nca_file = "missing-ca.pem"\n',
            f"wal2http.toml:4: event_sinks.http.ca_file: file not found: {Path.cwd()}/"
            "missing-ca.pem (relative to the configuration file)",
            id="ca-file-missing",
        ),
        pytest.param(
            HEAD + '[event_sinks.http]\nurl = "https://a"\nname = "my sink"\n',
            'wal2http.toml:4: event_sinks.http.name: expected a sink name: letters, digits, "-", '
            '"_" or ".", starting with a letter or digit, at most 64 characters; got "my sink"',
            id="bad-sink-name",
        ),
        pytest.param(
            HEAD + '[[event_sinks.http]]\nurl = "https://a"\n[[event_sinks.http]]\n'
            'url = "https://b"\nname = "http"\n',
            'wal2http.toml:6: event_sinks.http[1].name: duplicate sink name "http": '
            "event_sinks.http[0] has it too; give each sink a distinct `name`",
            id="duplicate-names",
        ),
        pytest.param(
            HEAD + '[[event_sinks.http]]\nurl = "https://a"\nname = "http-2"\n'
            '[[event_sinks.http]]\nurl = "https://b"\n[[event_sinks.http]]\nurl = "https://c"\n',
            'wal2http.toml:7: event_sinks.http[2]: duplicate sink name "http-2" (the default name '
            "of an unnamed http sink): event_sinks.http[0] has it too; give each sink a distinct "
            "`name`",
            id="duplicate-default-name",
        ),
        pytest.param(
            HEAD + "[event_sinks.http]\nurl = 'https://a'\n[event_sinks.http.headers]\n"
            "Authorization = 'Bearer x'\n",
            "wal2http.toml:5: event_sinks.http.headers.Authorization: set the Authorization "
            "header with `auth_header`, which is kept out of logs and displays",
            id="authorization-in-headers",
        ),
        pytest.param(
            HEAD + "[event_sinks.http]\nurl = 'https://a'\nheaders = { \"X Bad\" = 'x' }\n",
            'wal2http.toml:4: event_sinks.http.headers."X Bad": not a valid HTTP header name',
            id="bad-header-name",
        ),
        pytest.param(
            HEAD + "[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n"
            "api_key = 'k'\napplication_id = 'proj_123'\n",
            "wal2http.toml:5: event_sinks.hook0.application_id: expected a UUID like "
            "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c (Hook0 shows it in the application's "
            'settings), got "proj_123"',
            id="bad-uuid",
        ),
        pytest.param(
            HEAD + f"[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n"
            f"api_key = 'k'\napplication_id = '{APP_ID}'\nproject_id = '{APP_ID}'\n",
            "wal2http.toml:6: event_sinks.hook0.project_id: give either application_id or "
            "project_id (its old name), not both",
            id="alias-and-key",
        ),
        pytest.param(
            HEAD + f"[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n"
            f"api_key = 'k'\napplication_id = '{APP_ID}'\n"
            "labels = { a = '1', b = '2', c = '3', d = '4', e = '5', f = '6', g = '7', h = '8', "
            "i = '9' }\n",
            "wal2http.toml:6: event_sinks.hook0.labels: expected at most 8 labels (Hook0 accepts "
            "10 and the sink adds `schema` and `table`), got 9",
            id="too-many-labels",
        ),
        pytest.param(
            HEAD + f"[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n"
            f"api_key = 'k'\napplication_id = '{APP_ID}'\nlabels = {{ table = 'x' }}\n",
            "wal2http.toml:6: event_sinks.hook0.labels.table: the sink sets the `schema` and "
            "`table` labels itself",
            id="reserved-label",
        ),
        pytest.param(
            HEAD + f"[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n"
            f"api_key = 'k'\napplication_id = '{APP_ID}'\nlabels = {{ env = '{'x' * 51}' }}\n",
            "wal2http.toml:6: event_sinks.hook0.labels.env: expected a label value of 1 to 50 "
            "bytes, got 51",
            id="long-label",
        ),
        pytest.param(
            HEAD + "[event_sinks.hook0]\napi_url = 'https://app.hook0.com/api/v1'\n",
            "wal2http.toml:2: event_sinks.hook0.application_id: missing required key; expected "
            "the UUID of the Hook0 application",
            id="hook0-missing-application",
        ),
        pytest.param(
            'connection_string = "mysql://db/shop"\n',
            "wal2http.toml:1: connection_string: expected a libpq connection string "
            '("host=... dbname=...") or a postgresql:// URI, got "mysql://db/shop"',
            id="connection-string-scheme",
        ),
        pytest.param(
            'connection_string = "host=db colour=blue"\n',
            "wal2http.toml:1: connection_string: expected a libpq connection string "
            '("host=... dbname=...") or a postgresql:// URI: invalid connection option "colour"',
            id="connection-string-option",
        ),
        pytest.param(
            'connection_string = "host=db dbname=${DB_NAME}"\n',
            "wal2http.toml:1: connection_string: environment variable DB_NAME is not set (the "
            "value uses ${DB_NAME})",
            id="unset-variable",
        ),
        pytest.param(
            HEAD + "[event_sinks.http]\nurl = 'https://a'\nheaders = { X-A = '${oops' }\n",
            "wal2http.toml:4: event_sinks.http.headers.X-A: malformed variable reference: "
            'expected ${NAME} (letters, digits and "_"); write $${ for a literal "${"',
            id="malformed-variable",
        ),
    ],
)
def test_error_message(text, message):
    assert error(text) == message


def test_error_attributes():
    with pytest.raises(ConfigError) as caught:
        load(
            HEAD
            + '[[event_sinks.http]]\nurl = "https://a"\n[[event_sinks.http]]\nurl = "ftp://x"\n'
        )
    assert (caught.value.path, caught.value.line, caught.value.key) == (
        "wal2http.toml",
        5,
        "event_sinks.http[1].url",
    )
    assert caught.value.message == 'expected an http:// or https:// URL, got "ftp://x"'


def test_ca_file_that_cannot_be_read(tmp_path, monkeypatch):
    (tmp_path / "ca.pem").write_text("pem")
    path = tmp_path / "wal2http.toml"
    path.write_text(HEAD + '[event_sinks.http]\nurl = "https://a"\nca_file = "ca.pem"\n')
    monkeypatch.setattr("os.access", lambda *args: False)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == (
        f"{path}:4: event_sinks.http.ca_file: file not readable (permission denied): "
        f"{tmp_path / 'ca.pem'}"
    )


# --- secrets -------------------------------------------------------------------------------------


def test_bad_signing_secret_is_explained_without_being_shown():
    message = error(
        HEAD + '[event_sinks.http]\nurl = "https://a"\nsigning_secret = "s3cr3t-value"\n'
    )
    assert message == (
        "wal2http.toml:4: event_sinks.http.signing_secret: expected a Standard Webhooks secret: "
        '"whsec_" then the base64 of 24 to 64 random bytes (make one with: python -c "import '
        "base64, os; print('whsec_' + base64.b64encode(os.urandom(32)).decode())\")"
    )
    short = "whsec_" + base64.b64encode(b"x" * 8).decode()
    assert short not in error(
        HEAD + f'[event_sinks.http]\nurl = "https://a"\nsigning_secret = "{short}"\n'
    )


def test_secrets_of_the_wrong_type_are_not_shown():
    assert error(HEAD + '[event_sinks.http]\nurl = "https://a"\nauth_header = 12345\n') == (
        "wal2http.toml:4: event_sinks.http.auth_header: expected an Authorization header value, "
        "got an integer"
    )


def test_connection_string_errors_mask_the_password():
    message = error('connection_string = "postgresql://u:hunter2@[::1/db"\n')
    assert "hunter2" not in message
    assert "postgresql://u:***@[::1/db" in message


def test_reprs_and_redacted_views_hide_secrets():
    config = load(
        f"""
        connection_string = "host=db password=pg-secret"
        [event_sinks.http]
        url = "https://a.example"
        enabled = true
        auth_header = "Bearer http-secret"
        signing_secret = "{SIGNING_SECRET}"
        headers = {{ X-Api-Key = "header-secret", X-Source = "wal2http" }}
        [event_sinks.hook0]
        api_url = "https://app.hook0.com/api/v1"
        api_key = "hook0-secret"
        application_id = "{APP_ID}"
        """
    )
    shown = repr(config) + repr(config.redacted())
    for secret in ("pg-secret", "http-secret", SIGNING_SECRET, "header-secret", "hook0-secret"):
        assert secret not in shown
    view = config.redacted()
    assert view["connection_string"] == "host=db password=***"
    assert view["event_sinks"][0]["auth_header"] == "***"
    assert view["event_sinks"][0]["signing_secret"] == "***"
    assert view["event_sinks"][0]["headers"] == {"X-Api-Key": "***", "X-Source": "wal2http"}
    assert view["event_sinks"][1]["api_key"] == "***"
    assert view["event_sinks"][0]["url"] == "https://a.example"


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("host=db password=s3cret user=u", "host=db password=*** user=u"),
        ("host=db password = 'a b\\' c' user=u", "host=db password = *** user=u"),
        ("postgresql://u:s3cret@db:5432/shop", "postgresql://u:***@db:5432/shop"),
        ("postgres://u:s3cret@db/shop?sslmode=require", "postgres://u:***@db/shop?sslmode=require"),
        (
            "postgresql://db/shop?user=u&password=s3cret&x=1",
            "postgresql://db/shop?user=u&password=***&x=1",
        ),
        ("postgresql://u@db/shop", "postgresql://u@db/shop"),
        ("host=db user=u", "host=db user=u"),
    ],
)
def test_mask_conninfo(dsn, masked):
    assert mask_conninfo(dsn) == masked


PASSWORDS = st.text(st.characters(blacklist_characters="'\\@/"), min_size=1).filter(
    lambda text: not any(char.isspace() for char in text)
)


@given(password=PASSWORDS)
def test_mask_conninfo_replaces_any_password(password):
    assert mask_conninfo(f"host=db password={password} dbname=x") == (
        "host=db password=*** dbname=x"
    )
    assert mask_conninfo(f"postgresql://u:{password}@db/x") == "postgresql://u:***@db/x"


# --- line numbers --------------------------------------------------------------------------------


def test_layout_finds_lines_of_tables_keys_and_elements():
    text = textwrap.dedent(
        '''\
        top = """
        [not.a.table]
        fake = 1
        """
        "quoted key" = 1
        [[a]]
        x = 1
        [a.sub]
        y = [
          { z = 1 },
          { z = 2 },
        ]
        [[a]]
        x = 2  # [comment]
        [b]
        c.d = 'e'
        '''
    )
    layout = TomlLayout(text)
    lines = {
        path: layout.line_of(path)
        for path in [
            ("top",),
            ("not",),
            ("quoted key",),
            ("a",),
            ("a", 0, "x"),
            ("a", 0, "sub"),
            ("a", 0, "sub", "y", 1, "z"),
            ("a", 1),
            ("a", 1, "x"),
            ("a", 1, "missing"),
            ("b", "c", "d"),
            ("b", "c"),
        ]
    }
    assert lines == {
        ("top",): 1,
        ("not",): None,
        ("quoted key",): 5,
        ("a",): 6,
        ("a", 0, "x"): 7,
        ("a", 0, "sub"): 8,
        ("a", 0, "sub", "y", 1, "z"): 11,
        ("a", 1): 13,
        ("a", 1, "x"): 14,
        ("a", 1, "missing"): 13,
        ("b", "c", "d"): 16,
        ("b", "c"): 16,
    }


SCALARS = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text()
)
KEYS = st.text(min_size=1, max_size=6)
DOCUMENTS = st.recursive(
    st.dictionaries(KEYS, SCALARS, max_size=3),
    lambda tables: st.dictionaries(
        KEYS,
        st.one_of(
            SCALARS, st.lists(SCALARS, max_size=2), tables, st.lists(tables, min_size=1, max_size=2)
        ),
        max_size=3,
    ),
    max_leaves=12,
)


def scalar_paths(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from scalar_paths(item, (*path, key))
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        for i, item in enumerate(value):
            yield from scalar_paths(item, (*path, i))
    else:
        yield path


@given(DOCUMENTS)
def test_layout_spans_hold_exactly_the_values(data):
    text = tomlkit.dumps(data)
    document = tomlkit.parse(text).unwrap()
    layout = TomlLayout(text)
    for path in scalar_paths(document):
        assert path in layout.statements
        statement = layout.statements[path]
        value_text = text[statement.value_start : statement.value_end]
        assert tomlkit.parse(f"v = {value_text}").unwrap()["v"] == functools.reduce(
            lambda node, key: node[key], path, document
        )
        assert text[statement.value_end : statement.end].strip() == ""


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("orders", ("orders",)),
        ("public.orders", ("public", "orders")),
        ('"my.schema"."odd ""name"""', ("my.schema", 'odd "name"')),
        ('"Mixed".Case', ("Mixed", "Case")),
    ],
)
def test_split_table_name(name, parts):
    assert split_table_name(name) == parts


@pytest.mark.parametrize("name", ["", "a.b.c", ".a", "a.", '"unclosed', '"".a', 5])
def test_split_table_name_refuses(name):
    with pytest.raises(ValueError):
        split_table_name(name)


def test_empty_metrics_listen_and_control_socket_mean_their_defaults(tmp_path):
    sink = '[event_sinks.http]\nurl = "https://a.example"\nenabled = true\n'
    config = load(HEAD + 'metrics_listen = ""\ncontrol_socket = ""\n' + sink)
    assert config.metrics_listen is None and config.control_socket is None
    config = load(HEAD + 'control_socket = "run/engine.sock"\n' + sink)
    assert config.control_socket == Path("wal2http.toml").absolute().parent / "run/engine.sock"


def test_the_environment_a_file_references_is_only_its_variables():
    from wal2http_tui.config.env import referenced_environment

    text = 'a = "${X}"\nb = "$${Y}"  # escaped, not a reference\nc = "${UNSET}"\n'
    assert referenced_environment(text, {"X": "1", "Y": "2", "OTHER": "3"}) == {"X": "1"}
