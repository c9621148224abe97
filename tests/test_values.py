"""pgoutput text values -> JSON, checked against what PostgreSQL's own ``to_jsonb()`` renders."""

from __future__ import annotations

import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import make_conninfo

from wal2http_tui.types import UNCHANGED_TOAST, ColumnInfo, RelationInfo
from wal2http_tui.values import (
    SESSION_SETTINGS,
    JsonValue,
    TypeCatalog,
    ValueConverter,
    json_to_jsonb,
    normalise_number,
    parse_array,
    parse_composite,
    session_options,
)

# ---------------------------------------------------------------------------------------------
# Comparing JSON exactly: numbers by their digits, objects with their key order
# ---------------------------------------------------------------------------------------------


class Digits(str):
    """A JSON number, as written."""


class Pairs(list):
    """A JSON object's members, in order."""


def exact(text: str | bytes) -> str:
    """JSON text -> a canonical rendering that keeps what equality of json.loads output would
    hide (a number's digits: 1.0 is not 1; key order) and drops what does not matter (spaces,
    string escapes)."""
    return canonical(
        json.loads(text, parse_int=Digits, parse_float=Digits, object_pairs_hook=Pairs)
    )


def canonical(value: object) -> str:
    if isinstance(value, Digits):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render(value: JsonValue) -> str:
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------------------------------------
# Unit tests: no server
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Against the server
# ---------------------------------------------------------------------------------------------

TYPES_SQL = """
CREATE TYPE mood AS ENUM ('happy', 'sad', 'so-so "meh", ok');
CREATE TYPE weather AS ENUM ('sun', 'rain');
CREATE FUNCTION weather_to_json(weather) RETURNS json LANGUAGE sql IMMUTABLE
    AS $$ SELECT json_build_object('sky', $1::text, 'mm', CASE $1 WHEN 'rain' THEN 1e1 END) $$;
CREATE CAST (weather AS json) WITH FUNCTION weather_to_json(weather);
CREATE DOMAIN weather_d AS weather;
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN amount AS numeric(20, 4);
CREATE DOMAIN int_list AS int[];
CREATE DOMAIN stamp AS timestamptz;
CREATE DOMAIN nested_domain AS posint;
CREATE DOMAIN document AS json;
CREATE DOMAIN documents AS jsonb[];
CREATE TYPE address AS (street text, "number" int, zip varchar(10), tags text[], moved stamp);
CREATE DOMAIN checked_address AS address CHECK ((VALUE)."number" > 0);
CREATE TYPE person AS (
    name text, home address, mood mood, score float8, extra jsonb, a int, sky weather
);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TYPE nothing AS ();
CREATE TYPE dropped AS (a int, b text, c numeric);
ALTER TYPE dropped DROP ATTRIBUTE b;
CREATE TABLE pair (x int, gone text, y date);
ALTER TABLE pair DROP COLUMN gone;
"""

DEEP_JSON = "[" * 300 + '{"k": 1e2, "b": -0}' + "]" * 300  # deeper than orjson nests
DEEP_JSONB = '{"a": ' * 300 + "[1.0]" + "}" * 300

