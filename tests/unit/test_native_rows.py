"""The compiled row path (wal2http_tui/csrc/rows.c) against the Python reference, byte for byte.

The same random pgoutput row messages (every column kind, every type the compiled path has a
rule for and some it has not, NULLs, unchanged TOAST, huge values, malformed bytes) go through
both paths, and they must give the same Change (the same JSON text, key and unchanged
columns), or the same exception with the same message. The compiled path may decline a
message (the stream then decodes it in Python): the test checks it declines only what it must.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.pgoutput_encoder import encode
from wal2http_tui.replication import native
from wal2http_tui.replication.assembler import TransactionAssembler
from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import (
    UNCHANGED_TOAST,
    ColumnInfo,
    Delete,
    Insert,
    RelationInfo,
    Update,
)
from wal2http_tui.replication.values import ValueConverter

# random messages per property (tests/unit/test_native_memory.py asks fewer of a sanitized build)
EXAMPLES = int(os.environ.get("WAL2HTTP_EXAMPLES", "1500"))

pytestmark = pytest.mark.skipif(
    native.choose({}).name != native.NATIVE, reason="the compiled row path is not built"
)

# type oid -> realistic output texts of that type (the server's forms, as the session settings
# make it write them); any text at all is also tried for every type.
_ints = st.integers(-(2**63), 2**63 - 1).map(str)
_numbers = st.one_of(
    _ints,
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: format(d, "f")),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "0.000", "-0", "1e+100", "1.5e-07"]),
)
_floats = st.one_of(
    st.floats(allow_nan=False).map(repr).map(lambda t: t.replace("inf", "Infinity")),
    st.sampled_from(["-0", "-0.0", "NaN", "1e+100", "-1.5e-07", "3.4028235e+38"]),
)
_timestamps = st.datetimes().map(lambda d: d.isoformat(sep=" "))
_TYPES: dict[int, st.SearchStrategy[str]] = {
    16: st.sampled_from(["t", "f"]),  # bool
    20: _ints,  # int8
    21: st.integers(-(2**15), 2**15 - 1).map(str),  # int2
    23: st.integers(-(2**31), 2**31 - 1).map(str),  # int4
    25: st.text(),  # text
    1043: st.text(max_size=20),  # varchar
    17: st.binary().map(lambda b: "\\x" + b.hex()),  # bytea
    2950: st.uuids().map(str),  # uuid
    1700: _numbers,  # numeric
    700: _floats,  # float4
    701: _floats,  # float8
    3802: st.sampled_from(['{"a": 1}', "[1, 2]", '"x"', "null", '{"b": {"c": [true]}}']),
    114: st.sampled_from(['{"b":1,"a":2,"a":3}', "[1.0, 1e2]", " {} "]),  # json: converter
    1082: st.dates().map(str),  # date
    1114: _timestamps,  # timestamp
    1184: st.one_of(
        _timestamps.map(lambda t: t + "+00"),
        _timestamps.map(lambda t: t + "+05:30"),
        st.sampled_from(["infinity", "-infinity", "2000-01-01 00:00:00+00 BC"]),
    ),
    1007: st.lists(st.one_of(_ints, st.just("NULL"), st.just("007"))).map(
        lambda v: "{" + ",".join(v) + "}"
    ),  # int4[] (and int8's values, which int4 would not hold: the converter decides the same)
    1009: st.one_of(  # text[]
        st.lists(st.text(alphabet=st.characters(codec="utf-8", blacklist_characters='{}",\\'))).map(
            lambda v: "{" + ",".join(v) + "}"
        ),
        st.sampled_from(['{a,"b c",NULL}', "{}", '{"\\"q\\""}', "{{a,b},{c,d}}", "[0:1]={a,b}"]),
    ),
    1022: st.lists(_floats).map(lambda v: "{" + ",".join(v) + "}"),  # float8[]
    1231: st.lists(_numbers).map(lambda v: "{" + ",".join(v) + "}"),  # numeric[]
    1115: st.lists(_timestamps.map(lambda t: f'"{t}"')).map(lambda v: "{" + ",".join(v) + "}"),
    1020: st.sampled_from(["{(1,1),(0,0);(2,2),(1,1)}", "{}"]),  # box[]: ';' between elements
    199: st.sampled_from(['{"{\\"b\\":1,\\"a\\":2}",NULL}', "{1,2.50}"]),  # json[]
    1186: st.sampled_from(["1 day 02:00:00", "-00:00:01"]),  # interval: text
}
TYPE_OIDS = sorted(_TYPES)


@st.composite
def relations(draw, oid=16400):
    count = draw(st.integers(0, 40))
    names = draw(
        st.lists(st.text(min_size=1, max_size=8), min_size=count, max_size=count, unique=True)
    )
    columns = tuple(
        ColumnInfo(name, draw(st.sampled_from(TYPE_OIDS)), -1, draw(st.booleans()))
        for name in names
    )
    identity = draw(st.sampled_from("dnfi"))
    return RelationInfo(oid, draw(st.sampled_from(["public", "s p", 'q"'])), "t", identity, columns)


@st.composite
def column_values(draw, relation, *, toast=True):
    values = []
    for column in relation.columns:
        kind = draw(st.sampled_from("ttttnu" if toast else "ttttn"))
        if kind == "n":
            values.append(None)
        elif kind == "u":
            values.append(UNCHANGED_TOAST)
        else:
            values.append(draw(st.one_of(_TYPES[column.type_oid], st.text(max_size=6))))
    return tuple(values)


@st.composite
def row_messages(draw):
    relation = draw(relations())
    xid = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)))
    kind = draw(
        st.sampled_from(["insert", "update", "update K", "update O", "delete K", "delete O"])
    )
    new = draw(column_values(relation))
    old = draw(column_values(relation))
    if kind == "insert":
        message = Insert(relation.oid, new, xid)
    elif kind == "update":
        message = Update(relation.oid, None, None, new, xid)
    elif kind.startswith("update"):
        message = Update(relation.oid, kind[-1], old, new, xid)
    else:
        message = Delete(relation.oid, kind[-1], old, xid)
    data = encode(message)
    damage = draw(st.sampled_from(["none"] * 4 + ["cut", "flip", "extra", "binary"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif damage == "extra":
        data += draw(st.binary(min_size=1, max_size=3))
    elif damage == "binary" and relation.columns:
        values = list(new)
        values[draw(st.integers(0, len(values) - 1))] = b"\x00\x01"
        message = Insert(relation.oid, tuple(values), xid)
        data = encode(message)
    return relation, data, xid is not None, damage


def _paths(relation: RelationInfo, tmp_path: Path):
    """The Python reference (decoder + assembler) and the compiled path, over one relation."""
    relations = {relation.oid: relation}
    decoder = PgOutputDecoder(relations)
    assembler = TransactionAssembler(
        relations, ValueConverter(), tmp_path, lambda tx: None, compiled=True
    )
    assembler._convert(relation)  # the layout the first row of a relation builds

    def python(data: bytes, in_stream: bool):
        decoder.in_stream = in_stream
        message = decoder.decode(data, 0)
        return message.xid, assembler._row_change(message)

    def compiled(data: bytes, in_stream: bool):
        assert assembler.row_changes is not None
        return assembler.row_changes(data, 0, in_stream)

    return python, compiled


def _outcome(run, *args):
    try:
        return "ok", run(*args)
    except Exception as error:  # the same type and text are what is compared
        return type(error).__name__, str(error)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(row_messages())
@example(
    (
        RelationInfo(16400, "public", "t", "d", (ColumnInfo("a", 23, -1, True),)),
        encode(Insert(16400, ("007",), None)),
        False,
        "none",
    )
)
def test_the_compiled_path_gives_what_the_python_path_gives(tmp_path, case):
    relation, data, in_stream, damage = case
    python, compiled = _paths(relation, tmp_path)
    expected = _outcome(python, data, in_stream)
    result = _outcome(compiled, data, in_stream)
    if result == ("ok", None):  # declined: the stream decodes it in Python
        assert damage != "none", f"declined a well-formed message: {data!r}"
        return
    assert result == expected
    if result[0] == "ok":
        _, change = result[1]
        assert type(change) is type(expected[1][1])


@pytest.mark.parametrize("size", [70_000, 5_000_000])
def test_huge_values_and_wide_rows(tmp_path, size):
    """Values bigger than any buffer on the stack, and more columns than the stack arrays."""
    columns = tuple(ColumnInfo(f"c{i}", (25, 23, 3802)[i % 3], -1, i == 0) for i in range(100))
    relation = RelationInfo(16400, "public", "wide", "d", columns)
    values = tuple(
        ('"\\\n' * (size // 3 + i), str(i), "[" + "1," * (size // 2) + "1]")[i % 3]
        for i in range(100)
    )
    python, compiled = _paths(relation, tmp_path)
    data = encode(Insert(16400, values, 7))
    assert compiled(data, True) == python(data, True)


def test_a_relation_announced_again_is_declined_until_its_layout_is_rebuilt(tmp_path):
    """The decoder replaces a relation in place; a layout built for the old one is not used."""
    relation = RelationInfo(16400, "public", "t", "d", (ColumnInfo("a", 23, -1, True),))
    relations = {relation.oid: relation}
    assembler = TransactionAssembler(
        relations, ValueConverter(), tmp_path, lambda tx: None, compiled=True
    )
    assert assembler.row_changes is not None
    data = encode(Insert(16400, ("1",), None))
    assert assembler.row_changes(data, 0, False) is None  # no layout yet
    assembler._convert(relation)
    xid, change = assembler.row_changes(data, 0, False)
    assert (xid, change.new, change.key) == (None, '{"a":1}', '{"a":1}')
    relations[relation.oid] = RelationInfo(
        16400, "public", "t", "d", (ColumnInfo("a", 25, -1, True),)
    )
    assert assembler.row_changes(data, 0, False) is None


def test_a_converter_without_a_rule_is_called_from_the_compiled_path(tmp_path):
    """json (its converter reorders keys) goes through its Python converter; an int4[] of the
    simple form by the compiled array rule, its elements by the int rule or the converter."""
    columns = (ColumnInfo("j", 114, -1, False), ColumnInfo("a", 1007, -1, False))
    relation = RelationInfo(16400, "public", "t", "d", columns)
    _, compiled = _paths(relation, tmp_path)
    result = compiled(encode(Insert(16400, ('{"bb":1,"a":2,"a":3}', "{1,NULL,007}"), None)), False)
    assert result is not None
    assert result[1].new == '{"j":{"a":3,"bb":1},"a":[1,null,7]}'
