"""Secrets stay secret, files are private, TLS is verified, signatures verify, receivers local."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import time
import uuid

import pytest
import standardwebhooks

from tests.fakes.hook0_api import Hook0Fake
from tests.support.engine import sample_event, slot_confirmed_lsn, wait_until
from tests.support.headless import Headless
from tests.support.process import cli
from wal2http_tui.config.document import ConfigDocument
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import load_config, load_config_text
from wal2http_tui.delivery.dead_letters import DeadLetterStore
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.event_sinks.http_sink import HttpEventSink, sign, signing_key
from wal2http_tui.event_sinks.traits import DeliveryError

PASSWORD = "pw-SECRET-0451"
AUTH = "Bearer tok-SECRET-7729"
SIGNING = "whsec_" + base64.b64encode(b"sig-SECRET-" + bytes(range(21))).decode()
API_KEY = "h0-SECRET-3318"
APPLICATION = str(uuid.UUID(int=77))
SECRETS = (PASSWORD, AUTH.split()[1], SIGNING, SIGNING.removeprefix("whsec_"), API_KEY)


def test_secrets_never_reach_logs_outputs_dead_letters_or_errors(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    outputs: list[str] = []
    with WebhookReceiver() as receiver, Hook0Fake({APPLICATION: ["another-token"]}) as hook0:
        receiver.fail_always(Fault(status=401))
        config = tmp_path / "wal2http.toml"
        config.write_text(
            f'connection_string = "{pg.dsn} password={PASSWORD}"\n'
            'slot_name = "sec"\nfeedback_interval_secs = 1\n'
            "[event_sinks.http]\nenabled = true\n"
            f'url = "{receiver.url}"\nauth_header = "{AUTH}"\nsigning_secret = "{SIGNING}"\n'
            'retries = 1\nretry_backoff_ms = 10\non_failure = "dead_letter"\n'
            "[event_sinks.hook0]\nenabled = true\n"
            f'api_url = "{hook0.api_url}"\napi_key = "{API_KEY}"\n'
            f'application_id = "{APPLICATION}"\nretries = 0\non_failure = "dead_letter"\n'
        )
        with Headless(config) as process:
            wait_until(lambda: slot_confirmed_lsn(pg, "sec"), what="slot")
            pg.execute("INSERT INTO t VALUES (1, 'hello')")
            wait_until(
                lambda: "2 dead letter(s)" in cli("dead-letters", "list", "-c", str(config)).stdout,
                what="2 dead",
            )
            assert process.terminate() == 0
            outputs.append(process.log)
        outputs.append(cli("check", "-c", str(config)).stdout)
        listing = cli("dead-letters", "list", "-c", str(config))
        outputs += [listing.stdout, listing.stderr]
        for letter_id in (line.split()[0] for line in listing.stdout.splitlines()[:-1]):
            outputs.append(cli("dead-letters", "show", letter_id, "-c", str(config)).stdout)
        loaded = load_config(config)
        outputs += [repr(loaded), repr(loaded.event_sinks), str(loaded.redacted())]
        broken = tmp_path / "broken.toml"
        broken.write_text(config.read_text().replace("retries = 1", 'retries = "one"'))
        with pytest.raises(ConfigError) as info:
            load_config(broken)
        outputs.append(str(info.value))
        sink = HttpEventSink(loaded.event_sinks[0])
        with pytest.raises(DeliveryError) as failure:
            sink.on_event(sample_event())
        outputs += [str(failure.value), repr(failure.value.attempt.request_headers)]
        sink.close()
    dead_letter_bytes = (tmp_path / "wal2http-dead-letters.sqlite").read_bytes()
    joined = "\n".join(outputs)
    assert "hello" in joined  # the outputs are real: they hold the event
    assert "401" in joined
    for secret in SECRETS:
        assert secret not in joined, f"{secret} leaked"
        assert secret.encode() not in dead_letter_bytes
    assert "password=***" in joined or PASSWORD not in joined


def test_dead_letter_file_and_saved_config_are_private(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite")
    store.add("s", sample_event(), "because", 1, time.time(), time.time())
    for name in os.listdir(tmp_path):
        assert os.stat(tmp_path / name).st_mode & 0o077 == 0, name
    path = tmp_path / "wal2http.toml"
    path.write_text('connection_string = "host=x"\n[event_sinks.http]\nurl = "http://a/"\n')
    path.chmod(0o644)
    document = ConfigDocument.open(path)
    document.set(("event_sinks", "http", "auth_header"), AUTH)
    document.save()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return cert, context


def _https_sink(tmp_path, url: str, extra: str = ""):
    text = f'connection_string = "host=x"\n[event_sinks.http]\nurl = "{url}"\n{extra}'
    return HttpEventSink(load_config_text(text, tmp_path / "w.toml").event_sinks[0])


def test_tls_is_verified_by_default_and_ca_file_or_verify_tls_false_allow_it(tmp_path, self_signed):
    cert, context = self_signed
    with WebhookReceiver(tls=context) as receiver:
        strict = _https_sink(tmp_path, receiver.url)
        with pytest.raises(DeliveryError) as info:
            strict.on_event(sample_event())
        assert info.value.retryable
        assert str(info.value).startswith(f"TLS certificate verification failed for {receiver.url}")
        assert "set ca_file" in str(info.value) and "verify_tls = false" in str(info.value)
        with_ca = _https_sink(tmp_path, receiver.url, f'ca_file = "{cert}"\n')
        assert with_ca.on_event(sample_event()).status == 200
        unverified = _https_sink(tmp_path, receiver.url, "verify_tls = false\n")
        assert unverified.on_event(sample_event()).status == 200
        for sink in (strict, with_ca, unverified):
            sink.close()
        assert receiver.accepted == 2


def test_standard_webhooks_signatures_verify_and_tampering_fails(tmp_path):
    with WebhookReceiver() as receiver:
        sink = _https_sink(tmp_path, receiver.url, f'signing_secret = "{SIGNING}"\n')
        sent = sample_event()
        sink.on_event(sent)
        sink.close()
        request = receiver.requests[0]
    verifier = standardwebhooks.Webhook(SIGNING)
    assert verifier.verify(request.body, request.headers)["new"] == {"id": 1}
    assert request.headers["webhook-id"] == sent.event_id
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(request.body.replace(b"1", b"2"), request.headers)
    old = int(time.time()) - 3600
    stale = {
        **request.headers,
        "webhook-timestamp": str(old),
        "webhook-signature": sign(signing_key(SIGNING), sent.event_id, old, request.body),
    }
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(request.body, stale)


def test_receivers_bind_loopback_only():
    with WebhookReceiver() as receiver, Hook0Fake({APPLICATION: ["t"]}) as hook0:
        assert receiver._server.server_address[0] == "127.0.0.1"
        assert hook0._server.server_address[0] == "127.0.0.1"
