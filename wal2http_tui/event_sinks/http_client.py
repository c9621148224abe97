"""HttpClient: the seed's HTTP client wrapper, one pooled keep-alive httpx client per sink.

It turns every way a request can end into either a response or a ``DeliveryError`` whose
message says what happened in words an operator can act on (connection refused, timeout, TLS
verification failure with its fix), and classifies it as retryable or permanent:
retryable = connection errors, timeouts, 408, 425, 429 and 5xx; other 4xx are permanent.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Mapping

import httpx

from wal2http_tui import __version__
from wal2http_tui.config.secrets import mask_headers
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError

USER_AGENT = f"wal2http-tui/{__version__}"
RETRYABLE_STATUSES = frozenset({408, 425, 429})
RESPONSE_BODY_KEPT = 4096


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


def tls_verify(verify_tls: bool, ca_file: str | None) -> ssl.SSLContext | bool:
    if not verify_tls:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


class HttpClient:
    """Sends requests on one pooled, keep-alive connection set."""

    def __init__(
        self,
        *,
        timeout: float,
        verify_tls: bool = True,
        ca_file: str | None = None,
    ) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            verify=tls_verify(verify_tls, ca_file),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            headers={"User-Agent": USER_AGENT},
        )
        self._timeout = timeout

    def send_request(
        self, url: str, method: str, payload: bytes, headers: Mapping[str, str]
    ) -> tuple[httpx.Response, Attempt]:
        """One request; raises DeliveryError for anything but a 2xx answer."""
        attempt = Attempt(request_headers=mask_headers(headers), payload=payload)
        try:
            response = self._client.request(method, url, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"no answer from {url} within {self._timeout:g}s ({type(exc).__name__})",
                retryable=True,
                attempt=attempt,
            ) from exc
        except httpx.ConnectError as exc:
            raise DeliveryError(_connect_error(url, exc), retryable=True, attempt=attempt) from exc
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"connection to {url} failed: {exc or type(exc).__name__}",
                retryable=True,
                attempt=attempt,
            ) from exc
        attempt.status = response.status_code
        attempt.response_body = response.text[:RESPONSE_BODY_KEPT]
        if 200 <= response.status_code < 300:
            return response, attempt
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            message = f"{url} answered {status} redirecting to {where}: update the url"
        else:
            reason = response.reason_phrase or ""
            message = f"{url} answered {status} {reason}".strip()
        raise DeliveryError(
            message,
            retryable=is_retryable_status(status),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            attempt=attempt,
        )

    def probe(self, url: str) -> int:
        """Status of a HEAD request; DeliveryError when the receiver cannot be reached."""
        try:
            return self._client.request("HEAD", url).status_code
        except httpx.ConnectError as exc:
            raise DeliveryError(_connect_error(url, exc), retryable=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryError(f"{url}: {exc or type(exc).__name__}", retryable=True) from exc

    def close(self) -> None:
        self._client.close()


def _connect_error(url: str, exc: httpx.ConnectError) -> str:
    cause = exc.__context__ or exc.__cause__
    text = str(exc)
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = getattr(cause, "verify_message", "") or text
        return (
            f"TLS certificate verification failed for {url} ({detail}): set ca_file to the "
            "certificate authority that signed it, or verify_tls = false to skip verification"
        )
    if "refused" in text.lower():
        return f"connection refused by {url} (is the receiver running?)"
    return f"cannot connect to {url}: {text or type(exc).__name__}"