# (column, type, SQL expressions): row i gets expression i, rows past the end NULL (so the last
# row is all NULL).
COLUMNS: list[tuple[str, str, list[str]]] = [
    ("c_bool", "bool", ["true", "false"]),
    ("c_bytea", "bytea", [r"'\x00ff'", "''"]),
    ("c_char", '"char"', ["'a'", "'\"'", "'\\'"]),
    ("c_name", "name", ["'a name'", "'with \"quotes\" and \\'"]),
    ("c_int2", "int2", ["32767", "-32768", "0"]),
    ("c_int4", "int4", ["2147483647", "-2147483648", "0"]),
    ("c_int8", "int8", ["9223372036854775807", "-9223372036854775808", "0"]),
    ("c_oid", "oid", ["4294967295", "0"]),
    ("c_tid", "tid", ["'(0,1)'"]),
    ("c_xid", "xid", ["'42'"]),
    ("c_xid8", "xid8", ["'18446744073709551615'"]),
    ("c_cid", "cid", ["'7'"]),
    (
        "c_text",
        "text",
        [
            "'plain'",
            "''",
            "E'quote \" backslash \\\\ comma , braces {} parens () \\t tab'",
            "'NULL'",
            "'😀 beyond the BMP, é'",
            "E'line\\nbreak'",
        ],
    ),
    ("c_varchar", "varchar(20)", ["'héllo😀'", "''", "' padded '"]),
    ("c_bpchar", "char(5)", ["'ab'", "''", "'abcde'"]),
    (
        "c_float4",
        "float4",
        [
            "1.5",
            "'-0'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'3.4028235e+38'",
            "'1e-45'",
            "0.1",
        ],
    ),
    (
        "c_float8",
        "float8",
        [
            "'1e308'",
            "'-0'",
            "'5e-324'",
            "'1.5e-7'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "0.1",
            "123456789012345678901234567890",
            "'1e16'",
            "'2.5e-5'",
            "'-1.7976931348623157e308'",
        ],
    ),
    (
        "c_numeric",
        "numeric",
        [
            "'1234567890123456789012345678901234567890.0123456789'",
            "'-0.000001'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'0.00'",
            "'1e-20'",
            "'-0'",
            "'1.5e3'",
        ],
    ),
    ("c_money", "money", ["1234.56", "-0.01"]),
    (
        "c_date",
        "date",
        [
            "'2024-02-29'",
            "'0044-03-15 BC'",
            "'infinity'",
            "'-infinity'",
            "'5874897-12-31'",
            "'4714-11-24 BC'",
        ],
    ),
    ("c_time", "time", ["'23:59:59.999999'", "'24:00:00'", "'00:00'"]),
    ("c_timetz", "timetz", ["'12:00:00+05:30'", "'01:02:03.5-08'"]),
    (
        "c_timestamp",
        "timestamp",
        [
            "'2024-01-02 03:04:05.123456'",
            "'0044-03-15 12:00:00 BC'",
            "'infinity'",
            "'-infinity'",
            "'294276-12-31 23:59:59.999999'",
            "'4713-11-24 00:00:00 BC'",
            "'2024-01-02 03:04:05.1'",
        ],
    ),
    (
        "c_timestamptz",
        "timestamptz",
        [
            "'2024-01-02 03:04:05.5+00'",
            "'2024-06-01 12:00:00+05:30'",
            "'infinity'",
            "'-infinity'",
            "'0044-03-15 12:00:00+00 BC'",
            "'1900-01-01 00:00:00 Europe/Paris'",
            "'294276-12-31 23:59:59.999999+00'",
        ],
    ),
    (
        "c_interval",
        "interval",
        [
            "'1 year 2 mons 3 days 04:05:06.789'",
            "'-1 days +02:00'",
            "'0'",
            "'-178000000 years'",
        ],
    ),
    ("c_bit", "bit(4)", ["B'1010'"]),
    ("c_varbit", "varbit", ["B''", "B'1'"]),
    ("c_uuid", "uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]),
    ("c_inet", "inet", ["'1.2.3.4'", "'::1/128'", "'192.168.0.1/24'"]),
    ("c_cidr", "cidr", ["'10.0.0.0/8'", "'2001:db8::/32'"]),
    ("c_macaddr", "macaddr", ["'08:00:2b:01:02:03'"]),
    ("c_macaddr8", "macaddr8", ["'08:00:2b:01:02:03:04:05'"]),
    ("c_point", "point", ["'(1.5,-2)'", "'(1e300,-0)'"]),
    ("c_lseg", "lseg", ["'[(0,0),(1,1)]'"]),
    ("c_path", "path", ["'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1))'"]),
    ("c_box", "box", ["'(1,1),(0,0)'"]),
    ("c_polygon", "polygon", ["'((0,0),(1,1),(1,0))'"]),
    ("c_line", "line", ["'{1,2,3}'"]),
    ("c_circle", "circle", ["'<(0,0),1.5>'"]),
    ("c_aclitem", "aclitem", ["'postgres=r/postgres'"]),
    ("c_refcursor", "refcursor", ["'cur'"]),
    ("c_regproc", "regproc", ["'now'"]),
    ("c_regprocedure", "regprocedure", ["'abs(integer)'"]),
    ("c_regoper", "regoper", ["'+(integer,integer)'::regoperator::oid::regoper"]),
    ("c_regoperator", "regoperator", ["'+(integer,integer)'"]),
    ("c_regclass", "regclass", ["'pg_class'", "'catalog'"]),
    ("c_regtype", "regtype", ["'integer'", "'mood'"]),
    ("c_regconfig", "regconfig", ["'english'"]),
    ("c_regdictionary", "regdictionary", ["'simple'"]),
    ("c_regnamespace", "regnamespace", ["'public'"]),
    ("c_regrole", "regrole", ["'postgres'"]),
    ("c_regcollation", "regcollation", ["'\"C\"'"]),
    ("c_txid_snapshot", "txid_snapshot", ["'10:20:10,14,15'"]),
    ("c_pg_snapshot", "pg_snapshot", ["'10:20:10,14,15'"]),
    ("c_pg_lsn", "pg_lsn", ["'16/B374D848'"]),
    ("c_tsvector", "tsvector", ["'a fat cat:1A'"]),
    ("c_tsquery", "tsquery", ["'fat & (rat | cat)'"]),
    ("c_jsonpath", "jsonpath", ["'$.a[*] ? (@ > 1)'"]),
    ("c_int2vector", "int2vector", ["'1 2 3'", "''"]),
    ("c_oidvector", "oidvector", ["'1 2'"]),
    (
        "c_json",
        "json",
        [
            """'{"b":1,"a":[1.0,2e2,-0,{"c":"\\u00e9\\ud83d\\ude00"}],"a":null,"long key":"x"}'""",
            "'[]'",
            """'"str"'""",
            "'1E400'",
            "'12.3e-10'",
            "'null'",
            "'true'",
            """'{"":1}'""",
            f"'{DEEP_JSON}'",
            r"""'"\"\\\/\b\f\n\r\t\u0001"'""",
            """'{"a":1,"a":{"b":2,"b":3}}'""",
        ],
    ),
    (
        "c_jsonb",
        "jsonb",
        [
            """'{"b":1,"a":[1.0,2e2,-0],"a":null,"long key":"x"}'""",
            "'[]'",
            """'"str"'""",
            f"'{DEEP_JSONB}'",
            "'1E-5'",
            r"""'"\"\\\/\b\f\n\r\t\u0001"'""",
        ],
    ),
    ("c_int4range", "int4range", ["'[1,10)'", "'empty'"]),
    ("c_int8range", "int8range", ["'(,)'"]),
    ("c_numrange", "numrange", ["'(1.5,2.5]'"]),
    ("c_tsrange", "tsrange", ['\'["2024-01-01 00:00","2024-01-02 00:00")\'']),
    ("c_tstzrange", "tstzrange", ["'[2024-01-01 00:00+00,infinity)'"]),
    ("c_daterange", "daterange", ["'[2024-01-01,2024-02-01)'"]),
    ("c_int4multirange", "int4multirange", ["'{[1,3),[5,7)}'", "'{}'"]),
    ("c_nummultirange", "nummultirange", ["'{[1.5,2)}'"]),
    ("c_tsmultirange", "tsmultirange", ["'{[2024-01-01,2024-01-02)}'"]),
    ("c_tstzmultirange", "tstzmultirange", ["'{[2024-01-01 00:00+00,2024-01-02 00:00+00)}'"]),
    ("c_datemultirange", "datemultirange", ["'{[2024-01-01,2024-02-01)}'"]),
    ("c_int8multirange", "int8multirange", ["'{[1,2)}'"]),
    # Arrays
    (
        "a_int4",
        "int4[]",
        [
            "'{1,NULL,3}'",
            "'{}'",
            "'{{1,2},{3,NULL}}'",
            "'[0:2]={1,2,3}'",
            "'[-2:-1][1:2]={{1,2},{3,4}}'",
            "'{NULL}'",
            "'{{{1},{2}},{{3},{4}}}'",
        ],
    ),
    ("a_int2", "int2[]", ["'{1,-2}'"]),
    ("a_int8", "int8[]", ["'{9223372036854775807,NULL}'"]),
    ("a_float4", "float4[]", ["'{1.5,-0,NaN,1e-45}'"]),
    ("a_float8", "float8[]", ["'{1e308,-0,NaN,Infinity,-Infinity,5e-324,NULL,0.1}'"]),
    (
        "a_numeric",
        "numeric[]",
        [
            "'{1.50,NaN,-Infinity,12345678901234567890123456789012345678901,NULL}'",
        ],
    ),
    ("a_bool", "bool[]", ["'{t,f,NULL}'"]),
    (
        "a_text",
        "text[]",
        [
            "ARRAY['a,b', 'c\"d', E'e\\\\f', 'NULL', 'null', NULL, '', '{braces}', ' spaced ', "
            "'😀', E'tab\\there', E'new\\nline', 'semi;colon']",
            "'{}'",
            '\'{{{a,b},{c,NULL}},{{"","x y"},{"\\\\\\\\","\\""}}}\'',
            "'[5:5]={\"only\"}'",
        ],
    ),
    ("a_varchar", "varchar[]", ["'{a,\"b c\"}'"]),
    ("a_bpchar", "char(3)[]", ["'{a,\"b  \"}'"]),
    ("a_name", "name[]", ["'{a,\"b c\"}'"]),
    ("a_char", '"char"[]', ['\'{a,"\\\\\\\\","\\""}\'']),
    ("a_bytea", "bytea[]", ["ARRAY['\\x00ff'::bytea, '', NULL]"]),
    ("a_date", "date[]", ["'{2024-02-29,infinity,\"0044-03-15 BC\",NULL}'"]),
    ("a_time", "time[]", ["'{12:00,23:59:59.5}'"]),
    ("a_timetz", "timetz[]", ["'{12:00+05:30}'"]),
    (
        "a_timestamp",
        "timestamp[]",
        [
            '\'{"2024-01-02 03:04:05.5",-infinity,"0044-03-15 12:00:00 BC"}\'',
        ],
    ),
    (
        "a_timestamptz",
        "timestamptz[]",
        [
            '\'{"2024-01-02 03:04:05.5+00",infinity,"2024-06-01 12:00:00+05:30",NULL}\'',
            '\'{{"2024-01-02 03:04:05+00"},{"0044-03-15 12:00:00+00 BC"}}\'',
        ],
    ),
    ("a_interval", "interval[]", ['\'{"1 day","-00:00:01"}\'']),
    ("a_uuid", "uuid[]", ["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'"]),
    ("a_inet", "inet[]", ["'{1.2.3.4,::1/128}'"]),
    ("a_money", "money[]", ["'{1.5,-2}'"]),
    (
        "a_json",
        "json[]",
        [
            "ARRAY['{\"b\":1,\"a\":1e2,\"b\":-0}'::json, '[1.0]', NULL, 'null', '\"s\"']",
        ],
    ),
    ("a_jsonb", "jsonb[]", ["ARRAY['{\"b\":1,\"a\":1e2}'::jsonb, '[1.0]', NULL, 'null']"]),
    ("a_box", "box[]", ["ARRAY[box '(1,1),(0,0)', box '(3,3),(2,2)', NULL]"]),
    ("a_point", "point[]", ["'{\"(1,2)\",NULL}'"]),
    ("a_int4range", "int4range[]", ["'{\"[1,2)\",empty}'"]),
    ("a_int4multirange", "int4multirange[]", ["ARRAY['{[1,2),[3,4)}'::int4multirange]"]),
    ("a_int2vector", "int2vector[]", ['\'{"1 2",3,""}\'']),
    ("a_oidvector", "oidvector[]", ["'{\"1 2\"}'"]),
    ("a_tsvector", "tsvector[]", ["ARRAY['a b'::tsvector]"]),
    ("a_bit", "bit(2)[]", ["'{10,01}'"]),
    # Custom types
    ("u_mood", "mood", ["'happy'", "'so-so \"meh\", ok'"]),
    ("u_posint", "posint", ["5"]),
    ("u_nested_domain", "nested_domain", ["7"]),
    ("u_amount", "amount", ["12.5", "'NaN'"]),
    ("u_int_list", "int_list", ["'{1,2}'", "'{{1},{NULL}}'"]),
    ("u_stamp", "stamp", ["'2024-01-01 00:00+00'", "'infinity'"]),
    (
        "u_address",
        "address",
        [
            "ROW('Main St, \"Apt 1\" \\ (rear)', 42, '', ARRAY['a', NULL, 'b c'], "
            "'2024-01-01 00:00:00+00')::address",
            "ROW(NULL, NULL, NULL, NULL, NULL)::address",
            "ROW('', 0, '😀', '{}', 'infinity')::address",
        ],
    ),
    (
        "u_person",
        "person",
        [
            "ROW('Zoë 😀', ROW('x', 1, 'z', ARRAY['{}'], NULL)::address, 'sad', 1e100, "
            "'{\"z\":1,\"a\":[1.0,2]}', 3, 'rain')::person",
            "ROW(NULL, NULL, NULL, '-0', NULL, NULL, NULL)::person",
        ],
    ),
    ("u_floatrange", "floatrange", ["'[1.5,2.5)'"]),
    ("u_floatmultirange", "floatmultirange", ["'{[1,2)}'"]),
    ("u_nothing", "nothing", ["ROW()::nothing"]),
    ("u_dropped", "dropped", ["ROW(1, 2.50)::dropped"]),
    ("u_weather", "weather", ["'sun'", "'rain'"]),
    ("u_weather_d", "weather_d", ["'rain'"]),
    ("u_document", "document", ['\'{"b": 1e1, "a": [], "b": 2}\'']),
    ("u_documents", "documents", ['ARRAY[\'{"b": 1e1, "a": []}\'::jsonb, NULL]']),
    ("u_checked_address", "checked_address", ["ROW('x', 1, NULL, '{}', 'infinity')"]),
    ("u_pair", "pair", ["ROW(1, '2024-02-29')::pair", "ROW(NULL, 'infinity')::pair"]),
    ("u_cardinal", "information_schema.cardinal_number", ["42"]),
    ("u_time_stamp", "information_schema.time_stamp", ["'2024-01-02 03:04:05.678+00'"]),
    ("u_yes_or_no", "information_schema.yes_or_no", ["'YES'"]),
    ("a_mood", "mood[]", ['\'{happy,NULL,"so-so \\"meh\\", ok"}\'']),
    ("a_posint", "posint[]", ["'{1,NULL,2}'"]),
    ("a_stamp", "stamp[]", ["'{\"2024-01-01 00:00+00\"}'"]),
    (
        "a_address",
        "address[]",
        [
            "ARRAY[ROW('a \"b\"', 1, NULL, ARRAY['x,y', NULL], '2024-01-01 00:00+00')::address, "
            "NULL]",
            "'{}'",
        ],
    ),
    (
        "a_person",
        "person[]",
        [
            "ARRAY[ROW('p', ROW('s', 2, NULL, NULL, NULL)::address, 'happy', 0.5, '[1]', 1, 'sun')"
            "::person]",
        ],
    ),
    ("a_floatrange", "floatrange[]", ["'{\"[1,2)\"}'"]),
    ("a_weather", "weather[]", ["'{sun,rain,NULL}'"]),
    ("a_dropped", "dropped[]", ["ARRAY[ROW(1, NULL)::dropped]"]),
]

# Present only where the server supports them: (feature probe, column).
OPTIONAL_COLUMNS: list[tuple[str, tuple[str, str, list[str]]]] = [
    ("SELECT '<a/>'::xml", ("c_xml", "xml", ["'<a b=\"c\">d &amp; e</a>'", "''"])),
    ("SELECT '<a/>'::xml", ("a_xml", "xml[]", ["ARRAY['<a/>'::xml, NULL]"])),
    (
        "CREATE EXTENSION hstore",
        ("x_hstore", "hstore", ['\'"a"=>"1", "b"=>NULL, "c d"=>"e\\"f"\'', "''"]),
    ),
    ("CREATE EXTENSION IF NOT EXISTS hstore", ("x_hstores", "hstore[]", ["ARRAY['a=>1'::hstore]"])),
    ("CREATE EXTENSION vector", ("x_vector", "vector", ["'[1,2.5,3]'"])),
    ("CREATE EXTENSION IF NOT EXISTS citext", ("x_citext", "citext", ["'MiXeD'"])),
]


def session(pg, **kwargs) -> psycopg.Connection:
    return psycopg.connect(pg.dsn, autocommit=True, options=session_options(), **kwargs)


def supported(pg, probe: str) -> bool:
    try:
        pg.execute(probe)
    except psycopg.Error:
        return False
    return True


def read_tuple(data: bytes, offset: int) -> tuple[tuple[str | None, ...], int]:
    """A pgoutput TupleData at ``offset`` -> (values, offset after it)."""
    (count,) = struct.unpack_from(">h", data, offset)
    offset += 2
    values: list = []
    for _ in range(count):
        kind = data[offset : offset + 1]
        offset += 1
        if kind == b"t":
            (length,) = struct.unpack_from(">i", data, offset)
            values.append(data[offset + 4 : offset + 4 + length].decode())
            offset += 4 + length
        else:
            values.append({b"n": None, b"u": UNCHANGED_TOAST}[kind])
    return tuple(values), offset


@dataclass
class Change:
    kind: str  # 'I' or 'U'
    new: tuple
    old: tuple | None = None
    old_kind: str | None = None


def pgoutput_changes(conn: psycopg.Connection, slot: str, publication: str) -> list[Change]:
    """Inserts and updates as pgoutput (text format) renders them, in this session's settings."""
    # Decoding stops at the flushed WAL and the cluster commits asynchronously: a synchronous
    # commit of a transaction that writes WAL (a logical message, which pgoutput leaves out by
    # default) flushes everything before it.
    conn.execute("SET synchronous_commit = on")
    conn.execute("SELECT pg_logical_emit_message(true, 'flush', '')")
    rows = conn.execute(
        "SELECT data FROM pg_logical_slot_get_binary_changes(%s, NULL, NULL, "
        "'proto_version', '1', 'publication_names', %s)",
        (slot, publication),
    ).fetchall()
    changes = []
    for (data,) in rows:
        kind = chr(data[0])
        if kind == "I":
            assert data[5:6] == b"N"
            new, _ = read_tuple(data, 6)
            changes.append(Change("I", new))
        elif kind == "U":
            offset, old, old_kind = 5, None, None
            if data[offset : offset + 1] in (b"K", b"O"):
                old_kind = chr(data[offset])
                old, offset = read_tuple(data, offset + 1)
            assert data[offset : offset + 1] == b"N"
            new, _ = read_tuple(data, offset + 1)
            changes.append(Change("U", new, old, old_kind))
    return changes


def relation_of(conn: psycopg.Connection, table: str) -> RelationInfo:
    columns = conn.execute(
        "SELECT a.attname, a.atttypid, a.atttypmod, coalesce(i.indisprimary, false) "
        "FROM pg_attribute a LEFT JOIN pg_index i "
        "ON i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey) "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (table,),
    ).fetchall()
    oid = conn.execute("SELECT %s::regclass::oid", (table,)).fetchone()[0]
    return RelationInfo(oid, "public", table, "d", tuple(ColumnInfo(*c) for c in columns))


def catalog_for(pg, **kwargs) -> TypeCatalog:
    return TypeCatalog(lambda: session(pg, **kwargs))


def test_every_type_converts_to_what_to_jsonb_renders(pg):
    pg.execute(TYPES_SQL)
    columns = list(COLUMNS)
    columns += [column for probe, column in OPTIONAL_COLUMNS if supported(pg, probe)]
    definitions = ", ".join(f"{name} {sql_type}" for name, sql_type, _ in columns)
    pg.execute(f"CREATE TABLE catalog (id int PRIMARY KEY, gone int, {definitions})")
    pg.execute("ALTER TABLE catalog DROP COLUMN gone")
    pg.execute("CREATE PUBLICATION pub FOR TABLE catalog")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    rows = max(len(values) for _, _, values in columns) + 1  # the last row is all NULL
    with session(pg) as conn:
        for row in range(rows):
            names = ["id"] + [name for name, _, values in columns if row < len(values)]
            exprs = [str(row)] + [values[row] for _, _, values in columns if row < len(values)]
            conn.execute(f"INSERT INTO catalog ({', '.join(names)}) VALUES ({', '.join(exprs)})")

        changes = pgoutput_changes(conn, "slot", "pub")
        relation = relation_of(conn, "catalog")
        expected = {
            (row, column): value
            for row, column, value in conn.execute(
                "SELECT id, key, value::text FROM catalog, jsonb_each(to_jsonb(catalog))"
            )
        }
        converter = ValueConverter(catalog_for(pg))
        convert_row = converter.row_converter(relation)
        types = {name: sql_type for name, sql_type, _ in columns}

        assert [change.kind for change in changes] == ["I"] * rows
        mismatches = []
        for row, change in enumerate(changes):
            values, unchanged = convert_row(change.new)
            assert unchanged == []
            assert list(values) == [column.name for column in relation.columns]
            for column, value in values.items():
                ours, theirs = render(value), expected[row, column]
                if exact(ours) != exact(theirs):
                    text = change.new[list(values).index(column)]
                    mismatches.append(
                        f"row {row} {column} ({types.get(column, 'int')}) text {text!r}:\n"
                        f"    ours     {ours}\n    to_jsonb {theirs}"
                    )
    assert not mismatches, f"{len(mismatches)} values differ:\n" + "\n".join(mismatches)


def counting_cursor(executed: list[str]) -> type[psycopg.Cursor]:
    class CountingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            executed.append(str(query))
            return super().execute(query, params, **kwargs)

    return CountingCursor


def test_session_settings_apply_to_a_replication_connection(pg):
    conninfo = make_conninfo(pg.dsn, replication="database", options=session_options())
    conn = pq.PGconn.connect(conninfo.encode())
    try:
        assert conn.status == pq.ConnStatus.OK, conn.get_error_message()
        for name, value in SESSION_SETTINGS.items():
            result = conn.exec_(f"SHOW {name}".encode())
            assert result.status == pq.ExecStatus.TUPLES_OK, conn.get_error_message()
            assert result.get_value(0, 0).decode() == value
    finally:
        conn.finish()


def test_other_types_are_looked_up_once_then_cached(pg):
    pg.execute("CREATE TYPE mood AS ENUM ('happy', 'sad'); CREATE DOMAIN score AS numeric")
    mood, moods, score = (
        pg.execute(f"SELECT '{name}'::regtype::oid")[0][0] for name in ("mood", "mood[]", "score")
    )
    executed: list[str] = []
    catalog = catalog_for(pg, cursor_factory=counting_cursor(executed))
    converter = ValueConverter(catalog)

    assert converter.converter_for(1185)('{"2024-01-01 00:00:00+00"}') == [
        "2024-01-01T00:00:00+00:00"
    ]
    assert executed == []  # built-in types are known without asking

    assert converter.converter_for(mood)("happy") == "happy"
    assert converter.converter_for(mood)("sad") == "sad"
    assert len(executed) == 1
    assert converter.converter_for(moods)("{sad,NULL}") == ["sad", None]  # the array, not mood
    assert render(converter.converter_for(score)("1.50")) == "1.50"
    relation = RelationInfo(
        1, "public", "t", "d", (ColumnInfo("m", mood, -1, False), ColumnInfo("s", score, -1, False))
    )
    assert render(converter.row_converter(relation)(("sad", "2"))[0]) == '{"m":"sad","s":2}'
    assert render(ValueConverter(catalog).converter_for(score)("-1")) == "-1"
    assert len(executed) == 3

    converter.invalidate()
    converter.converter_for(mood)
    assert len(executed) == 4
    catalog.close()


def test_catalog_serves_other_threads_and_reconnects(pg):
    pg.execute("CREATE TYPE pair AS (a int, b text); CREATE DOMAIN positive AS int")
    pair, positive = (pg.execute(f"SELECT '{t}'::regtype::oid")[0][0] for t in ("pair", "positive"))
    connects = []

    def connect() -> psycopg.Connection:
        connects.append(threading.get_ident())
        return session(pg, application_name="values-catalog")

    converter = ValueConverter(TypeCatalog(connect))
    with ThreadPoolExecutor(1) as worker:
        convert_pair = worker.submit(converter.converter_for, pair).result()
        assert convert_pair('(1,"x y")') == {"a": 1, "b": "x y"}
        assert connects == [worker.submit(threading.get_ident).result()]  # lazily, there

        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'values-catalog'"
        )
        assert worker.submit(converter.converter_for, positive).result()("3") == 3
    assert len(connects) == 2


