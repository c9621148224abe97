"""A TCP proxy on 127.0.0.1 that can go silent, the way a dead NAT entry, a firewall that drops
instead of rejecting, or a vanished host behaves: connections stay open (no RST, no FIN) and
nothing is forwarded in either direction.

``freeze()`` silences every connection open now and every one accepted later (they are accepted
and then never forwarded); ``thaw()`` forwards again for connections made from then on (the
frozen ones stay dead, as they would on a real network whose state was lost).
``freeze_on(text)`` silences the first connection whose client sends ``text`` (a query, say),
from that moment on; the text itself is not forwarded.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable

from tests.support.listening import connections


class FreezingProxy:
    """``with FreezingProxy(target_port) as proxy:`` listens on ``proxy.port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._frozen = False
        self._pairs: list[_Pair] = []
        self._trigger: bytes | None = None
        self.accepted = 0
        self.frozen_on_trigger = threading.Event()

    def __enter__(self) -> FreezingProxy:
        threading.Thread(target=self._accept, daemon=True, name="proxy").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.close()

    def freeze(self) -> None:
        with self._lock:
            self._frozen = True
            for pair in self._pairs:
                pair.frozen = True

    def thaw(self) -> None:
        with self._lock:
            self._frozen = False

    def freeze_on(self, text: bytes) -> None:
        with self._lock:
            self._trigger = text

    def _triggered(self, data: bytes) -> bool:
        """Whether ``data`` (from a client) is the one-shot trigger to go silent."""
        with self._lock:
            if self._trigger is None or self._trigger not in data:
                return False
            self._trigger = None
        self.frozen_on_trigger.set()
        return True

    def _accept(self) -> None:
        for client in connections(self._listener, self._stop):
            with self._lock:
                self.accepted += 1
                frozen = self._frozen
            if frozen:
                self._hold(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server, self._triggered)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=pair.forward, args=(self._stop,), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        """An accepted connection that is never answered (nor closed)."""
        pair = _Pair(client, None, lambda data: False)
        pair.frozen = True
        with self._lock:
            self._pairs.append(pair)


class _Pair:
    def __init__(
        self,
        client: socket.socket,
        server: socket.socket | None,
        triggered: Callable[[bytes], bool],
    ) -> None:
        self.client = client
        self.server = server
        self.frozen = False
        self._triggered = triggered

    def forward(self, stop: threading.Event) -> None:
        assert self.server is not None
        sockets = [self.client, self.server]
        with contextlib.suppress(OSError):
            while not stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                if self.frozen:
                    stop.wait(0.2)  # read nothing more, forward nothing, close nothing
                    continue
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        self.close()
                        return
                    if source is self.client and self._triggered(data):
                        self.frozen = True
                        break
                    (self.server if source is self.client else self.client).sendall(data)

    def close(self) -> None:
        for sock in (self.client, self.server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
