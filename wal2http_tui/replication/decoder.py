"""Decoder for pgoutput, PostgreSQL's logical replication protocol (versions 1 to 4).

Pure: bytes in, ``ReplicationMessage`` out (see ``messages.py``). The only state is what
the protocol makes a receiver keep: the relations and types announced so far (changes refer to
them by oid) and whether a stream block is open (inside one, changes carry a transaction id).

Every malformed input raises ``ProtocolError`` naming the message type and the byte offset,
relative to the start of the pgoutput message, where decoding went wrong. Nothing else escapes,
and no count or length read from the wire makes the decoder allocate or loop beyond the bytes
actually present.

The Insert/Update/Delete path is kept tight (precompiled structs, one loop over the columns with
no per-column calls) because it runs once per replicated row.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from wal2http_tui.replication.messages import (
    UNCHANGED_TOAST,
    Begin,
    BeginPrepare,
    ColumnInfo,
    Commit,
    CommitPrepared,
    Delete,
    Insert,
    Message,
    Origin,
    Prepare,
    ProtocolError,
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
    TypeInfo,
    Update,
)

__all__ = ["PgOutputDecoder"]

REPLICA_IDENTITIES = frozenset("dnfi")
COLUMN_IS_KEY = 1

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class _Layout:
    """A fixed run of fields: one precompiled Struct for the fast path, names for the errors."""

    __slots__ = ("fields", "size", "struct")

    def __init__(self, *fields: tuple[str, str]) -> None:
        self.struct = struct.Struct(">" + "".join(code for _, code in fields))
        self.size = self.struct.size
        self.fields = tuple((name, struct.calcsize(">" + code)) for name, code in fields)

    def unpack(self, message: str, data: bytes, pos: int, base: int) -> tuple:
        if len(data) - pos < self.size:
            raise self._truncated(message, data, pos, base)
        return self.struct.unpack_from(data, pos)

    def _truncated(self, message: str, data: bytes, pos: int, base: int) -> ProtocolError:
        """The error for the first field that does not fit (only called when one does not)."""
        left = len(data) - pos
        for name, size in self.fields:
            if left < size:
                return ProtocolError(
                    message, pos - base, f"truncated: {name} needs {size} bytes, {left} left"
                )
            pos += size
            left -= size
        raise AssertionError("_truncated called although every field fits")


_XID = _Layout(("xid", "I"))
_COLUMN_FLAGS = _Layout(("column flags", "B"))
_NEW_MARKER = _Layout(("new tuple marker", "B"))
_ROW_HEAD = _Layout(("relation oid", "I"), ("tuple marker", "B"))
_BEGIN = _Layout(("final LSN", "Q"), ("commit timestamp", "q"), ("xid", "I"))
_COMMIT = _Layout(("flags", "B"), ("commit LSN", "Q"), ("end LSN", "Q"), ("commit timestamp", "q"))
_ORIGIN = _Layout(("origin LSN", "Q"))
_OID = _Layout(("oid", "I"))
_RELATION_TAIL = _Layout(("replica identity", "B"), ("column count", "h"))
_COLUMN_TYPE = _Layout(("column type oid", "I"), ("column type modifier", "i"))
_TRUNCATE = _Layout(("relation count", "i"), ("option flags", "B"))
_MESSAGE_HEAD = _Layout(("flags", "B"), ("LSN", "Q"))
_CONTENT_LENGTH = _Layout(("content length", "i"))
_STREAM_START = _Layout(("xid", "I"), ("first segment flag", "B"))
_STREAM_COMMIT = _Layout(
    ("xid", "I"), ("flags", "B"), ("commit LSN", "Q"), ("end LSN", "Q"), ("commit timestamp", "q")
)
_STREAM_ABORT = _Layout(("xid", "I"), ("subtransaction xid", "I"))
_STREAM_ABORT_PARALLEL = _Layout(
    ("xid", "I"), ("subtransaction xid", "I"), ("abort LSN", "Q"), ("abort timestamp", "q")
)
_BEGIN_PREPARE = _Layout(
    ("prepare LSN", "Q"), ("end LSN", "Q"), ("prepare timestamp", "q"), ("xid", "I")
)
_PREPARE = _Layout(
    ("flags", "B"), ("prepare LSN", "Q"), ("end LSN", "Q"), ("prepare timestamp", "q"), ("xid", "I")
)
_COMMIT_PREPARED = _Layout(
    ("flags", "B"), ("commit LSN", "Q"), ("end LSN", "Q"), ("commit timestamp", "q"), ("xid", "I")
)
_ROLLBACK_PREPARED = _Layout(
    ("flags", "B"),
    ("prepare end LSN", "Q"),
    ("rollback end LSN", "Q"),
    ("prepare timestamp", "q"),
    ("rollback timestamp", "q"),
    ("xid", "I"),
)

# Smallest possible column entry in a Relation message: flags, empty name + NUL, type oid, typmod.
_MIN_COLUMN_SIZE = 1 + 1 + 4 + 4


def _show(byte: int) -> str:
    return repr(chr(byte))


def _expect_end(message: str, data: bytes, pos: int, base: int) -> None:
    if pos != len(data):
        extra = len(data) - pos
        raise ProtocolError(message, pos - base, f"{extra} trailing byte{'s' * (extra != 1)}")


def _read_string(message: str, field: str, data: bytes, pos: int, base: int) -> tuple[str, int]:
    """A NUL-terminated UTF-8 string at ``pos``; returns it and the position after the NUL."""
    nul = data.find(b"\0", pos)
    if nul < 0:
        raise ProtocolError(message, pos - base, f"truncated: {field} has no terminating NUL")
    try:
        return data[pos:nul].decode(), nul + 1
    except UnicodeDecodeError as error:
        raise ProtocolError(
            message, pos + error.start - base, f"{field} is not valid UTF-8"
        ) from None


def _read_tuple(
    message: str, data: bytes, pos: int, base: int, ncols: int
) -> tuple[TupleData, int]:
    """TupleData at ``pos`` for a relation of ``ncols`` columns; returns it and the end position.

    The column loop is inlined (no call per column) and relies on IndexError/struct.error for
    running off the end, which costs nothing on the happy path; both become a ProtocolError
    pointing at the column that was cut off.
    """
    end = len(data)
    if end - pos < 2:
        raise ProtocolError(
            message, pos - base, f"truncated: tuple column count needs 2 bytes, {end - pos} left"
        )
    (count,) = _I16.unpack_from(data, pos)
    if count != ncols:
        raise ProtocolError(
            message, pos - base, f"tuple has {count} columns but the relation has {ncols}"
        )
    pos += 2
    values: list = []
    append = values.append
    column, start = 0, pos
    try:
        for column in range(count):
            start = pos
            kind = data[pos]
            if kind == 116:  # 't': text
                (length,) = _I32.unpack_from(data, pos + 1)
                pos += 5
                if length < 0 or length > end - pos:
                    raise ProtocolError(
                        message, start + 1 - base, _bad_length(column, length, end - pos)
                    )
                append(data[pos : pos + length].decode())
                pos += length
            elif kind == 110:  # 'n': NULL
                append(None)
                pos += 1
            elif kind == 117:  # 'u': unchanged TOASTed value
                append(UNCHANGED_TOAST)
                pos += 1
            elif kind == 98:  # 'b': binary
                (length,) = _I32.unpack_from(data, pos + 1)
                pos += 5
                if length < 0 or length > end - pos:
                    raise ProtocolError(
                        message, start + 1 - base, _bad_length(column, length, end - pos)
                    )
                append(data[pos : pos + length])
                pos += length
            else:
                raise ProtocolError(
                    message,
                    pos - base,
                    f"column {column}: unknown tuple column kind {_show(kind)} "
                    "(expected 'n', 'u', 't' or 'b')",
                )
    except (IndexError, struct.error):
        # Either the kind byte (at ``start``) or the length after it is missing.
        where = start if start >= end else start + 1
        raise ProtocolError(
            message, where - base, f"truncated: column {column} of {count} is cut off"
        ) from None
    except UnicodeDecodeError as error:
        raise ProtocolError(
            message, pos + error.start - base, f"column {column}: text value is not valid UTF-8"
        ) from None
    return tuple(values), pos


def _unannounced(message: str, oid: int, pos: int, base: int) -> ProtocolError:
    return ProtocolError(
        message, pos - base, f"relation {oid} was never announced by a Relation message"
    )


def _bad_length(column: int, length: int, left: int) -> str:
    if length < 0:
        return f"column {column}: negative value length {length}"
    return f"truncated: column {column} announces {length} bytes, {left} left"


class PgOutputDecoder:
    """Decodes pgoutput messages one at a time, keeping the relation and type catalogs.

    ``relations`` may be shared with whoever else needs the announced tables (Relation messages
    replace entries in place). ``parallel_streaming`` must match the replication options: with
    protocol 4 and ``streaming = parallel`` the server adds the abort LSN and timestamp to Stream
    Abort, and nothing in the message itself says so.
    """

    def __init__(
        self,
        relations: dict[int, RelationInfo] | None = None,
        types: dict[int, TypeInfo] | None = None,
        *,
        parallel_streaming: bool = False,
    ) -> None:
        self.relations: dict[int, RelationInfo] = {} if relations is None else relations
        self.types: dict[int, TypeInfo] = {} if types is None else types
        self.parallel_streaming = parallel_streaming
        self.in_stream = False
        self._handlers: dict[int, Callable[[bytes, int], ReplicationMessage]] = {
            ord("B"): self._begin,
            ord("C"): self._commit,
            ord("O"): self._origin,
            ord("R"): self._relation,
            ord("Y"): self._type,
            ord("I"): self._insert,
            ord("U"): self._update,
            ord("D"): self._delete,
            ord("T"): self._truncate,
            ord("M"): self._message,
            ord("S"): self._stream_start,
            ord("E"): self._stream_stop,
            ord("c"): self._stream_commit,
            ord("A"): self._stream_abort,
            ord("b"): self._begin_prepare,
            ord("P"): self._prepare,
            ord("K"): self._commit_prepared,
            ord("r"): self._rollback_prepared,
            ord("p"): self._stream_prepare,
        }

    def decode(self, data: bytes | memoryview, offset: int = 0) -> ReplicationMessage:
        """Decode the message that starts at ``offset`` and runs to the end of ``data``.

        ``offset`` lets the caller pass a whole CopyData 'w' buffer (payload at byte 25) without
        slicing it. A memoryview is copied to bytes once: the decoder relies on ``bytes.find``
        and on slices being bytes.
        """
        if type(data) is not bytes:
            data = bytes(data)
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        try:
            handler = self._handlers[data[offset]]
        except IndexError:
            raise ProtocolError("empty", 0, "no bytes at the message offset") from None
        except KeyError:
            kind = data[offset]
            raise ProtocolError(
                f"unknown {_show(kind)}", 0, f"unknown message type byte 0x{kind:02x}"
            ) from None
        return handler(data, offset)

    # --- transactions -------------------------------------------------------------------------

    def _begin(self, data: bytes, base: int) -> Begin:
        final_lsn, timestamp, xid = _BEGIN.unpack("Begin", data, base + 1, base)
        _expect_end("Begin", data, base + 1 + _BEGIN.size, base)
        return Begin(final_lsn, timestamp, xid)

    def _commit(self, data: bytes, base: int) -> Commit:
        flags, commit_lsn, end_lsn, timestamp = _COMMIT.unpack("Commit", data, base + 1, base)
        _expect_end("Commit", data, base + 1 + _COMMIT.size, base)
        return Commit(flags, commit_lsn, end_lsn, timestamp)

    def _origin(self, data: bytes, base: int) -> Origin:
        (origin_lsn,) = _ORIGIN.unpack("Origin", data, base + 1, base)
        name, pos = _read_string("Origin", "origin name", data, base + 1 + _ORIGIN.size, base)
        _expect_end("Origin", data, pos, base)
        return Origin(origin_lsn, name)

    # --- catalog ------------------------------------------------------------------------------

    def _stream_xid(self, message: str, data: bytes, pos: int, base: int) -> int:
        return _XID.unpack(message, data, pos, base)[0]

    def _relation(self, data: bytes, base: int) -> Relation:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Relation", data, pos, base)
            pos += 4
        (oid,) = _OID.unpack("Relation", data, pos, base)
        namespace, pos = _read_string("Relation", "namespace", data, pos + 4, base)
        name, pos = _read_string("Relation", "relation name", data, pos, base)
        identity, ncols = _RELATION_TAIL.unpack("Relation", data, pos, base)
        if chr(identity) not in REPLICA_IDENTITIES:
            raise ProtocolError(
                "Relation",
                pos - base,
                f"unknown replica identity {_show(identity)} (expected 'd', 'n', 'f' or 'i')",
            )
        if ncols < 0:
            raise ProtocolError("Relation", pos + 1 - base, f"negative column count {ncols}")
        pos += _RELATION_TAIL.size
        if ncols * _MIN_COLUMN_SIZE > len(data) - pos:
            raise ProtocolError(
                "Relation",
                pos - base,
                f"truncated: {ncols} columns announced but only {len(data) - pos} bytes left",
            )
        columns = []
        for _ in range(ncols):
            (flags,) = _COLUMN_FLAGS.unpack("Relation", data, pos, base)
            column_name, pos = _read_string("Relation", "column name", data, pos + 1, base)
            type_oid, type_modifier = _COLUMN_TYPE.unpack("Relation", data, pos, base)
            pos += _COLUMN_TYPE.size
            columns.append(
                ColumnInfo(column_name, type_oid, type_modifier, bool(flags & COLUMN_IS_KEY))
            )
        _expect_end("Relation", data, pos, base)
        info = RelationInfo(oid, namespace or "pg_catalog", name, chr(identity), tuple(columns))
        self.relations[oid] = info
        return Relation(info, xid)

    def _type(self, data: bytes, base: int) -> Type:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Type", data, pos, base)
            pos += 4
        (oid,) = _OID.unpack("Type", data, pos, base)
        namespace, pos = _read_string("Type", "namespace", data, pos + 4, base)
        name, pos = _read_string("Type", "type name", data, pos, base)
        _expect_end("Type", data, pos, base)
        info = TypeInfo(oid, namespace or "pg_catalog", name)
        self.types[oid] = info
        return Type(info, xid)

    # --- row changes --------------------------------------------------------------------------

    def _columns_of(self, message: str, oid: int, pos: int, base: int) -> int:
        """Column count of an announced relation (pgoutput always announces before use)."""
        relation = self.relations.get(oid)
        if relation is None:
            raise _unannounced(message, oid, pos, base)
        return len(relation.columns)

    def _insert(self, data: bytes, base: int) -> Insert:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Insert", data, pos, base)
            pos += 4
        oid, marker = _ROW_HEAD.unpack("Insert", data, pos, base)
        relation = self.relations.get(oid)
        if relation is None:
            raise _unannounced("Insert", oid, pos, base)
        if marker != 78:  # 'N'
            raise ProtocolError(
                "Insert", pos + 4 - base, f"expected new tuple marker 'N', got {_show(marker)}"
            )
        values, pos = _read_tuple("Insert", data, pos + 5, base, len(relation.columns))
        _expect_end("Insert", data, pos, base)
        return Insert(oid, values, xid)

    def _update(self, data: bytes, base: int) -> Update:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Update", data, pos, base)
            pos += 4
        oid, marker = _ROW_HEAD.unpack("Update", data, pos, base)
        ncols = self._columns_of("Update", oid, pos, base)
        pos += 5
        key_type = None
        old = None
        if marker == 75 or marker == 79:  # 'K' or 'O'
            key_type = chr(marker)
            old, pos = _read_tuple("Update", data, pos, base, ncols)
            (marker,) = _NEW_MARKER.unpack("Update", data, pos, base)
            pos += 1
            if marker != 78:
                raise ProtocolError(
                    "Update", pos - 1 - base, f"expected new tuple marker 'N', got {_show(marker)}"
                )
        elif marker != 78:
            raise ProtocolError(
                "Update",
                pos - 1 - base,
                f"expected tuple marker 'K', 'O' or 'N', got {_show(marker)}",
            )
        new, pos = _read_tuple("Update", data, pos, base, ncols)
        _expect_end("Update", data, pos, base)
        return Update(oid, key_type, old, new, xid)

    def _delete(self, data: bytes, base: int) -> Delete:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Delete", data, pos, base)
            pos += 4
        oid, marker = _ROW_HEAD.unpack("Delete", data, pos, base)
        ncols = self._columns_of("Delete", oid, pos, base)
        if marker != 75 and marker != 79:
            raise ProtocolError(
                "Delete", pos + 4 - base, f"expected tuple marker 'K' or 'O', got {_show(marker)}"
            )
        old, pos = _read_tuple("Delete", data, pos + 5, base, ncols)
        _expect_end("Delete", data, pos, base)
        return Delete(oid, chr(marker), old, xid)

    def _truncate(self, data: bytes, base: int) -> Truncate:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Truncate", data, pos, base)
            pos += 4
        nrels, flags = _TRUNCATE.unpack("Truncate", data, pos, base)
        if nrels < 0:
            raise ProtocolError("Truncate", pos - base, f"negative relation count {nrels}")
        pos += _TRUNCATE.size
        left = len(data) - pos
        if left < 4 * nrels:
            raise ProtocolError(
                "Truncate",
                pos - base,
                f"truncated: {nrels} relation oids need {4 * nrels} bytes, {left} left",
            )
        oids = struct.unpack_from(f">{nrels}I", data, pos)
        for index, oid in enumerate(oids):
            self._columns_of("Truncate", oid, pos + 4 * index, base)
        _expect_end("Truncate", data, pos + 4 * nrels, base)
        return Truncate(oids, flags, xid)

    def _message(self, data: bytes, base: int) -> Message:
        pos = base + 1
        xid = None
        if self.in_stream:
            xid = self._stream_xid("Message", data, pos, base)
            pos += 4
        flags, lsn = _MESSAGE_HEAD.unpack("Message", data, pos, base)
        prefix, pos = _read_string("Message", "prefix", data, pos + _MESSAGE_HEAD.size, base)
        (length,) = _CONTENT_LENGTH.unpack("Message", data, pos, base)
        if length < 0:
            raise ProtocolError("Message", pos - base, f"negative content length {length}")
        pos += 4
        if length > len(data) - pos:
            raise ProtocolError(
                "Message",
                pos - 4 - base,
                f"truncated: content announces {length} bytes, {len(data) - pos} left",
            )
        content = data[pos : pos + length]
        _expect_end("Message", data, pos + length, base)
        return Message(bool(flags & 1), lsn, prefix, content, xid)

    # --- streamed transactions (protocol 2+) --------------------------------------------------

    def _stream_start(self, data: bytes, base: int) -> StreamStart:
        xid, first_segment = _STREAM_START.unpack("StreamStart", data, base + 1, base)
        _expect_end("StreamStart", data, base + 1 + _STREAM_START.size, base)
        self.in_stream = True
        return StreamStart(xid, bool(first_segment))

    def _stream_stop(self, data: bytes, base: int) -> StreamStop:
        _expect_end("StreamStop", data, base + 1, base)
        self.in_stream = False
        return StreamStop()

    def _stream_commit(self, data: bytes, base: int) -> StreamCommit:
        fields = _STREAM_COMMIT.unpack("StreamCommit", data, base + 1, base)
        _expect_end("StreamCommit", data, base + 1 + _STREAM_COMMIT.size, base)
        return StreamCommit(*fields)

    def _stream_abort(self, data: bytes, base: int) -> StreamAbort:
        layout = _STREAM_ABORT_PARALLEL if self.parallel_streaming else _STREAM_ABORT
        fields = layout.unpack("StreamAbort", data, base + 1, base)
        _expect_end("StreamAbort", data, base + 1 + layout.size, base)
        return StreamAbort(*fields)

    # --- two-phase commit (protocol 3+) -------------------------------------------------------

    def _gid(self, message: str, data: bytes, pos: int, base: int) -> str:
        gid, pos = _read_string(message, "gid", data, pos, base)
        _expect_end(message, data, pos, base)
        return gid

    def _begin_prepare(self, data: bytes, base: int) -> BeginPrepare:
        lsn, end_lsn, timestamp, xid = _BEGIN_PREPARE.unpack("BeginPrepare", data, base + 1, base)
        gid = self._gid("BeginPrepare", data, base + 1 + _BEGIN_PREPARE.size, base)
        return BeginPrepare(lsn, end_lsn, timestamp, xid, gid)

    def _prepare(self, data: bytes, base: int) -> Prepare:
        flags, lsn, end_lsn, timestamp, xid = _PREPARE.unpack("Prepare", data, base + 1, base)
        gid = self._gid("Prepare", data, base + 1 + _PREPARE.size, base)
        return Prepare(flags, lsn, end_lsn, timestamp, xid, gid)

    def _commit_prepared(self, data: bytes, base: int) -> CommitPrepared:
        fields = _COMMIT_PREPARED.unpack("CommitPrepared", data, base + 1, base)
        flags, lsn, end_lsn, timestamp, xid = fields
        gid = self._gid("CommitPrepared", data, base + 1 + _COMMIT_PREPARED.size, base)
        return CommitPrepared(flags, lsn, end_lsn, timestamp, xid, gid)

    def _rollback_prepared(self, data: bytes, base: int) -> RollbackPrepared:
        fields = _ROLLBACK_PREPARED.unpack("RollbackPrepared", data, base + 1, base)
        flags, prepare_end, rollback_end, prepare_time, rollback_time, xid = fields
        gid = self._gid("RollbackPrepared", data, base + 1 + _ROLLBACK_PREPARED.size, base)
        return RollbackPrepared(
            flags, prepare_end, rollback_end, prepare_time, rollback_time, xid, gid
        )

    def _stream_prepare(self, data: bytes, base: int) -> StreamPrepare:
        flags, lsn, end_lsn, timestamp, xid = _PREPARE.unpack("StreamPrepare", data, base + 1, base)
        gid = self._gid("StreamPrepare", data, base + 1 + _PREPARE.size, base)
        return StreamPrepare(flags, lsn, end_lsn, timestamp, xid, gid)
