"""One masking rule for every view: each surface that shows headers or a connection string masks
the same names and passwords, and only those."""

from __future__ import annotations

import socket

import pytest
import tomlkit

from wal2http_tui.config.document import ConfigDocument
from wal2http_tui.config.model import HttpSinkConfig, ReplicationConfig
from wal2http_tui.config.secrets import MASK, is_sensitive_header, mask_conninfo
from wal2http_tui.event_sinks import http_client
from wal2http_tui.event_sinks.traits import DeliveryError
from wal2http_tui.tui.config_fields import masked

SENSITIVE_HEADERS = [
    "Authorization",
    "Proxy-Authorization",
    "X-Api-Key",
    "X-Auth-Token",
    "Cookie",
    "Set-Cookie",
    "X-Client-Secret",
    "X-Password",
    "webhook-signature",
    "X-Session-Id",
]
INNOCENT_HEADERS = [
    "Content-Type",
    "Accept",
    "User-Agent",
    "X-Source",
    "X-Team",
    "X-Request-Id",
    "webhook-id",
    "webhook-timestamp",
]
HEADERS = {name: f"value of {name}" for name in SENSITIVE_HEADERS + INNOCENT_HEADERS}
SHOWN = {name: MASK if name in SENSITIVE_HEADERS else value for name, value in HEADERS.items()}

PASSWORD = "s3cr3t-pw"
CONNECTION_STRINGS = [
    f"host=db user=u password={PASSWORD} dbname=shop",
    f"host=db password = '{PASSWORD}' dbname=shop",
    f"postgresql://u:{PASSWORD}@db:5432/shop",
    f"postgres://db/shop?user=u&password={PASSWORD}&sslmode=require",
]


def closed_port() -> int:
    """A local port nothing listens on, so a request to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config_view(headers: dict[str, str]) -> dict[str, str]:
    return HttpSinkConfig(url="https://a.example", headers=headers).redacted()["headers"]


def attempt_record(headers: dict[str, str]) -> dict[str, str]:
    """The request headers an attempt records (the inspector shows them) for a refused request."""
    client = http_client.HttpClient(timeout=2.0)
    try:
        with pytest.raises(DeliveryError) as caught:
            client.send_request(f"http://127.0.0.1:{closed_port()}/", "POST", b"{}", headers)
    finally:
        client.close()
    assert caught.value.attempt is not None
    return caught.value.attempt.request_headers


def editor_field(headers: dict[str, str]) -> dict[str, str]:
    """The headers field of the configuration editor while secrets are masked."""
    shown = masked(("event_sinks", "http", 0, "headers"), headers)
    assert shown is not None
    return tomlkit.parse(f"v = {shown}")["v"].unwrap()


def test_the_rule_tells_sensitive_header_names_from_innocent_ones():
    assert [name for name in HEADERS if is_sensitive_header(name)] == SENSITIVE_HEADERS


@pytest.mark.parametrize(
    "surface", [config_view, http_client.mask_headers, attempt_record, editor_field]
)
def test_every_view_of_headers_masks_the_same_names(surface):
    assert surface(HEADERS) == SHOWN


@pytest.mark.parametrize("name", SENSITIVE_HEADERS + INNOCENT_HEADERS)
def test_a_literal_header_value_is_a_secret_of_the_file_when_the_rule_says_so(name):
    text = (
        'connection_string = "host=db"\n[event_sinks.http]\nurl = "https://a.example"\n'
        f'headers = {{ {name} = "literal" }}\n'
    )
    assert ConfigDocument("wal2http.toml", text).holds_literal_secret() is (
        name in SENSITIVE_HEADERS
    )
    reference = text.replace('"literal"', '"${HEADER_VALUE}"')
    assert not ConfigDocument("wal2http.toml", reference).holds_literal_secret()


@pytest.mark.parametrize("dsn", CONNECTION_STRINGS)
def test_every_view_of_a_connection_string_masks_its_password(dsn):
    shown = mask_conninfo(dsn)
    assert PASSWORD not in shown
    assert MASK in shown
    config = ReplicationConfig(connection_string=dsn)
    assert config.redacted()["connection_string"] == shown
    assert PASSWORD not in repr(config)
    assert masked(("connection_string",), dsn) == shown


@pytest.mark.parametrize("dsn", CONNECTION_STRINGS)
def test_a_literal_password_is_a_secret_of_the_file(dsn):
    document = ConfigDocument(
        "wal2http.toml", f"connection_string = {tomlkit.string(dsn).as_string()}\n"
    )
    assert document.holds_literal_secret()
    document.set(("connection_string",), dsn.replace(PASSWORD, "${PGPASSWORD}"))
    assert not document.holds_literal_secret()
