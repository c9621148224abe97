"""The initial snapshot: every row of the publication's tables as of the slot's consistent point.

The slot is created with an exported snapshot (``ReplicationConnection.create_slot_exporting``);
an SQL connection imports it (``SET TRANSACTION SNAPSHOT`` in a REPEATABLE READ transaction) and
reads each table through a cursor, ``chunk_rows`` rows at a time, so memory stays bounded
whatever the table size. Values come as the text PostgreSQL's output functions write, the same
text pgoutput sends, and go through the same converters, so a read row renders exactly as the
stream would render it.

Rows become ``read`` changes. ``extra`` carries what the event says of the snapshot: its
position, the table, the chunk, and whether the row is the table's last.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import psycopg
from psycopg import pq, sql

from wal2http_tui.replication.assembler import read_change
from wal2http_tui.replication.deadlines import deadline
from wal2http_tui.replication.messages import ColumnInfo, RelationInfo, TupleData, format_lsn
from wal2http_tui.replication.replica_identity import PublishedTable
from wal2http_tui.replication.transactions import Change
from wal2http_tui.replication.values import ValueConverter

# The columns pgoutput would announce for a table (generated columns are not sent), and which
# belong to its replica identity, as a Relation message would mark them.
_COLUMNS = """
SELECT a.attname, a.atttypid, a.atttypmod,
       c.relreplident = 'f' OR coalesce(a.attnum = ANY(x.indkey), false)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_index x ON x.indrelid = c.oid
     AND CASE c.relreplident WHEN 'i' THEN x.indisreplident WHEN 'd' THEN x.indisprimary
         ELSE false END
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped {generated}
ORDER BY a.attnum
"""


def relation_of(conn: psycopg.Connection, table: PublishedTable) -> RelationInfo:
    identity = conn.execute("SELECT relreplident FROM pg_class WHERE oid = %s", (table.oid,))
    (replica_identity,) = identity.fetchone() or ("n",)
    # what pgoutput sends of generated columns (PostgreSQL 12+): none, or with
    # publish_generated_columns = stored (18+) the stored ones, never the virtual ones
    generated = ""
    if conn.info.server_version >= 120000:
        generated = (
            "AND a.attgenerated <> 'v'" if table.generated_columns else ("AND a.attgenerated = ''")
        )
    query = sql.SQL(_COLUMNS).format(generated=sql.SQL(generated))
    columns = tuple(
        ColumnInfo(name, type_oid, modifier, bool(is_key))
        for name, type_oid, modifier, is_key in conn.execute(query, (table.oid,))
    )
    return RelationInfo(table.oid, table.schema, table.table, replica_identity, columns)


def read_snapshot(
    conn: psycopg.Connection,
    snapshot_name: str,
    snapshot_lsn: int,
    tables: Sequence[PublishedTable],
    converter: ValueConverter,
    *,
    chunk_rows: int,
    restart: bool = False,
    timeout: float = 0.0,
) -> Iterator[list[Change]]:
    """The rows of ``tables`` as of the exported snapshot, in chunks of at most ``chunk_rows``
    changes. With ``restart`` (an earlier attempt was interrupted), each table starts with a
    truncate change, so a receiver drops what the interrupted attempt sent before it is
    filled again. Every call is bounded by ``timeout`` seconds (0: unbounded), like every
    other SQL call of the engine."""
    with deadline(conn, timeout, "starting the initial snapshot"):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_name)))
    for table in tables:
        yield from _read_table(conn, table, snapshot_lsn, converter, chunk_rows, restart, timeout)
    with deadline(conn, timeout, "ending the initial snapshot"):
        conn.execute("ROLLBACK")


def _read_table(
    conn: psycopg.Connection,
    table: PublishedTable,
    snapshot_lsn: int,
    converter: ValueConverter,
    chunk_rows: int,
    restart: bool,
    timeout: float,
) -> Iterator[list[Change]]:
    name = f"{table.schema}.{table.table}"
    with deadline(conn, timeout, f"reading the columns of {name}"):
        relation = relation_of(conn, table)
    convert = converter.row_converter(relation)
    keys = converter.key_columns(relation)
    columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in relation.columns)
    query = sql.SQL("DECLARE wal2http_snapshot NO SCROLL CURSOR FOR SELECT {} FROM ONLY {}").format(
        columns, sql.Identifier(table.schema, table.table)
    )
    with deadline(conn, timeout, f"opening a cursor on {name}"):
        conn.execute(query)
    chunk: list[Change] = []
    if restart:
        restarted = {"cascade": False, "restart_identity": False, "snapshot_restart": True}
        chunk.append(Change("truncate", table.schema, table.table, None, None, None, (), restarted))
    chunks = 0
    rows = _rows(conn, f"FETCH {chunk_rows} FROM wal2http_snapshot".encode(), name, timeout)
    row = next(rows, None)
    number = 0
    while row is not None:
        following = next(rows, None)
        extra = {
            "snapshot_lsn": format_lsn(snapshot_lsn),
            "table": name,
            "chunk": chunks,
            "row": number,
            "last": following is None,
        }
        chunk.append(read_change(convert, keys, relation, row, extra))
        number += 1
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
            chunks += 1
        row = following
    with deadline(conn, timeout, f"closing the cursor on {name}"):
        conn.execute("CLOSE wal2http_snapshot")
    if chunk:
        yield chunk


def _rows(conn: psycopg.Connection, fetch: bytes, name: str, timeout: float) -> Iterator[TupleData]:
    """Every row of the open cursor, as text values (what the output functions write)."""
    while True:
        with deadline(conn, timeout, f"reading {name} for the initial snapshot"):
            result = conn.pgconn.exec_(fetch)
        if result.status != pq.ExecStatus.TUPLES_OK:
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise psycopg.OperationalError(f"reading {name} for the initial snapshot: {message}")
        yield from text_rows(result)
        if result.ntuples == 0:
            return


def text_rows(result: pq.abc.PGresult) -> Iterator[tuple[str | None, ...]]:
    """The rows of a text-format result as pgoutput would send them: each value the text its
    type's output function writes, or None."""
    get_value, columns = result.get_value, range(result.nfields)
    for i in range(result.ntuples):
        yield tuple(None if (value := get_value(i, j)) is None else value.decode() for j in columns)
