"""Test-side pgoutput encoder: the inverse of ``replication/decoder.py``, written from the docs.

``encode(message)`` turns a ReplicationMessage dataclass into the bytes pgoutput would send.
Changes whose ``xid`` is set are written with the stream-mode xid prefix; names are written as
given (so a RelationInfo with schema "" encodes what the server sends for pg_catalog).
"""

from __future__ import annotations

import struct

from wal2http_tui.replication.messages import (
    UNCHANGED_TOAST,
    Begin,
    BeginPrepare,
    Commit,
    CommitPrepared,
    Delete,
    Insert,
    Message,
    Origin,
    Prepare,
    Relation,
    RelationInfo,
    ReplicationMessage,
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    TupleData,
    Type,
    Update,
)


def string(text: str) -> bytes:
    return text.encode() + b"\0"


def int16(value: int) -> bytes:
    return struct.pack(">h", value)


def int32(value: int) -> bytes:
    return struct.pack(">i", value)


def uint32(value: int) -> bytes:
    return struct.pack(">I", value)


def column_value(value: object) -> bytes:
    if value is None:
        return b"n"
    if value is UNCHANGED_TOAST:
        return b"u"
    if isinstance(value, str):
        raw = value.encode()
        return b"t" + int32(len(raw)) + raw
    if isinstance(value, bytes):
        return b"b" + int32(len(value)) + value
    raise TypeError(f"not a column value: {value!r}")


def tuple_data(values: TupleData) -> bytes:
    return int16(len(values)) + b"".join(column_value(value) for value in values)


def _xid_prefix(xid: int | None) -> bytes:
    return b"" if xid is None else uint32(xid)


def relation_body(info: RelationInfo) -> bytes:
    columns = b"".join(
        struct.pack(">B", int(column.is_key))
        + string(column.name)
        + struct.pack(">Ii", column.type_oid, column.type_modifier)
        for column in info.columns
    )
    return (
        uint32(info.oid)
        + string(info.schema)
        + string(info.table)
        + info.replica_identity.encode()
        + int16(len(info.columns))
        + columns
    )


def encode(message: ReplicationMessage, *, parallel_streaming: bool = False) -> bytes:
    """The pgoutput bytes for ``message`` (``parallel_streaming`` only matters for StreamAbort)."""
    match message:
        case Begin(final_lsn, timestamp, xid):
            return b"B" + struct.pack(">QqI", final_lsn, timestamp, xid)
        case Commit(flags, commit_lsn, end_lsn, timestamp):
            return b"C" + struct.pack(">BQQq", flags, commit_lsn, end_lsn, timestamp)
        case Origin(origin_lsn, name):
            return b"O" + struct.pack(">Q", origin_lsn) + string(name)
        case Relation(info, xid):
            return b"R" + _xid_prefix(xid) + relation_body(info)
        case Type(info, xid):
            return (
                b"Y" + _xid_prefix(xid) + uint32(info.oid) + string(info.schema) + string(info.name)
            )
        case Insert(relation_id, values, xid):
            return b"I" + _xid_prefix(xid) + uint32(relation_id) + b"N" + tuple_data(values)
        case Update(relation_id, key_type, old, new, xid):
            old_part = b"" if key_type is None else key_type.encode() + tuple_data(old)
            return b"U" + _xid_prefix(xid) + uint32(relation_id) + old_part + b"N" + tuple_data(new)
        case Delete(relation_id, key_type, values, xid):
            return (
                b"D"
                + _xid_prefix(xid)
                + uint32(relation_id)
                + key_type.encode()
                + tuple_data(values)
            )
        case Truncate(relation_ids, flags, xid):
            return (
                b"T"
                + _xid_prefix(xid)
                + struct.pack(">iB", len(relation_ids), flags)
                + b"".join(uint32(oid) for oid in relation_ids)
            )
        case Message(transactional, lsn, prefix, content, xid):
            return (
                b"M"
                + _xid_prefix(xid)
                + struct.pack(">BQ", int(transactional), lsn)
                + string(prefix)
                + int32(len(content))
                + content
            )
        case StreamStart(xid, first_segment):
            return b"S" + struct.pack(">IB", xid, int(first_segment))
        case StreamStop():
            return b"E"
        case StreamCommit(xid, flags, commit_lsn, end_lsn, timestamp):
            return b"c" + struct.pack(">IBQQq", xid, flags, commit_lsn, end_lsn, timestamp)
        case StreamAbort(xid, subxid, abort_lsn, abort_timestamp):
            head = b"A" + struct.pack(">II", xid, subxid)
            if not parallel_streaming:
                return head
            return head + struct.pack(">Qq", abort_lsn, abort_timestamp)
        case BeginPrepare(prepare_lsn, end_lsn, timestamp, xid, gid):
            return b"b" + struct.pack(">QQqI", prepare_lsn, end_lsn, timestamp, xid) + string(gid)
        case Prepare(flags, prepare_lsn, end_lsn, timestamp, xid, gid):
            fields = struct.pack(">BQQqI", flags, prepare_lsn, end_lsn, timestamp, xid)
            return b"P" + fields + string(gid)
        case CommitPrepared(flags, commit_lsn, end_lsn, timestamp, xid, gid):
            fields = struct.pack(">BQQqI", flags, commit_lsn, end_lsn, timestamp, xid)
            return b"K" + fields + string(gid)
        case RollbackPrepared(flags, prepare_end, rollback_end, prepare_ts, rollback_ts, xid, gid):
            fields = struct.pack(
                ">BQQqqI", flags, prepare_end, rollback_end, prepare_ts, rollback_ts, xid
            )
            return b"r" + fields + string(gid)
        case StreamPrepare(flags, prepare_lsn, end_lsn, timestamp, xid, gid):
            fields = struct.pack(">BQQqI", flags, prepare_lsn, end_lsn, timestamp, xid)
            return b"p" + fields + string(gid)
    raise TypeError(f"cannot encode {message!r}")
