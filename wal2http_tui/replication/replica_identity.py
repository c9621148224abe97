"""Tables whose updates and deletes a publication would make PostgreSQL refuse.

When a publication publishes updates (or deletes), PostgreSQL refuses every UPDATE (DELETE) of a
published table that has no usable replica identity: "cannot update table ... because it does not
have a replica identity and publishes updates". That is the application's write failing, not
ours, so wal2http-tui never creates such a publication, and warns about an existing one.

A leaf table (partitions included: they are where rows live; unlogged and temporary tables are
never published) has a usable identity when it has REPLICA IDENTITY FULL, REPLICA IDENTITY USING
INDEX on an index that still exists, or REPLICA IDENTITY DEFAULT with a primary key that is not
deferrable (a deferrable one does not count, as PostgreSQL decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from wal2http_tui.replication.messages import RelationInfo

# How many tables a message names before it gives a count of the rest.
NAMED_AT_MOST = 5

_LEAVES_OF_ALL_TABLES = """
SELECT c.oid FROM pg_class c
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND c.oid >= 16384
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
"""

_LEAVES_OF_PUBLICATION = """
SELECT (quote_ident(schemaname) || '.' || quote_ident(tablename))::regclass::oid
FROM pg_publication_tables WHERE pubname = %s
"""

_WITHOUT_IDENTITY = """
WITH RECURSIVE tree(relid) AS (
    SELECT unnest(%s::oid[])
    UNION
    SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid
)
SELECT n.nspname, c.relname, c.relreplident,
       (SELECT x.indexrelid::regclass::text FROM pg_index x
        WHERE x.indrelid = c.oid AND x.indisunique AND x.indimmediate AND x.indisvalid
          AND x.indpred IS NULL AND x.indexprs IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attnum = ANY(x.indkey) AND NOT a.attnotnull)
        ORDER BY x.indexrelid LIMIT 1)
FROM (SELECT DISTINCT relid FROM tree) t
JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r' AND c.relpersistence = 'p'
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relreplident = 'n'
   OR (c.relreplident = 'd' AND NOT EXISTS (
        SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary AND x.indimmediate))
   OR (c.relreplident = 'i' AND NOT EXISTS (
        SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisreplident))
ORDER BY 1, 2
"""

_KEYS = """
SELECT c.oid, n.nspname, c.relname,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_index x
                 CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                 WHERE x.indrelid = c.oid
                   AND CASE WHEN c.relreplident = 'i' THEN x.indisreplident
                            ELSE x.indisprimary END), '{}')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY(%s::oid[])
