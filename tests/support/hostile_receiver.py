"""A webhook receiver written at the socket level, so that it can misbehave the way real ones do.

It reads HTTP/1.1 requests itself (keep-alive, ``Content-Length`` bodies) and answers according
to ``behaviour``, which a test changes while the engine sends to it:

- ``good``: ``200 OK`` with a short body; the request's events are recorded.
- ``bad_gzip``: ``200`` with ``Content-Encoding: gzip`` and a body that is not gzip.
- ``endless``: ``200`` announcing 2 GB and sending zeros until the client goes away (the events
  count as received: the answer said 200).
- ``drip``: ``200`` and its headers, then the body one byte a second.
- ``redirect``: ``307 Temporary Redirect`` to another URL.
- ``not_http``: a line that is not an HTTP status line, then the connection closes.
- ``cut_short``: ``200`` announcing 1000 bytes of body, sending 10, closing.
- ``silent``: reads the request and never answers (the connection stays open).

Only ``good`` and ``endless`` answers record events: what any other answer carried is never
counted as received.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

from tests.support.listening import serve_in_threads

BEHAVIOURS = (
    "good",
    "bad_gzip",
    "endless",
    "drip",
    "redirect",
    "not_http",
    "cut_short",
    "silent",
)
REDIRECT_TARGET = "http://127.0.0.1:1/elsewhere"


class HostileReceiver:
    """``with HostileReceiver() as receiver:`` serves on ``receiver.url`` until the block ends."""

    def __init__(self, behaviour: str = "good") -> None:
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._connections: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"

    def __enter__(self) -> HostileReceiver:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.close()

    def set(self, behaviour: str) -> None:
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour

    def ids(self) -> list[int]:
        """The ``id`` of each row inserted, as received (resends included)."""
        with self._lock:
            return [event["new"]["id"] for event in self.events if event.get("op") == "insert"]

    def wait_for_rows(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(set(self.ids())) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(set(self.ids()))} of {count} rows after {timeout}s")
            time.sleep(0.05)

    # -- serving -------------------------------------------------------------------------------
    def _accept(self) -> None:
        serve_in_threads(self._listener, self._stop, self._serve)

    def _serve(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.append(connection)
        with contextlib.suppress(OSError), connection:
            reader = connection.makefile("rb")
            while not self._stop.is_set():
                body = _read_request(reader)
                if body is None:
                    return
                with self._lock:
                    self.requests += 1
                if not self._answer(connection, body):
                    return

    def _answer(self, connection: socket.socket, body: bytes) -> bool:
        """Answer one request as the current behaviour says; False closes the connection."""
        behaviour = self.behaviour
        if behaviour == "good":
            self._record(body)
            connection.sendall(_response(200, b"ok"))
            return True
        if behaviour == "bad_gzip":
            connection.sendall(_response(200, b"this is not gzip", ("Content-Encoding", "gzip")))
            return True
        if behaviour == "redirect":
            connection.sendall(_response(307, b"moved", ("Location", REDIRECT_TARGET)))
            return True
        if behaviour == "not_http":
            connection.sendall(b"SSH-2.0-OpenSSH_9.2 definitely not HTTP\r\n")
            return False
        if behaviour == "cut_short":
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            connection.sendall(head + b"0123456789")
            return False
        if behaviour == "endless":
            self._record(body)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n")
            chunk = bytes(64 * 1024)
            while not self._stop.is_set():
                connection.sendall(chunk)
            return False
        if behaviour == "drip":
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not self._stop.is_set():
                connection.sendall(b"x")
                time.sleep(1.0)
            return False
        self._stop.wait()  # silent: never answer
        return False

    def _record(self, body: bytes) -> None:
        parsed = json.loads(body)
        with self._lock:
            self.events.extend(parsed if isinstance(parsed, list) else [parsed])


def _read_request(reader: Any) -> bytes | None:
    """One request's body, or None when the client closed the connection."""
    line = reader.readline()
    if not line:
        return None
    length = 0
    while True:
        header = reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return reader.read(length)


def _response(status: int, body: bytes, *headers: tuple[str, str]) -> bytes:
    reason = {200: "OK", 307: "Temporary Redirect"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
