"""A table with a column of every built-in type (and the optional ones the server has), and the
values to insert: what the to_jsonb tests run against."""

from __future__ import annotations

import psycopg

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
ALTER TABLE pair REPLICA IDENTITY FULL;  -- published by FOR ALL TABLES: no key, so FULL
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


def supported(pg, probe: str) -> bool:
    try:
        pg.execute(probe)
    except psycopg.Error:
        return False
    return True