def test_json_casts_are_computed_by_the_server(pg):
    pg.execute(
        "CREATE TYPE weather AS ENUM ('sun', 'rain');"
        "CREATE FUNCTION weather_to_json(weather) RETURNS json LANGUAGE sql IMMUTABLE"
        "    AS $$ SELECT json_build_object('sky', $1::text, 'mm', 1.50) $$;"
        "CREATE CAST (weather AS json) WITH FUNCTION weather_to_json(weather)"
    )
    weather = pg.execute("SELECT 'weather'::regtype::oid")[0][0]
    converter = ValueConverter(catalog_for(pg))
    assert render(converter.converter_for(weather)("rain")) == '{"mm": 1.50, "sky": "rain"}'


def test_unchanged_toast_is_reported_or_filled_from_the_full_old_row(pg):
    big = "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i"
    for table in ("keyed", "whole"):
        pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, big text, note text)")
    pg.execute("ALTER TABLE whole REPLICA IDENTITY FULL")
    pg.execute("CREATE PUBLICATION pub FOR TABLE keyed, whole")
    pg.execute("SELECT pg_create_logical_replication_slot('slot', 'pgoutput')")
    for table in ("keyed", "whole"):
        pg.execute(f"INSERT INTO {table} VALUES (1, ({big}), 'before')")
        pg.execute(f"UPDATE {table} SET note = 'after'")
    big_text = pg.execute(big)[0][0]

    with session(pg) as conn:
        updates = [c for c in pgoutput_changes(conn, "slot", "pub") if c.kind == "U"]
        keyed, whole = (relation_of(conn, table) for table in ("keyed", "whole"))
    converter = ValueConverter()

    assert updates[0].new[1] is UNCHANGED_TOAST
    assert converter.row_converter(keyed)(updates[0].new) == ({"id": 1, "note": "after"}, ["big"])

    assert updates[1].old_kind == "O"
    assert updates[1].new[1] is UNCHANGED_TOAST
    values, unchanged = converter.row_converter(whole)(updates[1].new, old=updates[1].old)
    assert values == {"id": 1, "big": big_text, "note": "after"}
    assert unchanged == []


def test_timestamptz_offsets_in_other_time_zones(pg):
    """SESSION_SETTINGS pins UTC, but any zone's offsets (even LMT's seconds) come out right."""
    stamps = (
        "ARRAY['2024-01-02 03:04:05.5+00', '2024-07-01 00:00+00', '1850-01-01 00:00:00+00', "
        "'0044-03-15 12:00:00+00 BC', 'infinity']::timestamptz[]"
    )
    convert = ValueConverter().converter_for(1184)
    with session(pg) as conn:
        for zone in ("Asia/Kolkata", "America/St_Johns", "Europe/Paris", "America/Los_Angeles"):
            conn.execute(f"SET TimeZone = '{zone}'")
            for text, rendered in conn.execute(
                f"SELECT v::text, to_jsonb(v)::text FROM unnest({stamps}) v"
            ):
                assert render(convert(text)) == rendered, (zone, text)
