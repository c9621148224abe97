"""HttpClient: the seed's HTTP client wrapper, one pooled keep-alive httpx client per sink.

Every request a sink makes (HTTP sinks and the Hook0 SDK's transport alike) goes through
``exchange``, which promises three things whatever the receiver does:

- **The whole attempt is bounded by ``timeout``**: connecting, sending, waiting for the answer
  and reading it. httpx's own timeouts apply to each network operation, so a receiver that
  sends its answer one byte a second would hold a request for ever; here the request runs on
  an event loop of the client's own (``httpx.AsyncClient``) inside ``asyncio.timeout``, which
  cancels it cleanly at any stage.
- **At most ``RESPONSE_BODY_CAP`` bytes of an answer are read** (enough for the inspector and
  a dead letter's reason); beyond that the connection is closed rather than read to the end.
- **Every way a request can end is an answer or a ``DeliveryError``** whose message says what
  happened in words an operator can act on (connection refused, timeout, TLS verification
  failure with its fix, a body that is not the gzip it claims, an answer that is not HTTP),
  classified as retryable or permanent: retryable = no usable answer, 408, 425, 429 and 5xx;
  other 4xx, and 3xx (redirects are not followed), are permanent.

The event loop belongs to the client and runs only inside its calls, so the client is used from
one thread at a time (a sink's delivery worker, or whoever probes or replays with it).
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from wal2http_tui import __version__
from wal2http_tui.config.secrets import mask_headers
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError

USER_AGENT = f"wal2http-tui/{__version__}"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
RESPONSE_BODY_CAP = 64 * 1024  # bytes of an answer that are read; the rest is not
RESPONSE_BODY_SHOWN = 4096  # characters of it kept with each attempt for the inspector


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


def tls_verify(verify_tls: bool, ca_file: str | Path | None) -> ssl.SSLContext | bool:
    if not verify_tls:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=str(ca_file))
    return True


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: status, headers (names in lower case), the start of the body."""

    status: int
    reason: str  # the status line's reason phrase, as the receiver wrote it
    headers: dict[str, str]
    body: bytes  # at most RESPONSE_BODY_CAP bytes
    truncated: bool  # the body was longer: the rest was not read, the connection was closed


class HttpClient:
    """Sends requests on one pooled, keep-alive connection set, each bounded as a whole."""

    def __init__(
        self,
        *,
        timeout: float,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            verify=tls_verify(verify_tls, ca_file),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            headers={"User-Agent": USER_AGENT, **dict(headers or {})},
        )

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
        return self._loop.run_until_complete(
            self._exchange(method, url, content, dict(headers or {}), params)
        )

    async def _exchange(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        params: list[tuple[str, str]] | None,
    ) -> Answer:
        status: int | None = None
        reason = ""
        try:
            async with asyncio.timeout(self._timeout):
                query = httpx.QueryParams(tuple(params)) if params else None
                request = self._client.stream(
                    method, url, content=content, headers=headers, params=query
                )
                async with request as response:
                    status, reason = response.status_code, response.reason_phrase
                    body, truncated = await _read_capped(response)
        except TimeoutError as exc:
            stage = "while reading its answer" if status is not None else "waiting for an answer"
            raise DeliveryError(
                f"no answer from {url} within {self._timeout:g}s: timed out {stage} (the "
                "timeout bounds the whole attempt: connecting, sending, waiting and reading)",
                retryable=True,
            ) from exc
        except httpx.DecodingError as exc:
            raise DeliveryError(
                f"{url} answered {status} with a body that is not what its Content-Encoding "
                f"header says ({exc}): not taken as an answer",
                retryable=True,
            ) from exc
        except httpx.ConnectError as exc:
            raise DeliveryError(_connect_error(url, exc), retryable=True) from exc
        except httpx.RemoteProtocolError as exc:
            what = "cut its answer short" if status is not None else "answered with something"
            raise DeliveryError(
                f"{url} {what} that is not valid HTTP/1.1 ({exc or type(exc).__name__})",
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"connection to {url} failed: {exc or type(exc).__name__}", retryable=True
            ) from exc
        return Answer(status, reason, _lower_names(response.headers), body, truncated)

    def send_request(
        self, url: str, method: str, payload: bytes, headers: Mapping[str, str]
    ) -> tuple[Answer, Attempt]:
        """One delivery request; raises DeliveryError for anything but a 2xx answer."""
        attempt = Attempt(request_headers=mask_headers(headers), payload=payload)
        try:
            answer = self.exchange(method, url, content=payload, headers=headers)
        except DeliveryError as error:
            error.attempt = attempt
            raise
        attempt.status = answer.status
        attempt.response_body = answer.body.decode(errors="replace")[:RESPONSE_BODY_SHOWN]
        attempt.body_truncated = answer.truncated
        if 200 <= answer.status < 300:
            return answer, attempt
        status = answer.status
        if 300 <= status < 400:
            where = answer.headers.get("location", "?")
            message = f"{url} answered {status} redirecting to {where}: update the url"
        else:
            message = f"{url} answered {status} {answer.reason}".strip()
        raise DeliveryError(
            message,
            retryable=is_retryable_status(status),
            retry_after=parse_retry_after(answer.headers.get("retry-after")),
            attempt=attempt,
        )

    def probe(self, url: str) -> int:
        """Status of a HEAD request; DeliveryError when the receiver cannot be reached."""
        return self.exchange("HEAD", url).status

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    """The decoded body up to RESPONSE_BODY_CAP bytes, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > RESPONSE_BODY_CAP:
            return b"".join(chunks)[:RESPONSE_BODY_CAP], True
    return b"".join(chunks), False


def _lower_names(headers: httpx.Headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _connect_error(url: str, exc: httpx.ConnectError) -> str:
    causes = list(_causes(exc))
    text = str(exc)
    verify = next((c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None)
    if verify is not None or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = getattr(verify, "verify_message", "") or text
        return (
            f"TLS certificate verification failed for {url} ({detail}): set ca_file to the "
            "certificate authority that signed it, or verify_tls = false to skip verification"
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
        return f"connection refused by {url} (is the receiver running?)"
    return f"cannot connect to {url}: {text or type(exc).__name__}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions that led to ``exc`` (asyncio wraps the socket's own error twice)."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__
