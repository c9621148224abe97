"""A recording webhook receiver on 127.0.0.1, for the demo and the tests.

Real sockets, HTTP/1.1 keep-alive, one thread per connection. It records every request and
every event it accepted (a JSON array body counts as several), and can be told to misbehave:
answer a status (with ``Retry-After``), stall past the client's timeout, reset the connection
mid-response, fail a given fraction of requests at random (the demo's flaky sink), or refuse
connections altogether (``stop()`` then ``start()`` again on the same port).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeAlias

# What socketserver hands a server, as typeshed writes it: a connected socket for TCP (as here),
# (data, socket) for UDP.
_Request: TypeAlias = socket.socket | tuple[bytes, socket.socket]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Fault:
    """What to do instead of answering 200: a status, a stall, or a connection reset."""

    status: int = 500
    retry_after: str | None = None
    stall_seconds: float = 0.0
    reset: bool = False
    body: bytes = b'{"error": "injected failure"}'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver listens with a backlog of 5: a sink opening 256 connections at once would
    # see most of them wait for SYN retransmissions (1 s, 3 s...)
    request_queue_size = 1024
    receiver: WebhookReceiver
    connections: set[socket.socket]

    def process_request(self, request: _Request, client_address: object) -> None:
        if isinstance(request, socket.socket):
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop every open (keep-alive) connection, as a receiver that went away would."""
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: _Request, client_address: object) -> None:
        """A client that hangs up (killed, timed out) is not the receiver's error."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK hold each answer ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        receiver = self.server.receiver
        receiver._arrived()
        try:
            self._answer(receiver, body)
        finally:
            receiver._answered()

    def _answer(self, receiver: WebhookReceiver, body: bytes) -> None:
        delay = receiver.latency + receiver._jitter()
        if delay:
            time.sleep(delay)
        fault = receiver._next_fault()
        if fault is not None and fault.reset:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            receiver._record(self, body, 0)
            return
        if fault is not None and fault.stall_seconds:
            time.sleep(fault.stall_seconds)
        status = fault.status if fault is not None else 200
        accepted = 200 <= status < 300
        receiver._record(self, body, status, accepted=accepted)
        answer = b'{"ok": true}' if accepted else (fault.body if fault else b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        if fault is not None and fault.retry_after is not None:
            self.send_header("Retry-After", fault.retry_after)
        self.end_headers()
        self.wfile.write(answer)

    do_PUT = do_POST
    do_PATCH = do_POST


class WebhookReceiver:
    """``with WebhookReceiver() as r: ... r.url ... r.wait_for_events(10)``."""

    def __init__(
        self,
        port: int = 0,
        *,
        failure_rate: float = 0.0,
        reject_rate: float = 0.0,
        seed: int | None = None,
        keep: int | None = None,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
    ) -> None:
        """``failure_rate``: share of requests answered 503 (retryable); ``reject_rate``: share
        answered 422 (permanent); ``keep``: how many requests and events to remember (all by
        default; the demo bounds it), while ``accepted`` counts every event; ``tls``: serve
        HTTPS with this server context; ``latency`` and ``jitter``: every answer waits
        ``latency`` seconds plus a random share of ``jitter`` (a slow receiver)."""
        self.tls = tls
        self.latency = latency
        self.jitter = jitter
        self.at_once = 0  # requests being answered now
        self.most_at_once = 0  # the most it has answered at the same time
        self.port = port
        self.failure_rate = failure_rate
        self.reject_rate = reject_rate
        self.requests: deque[ReceivedRequest] = deque(maxlen=keep)
        self.events: deque[dict] = deque(maxlen=keep)
        self.accepted = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self._random = random.Random(seed)
        self._lock = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/events"

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> WebhookReceiver:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        server.connections = set()
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True, name="receiver")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused) and close open connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None

    # -- misbehaviour -------------------------------------------------------------------------
    def fail_next(self, count: int, fault: Fault | None = None) -> None:
        with self._lock:
            self._faults.extend([fault or Fault()] * count)

    def fail_always(self, fault: Fault | None) -> None:
        """Answer every request with ``fault`` (None: behave again)."""
        with self._lock:
            self._always = fault

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._always is not None:
                return self._always
            draw = self._random.random()
            if draw < self.failure_rate:
                return Fault(status=503)
            if draw < self.failure_rate + self.reject_rate:
                return Fault(status=422, body=b'{"error": "rejected by the demo receiver"}')
            return None

    def _jitter(self) -> float:
        if not self.jitter:
            return 0.0
        with self._lock:
            return self._random.uniform(0, self.jitter)

    # -- recording ----------------------------------------------------------------------------
    def _arrived(self) -> None:
        with self._lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)

    def _answered(self) -> None:
        with self._lock:
            self.at_once -= 1

    def _record(self, handler: _Handler, body: bytes, status: int, accepted: bool = False) -> None:
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            status=status,
            at=time.time(),
        )
        parsed: list[dict] = []
        if accepted:
            decoded = json.loads(body) if body else []
            parsed = decoded if isinstance(decoded, list) else [decoded]
        with self._lock:
            self.requests.append(request)
            self.events.extend(parsed)
            self.accepted += len(parsed)
            self._lock.notify_all()

    def wait_for_events(self, count: int, timeout: float = 30.0) -> list[dict]:
        """Block until at least ``count`` events were accepted; returns them (AssertionError on
        timeout, saying how many arrived)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.accepted < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"receiver got {self.accepted} events, expected {count}")
                self._lock.wait(remaining)
            return list(self.events)

    def event_ids(self) -> list[str]:
        with self._lock:
            return [event["event_id"] for event in self.events]
