"""Every connection the engine opens to PostgreSQL, and the bound on every call it makes.

A network can go silent without closing anything (a dead NAT entry, a firewall that drops, a
vanished host, a frozen proxy): TCP then waits for hours and a blocking call waits with it. So:

- every connection gets libpq's ``connect_timeout`` and TCP keepalives (a dead peer is noticed
  within about a minute), unless the user's connection string sets them;
- every SQL call runs under ``deadlines.deadline``, a client-side bound (``statement_timeout``
  would not do: a server that never gets the query never times it out).

Session options (``values.SESSION_SETTINGS``) are merged with the user's own ``options``.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from wal2http_tui.replication.values import session_options

APPLICATION_NAME = "wal2http-tui"  # every connection's application_name starts with it
# libpq settings wal2http-tui adds unless the connection string sets them: fail a connection
# attempt after 10 s, notice a dead peer after 20 s idle + 3 unanswered probes 10 s apart.
CONNECTION_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "20",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def conninfo(dsn: str, purpose: str, *, replication: bool = False) -> str:
    """The user's connection string plus the engine's settings, the user's winning."""
    params = conninfo_to_dict(dsn)
    extra: dict[str, str] = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in params}
    own = params.get("options")
    extra["options"] = f"{own} {session_options()}" if own else session_options()
    if "application_name" not in params:
        extra["application_name"] = f"{APPLICATION_NAME} {purpose}".strip()
    if replication:
        extra["replication"] = "database"
    return make_conninfo(dsn, **extra)


def connect_sql(dsn: str, purpose: str, timeout: float) -> psycopg.Connection:
    """A plain autocommit connection for ``purpose`` (shown as its application_name)."""
    settings = conninfo(dsn, purpose)
    if timeout and "connect_timeout" not in conninfo_to_dict(dsn):
        settings = make_conninfo(settings, connect_timeout=str(max(2, round(timeout))))
    return psycopg.connect(settings, autocommit=True)
