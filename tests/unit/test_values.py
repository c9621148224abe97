"""pgoutput text values -> JSON by the to_jsonb rule, without a server
(``tests/integration/test_values_server.py`` checks every type against a real server)."""

from __future__ import annotations

import pytest

from tests.support.exact_json import exact, render
from wal2http_tui.replication.messages import UNCHANGED_TOAST, ColumnInfo, RelationInfo
from wal2http_tui.replication.values import (
    SESSION_SETTINGS,
    ValueConverter,
    json_to_jsonb,
    normalise_number,
    parse_array,
    parse_composite,
    session_options,
)


def test_session_options_escape_what_the_server_splits_on():
    options = session_options()
    assert options.startswith("-c DateStyle=ISO,\\ MDY -c TimeZone=UTC ")
    assert options.count("-c ") == len(SESSION_SETTINGS)
    assert "-c extra_float_digits=1" in options


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e+100", "1" + "0" * 100),
        ("1.5e-07", "0.00000015"),
        ("5e-324", "0." + "0" * 323 + "5"),
        ("-1E-2", "-0.01"),
        ("0.1e1", "1"),
        ("1.00e1", "10.0"),
        ("1.5", "1.5"),
        ("1.50", "1.50"),
        ("-0", "0"),
        ("-0.0", "0.0"),
        ("-0e5", "0"),
        ("0e-3", "0.000"),
        ("-12.5", "-12.5"),
        ("12345678901234567890123456789012345678901", "12345678901234567890123456789012345678901"),
        ("1e-16383", "0." + "0" * 16382 + "1"),
        ("1e-16384", "1e-16384"),  # numeric_in refuses these: left alone
        ("1e999999999", "1e999999999"),
    ],
)
def test_normalise_number_writes_what_numeric_out_writes(text, expected):
    assert normalise_number(text) == expected


@pytest.mark.parametrize(
    ("text", "delimiter", "expected"),
    [
        ("{}", ",", []),
        ("{1,2,3}", ",", ["1", "2", "3"]),
        ("{1,NULL,3}", ",", ["1", None, "3"]),
        ('{"NULL",NULL,"null"}', ",", ["NULL", None, "null"]),
        ('{"",""}', ",", ["", ""]),
        ('{"a,b","c\\"d","e\\\\f","{x}"," s "}', ",", ["a,b", 'c"d', "e\\f", "{x}", " s "]),
        ("{{1,2},{3,NULL}}", ",", [["1", "2"], ["3", None]]),
        ('{{{"a b"}},{{c}}}', ",", [[["a b"]], [["c"]]]),
        ("[0:2]={1,2,3}", ",", ["1", "2", "3"]),
        ("[-2:-1][1:2]={{1,2},{3,4}}", ",", [["1", "2"], ["3", "4"]]),
        ("{(3,4),(1,2);(1,1),(0,0)}", ";", ["(3,4),(1,2)", "(1,1),(0,0)"]),
        ('{"(1,\\"a b\\",)",NULL}', ",", ['(1,"a b",)', None]),
        ("{😀,é}", ",", ["😀", "é"]),
    ],
)
def test_parse_array(text, delimiter, expected):
    assert parse_array(text, delimiter=delimiter) == expected


def test_parse_array_converts_every_element_but_nulls():
    assert parse_array("{{1,NULL},{3,4}}", int) == [[1, None], [3, 4]]
    assert parse_array('{"1",NULL}', int) == [1, None]


def test_parse_array_rejects_what_is_not_an_array():
    with pytest.raises(ValueError, match="not an array"):
        parse_array("{{1,2}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(1,2)", ["1", "2"]),
        ("(1,,3)", ["1", None, "3"]),
        ("(,)", [None, None]),
        ("()", [None]),
        ('("")', [""]),
        ('("a b","x,y","(p)")', ["a b", "x,y", "(p)"]),
        ('("say ""hi""","back\\\\slash")', ['say "hi"', "back\\slash"]),
        ('(1,"{a,""b c""}")', ["1", '{a,"b c"}']),
        ('("(1,""x y"",)",2)', ['(1,"x y",)', "2"]),
        ("(a\\,b,c)", ["a,b", "c"]),
        ("(😀,é)", ["😀", "é"]),
    ],
)
def test_parse_composite(text, expected):
    assert parse_composite(text) == expected


@pytest.mark.parametrize("text", ["", "1,2", "(1,2", '("a)', "(1,2)x", "(a(b)"])
def test_parse_composite_rejects_what_is_not_a_composite(text):
    with pytest.raises(ValueError, match="not a composite"):
        parse_composite(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"b": 1, "a": 2, "b": 3}', '{"a":2,"b":3}'),
        ('{"bb": 1, "é": 2, "a": 3, "z": 4}', '{"a":3,"z":4,"bb":1,"é":2}'),
        (
            "[1e2, 1.50, -0, -0.0, 2E-3, 12345678901234567890123]",
            "[100,1.50,0,0.0,0.002,12345678901234567890123]",
        ),
        ('"\\u00e9\\ud83d\\ude00\\/\\t"', '"é😀/\\t"'),
        ('{"a": {"y": null, "x": [true, false]}}', '{"a":{"x":[true,false],"y":null}}'),
        ("  7  ", "7"),
    ],
)
def test_json_to_jsonb(text, expected):
    assert exact(render(json_to_jsonb(text))) == exact(expected)


