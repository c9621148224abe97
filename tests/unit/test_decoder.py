"""The pgoutput decoder: round trips, malformed input and fuzzing, without a server
(``tests/integration/test_decoder_server.py`` decodes what a real server sends)."""

from __future__ import annotations

import struct
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pgoutput_encoder import (
    column_value,
    encode,
    int16,
    int32,
    string,
    tuple_data,
    uint32,
)
from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import (
    TRUNCATE_CASCADE,
    TRUNCATE_RESTART_IDENTITY,
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
    RollbackPrepared,
    StreamAbort,
    StreamCommit,
    StreamPrepare,
    StreamStart,
    StreamStop,
    Truncate,
    Type,
    TypeInfo,
    Update,
)

ITEMS = RelationInfo(
    oid=16384,
    schema="public",
    table="items",
    replica_identity="d",
    columns=(
        ColumnInfo("id", 23, -1, True),
        ColumnInfo("name", 25, -1, False),
        ColumnInfo("created", 1184, -1, False),
        ColumnInfo("price", 1700, 655366, False),
    ),
)
OTHER = RelationInfo(16390, "sales", "orders", "f", (ColumnInfo("n", 20, -1, False),))

BIG_LSN = 0xFFFF_FFFF_0000_0010  # above 2**63: LSNs are unsigned
BIG_XID = 0xFFFF_FFF0  # above 2**31: xids are unsigned
OLD_TS = -86_400_000_000  # 1999-12-31: timestamps are signed
ROW = ("1", "café ☕", "2024-01-02 03:04:05+00", "12.50")


def decoder(*relations: RelationInfo, **kwargs: bool) -> PgOutputDecoder:
    return PgOutputDecoder({r.oid: r for r in relations}, **kwargs)


def error_of(raw: bytes, dec: PgOutputDecoder | None = None) -> ProtocolError:
    dec = dec or decoder(ITEMS, OTHER)
    with pytest.raises(ProtocolError) as caught:
        dec.decode(raw)
    return caught.value


# --- round trips -------------------------------------------------------------------------------

ROUND_TRIPS = [
    Begin(final_lsn=BIG_LSN, timestamp=OLD_TS, xid=BIG_XID),
    Commit(flags=0, commit_lsn=0x16B3748, end_lsn=BIG_LSN, timestamp=789_000_000_000_000),
    Origin(origin_lsn=BIG_LSN, name="node_a"),
    Type(TypeInfo(oid=90001, schema="public", name="mood")),
    Insert(ITEMS.oid, ROW),
    Insert(ITEMS.oid, ("2", None, UNCHANGED_TOAST, "")),
    Insert(ITEMS.oid, ("3", b"\x00\xff", None, b"")),
    Update(ITEMS.oid, None, None, ("1", "new", UNCHANGED_TOAST, "1")),
    Update(ITEMS.oid, "K", ("1", None, None, None), ("10", "x", "y", "z")),
    Update(ITEMS.oid, "O", ROW, ("1", "z", "y", "x")),
    Delete(ITEMS.oid, "K", ("1", None, None, None)),
    Delete(ITEMS.oid, "O", ROW),
    Truncate((ITEMS.oid,), 0),
    Truncate((ITEMS.oid, OTHER.oid), TRUNCATE_CASCADE),
    Truncate((OTHER.oid,), TRUNCATE_RESTART_IDENTITY),
    Truncate((ITEMS.oid, OTHER.oid), TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY),
    Message(transactional=True, lsn=BIG_LSN, prefix="pfx", content=b"hello\x00\xff"),
    Message(transactional=False, lsn=1, prefix="", content=b""),
    StreamCommit(xid=BIG_XID, flags=0, commit_lsn=5, end_lsn=BIG_LSN, timestamp=OLD_TS),
    StreamAbort(xid=BIG_XID, subtransaction_xid=BIG_XID + 1),
    BeginPrepare(prepare_lsn=7, end_lsn=BIG_LSN, timestamp=OLD_TS, xid=BIG_XID, gid="tx-1"),
    Prepare(flags=0, prepare_lsn=7, end_lsn=8, timestamp=9, xid=BIG_XID, gid="tx-1"),
    CommitPrepared(flags=0, commit_lsn=10, end_lsn=BIG_LSN, timestamp=11, xid=12, gid="g"),
    RollbackPrepared(
        flags=0,
        prepare_end_lsn=13,
        rollback_end_lsn=BIG_LSN,
        prepare_timestamp=OLD_TS,
        rollback_timestamp=14,
        xid=15,
        gid="ünïcode gid",
    ),
    StreamPrepare(flags=0, prepare_lsn=16, end_lsn=17, timestamp=18, xid=BIG_XID, gid="sp"),
]


@pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: type(m).__name__)
def test_round_trip(message):
    assert decoder(ITEMS, OTHER).decode(encode(message)) == message


def test_begin_fields_sit_at_the_documented_offsets():
    raw = b"B" + bytes.fromhex("00000000016B3748") + bytes.fromhex("0000000000000005")
    raw += bytes.fromhex("0000004D")
    assert decoder().decode(raw) == Begin(final_lsn=0x16B3748, timestamp=5, xid=77)


def test_insert_decodes_every_column_kind():
    raw = (
        b"I"
        + uint32(ITEMS.oid)
        + b"N"
        + int16(4)
        + b"n"
        + b"u"
        + b"t"
        + int32(3)
        + b"abc"
        + b"b"
        + int32(2)
        + b"\x01\x02"
    )
    assert decoder(ITEMS).decode(raw) == Insert(
        ITEMS.oid, (None, UNCHANGED_TOAST, "abc", b"\x01\x02")
    )


def test_relation_is_stored_and_replaces_the_older_definition():
    relations: dict[int, RelationInfo] = {}
    dec = PgOutputDecoder(relations)
    assert dec.decode(encode(Relation(ITEMS))) == Relation(ITEMS)
    assert relations == {ITEMS.oid: ITEMS}
    assert relations[ITEMS.oid].key_columns == ("id",)

    altered = RelationInfo(ITEMS.oid, "public", "items", "f", ITEMS.columns[:2])
    assert dec.decode(encode(Relation(altered))).relation == altered
    assert relations[ITEMS.oid] == altered
    # The new definition governs the column count from now on.
    assert dec.decode(encode(Insert(ITEMS.oid, ("1", "a")))).tuple_data == ("1", "a")


@pytest.mark.parametrize("identity", ["d", "n", "f", "i"])
def test_relation_replica_identities(identity):
    info = RelationInfo(7, "s", "t", identity, ())
    assert decoder().decode(encode(Relation(info))).relation.replica_identity == identity


def test_relation_key_flag_is_bit_one():
    raw = (
        b"R"
        + uint32(5)
        + string("s")
        + string("t")
        + b"i"
        + int16(2)
        + b"\x01"
        + string("a")
        + struct.pack(">Ii", 23, -1)
        + b"\x00"
        + string("b")
        + struct.pack(">Ii", 1043, 36)
    )
    relation = decoder().decode(raw).relation
    assert relation.columns == (
        ColumnInfo("a", 23, -1, True),
        ColumnInfo("b", 1043, 36, False),
    )
    assert relation.key_columns == ("a",)


def test_empty_namespace_means_pg_catalog():
    dec = decoder()
    rel = dec.decode(encode(Relation(RelationInfo(1259, "", "pg_class", "n", ()))))
    assert rel.relation.schema == "pg_catalog"
    assert rel.relation.qualified_name == "pg_catalog.pg_class"
    assert dec.relations[1259].schema == "pg_catalog"
    typ = dec.decode(encode(Type(TypeInfo(16, "", "bool"))))
    assert typ.type_info == TypeInfo(16, "pg_catalog", "bool")
    assert dec.types == {16: TypeInfo(16, "pg_catalog", "bool")}