ORDER BY 2, 3
"""


@dataclass(frozen=True)
class PublishedTable:
    """A table a publication publishes (or would), and the columns of its key: the replica
    identity index, else the primary key; none for a table without either."""

    oid: int
    schema: str
    table: str
    key_columns: tuple[str, ...]
    generated_columns: bool = False  # the publication publishes its stored generated columns

    @property
    def name(self) -> str:
        return sql_name(self.schema, self.table)


@dataclass(frozen=True)
class KeylessTable:
    """A table without a usable replica identity, and a unique index that could become one."""

    schema: str
    table: str
    identity: str  # pg_class.relreplident: 'd' default, 'n' nothing, 'i' index (dropped)
    candidate_index: str | None

    @property
    def name(self) -> str:
        return sql_name(self.schema, self.table)


def sql_name(schema: str, table: str) -> str:
    """``schema.table`` as SQL would need it written (quoted where it must be)."""
    return ".".join(_quote_if_needed(part) for part in (schema, table))


def _quote_if_needed(name: str) -> str:
    plain = name.isidentifier() and name == name.lower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'


def keyless_tables(
    conn: psycopg.Connection, tables: Sequence[sql.Composable] | None
) -> list[KeylessTable]:
    """The leaf tables that ``FOR TABLE tables`` (None: ``FOR ALL TABLES``) would publish and
    that have no usable replica identity."""
    return _without_identity(conn, _leaves(conn, tables))


def keyless_published_tables(conn: psycopg.Connection, publication: str) -> list[KeylessTable]:
    """The tables an existing publication publishes that have no usable replica identity."""
    return _without_identity(conn, _published_leaves(conn, publication))


def published_tables(
    conn: psycopg.Connection,
    publication: str | None,
    tables: Sequence[sql.Composable] | None,
    *,
    generated_columns: bool = False,
) -> list[PublishedTable]:
    """The tables of an existing ``publication``, or (None) those ``FOR TABLE tables`` (None:
    ``FOR ALL TABLES``) would publish (with ``generated_columns`` when it would publish stored
    generated columns), with their key columns."""
    oids = _published_leaves(conn, publication) if publication else _leaves(conn, tables)
    if not oids:
        return []
    if publication:
        generated_columns = publishes_generated_columns(conn, publication)
    return [
        PublishedTable(oid, schema, table, tuple(keys), generated_columns)
        for oid, schema, table, keys in conn.execute(_KEYS, (oids,))
    ]


def publishes_generated_columns(conn: psycopg.Connection, publication: str) -> bool:
    """Whether ``publication`` publishes stored generated columns (PostgreSQL 18+)."""
    if conn.info.server_version < 180000:
        return False
    row = conn.execute(
        "SELECT pubgencols::text = 's' FROM pg_publication WHERE pubname = %s", (publication,)
    ).fetchone()
    return bool(row and row[0])


def _leaves(conn: psycopg.Connection, tables: Sequence[sql.Composable] | None) -> list[int]:
    if tables is None:
        return [row[0] for row in conn.execute(_LEAVES_OF_ALL_TABLES)]
    names = [identifier.as_string(conn) for identifier in tables]
    found = conn.execute("SELECT to_regclass(unnest(%s::text[]))::oid", (names,))
    return [row[0] for row in found if row[0] is not None]  # a missing one fails CREATE


def _published_leaves(conn: psycopg.Connection, publication: str) -> list[int]:
    return [row[0] for row in conn.execute(_LEAVES_OF_PUBLICATION, (publication,))]


def _without_identity(conn: psycopg.Connection, oids: list[int]) -> list[KeylessTable]:
    if not oids:
        return []
    return [KeylessTable(*row) for row in conn.execute(_WITHOUT_IDENTITY, (oids,))]


def relation_lacks_identity(relation: RelationInfo) -> bool:
    """What a Relation message says: no key columns under DEFAULT or INDEX, or NOTHING."""
    identity = relation.replica_identity
    return identity == "n" or (identity in ("d", "i") and not relation.key_columns)


def named(tables: Sequence[str]) -> str:
    """``a, b, c`` for up to ``NAMED_AT_MOST`` names, then ``and N more``."""
    shown = ", ".join(tables[:NAMED_AT_MOST])
    rest = len(tables) - NAMED_AT_MOST
    return f"{shown} and {rest} more" if rest > 0 else shown


def fixes(example: KeylessTable | None) -> str:
    """The ways out, in the order a DBA prefers them, with SQL for ``example`` where it helps."""
    table = example.name if example else "TABLE"
    index = example.candidate_index if example and example.candidate_index else None
    using_index = (
        f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX {index}"
        if index
        else f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX <a unique index on NOT NULL "
        "columns>"
    )
    return (
        f"(1) add a primary key (ALTER TABLE {table} ADD PRIMARY KEY (...)); "
        f"(2) {using_index}; "
        f"(3) ALTER TABLE {table} REPLICA IDENTITY FULL (every update and delete then writes "
        "the whole old row to WAL); "
        "(4) list only the tables to stream in `tables`; "
        '(5) set publish = "insert, truncate" for the whole publication (updates and deletes '
        "of every table are then not streamed)"
    )


def relation_warning(relation: RelationInfo) -> str:
    """The warning for a table PostgreSQL announced while streaming without a usable identity."""
    name = sql_name(relation.schema, relation.table)
    example = KeylessTable(relation.schema, relation.table, relation.replica_identity, None)
    return (
        f"table {name} has no usable replica identity, so PostgreSQL refuses the application's "
        f"UPDATE and DELETE on it while the publication publishes them. Fix: {fixes(example)}"
    )
