"""What travels through the WAL to steer on-demand backfills: requests and watermarks.

Everything is a non-transactional logical decoding message (``pg_logical_emit_message``) with
the prefix ``PREFIX``, so it reaches the engine in stream order from any host that can reach
the database, and is never delivered to a sink. The content is one JSON object:

- requests, written by ``backfill start|pause|resume|cancel`` or the UI: ``kind`` (``start``,
  ``pause``, ``resume``, ``cancel``), ``id``, and for ``start`` the ``tables``, ``sinks`` and
  ``where`` of the backfill;
- watermarks, written by the engine around each chunk it reads: ``kind`` ``low`` or ``high``,
  ``id``, ``chunk`` and ``run`` (the engine session that wrote it: a watermark read again after
  a reconnect belongs to no chunk being read and is ignored).

Every message names the ``slot`` whose engine it is for (others ignore it) and carries ``v``
(the format's version) and ``sig``, an HMAC-SHA256 of the rest under the engine's key (kept in
its state file, see ``backfill_store``). Any database user may call ``pg_logical_emit_message``,
so an unsigned or wrongly signed message is refused: only someone who can read the engine's
state file can make it run a backfill (and a ``where`` clause, which is SQL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

import psycopg

from wal2http_tui.replication.messages import Lsn

PREFIX = "wal2http-tui.backfill"
VERSION = 1
REQUESTS = ("start", "pause", "resume", "cancel")
WATERMARKS = ("low", "high")
MIN_SERVER_VERSION = 140000  # pgoutput sends logical decoding messages from PostgreSQL 14 on


class BadBackfillMessage(ValueError):
    """A message with the backfill prefix that is not a valid, signed one; says why."""


@dataclass(frozen=True)
class BackfillMessage:
    kind: str
    slot: str
    id: str
    tables: tuple[str, ...] = ()
    sinks: tuple[str, ...] = ()
    where: str | None = None
    chunk: int = 0
    run: str = ""


def _signature(body: dict, key: bytes) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def encode(message: BackfillMessage, key: bytes) -> bytes:
    body = {"v": VERSION, **asdict(message)}
    body["tables"], body["sinks"] = list(message.tables), list(message.sinks)
    return json.dumps({**body, "sig": _signature(body, key)}, sort_keys=True).encode()


def decode(content: bytes, key: bytes) -> BackfillMessage:
    """The message in ``content``; BadBackfillMessage when it is not one this engine wrote or
    accepts (malformed, another version, not signed with ``key``)."""
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise BadBackfillMessage(f"not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BadBackfillMessage("not a JSON object")
    if body.get("v") != VERSION:
        raise BadBackfillMessage(
            f"format version {body.get('v')!r}, this wal2http-tui reads version {VERSION}: "
            "request it with the same version as the engine"
        )
    signature = body.pop("sig", None)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(body, key)):
        raise BadBackfillMessage(
            "not signed with this engine's key (only `wal2http-tui backfill` run with access "
            "to the engine's state file can request a backfill)"
        )
    try:
        message = BackfillMessage(
            kind=str(body["kind"]),
            slot=str(body["slot"]),
            id=str(body["id"]),
            tables=tuple(str(t) for t in body.get("tables", ())),
            sinks=tuple(str(s) for s in body.get("sinks", ())),
            where=None if body.get("where") is None else str(body["where"]),
            chunk=int(body.get("chunk", 0)),
            run=str(body.get("run", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadBackfillMessage(f"missing or malformed field ({exc})") from exc
    if message.kind not in REQUESTS + WATERMARKS:
        raise BadBackfillMessage(f"unknown kind {message.kind!r}")
    return message


def emit(conn: psycopg.Connection, message: BackfillMessage, key: bytes) -> Lsn:
    """Write ``message`` into the WAL (not bound to a transaction: it is decoded at once, in
    WAL order with the commits around it); its LSN."""
    row = conn.execute(
        "SELECT pg_logical_emit_message(false, %s, %s::bytea) - '0/0'::pg_lsn",
        (PREFIX, encode(message, key)),
    ).fetchone()
    return int(row[0]) if row else 0
