"""CurlMultiSender: an HTTP sink's concurrent requests on libcurl's multi interface.

One thread per sink drives a ``pycurl.CurlMulti`` with up to ``size`` transfers at once, on
keep-alive connections the multi handle shares. Each request is built by the sink
(``HttpEventSink.request``: URL, headers, signature, body), run by a ``Transfer`` (the same
bounds, cap and error names as one-at-a-time requests) and judged by ``settle`` (the same rule
for what an answer means). The loop waits in ``select`` on libcurl's sockets and on a wake-up
socket that ``submit`` writes to, so a new request never waits for a poll interval.

The thread never ends silently: an error of its own fails the requests it holds (they are
retried by the delivery loop like any failed attempt) and the loop goes on with a new multi
handle.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import pycurl

from wal2http_tui.event_sinks.concurrent import CLOSE_GRACE_SECS, Request
from wal2http_tui.event_sinks.curl_transfer import Transfer
from wal2http_tui.event_sinks.http_client import new_attempt, settle
from wal2http_tui.event_sinks.traits import Attempt, DeliveryError

if TYPE_CHECKING:
    from wal2http_tui.event_sinks.http_sink import HttpEventSink

log = logging.getLogger("wal2http_tui.delivery")

MAX_WAIT_SECS = 1.0


class CurlMultiSender:
    def __init__(self, sink: HttpEventSink, size: int, done: Callable[[Request], None]) -> None:
        self._sink = sink
        self._size = size
        self._done = done
        self._submitted: deque[Request] = deque()
        self._idle: list[Transfer] = []
        self._active: dict[pycurl.Curl, tuple[Transfer, Request, Attempt]] = {}
        self._multi = pycurl.CurlMulti()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._closing = False
        self._waiting = False  # the thread is (about to be) in select
        self._thread = threading.Thread(
            target=self._run, name=f"sink-{sink.name}-curl", daemon=True
        )
        self._thread.start()

    def submit(self, request: Request) -> None:
        self._submitted.append(request)
        if self._waiting:  # only a thread that sleeps in select needs the wake-up's syscall
            self._wake()

    def close(self, timeout: float) -> None:
        self._closing = True
        self._wake()
        self._thread.join(timeout + CLOSE_GRACE_SECS)
        if not self._thread.is_alive():
            self._wake_in.close()
            self._wake_out.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_out.send(b"\0")

    # -- the sender's thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not (self._closing and not self._active):
            try:
                if self._closing:
                    self._submitted.clear()  # not started: the delivery loop sends them again
                self._start()
                self._perform()
                self._wait()
            except Exception as exc:  # never silently: fail what is held, start afresh
                log.error("sink %s: the HTTP sender failed: %s", self._sink.name, exc, exc_info=exc)
                self._fail_all(exc)
        for transfer in self._idle:
            transfer.close()
        self._multi.close()

    def _start(self) -> None:
        config = self._sink.config
        while self._submitted:
            request = self._submitted.popleft()
            request.result = request.error = request.exception = None
            request.started = time.monotonic()
            transfer = self._idle.pop() if self._idle else self._sink.http_client.new_transfer()
            try:
                url, headers, body = self._sink.request(request.events)
                transfer.prepare(config.method, url, body, headers)
            except Exception as exc:
                self._idle.append(transfer)
                request.exception = exc
                self._finished(request)
                continue
            self._active[transfer.curl] = (transfer, request, new_attempt(body, headers))
            self._multi.add_handle(transfer.curl)

    def _perform(self) -> None:
        while True:
            code, _ = self._multi.perform()
            if code != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for curl in succeeded:
                self._settle(curl, 0, "")
            for curl, code, message in failed:
                self._settle(curl, code, message)
            if not queued:
                return

    def _settle(self, curl: pycurl.Curl, code: int, message: str) -> None:
        self._multi.remove_handle(curl)
        transfer, request, attempt = self._active.pop(curl)
        try:
            request.result = settle(lambda: transfer.outcome(code, message), transfer.url, attempt)
        except DeliveryError as error:
            request.error = error
        except Exception as exc:
            request.exception = exc
        self._idle.append(transfer)
        self._finished(request)

    def _finished(self, request: Request) -> None:
        request.ended = time.monotonic()
        self._done(request)

    def _wait(self) -> None:
        if self._submitted or (self._closing and not self._active):
            return
        timeout_ms = self._multi.timeout()
        wait = MAX_WAIT_SECS if timeout_ms < 0 else min(MAX_WAIT_SECS, timeout_ms / 1000)
        if not self._active:
            wait = MAX_WAIT_SECS
        reading, writing, errors = self._multi.fdset()
        self._waiting = True
        if self._submitted:  # submitted before the flag was seen: no wake-up was sent
            self._waiting = False
            return
        try:
            ready, _, _ = select.select([*reading, self._wake_in], writing, errors, wait)
        finally:
            self._waiting = False
        if self._wake_in in ready:
            try:
                while self._wake_in.recv(4096):
                    pass
            except BlockingIOError:
                pass

    def _fail_all(self, exc: Exception) -> None:
        held = list(self._active.values())
        self._active.clear()
        for transfer, request, _ in held:
            transfer.close()
            request.exception = exc
            self._finished(request)
        self._multi.close()
        self._multi = pycurl.CurlMulti()
