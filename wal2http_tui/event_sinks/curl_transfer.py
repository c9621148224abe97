"""Transfer: one HTTP exchange on a libcurl easy handle (pycurl), and what came of it.

Every request a sink makes goes through a ``Transfer``: the one-at-a-time ``HttpClient`` runs it
with ``perform()``, the concurrent ``CurlMultiSender`` runs many on one ``CurlMulti``. Either
way a request is set up, bounded, read and named in one way, whatever the receiver does:

- **The whole attempt is bounded by ``timeout``** (libcurl's ``TIMEOUT_MS``): connecting,
  sending, waiting for the answer and reading it, so a receiver that sends its answer one byte
  a second cannot hold a request for ever.
- **At most ``RESPONSE_BODY_CAP`` bytes of an answer are read**: past that the write callback
  refuses the rest, libcurl aborts the transfer and closes that connection.
- **Every way a request can end is an ``Answer`` or a ``DeliveryError``** (always retryable:
  there was no usable answer) whose message says what happened in words an operator can act
  on: connection refused, timeout and at which stage, TLS verification failure with its fix, a
  body that is not the gzip it claims, an answer that is not HTTP, an answer cut short.

Redirects are not followed; keep-alive connections are reused by the handle (or the multi
handle's shared cache); ``Expect: 100-continue`` is never sent (it would cost a round trip per
large body). Why libcurl rather than httpx: at 64 requests in flight, httpx spent 1.2 to 2 ms of
CPU per request on this machine; libcurl's multi interface about 30 µs (see the README's
Performance section).
"""

from __future__ import annotations

import errno
import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import certifi
import pycurl

from wal2http_tui import __version__
from wal2http_tui.event_sinks.traits import DeliveryError

USER_AGENT = f"wal2http-tui/{__version__}"
RESPONSE_BODY_CAP = 64 * 1024  # bytes of an answer that are read; the rest is not

# libcurl's error codes (CURLcode) this module names
CURLE_UNSUPPORTED_PROTOCOL = 1  # also "Received HTTP/0.9 when not allowed"
CURLE_COULDNT_RESOLVE_HOST = 6
CURLE_COULDNT_CONNECT = 7
CURLE_WEIRD_SERVER_REPLY = 8
CURLE_PARTIAL_FILE = 18
CURLE_WRITE_ERROR = 23  # our write callback refused the rest of a long body
CURLE_OPERATION_TIMEDOUT = 28
CURLE_SSL_CONNECT_ERROR = 35
CURLE_GOT_NOTHING = 52
CURLE_SEND_ERROR = 55
CURLE_RECV_ERROR = 56
CURLE_PEER_FAILED_VERIFICATION = 60
CURLE_BAD_CONTENT_ENCODING = 61
CURLE_SSL_CACERT_BADFILE = 77
_NOT_HTTP = {CURLE_UNSUPPORTED_PROTOCOL, CURLE_WEIRD_SERVER_REPLY}
_CUT_SHORT = {CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_SEND_ERROR}
_TLS_VERIFY = {CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE}


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: status, headers (names in lower case), the start of the body.
    The header lines are parsed when first asked for (a 2xx answer to a delivery never is)."""

    status: int
    head: tuple[bytes, ...]  # the header lines, as received
    body: bytes  # at most RESPONSE_BODY_CAP bytes
    truncated: bool  # the body was longer: the rest was not read, the connection was closed

    @functools.cached_property
    def _parsed(self) -> tuple[str, dict[str, str]]:
        return _parse_head(self.head)

    @property
    def reason(self) -> str:
        """The status line's reason phrase, as the receiver wrote it."""
        return self._parsed[0]

    @property
    def headers(self) -> dict[str, str]:
        return self._parsed[1]


