"""HttpEventSink: POSTs events (one per request, or a JSON array of consecutive events) to a URL.

Optional Standard Webhooks signing (``signing_secret = "whsec_..."``): every request carries
``webhook-id`` (the event id; for a batch, a deterministic id of its first and last events),
``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
``id.timestamp.body``), so receivers can verify it with any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from wal2http_tui.config.model import HttpSinkConfig
from wal2http_tui.config.url_template import UrlTemplate
from wal2http_tui.event_sinks.concurrent import Request, Sender
from wal2http_tui.event_sinks.curl_sender import CurlMultiSender
from wal2http_tui.event_sinks.event_processor import Event, batch_id
from wal2http_tui.event_sinks.http_client import HttpClient
from wal2http_tui.event_sinks.traits import Attempt, EventSink


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_`` + base64)."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class HttpEventSink(EventSink):
    kind = "http"

    def __init__(self, config: HttpSinkConfig) -> None:
        self.config = config
        self.configure(config)
        self.batch_max_events = config.batch_max_events
        self._url = UrlTemplate(config.url)
        self.keyed_batches = bool(self._url.placeholders)
        self.http_client = HttpClient(
            timeout=config.timeout, verify_tls=config.verify_tls, ca_file=config.ca_file
        )
        self._key = signing_key(config.signing_secret) if config.signing_secret else None
        self._base_headers = {"Content-Type": "application/json", **dict(config.headers)}
        if config.auth_header:
            self._base_headers["Authorization"] = config.auth_header

    def fork(self) -> HttpEventSink:
        return HttpEventSink(self.config)

    def describe_target(self) -> str:
        return f"{self.config.method} {self.config.url}"

    def batch_key(self, event: Event) -> str:
        return self._url.fill(event.schema, event.table, event.op)

    def on_event(self, event: Event) -> Attempt:
        return self.on_batch([event])

    def on_batch(self, events: Sequence[Event]) -> Attempt:
        url, headers, body = self.request(events)
        return self.http_client.send_request(url, self.config.method, body, headers)

    def request(self, events: Sequence[Event]) -> tuple[str, dict[str, str], bytes]:
        """The URL, headers and body that deliver ``events``. With ``batch_max_events`` > 1 the
        body is always a JSON array, even of one event; with 1, one event per request (several
        at once are refused, never dropped)."""
        if self.batch_max_events == 1:
            if len(events) != 1:
                raise ValueError(f"http sink {self.name} delivers one event at a time")
            message_id, body = events[0].event_id, events[0].payload
        else:
            message_id = events[0].event_id if len(events) == 1 else batch_id(events)
            body = b"[" + b",".join(event.payload for event in events) + b"]"
        headers = dict(self._base_headers)
        headers["webhook-id"] = message_id
        if self._key is not None:
            timestamp = int(time.time())
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign(self._key, message_id, timestamp, body)
        return self.batch_key(events[0]), headers, body

    def sender(self, size: int, done: Callable[[Request], None]) -> Sender:
        """Concurrent requests on libcurl's multi interface, on one thread."""
        return CurlMultiSender(self, size, done)

    def probe(self) -> str:
        """A HEAD request: any HTTP answer means the receiver is reachable. A URL with
        placeholders is probed at its host's root (no event names its path yet)."""
        url = self.config.url
        if self._url.placeholders:
            parts = urlsplit(url)
            url = f"{parts.scheme}://{parts.netloc}/"
        status = self.http_client.probe(url)
        return f"{self.describe_target()} reachable (HEAD answered {status})"

    def close(self) -> None:
        self.http_client.close()
