"""pgoutput text column values -> the JSON value PostgreSQL's own ``to_jsonb()`` gives them.

pgoutput (text format) sends each column as the type's output-function text. This module turns
that text into a JSON-ready Python value such that ``orjson.dumps`` of it means exactly what
``to_jsonb()`` of the same value renders in the same database, with the same session settings.
The rule is ``datum_to_jsonb`` (src/backend/utils/adt/jsonb.c), which categorises a type after
looking through domains:

- bool -> true/false;
- int2, int4, int8, float4, float8, numeric -> a JSON number written as ``numeric_out`` would
  write ``numeric_in`` of the text ('1e+100' -> 1 and 100 zeros, '1.5e-07' -> 0.00000015,
  '-0' -> 0); 'NaN', 'Infinity' and '-Infinity' stay strings. Not oid, not money: strings;
- date, timestamp, timestamptz -> the XSD form (``2024-01-02T03:04:05.5+00:00``; BC years keep
  their ' BC' suffix; 'infinity' stays);
- json -> converted to jsonb (duplicate keys: the last wins; keys in jsonb order, shorter first;
  numbers normalised as numeric), pre-rendered; jsonb -> embedded as is;
- arrays (of any element type, however many dimensions, whatever their lower bounds) -> nested
  JSON arrays of converted elements; composites -> objects of converted attributes (keys in
  jsonb order);
- a non-built-in type with a function cast to json (hstore, PostGIS geometry, ...) -> the cast's
  result; PostgreSQL calls the cast, so this module asks the server too (one query per value);
- everything else (text, uuid, inet, money, interval, time, bytea, enums, ranges, geometric
  types, ...) -> the output text as a JSON string.

Numbers that must keep their exact digits are ``orjson.Fragment`` s (pre-rendered JSON); so is
jsonb text. Callers serialise with ``orjson.dumps``.

The text forms parsed here (dates, arrays) depend on session settings: the replication
connection must be opened with ``options=session_options()``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

import orjson
import psycopg
from psycopg import sql

from wal2http_tui.replication.deadlines import Unanswered, deadline
from wal2http_tui.replication.messages import UNCHANGED_TOAST, Oid, RelationInfo, TupleData

JsonValue: TypeAlias = (
    "bool | int | str | orjson.Fragment | list[JsonValue] | dict[str, JsonValue] | None"
)
Converter: TypeAlias = Callable[[str], JsonValue]

SESSION_SETTINGS: dict[str, str] = {
    # Dates and timestamps are parsed from ISO output (to_jsonb ignores DateStyle).
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "IntervalStyle": "postgres",
    # Any value above 0 makes float4/float8 output the shortest exact digits (PostgreSQL 12+);
    # 1 is the default, so values match to_jsonb() run in a session with default settings.
    "extra_float_digits": "1",
    "bytea_output": "hex",
    # pgoutput converts every text value to the client encoding (pq_sendcountedtext), and the
    # decoder reads UTF-8: without this a LATIN1 or SQL_ASCII database would send its own bytes.
    "client_encoding": "UTF8",
}

FIRST_NORMAL_OBJECT_ID = 16384
"""Types below this oid come with PostgreSQL; to_jsonb looks for json casts only above it."""


def session_options() -> str:
    """The libpq ``options`` value that applies SESSION_SETTINGS (``-c DateStyle=ISO,\\ MDY ...``).

    The server splits ``options`` on whitespace, so spaces and backslashes in a value are
    backslash-escaped. Pass it as ``options=`` (psycopg quotes it for the conninfo string).
    """
    return " ".join(
        f"-c {_escape_option(name)}={_escape_option(value)}"
        for name, value in SESSION_SETTINGS.items()
    )


def _escape_option(text: str) -> str:
    return re.sub(r"([\\\s])", r"\\\1", text)


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def _text(text: str) -> str:
    return text


def _bool(text: str) -> bool:
    return text == "t"


def _numeric(text: str) -> JsonValue:
    """numeric_out never writes an exponent or '-0', so a finite numeric's text is already final."""
    return orjson.Fragment(text) if text[-1].isdigit() else text


def _float(text: str) -> JsonValue:
    return orjson.Fragment(normalise_number(text)) if text[-1].isdigit() else text