def test_stream_block_prefixes_changes_with_the_xid():
    dec = decoder(OTHER)
    sub = BIG_XID + 3
    stream = [
        StreamStart(xid=BIG_XID, first_segment=True),
        Relation(ITEMS, xid=BIG_XID),
        Type(TypeInfo(90001, "public", "mood"), xid=BIG_XID),
        Insert(ITEMS.oid, ROW, xid=BIG_XID),
        Update(ITEMS.oid, "K", ("1", None, None, None), ROW, xid=sub),
        Update(ITEMS.oid, None, None, ROW, xid=sub),
        Delete(ITEMS.oid, "O", ROW, xid=sub),
        Truncate((ITEMS.oid, OTHER.oid), TRUNCATE_CASCADE, xid=BIG_XID),
        Message(True, 99, "pfx", b"in stream", xid=BIG_XID),
        StreamStop(),
        StreamStart(xid=BIG_XID, first_segment=False),
        Insert(ITEMS.oid, ROW, xid=sub),
        StreamStop(),
        StreamCommit(BIG_XID, 0, 100, 101, 102),
    ]
    decoded = []
    for message in stream:
        decoded.append(dec.decode(encode(message)))
        assert dec.in_stream == (message != StreamStop() and type(message) is not StreamCommit)
    assert decoded == stream
    assert dec.relations[ITEMS.oid] == ITEMS
    assert decoded[3].is_stream
    assert not dec.in_stream
    # Outside the block the same change has no prefix and no xid.
    after = dec.decode(encode(Insert(ITEMS.oid, ROW)))
    assert after == Insert(ITEMS.oid, ROW, xid=None)
    assert not after.is_stream


def test_inside_a_stream_the_xid_prefix_is_required():
    dec = decoder(ITEMS)
    dec.decode(encode(StreamStart(1, True)))
    # Without the prefix the oid is read as the xid and the 'N' marker as part of the oid.
    error = error_of(encode(Insert(ITEMS.oid, ROW)), dec)
    assert (error.message_type, error.offset) == ("Insert", 5)
    assert "never announced" in error.problem


def test_stream_abort_without_parallel_fields():
    raw = b"A" + struct.pack(">II", 500, 501)
    assert decoder().decode(raw) == StreamAbort(500, 501, None, None)
    error = error_of(raw, decoder(parallel_streaming=True))
    assert (error.message_type, error.offset) == ("StreamAbort", 9)
    assert "abort LSN" in error.problem


def test_stream_abort_with_parallel_fields():
    raw = b"A" + struct.pack(">IIQq", 500, 501, BIG_LSN, OLD_TS)
    dec = decoder(parallel_streaming=True)
    assert dec.decode(raw) == StreamAbort(500, 501, BIG_LSN, OLD_TS)
    error = error_of(raw, decoder())
    assert (error.message_type, error.offset) == ("StreamAbort", 9)
    assert "16 trailing bytes" in error.problem


def test_stream_start_and_stop_track_the_block():
    dec = decoder()
    assert dec.decode(b"S" + struct.pack(">IB", 42, 0)) == StreamStart(42, False)
    assert dec.in_stream
    assert dec.decode(b"E") == StreamStop()
    assert not dec.in_stream


def test_offset_skips_the_copydata_header_and_memoryview_is_accepted():
    payload = encode(Insert(ITEMS.oid, ROW))
    buffer = b"w" + struct.pack(">QQq", 1, 2, 3) + payload
    expected = Insert(ITEMS.oid, ROW)
    assert decoder(ITEMS).decode(buffer, 25) == expected
    assert decoder(ITEMS).decode(memoryview(buffer), 25) == expected
    assert decoder(ITEMS).decode(bytearray(buffer), 25) == expected
    # Error offsets are relative to the pgoutput message, not to the buffer.
    with pytest.raises(ProtocolError) as caught:
        decoder(ITEMS).decode(buffer + b"!", 25)
    assert caught.value.offset == len(payload)


def test_negative_offset_is_a_caller_bug():
    with pytest.raises(ValueError, match="offset"):
        decoder().decode(b"E", -1)


# --- malformed input ---------------------------------------------------------------------------


def test_empty_input():
    error = error_of(b"")
    assert (error.message_type, error.offset) == ("empty", 0)
    with pytest.raises(ProtocolError) as caught:
        decoder().decode(b"w" + bytes(24), 25)
    assert caught.value.message_type == "empty"


@pytest.mark.parametrize(("raw", "name"), [(b"X", "unknown 'X'"), (b"\x00abc", "unknown '\\x00'")])
def test_unknown_message_type(raw, name):
    error = error_of(raw)
    assert (error.message_type, error.offset) == (name, 0)
    assert str(error).startswith(f"malformed pgoutput {name} message at byte 0")