@functools.cache
def system_ca_file() -> str:
    """The system's CA bundle (where an operator adds a private authority: Debian's
    /etc/ssl/certs/ca-certificates.crt, as OpenSSL finds it); certifi's when there is none."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return certifi.where()


class Transfer:
    """A reusable easy handle with the client's settings; one request at a time."""

    def __init__(
        self,
        *,
        timeout: float,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self._headers = {"User-Agent": USER_AGENT, **dict(headers or {})}
        curl = self.curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.ACCEPT_ENCODING, "")  # what libcurl can decode; it checks the body
        curl.setopt(pycurl.TCP_NODELAY, 1)
        if verify_tls:
            curl.setopt(pycurl.CAINFO, str(ca_file) if ca_file else system_ca_file())
        else:
            curl.setopt(pycurl.SSL_VERIFYPEER, 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        curl.setopt(pycurl.WRITEFUNCTION, self._take_body)
        self._header_lines: list[bytes] = []
        # list.append, not a Python function: no interpreter frame per header line
        curl.setopt(pycurl.HEADERFUNCTION, self._header_lines.append)
        self.url = ""
        self._method = ""
        self._reset()

    def _reset(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._truncated = False
        self._header_lines.clear()

    def prepare(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> None:
        """Set the handle up for one request (``perform()`` or a multi handle runs it)."""
        self._reset()
        curl = self.curl
        if url != self.url:
            curl.setopt(pycurl.URL, url)
            self.url = url
        if method != self._method or method == "HEAD" or body is None:
            self._set_method(method)
        if body is not None:
            curl.setopt(pycurl.POSTFIELDSIZE, len(body))
            curl.setopt(pycurl.COPYPOSTFIELDS, body)
        merged = {**self._headers, **dict(headers)}
        lines = [f"{name}: {value}" for name, value in merged.items()]
        curl.setopt(pycurl.HTTPHEADER, [*lines, "Expect:"])

    def _set_method(self, method: str) -> None:
        curl = self.curl
        self._method = method
        if method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        else:
            curl.setopt(pycurl.NOBODY, 0)
            curl.setopt(pycurl.HTTPGET, 1)  # forget the last request's body and method
        if method in ("GET", "HEAD", "POST"):
            curl.unsetopt(pycurl.CUSTOMREQUEST)
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, method)

    def perform(self) -> Answer:
        """Run the prepared request here and now."""
        try:
            self.curl.perform()
        except pycurl.error as exc:
            code, message = exc.args[0], str(exc.args[1]) if len(exc.args) > 1 else ""
            return self.outcome(int(code), message)
        return self.outcome(0, "")

    def outcome(self, code: int, message: str) -> Answer:
        """What the request came to, from libcurl's result code: the answer, or DeliveryError."""
        status = int(self.curl.getinfo(pycurl.RESPONSE_CODE) or 0)
        if code == 0 or (code == CURLE_WRITE_ERROR and self._truncated):
            body = b"".join(self._chunks)[:RESPONSE_BODY_CAP]
            return Answer(status, tuple(self._header_lines), body, self._truncated)
        raise DeliveryError(self._failure(code, message, status), retryable=True)

    def _failure(self, code: int, message: str, status: int) -> str:
        url = self.url
        detail = message or f"libcurl error {code}"
        if code == CURLE_OPERATION_TIMEDOUT:
            stage = "while reading its answer" if status else "waiting for an answer"
            return (
                f"no answer from {url} within {self.timeout:g}s: timed out {stage} (the "
                "timeout bounds the whole attempt: connecting, sending, waiting and reading)"
            )
        if code == CURLE_BAD_CONTENT_ENCODING:
            return (
                f"{url} answered {status} with a body that is not what its Content-Encoding "
                f"header says ({detail}): not taken as an answer"
            )
        refused = self.curl.getinfo(pycurl.OS_ERRNO) == errno.ECONNREFUSED
        if code == CURLE_COULDNT_CONNECT and (refused or "refused" in detail.lower()):
            return f"connection refused by {url} (is the receiver running?)"
        if code in _TLS_VERIFY or (
            code == CURLE_SSL_CONNECT_ERROR and "certificate" in detail.lower()
        ):
            return (
                f"TLS certificate verification failed for {url} ({detail}): set ca_file to the "
                "certificate authority that signed it, or verify_tls = false to skip verification"
            )
        if code in (CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_SSL_CONNECT_ERROR):
            return f"cannot connect to {url}: {detail}"
        if code in _NOT_HTTP:
            return f"{url} answered with something that is not valid HTTP/1.1 ({detail})"
        if code in _CUT_SHORT:
            if status:
                return f"{url} cut its answer short ({detail})"
            return f"{url} closed the connection without a complete answer ({detail})"
        return f"connection to {url} failed: {detail}"

    def _take_body(self, data: bytes) -> int:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > RESPONSE_BODY_CAP:
            self._truncated = True
            return 0  # fewer bytes than given: libcurl aborts and closes the connection
        return len(data)

    def close(self) -> None:
        self.curl.close()


def _parse_head(lines: tuple[bytes, ...]) -> tuple[str, dict[str, str]]:
    """The reason phrase and the headers (names in lower case) of the last answer among the
    header lines libcurl passed on (a 100 Continue comes before the real answer)."""
    reason = ""
    headers: dict[str, str] = {}
    for line in lines:
        text = line.decode("latin-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            parts = text.split(" ", 2)
            reason = parts[2] if len(parts) > 2 else ""
            headers = {}
        elif ":" in text:
            name, _, value = text.partition(":")
            headers[name.strip().lower()] = value.strip()
    return reason, headers
