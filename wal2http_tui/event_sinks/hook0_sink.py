"""Hook0EventSink: events to the Hook0 webhook service through Hook0's official SDK.

``hook0.Hook0Client`` sends each event (with our deterministic ``event_id``, so a resend is
recognised) and upserts each new event type once. The SDK's own retries are disabled: retries,
ordering and dead letters are the delivery worker's, shared with every sink. To classify a
failure (status, problem id, ``Retry-After``) the sink looks at the last answer the SDK's
transport received.

Hook0 answers, as the sink reads them: 201 delivered; 409 ``EventAlreadyIngested`` delivered
(a resend of an event Hook0 already has); 429 ``RateLimited`` and 503 retry after the delay
Hook0 names; 429 ``TooManyEventsToday`` (quota) and other 4xx permanent; 5xx and network errors
retryable. A payload over the SDK's limit is refused before sending (permanent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import hook0
import hook0.transport

from wal2http_tui.config.model import Hook0SinkConfig
from wal2http_tui.event_sinks.event_processor import Event, safe_name
from wal2http_tui.event_sinks.http_client import (
    RESPONSE_BODY_SHOWN,
    HttpClient,
    is_retryable_status,
    parse_retry_after,
)
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError, EventSink

MAX_LABELS = 10
MAX_LABEL_BYTES = 50
# Hook0 refuses payloads over 699,050 characters (422); the SDK alone would send up to 1 MiB.
MAX_PAYLOAD_BYTES = 699_050


def hook0_event_type(event: Event) -> str:
    """``schema.table.op`` with characters outside [A-Za-z0-9_] replaced (Hook0's grammar)."""
    if event.op == "message":
        service, resource = "logical_message", event.event_type.split(".")[1]
    else:
        service, resource = event.schema, event.table
    return f"{safe_name(service)}.{safe_name(resource)}.{safe_name(event.op)}"


def _label(value: str) -> str:
    """Hook0 label values are 1..50 bytes: cut on a character boundary, never empty."""
    encoded = value.encode()[:MAX_LABEL_BYTES]
    return encoded.decode(errors="ignore") or "-"


class Hook0Transport:
    """The SDK's transport interface (``deliver``/``request``) over the sinks' ``HttpClient``.

    ``hook0.Hook0Client`` builds every request body and reads every answer; this only carries
    them, with the SDK's own headers (Authorization, Accept, Content-Type, User-Agent,
    Hook0-Client-Options), on keep-alive connections that honour ``verify_tls``/``ca_file``
    (the SDK's urllib transport opens a connection per request and knows no CA file), each
    attempt bounded as a whole by ``timeout`` and each answer read up to the client's cap. It
    keeps the last answer so the sink can read its status, problem id and ``Retry-After``.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float,
        verify_tls: bool,
        ca_file: Path | None,
    ) -> None:
        self._base = api_url.rstrip("/") + "/"
        self._http = HttpClient(
            timeout=timeout,
            verify_tls=verify_tls,
            ca_file=ca_file,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": hook0.transport.USER_AGENT,
                "Hook0-Client-Options": hook0.transport.NO_RETRIES,
            },
        )
        self.last: tuple[int, dict[str, str], bytes] | None = None

    def deliver(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.last = None
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        try:
            answer = self._http.exchange(
                method, self._base + path, content=content, headers=headers, params=list(query)
            )
        except DeliveryError as exc:
            raise hook0.TransportError(str(exc), transient=exc.retryable) from exc
        self.last = (answer.status, answer.headers, answer.body)
        return self.last

    def request(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any = None
    ) -> tuple[int, bytes]:
        status, _, payload = self.deliver(method, path, query, body)
        return status, payload

    def close(self) -> None:
        self._http.close()


class Hook0EventSink(EventSink):
    kind = "hook0"
    batch_max_events = 1

    def __init__(self, config: Hook0SinkConfig) -> None:
        self.config = config
        self.configure(config)
        options = hook0.Hook0ClientOptions(
            retry_policy=hook0.RetryPolicy.disabled(),
            request_timeout=float(config.timeout),
            max_payload_bytes=MAX_PAYLOAD_BYTES,
        )
        self.hook0_client = hook0.Hook0Client(
            config.api_url, str(config.application_id), config.api_key, options
        )
        self._transport = Hook0Transport(
            config.api_url,
            config.api_key,
            timeout=float(config.timeout),
            verify_tls=config.verify_tls,
            ca_file=config.ca_file,
        )
        self.hook0_client.transport = self._transport
        self._known_types: set[str] = set()
        self._labels = {k: _label(v) for k, v in dict(config.labels).items()}

    def fork(self) -> Hook0EventSink:
        return Hook0EventSink(self.config)

    def describe_target(self) -> str:
        return f"{self.config.api_url} (application {self.config.application_id})"

    def on_event(self, event: Event) -> Attempt:
        event_type = hook0_event_type(event)
        attempt = Attempt(
            request_headers={"Authorization": "Bearer ***", "Content-Type": "application/json"},
            payload=event.payload,
        )
        if event_type not in self._known_types:
            self._upsert(event_type, attempt)
        labels = {
            **self._labels,
            "schema": _label(event.schema or "-"),
            "table": _label(event.table or "-"),
        }
        self._transport.last = None  # so an answer to the upsert is never read as this send's
        try:
            self.hook0_client.send_event(
                hook0.Event(
                    event_type=event_type,
                    payload=event.payload.decode(),
                    payload_content_type="application/json",
                    labels=dict(list(labels.items())[:MAX_LABELS]),
                    occurred_at=datetime.fromisoformat(event.commit_time.replace("Z", "+00:00")),
                    event_id=event.event_id,
                )
            )
        except hook0.Hook0ClientError as error:
            return self._failed(error, attempt)
        return self._answered(attempt)

    def _upsert(self, event_type: str, attempt: Attempt) -> None:
        try:
            self.hook0_client.upsert_event_types([event_type])
        except hook0.Hook0ClientError as error:
            answer = self._transport.last
            retryable = answer is None or is_retryable_status(answer[0])
            raise DeliveryError(
                f"Hook0 refused to declare event type {event_type}: {error}",
                retryable=retryable,
                attempt=self._answered(attempt),
            ) from error
        self._known_types.add(event_type)

    def _answered(self, attempt: Attempt) -> Attempt:
        if self._transport.last is not None:
            status, _, body = self._transport.last
            attempt.status = status
            attempt.response_body = body.decode(errors="replace")[:RESPONSE_BODY_SHOWN]
        return attempt

    def _failed(self, error: hook0.Hook0ClientError, attempt: Attempt) -> Attempt:
        answer = self._transport.last
        self._answered(attempt)
        if answer is None:
            # Refused before sending (payload too large, bad event type) or no answer at all.
            too_large = "bytes, which is more than" in str(error)
            raise DeliveryError(
                f"Hook0: {error}" + (" (over Hook0's payload limit)" if too_large else ""),
                retryable=not too_large and "nothing was sent" not in str(error),
                attempt=attempt,
            ) from error
        status, headers, body = answer
        problem = _problem(body)
        if status == 409 and problem.get("id") == "EventAlreadyIngested":
            return attempt  # Hook0 already has this event: a resend, so it is delivered
        retryable = is_retryable_status(status)
        if status == 429 and problem.get("id") == "TooManyEventsToday":
            retryable = False
        detail = (
            problem.get("detail") or problem.get("title") or body[:200].decode(errors="replace")
        )
        raise DeliveryError(
            f"Hook0 answered {status} {problem.get('id', '')}: {detail}".replace("  ", " "),
            retryable=retryable,
            retry_after=parse_retry_after(_header(headers, "retry-after")),
            attempt=attempt,
        ) from error

    def probe(self) -> str:
        """List the application's event types: proves the URL, the key and the application."""
        try:
            self._transport.request(
                "GET", "event_types", [("application_id", str(self.config.application_id))]
            )
        except hook0.TransportError as exc:
            raise DeliveryError(
                f"cannot reach Hook0 at {self.config.api_url}: {exc}", retryable=True
            ) from exc
        answer = self._transport.last
        if answer is None or not 200 <= answer[0] < 300:
            status = answer[0] if answer else "no answer"
            body = answer[2][:200].decode(errors="replace") if answer else ""
            raise DeliveryError(f"Hook0 answered {status}: {body}", retryable=True)
        return f"{self.describe_target()} reachable, API key accepted"

    def close(self) -> None:
        self._transport.close()


def _problem(body: bytes) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