@pytest.mark.parametrize(
    ("cut", "field_offset", "field"),
    [(1, 1, "final LSN"), (8, 1, "final LSN"), (9, 9, "commit timestamp"), (20, 17, "xid")],
)
def test_truncated_fixed_message_names_the_cut_field(cut, field_offset, field):
    raw = encode(Begin(1, 2, 3))[:cut]
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Begin", field_offset)
    assert field in error.problem


def test_every_strict_prefix_of_every_message_is_rejected_within_its_bytes():
    for message in ROUND_TRIPS:
        raw = encode(message)
        for cut in range(len(raw)):
            error = error_of(raw[:cut])
            assert 0 <= error.offset <= cut, (message, cut, error)
            expected = "empty" if cut == 0 else type(message).__name__
            assert error.message_type == expected, (message, cut, error)


@pytest.mark.parametrize("message", ROUND_TRIPS, ids=lambda m: type(m).__name__)
def test_trailing_bytes(message):
    raw = encode(message)
    error = error_of(raw + b"\x00")
    assert (error.message_type, error.offset) == (type(message).__name__, len(raw))
    assert error.problem == "1 trailing byte"


def test_stream_stop_with_trailing_byte():
    error = error_of(b"E\x01")
    assert (error.message_type, error.offset) == ("StreamStop", 1)


INSERT_HEAD = b"I" + uint32(ITEMS.oid) + b"N" + int16(4)  # columns start at byte 8


def test_insert_truncated_inside_a_value():
    raw = encode(Insert(ITEMS.oid, ROW))
    error = error_of(raw[:12])  # cut inside the length of column 0
    assert (error.message_type, error.offset) == ("Insert", 9)
    error = error_of(raw[:-2])  # cut inside the value of column 3: its length is too big
    column_3 = len(INSERT_HEAD) + sum(len(column_value(v)) for v in ROW[:3])
    assert (error.message_type, error.offset) == ("Insert", column_3 + 1)
    assert error.problem == "truncated: column 3 announces 5 bytes, 3 left"


def test_insert_negative_value_length():
    raw = INSERT_HEAD + b"t" + int32(-1) + b"n" * 3
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 9)
    assert "negative" in error.problem


def test_insert_oversized_value_length_does_not_allocate():
    raw = INSERT_HEAD + b"b" + int32(0x7FFFFFFF) + b"xyz"
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 9)
    assert "2147483647" in error.problem


def test_insert_bad_tuple_kind_byte():
    raw = INSERT_HEAD + b"n" + b"x" + b"nn"
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 9)
    assert "'x'" in error.problem


def test_insert_bad_new_marker():
    raw = b"I" + uint32(ITEMS.oid) + b"K" + tuple_data(ROW)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 5)
    assert "'N'" in error.problem


def test_insert_column_count_differs_from_relation():
    raw = b"I" + uint32(ITEMS.oid) + b"N" + tuple_data(ROW[:3])
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 6)
    assert "3 columns" in error.problem and "4" in error.problem


def test_insert_text_that_is_not_utf8():
    raw = INSERT_HEAD + b"t" + int32(4) + b"ab\xffc" + b"nnn"
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Insert", 15)
    assert "UTF-8" in error.problem


def test_binary_value_need_not_be_utf8():
    raw = INSERT_HEAD + b"b" + int32(2) + b"\xff\xfe" + b"nnn"
    assert decoder(ITEMS).decode(raw).tuple_data == (b"\xff\xfe", None, None, None)


@pytest.mark.parametrize(
    "message",
    [
        Insert(999, ROW),
        Update(999, None, None, ROW),
        Delete(999, "K", ROW),
    ],
    ids=lambda m: type(m).__name__,
)
def test_change_for_unannounced_relation(message):
    error = error_of(encode(message))
    assert (error.message_type, error.offset) == (type(message).__name__, 1)
    assert "relation 999 was never announced" in error.problem


def test_truncate_of_unannounced_relation_points_at_its_oid():
    error = error_of(encode(Truncate((ITEMS.oid, 999), 0)))
    assert (error.message_type, error.offset) == ("Truncate", 10)
    assert "999" in error.problem


def test_update_bad_first_marker():
    raw = b"U" + uint32(ITEMS.oid) + b"X" + tuple_data(ROW)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Update", 5)
    assert "'K', 'O' or 'N'" in error.problem


