"""The accept loop of the test servers written at the socket level."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator


def connections(listener: socket.socket, stop: threading.Event) -> Iterator[socket.socket]:
    """Each connection accepted on ``listener`` (which has a timeout) until ``stop`` is set or
    the listener is closed."""
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        yield connection


def serve_in_threads(
    listener: socket.socket, stop: threading.Event, serve: Callable[[socket.socket], None]
) -> None:
    """Accept until stopped; ``serve`` each connection on a daemon thread of its own."""
    for connection in connections(listener, stop):
        threading.Thread(target=serve, args=(connection,), daemon=True).start()
