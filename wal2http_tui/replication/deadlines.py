"""A client-side bound on SQL calls: past it, the connection's socket is shut down, the blocked
call returns at once, and the caller says what did not answer.

libpq and psycopg wait for an answer as long as TCP does, which a silent network (a frozen
proxy, a dead NAT entry) stretches to hours; ``statement_timeout`` cannot help, since a server
that never receives the query never times it out.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import psycopg


class Unanswered(psycopg.OperationalError):
    """PostgreSQL did not answer a call within its deadline (the connection is closed)."""


@contextlib.contextmanager
def deadline(conn: psycopg.Connection, seconds: float, what: str) -> Iterator[None]:
    """Run the block's SQL calls with a bound of ``seconds`` (0: none); past it, ``Unanswered``
    naming ``what``, whatever the block made of the failed call (it may have caught it)."""
    if not seconds:
        yield
        return
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        with contextlib.suppress(psycopg.Error):
            shut_down(conn.pgconn.socket)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as exc:
        if fired.is_set():
            raise Unanswered(f"no answer from PostgreSQL within {seconds:g}s ({what})") from exc
        raise
    finally:
        timer.cancel()


def shut_down(fd: int) -> None:
    """Shut a connection's socket down (from any thread): a call blocked on it returns."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=fd)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.detach()  # the fd stays libpq's