def test_update_bad_new_marker_after_old_tuple():
    old = tuple_data(ROW)
    raw = b"U" + uint32(ITEMS.oid) + b"O" + old + b"O" + old
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Update", 6 + len(old))
    assert "'N'" in error.problem


def test_update_missing_new_tuple():
    raw = b"U" + uint32(ITEMS.oid) + b"K" + tuple_data(ROW)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Update", len(raw))
    assert "new tuple marker" in error.problem


def test_update_old_tuple_column_count_mismatch():
    raw = b"U" + uint32(ITEMS.oid) + b"K" + tuple_data(("1",)) + b"N" + tuple_data(ROW)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Update", 6)


def test_delete_bad_marker():
    raw = b"D" + uint32(ITEMS.oid) + b"N" + tuple_data(ROW)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Delete", 5)
    assert "'K' or 'O'" in error.problem


def test_truncate_negative_and_oversized_counts():
    error = error_of(b"T" + int32(-1) + b"\x00")
    assert (error.message_type, error.offset) == ("Truncate", 1)
    assert "negative" in error.problem
    error = error_of(b"T" + int32(0x7FFFFFFF) + b"\x00" + uint32(ITEMS.oid))
    assert (error.message_type, error.offset) == ("Truncate", 6)
    assert "2147483647 relation oids" in error.problem


def test_relation_oversized_column_count_does_not_loop():
    raw = b"R" + uint32(5) + string("s") + string("t") + b"d" + int16(32767) + b"\x01a\x00"
    error = error_of(raw)  # rejected up front, before looping over 32767 columns
    assert (error.message_type, error.offset) == ("Relation", 12)
    assert "32767 columns" in error.problem


def test_relation_negative_column_count():
    raw = b"R" + uint32(5) + string("s") + string("t") + b"d" + int16(-2)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Relation", 10)


def test_relation_unknown_replica_identity():
    raw = b"R" + uint32(5) + string("s") + string("t") + b"x" + int16(0)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Relation", 9)
    assert "'x'" in error.problem


def test_relation_unterminated_name():
    raw = b"R" + uint32(5) + string("s") + b"tab"
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Relation", 7)
    assert "relation name" in error.problem and "NUL" in error.problem


def test_relation_name_that_is_not_utf8():
    raw = b"R" + uint32(5) + b"s\xc3\x00" + string("t") + b"d" + int16(0)
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Relation", 6)
    assert "namespace is not valid UTF-8" in error.problem


def test_malformed_relation_leaves_the_catalog_alone():
    dec = decoder(ITEMS)
    bad = encode(Relation(RelationInfo(ITEMS.oid, "x", "y", "d", ()))) + b"\x00"
    error_of(bad, dec)
    assert dec.relations == {ITEMS.oid: ITEMS}


def test_message_oversized_and_negative_content_length():
    head = b"M" + struct.pack(">BQ", 1, 5) + string("p")  # content length at byte 12
    error = error_of(head + int32(1_000_000) + b"abc")
    assert (error.message_type, error.offset) == ("Message", 12)
    assert "1000000" in error.problem
    error = error_of(head + int32(-5))
    assert (error.message_type, error.offset) == ("Message", 12)
    assert "negative" in error.problem


def test_stream_xid_prefix_truncated():
    dec = decoder(ITEMS)
    dec.decode(encode(StreamStart(1, True)))
    error = error_of(b"I\x00\x00", dec)
    assert (error.message_type, error.offset) == ("Insert", 1)
    assert "xid" in error.problem


def test_gid_unterminated():
    raw = encode(Prepare(0, 1, 2, 3, 4, "abc"))[:-1]
    error = error_of(raw)
    assert (error.message_type, error.offset) == ("Prepare", 30)
    assert "gid" in error.problem


