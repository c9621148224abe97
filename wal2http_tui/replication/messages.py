"""The replication vocabulary: pgoutput messages, relations and tuples (the seed's ``types``).

LSNs are ints (``format_lsn`` renders ``X/X``); timestamps are microseconds since the PostgreSQL
epoch (2000-01-01 UTC), as on the wire (``pg_timestamp_to_datetime`` converts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

Oid: TypeAlias = int
Xid: TypeAlias = int
Lsn: TypeAlias = int

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class ProtocolError(Exception):
    """A pgoutput message that cannot be decoded; names the message type and the byte offset."""

    def __init__(self, message_type: str, offset: int, problem: str) -> None:
        super().__init__(f"malformed pgoutput {message_type} message at byte {offset}: {problem}")
        self.message_type = message_type
        self.offset = offset
        self.problem = problem
        self.lsn: Lsn | None = None  # where in the WAL the message was (set by the stream)


class UnchangedToast:
    """A column PostgreSQL did not send because its TOASTed value did not change ('u')."""

    _instance: UnchangedToast | None = None

    def __new__(cls) -> UnchangedToast:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"

    def __reduce__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = UnchangedToast()

# One value per column, in the relation's column order: None for SQL NULL ('n'),
# UNCHANGED_TOAST ('u'), str for text format ('t'), bytes for binary format ('b').
ColumnValue: TypeAlias = "str | bytes | UnchangedToast | None"
TupleData: TypeAlias = "tuple[ColumnValue, ...]"


def format_lsn(lsn: Lsn) -> str:
    """``0x16B3748`` -> ``0/16B3748``, as PostgreSQL renders a pg_lsn."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> Lsn:
    """``0/16B3748`` -> ``0x16B3748``; ValueError on anything else."""
    high, sep, low = text.strip().partition("/")
    if not sep or not high or not low:
        raise ValueError(f"not an LSN: {text!r} (expected X/X, e.g. 0/16B3748)")
    hi, lo = int(high, 16), int(low, 16)
    if not (0 <= hi <= 0xFFFFFFFF and 0 <= lo <= 0xFFFFFFFF):
        raise ValueError(f"not an LSN: {text!r} (each half must fit in 32 bits)")
    return (hi << 32) | lo


def pg_timestamp_to_datetime(micros: int) -> datetime:
    """Wire timestamp (microseconds since 2000-01-01 UTC) -> aware UTC datetime."""
    return PG_EPOCH + timedelta(microseconds=micros)


def datetime_to_pg_timestamp(moment: datetime) -> int:
    delta = moment - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type_oid: Oid
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class RelationInfo:
    """A table as announced by a Relation message."""

    oid: Oid
    schema: str
    table: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[ColumnInfo, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.is_key)


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """A custom type as announced by a Type message."""

    oid: Oid
    schema: str
    name: str


# ---------------------------------------------------------------------------------------------
# ReplicationMessage variants. ``xid`` on a change is set only inside a streamed transaction
# (between StreamStart and StreamStop), where pgoutput prefixes changes with the (sub)xid.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: Lsn
    timestamp: int
    xid: Xid


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: Lsn
    end_lsn: Lsn
    timestamp: int


@dataclass(frozen=True, slots=True)
class Origin:
    origin_lsn: Lsn
    name: str


@dataclass(frozen=True, slots=True)
class Relation:
    relation: RelationInfo
    xid: Xid | None = None


@dataclass(frozen=True, slots=True)
class Type:
    type_info: TypeInfo
    xid: Xid | None = None


@dataclass(frozen=True, slots=True)
class Insert:
    relation_id: Oid
    tuple_data: TupleData
    xid: Xid | None = None

    @property
    def is_stream(self) -> bool:
        return self.xid is not None


@dataclass(frozen=True, slots=True)
class Update:
    relation_id: Oid
    key_type: str | None  # 'K' (key columns), 'O' (whole old row) or None
    old_tuple_data: TupleData | None
    new_tuple_data: TupleData
    xid: Xid | None = None

    @property
    def is_stream(self) -> bool:
        return self.xid is not None


@dataclass(frozen=True, slots=True)
class Delete:
    relation_id: Oid
    key_type: str  # 'K' or 'O'
    tuple_data: TupleData
    xid: Xid | None = None

    @property
    def is_stream(self) -> bool:
        return self.xid is not None


TRUNCATE_CASCADE = 1
TRUNCATE_RESTART_IDENTITY = 2


@dataclass(frozen=True, slots=True)
class Truncate:
    relation_ids: tuple[Oid, ...]
    flags: int
    xid: Xid | None = None

    @property
    def is_stream(self) -> bool:
        return self.xid is not None


@dataclass(frozen=True, slots=True)
class Message:
    """A logical decoding message (``pg_logical_emit_message``)."""

    transactional: bool
    lsn: Lsn
    prefix: str
    content: bytes
    xid: Xid | None = None


@dataclass(frozen=True, slots=True)
class StreamStart:
    xid: Xid
    first_segment: bool


@dataclass(frozen=True, slots=True)
class StreamStop:
    pass


@dataclass(frozen=True, slots=True)
class StreamCommit:
    xid: Xid
    flags: int
    commit_lsn: Lsn
    end_lsn: Lsn
    timestamp: int


@dataclass(frozen=True, slots=True)
class StreamAbort:
    xid: Xid
    subtransaction_xid: Xid
    abort_lsn: Lsn | None = None  # protocol 4 with streaming = parallel
    abort_timestamp: int | None = None


@dataclass(frozen=True, slots=True)
class BeginPrepare:
    prepare_lsn: Lsn
    end_lsn: Lsn
    timestamp: int
    xid: Xid
    gid: str


@dataclass(frozen=True, slots=True)
class Prepare:
    flags: int
    prepare_lsn: Lsn
    end_lsn: Lsn
    timestamp: int
    xid: Xid
    gid: str


@dataclass(frozen=True, slots=True)
class CommitPrepared:
    flags: int
    commit_lsn: Lsn
    end_lsn: Lsn
    timestamp: int
    xid: Xid
    gid: str


@dataclass(frozen=True, slots=True)
class RollbackPrepared:
    flags: int
    prepare_end_lsn: Lsn
    rollback_end_lsn: Lsn
    prepare_timestamp: int
    rollback_timestamp: int
    xid: Xid
    gid: str


@dataclass(frozen=True, slots=True)
class StreamPrepare:
    flags: int
    prepare_lsn: Lsn
    end_lsn: Lsn
    timestamp: int
    xid: Xid
    gid: str


ReplicationMessage: TypeAlias = (
    Begin
    | Commit
    | Origin
    | Relation
    | Type
    | Insert
    | Update
    | Delete
    | Truncate
    | Message
    | StreamStart
    | StreamStop
    | StreamCommit
    | StreamAbort
    | BeginPrepare
    | Prepare
    | CommitPrepared
    | RollbackPrepared
    | StreamPrepare
)