def test_json_nested_deeper_than_orjson_goes_is_still_rendered():
    text = "[" * 300 + '{"k": 1e2, "a": -0}' + "]" * 300
    assert render([json_to_jsonb(text)]) == "[" + "[" * 300 + '{"a":0,"k":100}' + "]" * 301


@pytest.mark.parametrize("text", ['["\\ud800"]', "[1e999999999]", "[" * 5000 + "]" * 5000])
def test_json_postgresql_or_python_cannot_convert_comes_through_as_written(text):
    assert render(json_to_jsonb(text)) == text


@pytest.mark.parametrize(
    ("type_oid", "text", "expected"),
    [
        (16, "t", "true"),
        (16, "f", "false"),
        (20, "-9223372036854775808", "-9223372036854775808"),
        (701, "1e+308", "1" + "0" * 308),
        (701, "-0", "0"),
        (701, "NaN", '"NaN"'),
        (700, "-Infinity", '"-Infinity"'),
        (1700, "0.000", "0.000"),
        (1700, "Infinity", '"Infinity"'),
        (1082, "0044-03-15 BC", '"0044-03-15 BC"'),
        (1114, "2024-01-02 03:04:05.5", '"2024-01-02T03:04:05.5"'),
        (1114, "0044-03-15 12:00:00 BC", '"0044-03-15T12:00:00 BC"'),
        (1184, "2024-01-02 03:04:05.5+00", '"2024-01-02T03:04:05.5+00:00"'),
        (1184, "2024-01-02 03:04:05-08", '"2024-01-02T03:04:05-08:00"'),
        (1184, "1850-01-01 00:00:00+00:09:21", '"1850-01-01T00:00:00+00:09:21"'),
        (1184, "0044-03-15 12:00:00+05:30 BC", '"0044-03-15T12:00:00+05:30 BC"'),
        (1184, "-infinity", '"-infinity"'),
        (3802, '{"a": [1.50]}', '{"a": [1.50]}'),
        (1186, "1 day", '"1 day"'),
        (22, "1 2", "[1, 2]"),
        (30, "1 2", '["1", "2"]'),
        (1020, "{(3,4),(1,2);(1,1),(0,0)}", '["(3,4),(1,2)", "(1,1),(0,0)"]'),
        (1185, '{"2024-01-02 03:04:05+00",NULL}', '["2024-01-02T03:04:05+00:00", null]'),
        (199, '{"{\\"b\\": 1, \\"a\\": 1e1}"}', '[{"a": 10, "b": 1}]'),
    ],
)
def test_built_in_types_need_no_catalog(type_oid, text, expected):
    assert exact(render(ValueConverter().converter_for(type_oid)(text))) == exact(expected)


def test_types_unknown_without_a_catalog_are_rendered_as_text():
    assert ValueConverter().converter_for(99999)("(1,2)") == "(1,2)"


RELATION = RelationInfo(
    oid=1,
    schema="public",
    table="t",
    replica_identity="f",
    columns=(
        ColumnInfo("id", 20, -1, True),
        ColumnInfo("body", 25, -1, False),
        ColumnInfo("at", 1184, -1, False),
        ColumnInfo("amount", 1700, -1, False),
    ),
)


def test_row_converter_leaves_unchanged_toast_out():
    row = ValueConverter().row_converter(RELATION)
    values, unchanged = row(("1", UNCHANGED_TOAST, None, "1.50"))
    assert render(values) == '{"id":1,"at":null,"amount":1.50}'
    assert unchanged == ["body"]


def test_row_converter_fills_unchanged_toast_from_the_old_row():
    row = ValueConverter().row_converter(RELATION)
    old = ("1", "old body", "2024-01-01 00:00:00+00", "2")
    values, unchanged = row(("1", UNCHANGED_TOAST, None, "3"), old=old)
    assert render(values) == '{"id":1,"body":"old body","at":null,"amount":3}'
    assert unchanged == []


def test_row_converter_keeps_column_order_when_filling():
    row = ValueConverter().row_converter(RELATION)
    old = ("1", "old body", "2024-01-01 00:00:00+00", "2")
    values, _ = row((UNCHANGED_TOAST, UNCHANGED_TOAST, None, "3"), old=old)
    assert list(values) == ["id", "body", "at", "amount"]


def test_row_converter_reports_what_the_old_row_lacks_too():
    row = ValueConverter().row_converter(RELATION)
    values, unchanged = row(
        ("1", UNCHANGED_TOAST, None, "3"), old=("1", UNCHANGED_TOAST, None, "3")
    )
    assert render(values) == '{"id":1,"at":null,"amount":3}'
    assert unchanged == ["body"]


def test_row_converter_rejects_tuples_it_cannot_convert():
    row = ValueConverter().row_converter(RELATION)
    with pytest.raises(ValueError, match="a tuple of 3 columns for a relation of 4"):
        row(("1", "x", None))
    with pytest.raises(TypeError, match="column body: only text format"):
        row(("1", b"x", None, None))