# --- fuzzing -----------------------------------------------------------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
NONEMPTY_NAMES = NAMES.filter(bool)
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
U8 = st.integers(0, 255)
VALUE = st.one_of(
    st.none(),
    st.just(UNCHANGED_TOAST),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.binary(max_size=20),
)
ROW_VALUES = st.tuples(VALUE, VALUE, VALUE, VALUE)
STREAM_XID = st.one_of(st.none(), U32)
COLUMNS = st.builds(ColumnInfo, NAMES, U32, st.integers(-(2**31), 2**31 - 1), st.booleans())
RELATIONS = st.builds(
    RelationInfo,
    U32,
    NONEMPTY_NAMES,
    NAMES,
    st.sampled_from("dnfi"),
    st.lists(COLUMNS, max_size=5).map(tuple),
)
MESSAGES = st.one_of(
    st.builds(Begin, U64, I64, U32),
    st.builds(Commit, U8, U64, U64, I64),
    st.builds(Origin, U64, NAMES),
    st.builds(Relation, RELATIONS, STREAM_XID),
    st.builds(Type, st.builds(TypeInfo, U32, NONEMPTY_NAMES, NAMES), STREAM_XID),
    st.builds(Insert, st.just(ITEMS.oid), ROW_VALUES, STREAM_XID),
    st.builds(Update, st.just(ITEMS.oid), st.none(), st.none(), ROW_VALUES, STREAM_XID),
    st.builds(
        Update, st.just(ITEMS.oid), st.sampled_from("KO"), ROW_VALUES, ROW_VALUES, STREAM_XID
    ),
    st.builds(Delete, st.just(ITEMS.oid), st.sampled_from("KO"), ROW_VALUES, STREAM_XID),
    st.builds(Truncate, st.lists(st.just(ITEMS.oid), max_size=3).map(tuple), U8, STREAM_XID),
    st.builds(Message, st.booleans(), U64, NAMES, st.binary(max_size=20), STREAM_XID),
    st.builds(StreamStart, U32, st.booleans()),
    st.just(StreamStop()),
    st.builds(StreamCommit, U32, U8, U64, U64, I64),
    st.builds(StreamAbort, U32, U32),
    st.builds(BeginPrepare, U64, U64, I64, U32, NAMES),
    st.builds(Prepare, U8, U64, U64, I64, U32, NAMES),
    st.builds(CommitPrepared, U8, U64, U64, I64, U32, NAMES),
    st.builds(RollbackPrepared, U8, U64, U64, I64, I64, U32, NAMES),
    st.builds(StreamPrepare, U8, U64, U64, I64, U32, NAMES),
)
FUZZ = settings(
    deadline=timedelta(milliseconds=500),
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)


def fresh_decoder(message: object) -> PgOutputDecoder:
    """A decoder in stream mode when the change carries an xid (harmless for other messages)."""
    dec = decoder(ITEMS)
    dec.in_stream = getattr(message, "xid", None) is not None
    return dec


def decodes_or_rejects(dec: PgOutputDecoder, raw: bytes) -> None:
    """The fuzzing property: a message, or a ProtocolError pointing inside the input."""
    try:
        dec.decode(raw)
    except ProtocolError as error:
        assert 0 <= error.offset <= len(raw), error


@FUZZ
@given(MESSAGES)
def test_fuzz_generated_messages_round_trip(message):
    assert fresh_decoder(message).decode(encode(message)) == message


@FUZZ
@given(
    st.sampled_from(b"BCORYIUDTMSEcAbPKrp"),
    st.binary(max_size=120),
    st.booleans(),
    st.booleans(),
)
def test_fuzz_random_bytes(kind, body, in_stream, parallel):
    dec = decoder(ITEMS, parallel_streaming=parallel)
    dec.in_stream = in_stream
    decodes_or_rejects(dec, bytes([kind]) + body)


@FUZZ
@given(st.binary(max_size=64))
def test_fuzz_fully_random_bytes(raw):
    decodes_or_rejects(decoder(ITEMS), raw)


@FUZZ
@given(MESSAGES, st.data())
def test_fuzz_mutated_messages(message, data):
    raw = encode(message)
    for cut in range(len(raw)):
        with pytest.raises(ProtocolError) as caught:
            fresh_decoder(message).decode(raw[:cut])
        assert 0 <= caught.value.offset <= cut

    index = data.draw(st.integers(0, len(raw) - 1), label="flip at")
    flip = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(raw)
    flipped[index] ^= flip
    decodes_or_rejects(fresh_decoder(message), bytes(flipped))

    if len(raw) >= 4:
        at = data.draw(st.integers(0, len(raw) - 4), label="inflate at")
        big = data.draw(st.sampled_from([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFF0000]))
        inflated = raw[:at] + struct.pack(">I", big) + raw[at + 4 :]
        decodes_or_rejects(fresh_decoder(message), inflated)