# numeric's limits (numeric.c): digits before the decimal point, and after it.
NUMERIC_MAX_INTEGER_DIGITS = 131072
NUMERIC_MAX_DSCALE = 16383


def normalise_number(text: str) -> str:
    """A JSON or float number text -> the digits ``numeric_out(numeric_in(text))`` writes.

    numeric_in keeps as many decimals as the text has after the point, minus the exponent (never
    fewer than none), which is what Decimal's fixed-point format writes; zero has no sign.
    """
    if "e" in text or "E" in text:
        number = Decimal(text)
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)  # written with an exponent: neither NaN nor infinite
        scale, integer_digits = -exponent, number.adjusted() + 1
        if scale > NUMERIC_MAX_DSCALE or integer_digits > NUMERIC_MAX_INTEGER_DIGITS:
            return text  # to_jsonb fails on it; '1e999999999' is not worth a gigabyte of zeros
        text = format(number, "f")
    if text[0] == "-" and not text.strip("-0."):
        text = text[1:]
    return text


def _timestamp(text: str) -> str:
    """'2024-01-02 03:04:05.5' -> '2024-01-02T03:04:05.5' (a BC suffix stays, as in PostgreSQL)."""
    return text.replace(" ", "T", 1)


def _timestamptz(text: str) -> str:
    """'2024-01-02 03:04:05.5+00' -> '2024-01-02T03:04:05.5+00:00' (XSD offsets have minutes)."""
    if text[-3:] == "+00":
        return text.replace(" ", "T", 1) + ":00"
    if text[-1] == "y":  # infinity, -infinity
        return text
    suffix = " BC" if text.endswith(" BC") else ""
    body = text[: len(text) - len(suffix)].replace(" ", "T", 1)
    offset = max(body.rfind("+"), body.rfind("-"))
    if len(body) - offset == 3:
        body += ":00"
    return body + suffix


