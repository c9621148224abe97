"""HttpClient: the seed's HTTP client wrapper, one keep-alive connection per sink, and the rule
for what a delivery request's answer means.

Requests are made by libcurl (``curl_transfer.Transfer``, which bounds each attempt as a whole,
caps what is read of an answer and names every failure). ``settle`` is the one rule that turns
an answer into a delivered attempt or a ``DeliveryError``: retryable = no usable answer, 408,
425, 429 and 5xx; other 4xx, and 3xx (redirects are not followed), are permanent. The
concurrent sender (``curl_sender.py``) uses the same transfer and the same rule.

A client is used from one thread at a time (a sink's delivery worker, or whoever probes or
replays with it).
"""

from __future__ import annotations

import email.utils
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from wal2http_tui.config.secrets import mask_headers
from wal2http_tui.event_sinks.curl_transfer import RESPONSE_BODY_CAP, USER_AGENT, Answer, Transfer
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError

__all__ = ["RESPONSE_BODY_CAP", "USER_AGENT", "Answer", "HttpClient", "settle"]

RETRYABLE_STATUSES = frozenset({408, 425, 429})
RESPONSE_BODY_SHOWN = 4096  # characters of an answer kept with each attempt for the inspector


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (now if now is not None else time.time()))


class HttpClient:
    """Sends requests one at a time on one keep-alive connection, each bounded as a whole."""

    def __init__(
        self,
        *,
        timeout: float,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # a handle with this client's settings and connections of its own (the concurrent
        # sender runs many at once)
        self.new_transfer = functools.partial(
            Transfer, timeout=timeout, verify_tls=verify_tls, ca_file=ca_file, headers=headers
        )
        self._transfer = self.new_transfer()

    def exchange(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> Answer:
        """One request and its answer, whatever the status; DeliveryError when there is no
        usable answer within ``timeout`` (always retryable)."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        self._transfer.prepare(method, url, content, headers or {})
        return self._transfer.perform()

    def send_request(
        self, url: str, method: str, payload: bytes, headers: Mapping[str, str]
    ) -> Attempt:
        """One delivery request; raises DeliveryError for anything but a 2xx answer."""
        transfer = self._transfer
        transfer.prepare(method, url, payload, headers)
        return settle(transfer.perform, url, new_attempt(payload, headers))

    def probe(self, url: str) -> int:
        """Status of a HEAD request; DeliveryError when the receiver cannot be reached."""
        return self.exchange("HEAD", url).status

    def close(self) -> None:
        self._transfer.close()


def new_attempt(payload: bytes, headers: Mapping[str, str]) -> Attempt:
    """What the inspector keeps of a delivery request, before it is made (secrets masked)."""
    return Attempt(request_headers=mask_headers(headers), payload=payload)


def settle(answer: Callable[[], Answer], url: str, attempt: Attempt) -> Attempt:
    """What a delivery request came to: ``attempt`` with the answer's status and body for a 2xx
    answer; otherwise DeliveryError carrying ``attempt``: retryable without an answer, for 408,
    425, 429 and 5xx; permanent for other 4xx and for 3xx (redirects are not followed)."""
    try:
        got = answer()
    except DeliveryError as error:
        error.attempt = attempt
        raise
    attempt.status = got.status
    attempt.response_body = got.body.decode(errors="replace")[:RESPONSE_BODY_SHOWN]
    attempt.body_truncated = got.truncated
    if 200 <= got.status < 300:
        return attempt
    status = got.status
    if 300 <= status < 400:
        where = got.headers.get("location", "?")
        message = f"{url} answered {status} redirecting to {where}: update the url"
    else:
        message = f"{url} answered {status} {got.reason}".strip()
    raise DeliveryError(
        message,
        retryable=is_retryable_status(status),
        retry_after=parse_retry_after(got.headers.get("retry-after")),
        attempt=attempt,
    )