def _jsonb(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    """jsonb stores object keys shorter first, then bytewise (lengthCompareJsonbString)."""
    encoded = key.encode()
    return len(encoded), encoded


def _jsonb_object(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
    obj = dict(pairs)  # a repeated key keeps its last value, as jsonb does
    if len(obj) < 2:
        return obj
    return {key: obj[key] for key in sorted(obj, key=_jsonb_key_order)}


def _json_int(text: str) -> orjson.Fragment:
    return orjson.Fragment("0" if text == "-0" else text)


def _json_float(text: str) -> orjson.Fragment:
    return orjson.Fragment(normalise_number(text))


def json_to_jsonb(text: str) -> orjson.Fragment:
    """json text -> what ``text::jsonb`` renders, pre-rendered: the last of duplicate keys wins,
    keys in jsonb order, numbers normalised as numeric, string escapes decoded.

    What PostgreSQL refuses to convert (a lone surrogate escape) or Python cannot parse (nesting
    deeper than its recursion limit) comes through as written.
    """
    try:
        value = json.loads(
            text, object_pairs_hook=_jsonb_object, parse_int=_json_int, parse_float=_json_float
        )
        try:
            return orjson.Fragment(orjson.dumps(value))
        except orjson.JSONEncodeError:  # orjson nests 254 levels at most
            return orjson.Fragment(_render_deep(value))
    except (RecursionError, orjson.JSONEncodeError):
        return orjson.Fragment(text)


def _render_deep(value: JsonValue) -> str:
    if isinstance(value, dict):
        members = (f"{orjson.dumps(k).decode()}:{_render_deep(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render_deep(item) for item in value) + "]"
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------------------------------------
# Arrays and composites
# ---------------------------------------------------------------------------------------------

_BACKSLASH_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_array_tokenizers: dict[str, re.Pattern[str]] = {}


def _array_tokenizer(delimiter: str) -> re.Pattern[str]:
    """Tokens of array_out text: '{', '}', a quoted element, an unquoted element (delimiters
    are what lies between tokens)."""
    pattern = _array_tokenizers.get(delimiter)
    if pattern is None:
        stop = re.escape(delimiter)
        pattern = re.compile(rf'(\{{)|(\}})|"((?:[^"\\]|\\.)*)"|([^{{}}"{stop}]+)', re.DOTALL)
        _array_tokenizers[delimiter] = pattern
    return pattern


def parse_array(text: str, convert: Converter = _text, delimiter: str = ",") -> list[JsonValue]:
    """array_out text -> nested lists; NULL elements -> None, others -> ``convert(element)``.

    Lower bounds ('[0:2]={1,2,3}') are dropped, as to_jsonb drops them. array_out writes NULL
    elements as a bare ``NULL`` and quotes any element that could be mistaken for one.
    """
    if text[0] == "[":
        text = text[text.index("=") + 1 :]
    if '"' not in text and text.count("{") == 1:
        body = text[1:-1]
        if not body:
            return []
        return [None if item == "NULL" else convert(item) for item in body.split(delimiter)]
    stack: list[list[JsonValue]] = [[]]
    for match in _array_tokenizer(delimiter).finditer(text):
        kind = match.lastindex
        if kind == 1:
            nested: list[JsonValue] = []
            stack[-1].append(nested)
            stack.append(nested)
        elif kind == 2:
            stack.pop()
        elif kind == 3:
            element = match[3]
            if "\\" in element:
                element = _BACKSLASH_ESCAPE.sub(r"\1", element)
            stack[-1].append(convert(element))
        else:
            element = match[4]
            stack[-1].append(None if element == "NULL" else convert(element))
    if len(stack) != 1 or len(stack[0]) != 1 or not isinstance(stack[0][0], list):
        raise ValueError(f"not an array value: {text!r}")
    return stack[0][0]


_RECORD_SEGMENT = re.compile(r'"((?:[^"\\]|""|\\.)*)"|((?:[^,()"\\]|\\.)+)', re.DOTALL)
_RECORD_QUOTED_ESCAPE = re.compile(r'""|\\(.)', re.DOTALL)


def _unescape_record_quoted(match: re.Match[str]) -> str:
    return '"' if match[1] is None else match[1]


def parse_composite(text: str) -> list[str | None]:
    """record_out text '(1,"a b",)' -> ['1', 'a b', None]: the attributes' texts, None for NULL.

    As record_in reads it: an empty field is NULL, '""' is the empty string, inside quotes '""'
    is a quote, and a backslash escapes the next character anywhere.
    """
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise ValueError(f"not a composite value: {text!r}")
    fields: list[str | None] = []
    pos = 1
    while True:
        parts: list[str] = []
        while (match := _RECORD_SEGMENT.match(text, pos)) is not None:
            quoted, bare = match.groups()
            if quoted is not None:
                parts.append(_RECORD_QUOTED_ESCAPE.sub(_unescape_record_quoted, quoted))
            else:
                parts.append(_BACKSLASH_ESCAPE.sub(r"\1", bare) if "\\" in bare else bare)
            pos = match.end()
        fields.append("".join(parts) if parts else None)
        if text[pos] == ")":
            break
        if text[pos] != ",":
            raise ValueError(f"not a composite value: {text!r}")
        pos += 1
    if pos != len(text) - 1:
        raise ValueError(f"not a composite value: {text!r}")
    return fields


# ---------------------------------------------------------------------------------------------
# Built-in types (pg_type.dat; identical in PostgreSQL 15 and 16)
# ---------------------------------------------------------------------------------------------

BOOL, INT8, INT2, INT4, JSON, FLOAT4, FLOAT8, NUMERIC = 16, 20, 21, 23, 114, 700, 701, 1700
DATE, TIMESTAMP, TIMESTAMPTZ, JSONB, BOX = 1082, 1114, 1184, 3802, 603

_SCALAR_CONVERTERS: dict[Oid, Converter] = {
    BOOL: _bool,
    INT2: int,
    INT4: int,
    INT8: int,
    FLOAT4: _float,
    FLOAT8: _float,
    NUMERIC: _numeric,
    DATE: _text,  # ISO date output is already the XSD form
    TIMESTAMP: _timestamp,
    TIMESTAMPTZ: _timestamptz,
    JSON: json_to_jsonb,
    JSONB: _jsonb,
}

# The converters the compiled row path (csrc/rows.c) has a rule of its own for, by the name of its
# rule; it renders every other converter's values by calling the converter.
CONVERTER_KINDS: dict[Converter, str] = {
    _text: "text",
    int: "int",
    _bool: "bool",
    _numeric: "numeric",
    _float: "float",
    _jsonb: "jsonb",
    _timestamp: "timestamp",
    _timestamptz: "timestamptz",
}

# Built-in scalar types to_jsonb renders as their output text.
_TEXT_TYPES: dict[Oid, str] = {
    17: "bytea",
    18: "char",
    19: "name",
    24: "regproc",
    25: "text",
    26: "oid",
    27: "tid",
    28: "xid",
    29: "cid",
    142: "xml",
    194: "pg_node_tree",
    600: "point",
    601: "lseg",
    602: "path",
    603: "box",
    604: "polygon",
    628: "line",
    650: "cidr",
    718: "circle",
    774: "macaddr8",
    790: "money",
    829: "macaddr",
    869: "inet",
    1033: "aclitem",
    1042: "bpchar",
    1043: "varchar",
    1083: "time",
    1186: "interval",
    1266: "timetz",
    1560: "bit",
    1562: "varbit",
    1790: "refcursor",
    2202: "regprocedure",
    2203: "regoper",
    2204: "regoperator",
    2205: "regclass",
    2206: "regtype",
    2950: "uuid",
    2970: "txid_snapshot",
    3220: "pg_lsn",
    3361: "pg_ndistinct",
    3402: "pg_dependencies",
    3614: "tsvector",
    3615: "tsquery",
    3642: "gtsvector",
    3734: "regconfig",
    3769: "regdictionary",
    3904: "int4range",
    3906: "numrange",
    3908: "tsrange",
    3910: "tstzrange",
    3912: "daterange",
    3926: "int8range",
    4072: "jsonpath",
    4089: "regnamespace",
    4096: "regrole",
    4191: "regcollation",
    4451: "int4multirange",
    4532: "nummultirange",
    4533: "tsmultirange",
    4534: "tstzmultirange",
    4535: "datemultirange",
    4536: "int8multirange",
    4600: "pg_brin_bloom_summary",
    4601: "pg_brin_minmax_multi_summary",
    5017: "pg_mcv_list",
    5038: "pg_snapshot",
    5069: "xid8",
}

# int2vector and oidvector are arrays to to_jsonb, but their text is space-separated.
_VECTOR_ELEMENTS: dict[Oid, Oid] = {22: INT2, 30: 26}

# Built-in array types: array type oid -> element type oid. The element type's delimiter is ','
# for all of them but box (';'). Elements that are catalog row types are looked up.
_ARRAY_ELEMENTS: dict[Oid, Oid] = {
    143: 142,  # xml[]
    199: 114,  # json[]
    210: 71,  # pg_type[]
    270: 75,  # pg_attribute[]
    271: 5069,  # xid8[]
    272: 81,  # pg_proc[]
    273: 83,  # pg_class[]
    629: 628,  # line[]
    651: 650,  # cidr[]
    719: 718,  # circle[]
    775: 774,  # macaddr8[]
    791: 790,  # money[]
    1000: 16,  # bool[]
    1001: 17,  # bytea[]
    1002: 18,  # char[]
    1003: 19,  # name[]
    1005: 21,  # int2[]
    1006: 22,  # int2vector[]
    1007: 23,  # int4[]
    1008: 24,  # regproc[]
    1009: 25,  # text[]
    1010: 27,  # tid[]
    1011: 28,  # xid[]
    1012: 29,  # cid[]
    1013: 30,  # oidvector[]
    1014: 1042,  # bpchar[]
    1015: 1043,  # varchar[]
    1016: 20,  # int8[]
    1017: 600,  # point[]
    1018: 601,  # lseg[]
    1019: 602,  # path[]
    1020: 603,  # box[]
    1021: 700,  # float4[]
    1022: 701,  # float8[]
    1027: 604,  # polygon[]
    1028: 26,  # oid[]
    1034: 1033,  # aclitem[]
    1040: 829,  # macaddr[]
    1041: 869,  # inet[]
    1115: 1114,  # timestamp[]
    1182: 1082,  # date[]
    1183: 1083,  # time[]
    1185: 1184,  # timestamptz[]
    1187: 1186,  # interval[]
    1231: 1700,  # numeric[]
    1270: 1266,  # timetz[]
    1561: 1560,  # bit[]
    1563: 1562,  # varbit[]
    2201: 1790,  # refcursor[]
    2207: 2202,  # regprocedure[]
    2208: 2203,  # regoper[]
    2209: 2204,  # regoperator[]
    2210: 2205,  # regclass[]
    2211: 2206,  # regtype[]
    2949: 2970,  # txid_snapshot[]
    2951: 2950,  # uuid[]
    3221: 3220,  # pg_lsn[]
    3643: 3614,  # tsvector[]
    3644: 3642,  # gtsvector[]
    3645: 3615,  # tsquery[]
    3735: 3734,  # regconfig[]
    3770: 3769,  # regdictionary[]
    3807: 3802,  # jsonb[]
    3905: 3904,  # int4range[]
    3907: 3906,  # numrange[]
    3909: 3908,  # tsrange[]
    3911: 3910,  # tstzrange[]
    3913: 3912,  # daterange[]
    3927: 3926,  # int8range[]
    4073: 4072,  # jsonpath[]
    4090: 4089,  # regnamespace[]
    4097: 4096,  # regrole[]
    4192: 4191,  # regcollation[]
    5039: 5038,  # pg_snapshot[]
    6150: 4451,  # int4multirange[]
    6151: 4532,  # nummultirange[]
    6152: 4533,  # tsmultirange[]
    6153: 4534,  # tstzmultirange[]
    6155: 4535,  # datemultirange[]
    6157: 4536,  # int8multirange[]
}


# ---------------------------------------------------------------------------------------------
# The catalog, for every other type
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeEntry:
    """What converting one type's values needs to know from pg_type (and pg_attribute)."""

    oid: Oid
    name: str  # format_type(): a valid SQL name for the type
    kind: str  # pg_type.typtype: b base, c composite, d domain, e enum, m multirange, r range
    base_type: Oid  # domains: the type they are over (maybe another domain); else 0
    element: Oid  # true arrays: the element type; else 0
    delimiter: str  # arrays: the element type's delimiter
    attributes: tuple[tuple[str, Oid], ...]  # composites: (name, type) in order, none dropped
    json_cast: bool  # a function cast to json exists (to_jsonb uses it for non-built-in types)


_PRIMARY_KEY_QUERY = """
SELECT a.attname
FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary
ORDER BY k.position
"""

_TYPE_QUERY = """
SELECT t.typtype::text,
       t.typbasetype,
       CASE WHEN t.typlen = -1 AND t.typelem <> 0 THEN t.typelem ELSE 0 END,  -- a true array
       coalesce(e.typdelim, t.typdelim)::text,
       format_type(t.oid, NULL),
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       ARRAY(SELECT a.atttypid FROM pg_attribute a
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum),
       EXISTS (SELECT FROM pg_cast c
               WHERE c.castsource = t.oid AND c.casttarget = 'json'::regtype
                 AND c.castmethod = 'f')
FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
WHERE t.oid = %s
"""


class TypeCatalog:
    """pg_type, read once per type over a connection of its own, and cached.

    ``connect`` opens a plain (not replication) connection to the database being replicated; it
    is called lazily, from whichever thread first needs it, and again if the connection breaks.
    Lookups are serialised by a lock, so one catalog can serve several threads. Each query is
    bounded by ``timeout`` seconds (0: unbounded); past it, ``deadlines.Unanswered``.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection], timeout: float = 0.0) -> None:
        self._connect = connect
        self._timeout = timeout
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._entries: dict[Oid, TypeEntry | None] = {}
        self._primary_keys: dict[Oid, tuple[str, ...]] = {}

    def lookup(self, type_oid: Oid) -> TypeEntry | None:
        """The type's entry, or None if no such type exists (any more)."""
        with self._lock:
            if type_oid in self._entries:
                return self._entries[type_oid]
            rows = self._query(_TYPE_QUERY, (type_oid,))
            entry = None
            if rows:
                kind, base, element, delimiter, name, names, types, json_cast = rows[0]
                entry = TypeEntry(
                    type_oid,
                    name,
                    kind,
                    base,
                    element,
                    delimiter,
                    tuple(zip(names, types, strict=True)),
                    json_cast,
                )
            self._entries[type_oid] = entry
            return entry

    def primary_key(self, relation_oid: Oid) -> tuple[str, ...]:
        """The table's primary key columns, in key order (empty if it has none); cached."""
        with self._lock:
            cached = self._primary_keys.get(relation_oid)
            if cached is None:
                rows = self._query(_PRIMARY_KEY_QUERY, (relation_oid,))
                cached = self._primary_keys[relation_oid] = tuple(name for (name,) in rows)
            return cached

    def to_jsonb(self, type_name: str, text: str) -> str:
        """``to_jsonb()`` of a value of the type, computed by the server (for json casts)."""
        query = sql.SQL("SELECT to_jsonb(CAST(%s::text AS {}))::text").format(sql.SQL(type_name))
        with self._lock:
            return self._query(query, (text,))[0][0]

    def invalidate(self) -> None:
        """Forget every entry (after ALTER TYPE, say): the next lookups query again."""
        with self._lock:
            self._entries.clear()
            self._primary_keys.clear()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _query(self, query: str | sql.Composed, params: Sequence[object]) -> list[tuple]:
        """Run a query, reconnecting once if the connection has broken since the last one."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
                self._conn.autocommit = True
            try:
                with deadline(self._conn, self._timeout, "a type catalog look-up"):
                    return self._conn.execute(query, params).fetchall()
            except Unanswered:
                self._conn.close()
                self._conn = None
                raise
            except psycopg.OperationalError:
                if not self._conn.broken or attempt == 2:
                    raise
                self._conn.close()
                self._conn = None
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Converters
# ---------------------------------------------------------------------------------------------


class RowConverter:
    """Converts one relation's tuples: ``values, unchanged = row_converter(new, old=old)``.

    ``values`` maps column names (in column order) to JSON values. Columns pgoutput did not send
    because their TOASTed value did not change are not invented: they are left out of
    ``values`` and named in ``unchanged``, unless ``old`` supplies them. Pass ``old`` only when
    it is the whole old row (an Update's 'O' tuple, under REPLICA IDENTITY FULL): a key-only
    ('K') tuple has NULLs for the columns that are not in the key.
    """

    __slots__ = ("_columns", "_positions", "relation")

    def __init__(self, relation: RelationInfo, converters: Sequence[Converter]) -> None:
        self.relation = relation
        self._columns = tuple(zip((c.name for c in relation.columns), converters, strict=True))
        self._positions = {column.name: i for i, column in enumerate(relation.columns)}

    @property
    def converters(self) -> tuple[Converter, ...]:
        """One converter per column, in column order."""
        return tuple(convert for _, convert in self._columns)

    def __call__(
        self, new: TupleData, old: TupleData | None = None
    ) -> tuple[dict[str, JsonValue], list[str]]:
        if len(new) != len(self._columns):
            raise ValueError(
                f"{self.relation.qualified_name}: a tuple of {len(new)} columns "
                f"for a relation of {len(self._columns)}"
            )
        values: dict[str, JsonValue] = {}
        unchanged: list[str] = []
        for (name, convert), value in zip(self._columns, new, strict=True):
            if value.__class__ is str:
                values[name] = convert(value)
            elif value is None:
                values[name] = None
            elif value is UNCHANGED_TOAST:
                unchanged.append(name)
            else:
                raise TypeError(f"column {name}: only text format values can be converted")
        if unchanged and old is not None:
            unchanged = self._fill(values, unchanged, old)
        return values, unchanged

    def _fill(
        self, values: dict[str, JsonValue], unchanged: list[str], old: TupleData
    ) -> list[str]:
        missing = []
        for name in unchanged:
            position = self._positions[name]
            value = old[position]
            if value.__class__ is str:
                values[name] = self._columns[position][1](value)
            elif value is None:
                values[name] = None
            else:
                missing.append(name)
        # Keep the relation's column order, which the filled columns have lost.
        if len(values) > 1:
            ordered = {name: values[name] for name, _ in self._columns if name in values}
            values.clear()
            values.update(ordered)
        return missing


class ValueConverter:
    """Converters from pgoutput text to JSON values, one per type, built once and cached.

    Built-in types are known statically. Every other type (domains, enums, composites, ranges,
    arrays of them, extension types) is read from ``catalog`` once. Without a catalog such types
    are rendered as their text, which is right for enums and ranges but not for domains over
    numbers, composites or arrays of custom types.
    """

    def __init__(self, catalog: TypeCatalog | None = None) -> None:
        self._catalog = catalog
        self._converters: dict[Oid, Converter] = {}
        self._lock = threading.RLock()

    def converter_for(self, type_oid: Oid) -> Converter:
        converter = self._converters.get(type_oid)
        if converter is None:
            with self._lock:
                converter = self._converters.get(type_oid)
                if converter is None:
                    converter = self._build(type_oid)
                    self._converters[type_oid] = converter
        return converter

    def row_converter(self, relation: RelationInfo) -> RowConverter:
        return RowConverter(relation, [self.converter_for(c.type_oid) for c in relation.columns])

    def key_columns(self, relation: RelationInfo) -> tuple[str, ...]:
        """The columns that identify a row: the replica identity's, except under REPLICA
        IDENTITY FULL (which marks every column) the primary key, when the table has one."""
        if relation.replica_identity == "f" and self._catalog is not None:
            return self._catalog.primary_key(relation.oid) or relation.key_columns
        return relation.key_columns

    def invalidate(self) -> None:
        """Forget what was read from the catalog, when a type may have changed (ALTER TYPE, a
        type dropped and created again): on pgoutput's Type messages, say. Row converters built
        before keep what they were built with; build them again."""
        with self._lock:
            self._converters.clear()
            if self._catalog is not None:
                self._catalog.invalidate()

    def _build(self, type_oid: Oid) -> Converter:
        scalar = _SCALAR_CONVERTERS.get(type_oid)
        if scalar is not None:
            return scalar
        if type_oid in _TEXT_TYPES:
            return _text
        element = _ARRAY_ELEMENTS.get(type_oid)
        if element is not None:
            return _array_converter(self.converter_for(element), ";" if element == BOX else ",")
        element = _VECTOR_ELEMENTS.get(type_oid)
        if element is not None:
            return _vector_converter(self.converter_for(element))
        catalog = self._catalog
        if catalog is None:
            return _text
        entry = catalog.lookup(type_oid)
        if entry is None:
            return _text
        if entry.kind == "d":
            return self.converter_for(entry.base_type)
        if entry.element:
            return _array_converter(self.converter_for(entry.element), entry.delimiter)
        if entry.kind == "c":
            return self._composite_converter(entry)
        if entry.json_cast and type_oid >= FIRST_NORMAL_OBJECT_ID:
            return _json_cast_converter(catalog, entry.name)
        return _text

    def _composite_converter(self, entry: TypeEntry) -> Converter:
        names = [name for name, _ in entry.attributes]
        converters = [self.converter_for(type_oid) for _, type_oid in entry.attributes]
        order = sorted(range(len(names)), key=lambda i: _jsonb_key_order(names[i]))

        def convert(text: str) -> dict[str, JsonValue]:
            fields = parse_composite(text)
            if not names and fields == [None]:
                return {}
            if len(fields) != len(names):
                raise ValueError(
                    f"a value of {entry.name} has {len(fields)} attributes, the catalog "
                    f"{len(names)}: {text!r}"
                )
            return {
                names[i]: None if (field := fields[i]) is None else converters[i](field)
                for i in order
            }

        return convert


@dataclass(frozen=True, slots=True)
class ArrayConverter:
    """An array type's converter: its elements by ``element``, between ``delimiter`` s (the
    compiled row path reads these to render one-dimensional arrays itself)."""

    element: Converter
    delimiter: str

    def __call__(self, text: str) -> JsonValue:
        return parse_array(text, self.element, self.delimiter)


def _array_converter(convert: Converter, delimiter: str) -> Converter:
    return ArrayConverter(convert, delimiter)


def _vector_converter(convert: Converter) -> Converter:
    return lambda text: [convert(item) for item in text.split()]


def _json_cast_converter(catalog: TypeCatalog, type_name: str) -> Converter:
    return lambda text: orjson.Fragment(catalog.to_jsonb(type_name, text))
