"""One value per Zeek type <-> its TSV/JSON text, as Zeek prints it."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wirestream.schemas.zeek_types import LogSchema, parse_type
from wirestream.schemas.zeeklog import JsonOptions, format_value, parse_value
from wirestream.schemas.zeeklog.doubles import format_double, format_json_double, format_time
from wirestream.schemas.zeeklog.escape import bytes_text
from wirestream.schemas.zeeklog.json_lines import (
    format_iso8601,
    infer_schema,
    json_value_reader,
    record_formatter,
)

# (value, TSV text, JSON text) from Zeek's ascii-double test (test.log and json.log).
DOUBLES = [
    (2153226000.0, "2153226000.0", "2153226000.0"),
    (2153226000.1, "2153226000.1", "2153226000.1"),
    (2153226000.123456789, "2153226000.123457", "2153226000.123457"),
    (1.0, "1.0", "1.0"),
    (1.123456789, "1.123457", "1.123456789"),
    (-1.123456789, "-1.123457", "-1.123456789"),
    (0.1234, "0.1234", "0.1234"),
    (5e4, "50000.0", "50000.0"),
    (-3.14e15, "-3140000000000000.0", "-3140000000000000.0"),
    (1.23456789e-5, "0.000012", "0.0000123456789"),
    (2.23e-308, "0.0", "2.23e-308"),
    (-2.23e-308, "-0.0", "-2.23e-308"),
    (-0.0, "0.0", "-0.0"),
    (math.inf, "inf", None),
    (-math.inf, "-inf", None),
    (math.nan, "nan", None),
]


@pytest.mark.parametrize(("value", "tsv", "js"), DOUBLES)
def test_doubles_print_as_zeek_does(value, tsv, js):
    assert format_double(value) == tsv
    assert format_json_double(value) == js


def test_huge_double_prints_every_digit():
    assert format_double(1.79e308).startswith("1789999999999999963")
    assert format_double(1.79e308).endswith("744.0")
    assert format_json_double(1.79e308) == "1.79e308"
    assert format_json_double(1e16) == "10000000000000000.0"
    assert format_json_double(1e22) == "1e22"


def test_tiny_negative_double_reads_back_as_tiny_negative():
    # Zeek prints a real -0.0 as "0.0", so "-0.0" in a log is a value just below zero.
    value = parse_value("-0.0", parse_type("double"))
    assert value < 0 and format_double(value) == "-0.0"


def test_times_keep_six_decimals():
    # ascii-timestamps
    assert format_time(1234567890) == "1234567890.000000"
    assert format_time(1234567890.0000001) == "1234567890.000000"
    assert format_time(1234567890.01) == "1234567890.010000"
    assert format_value(100.0, parse_type("interval")) == "100.000000"


def test_iso8601_timestamps():
    # ascii-json-iso-timestamps and ascii-negative-ts
    assert format_iso8601(1215620010.0054321) == "2008-07-09T16:13:30.005432Z"
    assert format_iso8601(-0.4) == "1969-12-31T23:59:59.600000Z"
    assert format_iso8601(-315619200) == "1960-01-01T00:00:00.000000Z"


def test_scalars_and_unset():
    assert format_value(True, parse_type("bool")) == "T"
    assert parse_value("F", parse_type("bool")) is False
    assert parse_value("-", parse_type("bool")) is None
    assert format_value(-42, parse_type("int")) == "-42"
    assert parse_value("80", parse_type("port")) == 80
    assert format_value([], parse_type("vector[string]")) == "(empty)"
    assert parse_value("(empty)", parse_type("set[count]")) == []
    assert parse_value("-", parse_type("vector[string]")) is None
    assert parse_value("0,-,2", parse_type("vector[count]")) == [0, None, 2]
    assert format_value([0, None, 2], parse_type("vector[count]")) == "0,-,2"


@pytest.mark.parametrize(
    ("text", "type_name"),
    [("-1", "count"), ("x", "int"), ("70000", "port"), ("maybe", "bool"), ("1.5", "count")],
)
def test_bad_values_raise(text, type_name):
    with pytest.raises(ValueError):
        parse_value(text, parse_type(type_name))


def test_json_record_like_zeek():
    # ascii-json: every type, unset fields left out
    schema = LogSchema(
        "ssh",
        tuple(
            __import__("wirestream.schemas.zeek_types", fromlist=["Column"]).Column(
                n, parse_type(t)
            )
            for n, t in [
                ("b", "bool"),
                ("i", "int"),
                ("p", "port"),
                ("d", "double"),
                ("iv", "interval"),
                ("s", "string"),
                ("sc", "set[count]"),
                ("vn", "vector[count]"),
                ("u", "string"),
            ]
        ),
    )
    record = {
        "b": True,
        "i": -42,
        "p": 123,
        "d": 3.14,
        "iv": 100.0,
        "s": "hurz",
        "sc": [4, 2, 3, 1],
        "vn": [0, None, 2],
        "u": None,
    }
    line = record_formatter(schema)(record)
    assert line == (
        '{"b":true,"i":-42,"p":123,"d":3.14,"iv":100.0,"s":"hurz","sc":[4,2,3,1],"vn":[0,null,2]}'
    )
    with_nulls = record_formatter(schema, JsonOptions(include_unset=True))(record)
    assert with_nulls.endswith(',"u":null}')


def test_json_schema_inference():
    rows = [
        {"ts": 1.5, "uid": "C1", "n": 3, "flag": True},
        {"ts": 2.0, "uid": "C2", "extra": [1, 2]},
    ]
    schema = infer_schema(rows)
    types = {c.name: str(c.type) for c in schema.columns}
    # Keys keep their order within each record; where records disagree any merge is valid.
    names = schema.names
    assert names[:2] == ["ts", "uid"] and names.index("n") < names.index("flag")
    assert types == {
        "ts": "time",
        "uid": "string",
        "n": "count",
        "flag": "bool",
        "extra": "vector[count]",
    }


# --- properties: every value of every type survives its text ---------------------------------

zeek_text = st.one_of(st.text(max_size=20), st.binary(max_size=20).map(bytes_text))
EXACT = {
    "count": st.integers(0, 2**64 - 1),
    "int": st.integers(-(2**63), 2**63 - 1),
    "port": st.integers(0, 65535),
    "bool": st.booleans(),
    "string": zeek_text,
    "enum": st.from_regex(r"[A-Za-z_:]{1,12}", fullmatch=True),
    "addr": st.ip_addresses().map(str),
}


@pytest.mark.parametrize("scalar", sorted(EXACT))
@given(data=st.data())
def test_exact_types_round_trip(scalar, data):
    ztype = parse_type(scalar)
    value = data.draw(EXACT[scalar])
    assert parse_value(format_value(value, ztype), ztype) == value
    vector = parse_type(f"vector[{scalar}]")
    values = data.draw(st.lists(st.one_of(st.none(), EXACT[scalar]), min_size=2, max_size=4))
    assert parse_value(format_value(values, vector), vector) == values


@pytest.mark.parametrize("scalar", ["double", "time", "interval"])
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_float_types_text_is_a_fixed_point(scalar, value):
    ztype = parse_type(scalar)
    text = format_value(value, ztype)
    again = parse_value(text, ztype)
    assert format_value(again, ztype) == text
    if math.isfinite(value) and abs(value) < 1e15:
        assert abs(again - value) <= 5e-7 * max(1.0, abs(value) * 1e-9) + 1e-12


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_json_doubles_are_exact(value):
    text = format_json_double(value)
    assert float(json.loads(text)) == value
    assert json_value_reader(parse_type("double"))(json.loads(text)) == value


# rapidjson's Grisu2 is not always the shortest: these doubles print with one digit more than
# Python's repr, exactly as Zeek's JSON writer prints them (found by comparing with a direct
# transliteration of rapidjson's dtoa.h over 600k random doubles: 0 mismatches, 0.08% longer).
@pytest.mark.parametrize("value", [1e23, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308])
def test_grisu2_edge_values_round_trip(value):
    assert float(format_json_double(value)) == value


def test_grisu2_is_sometimes_longer_than_repr():
    from wirestream.schemas.zeeklog.doubles import grisu2

    longer = []
    for i in range(20000):
        value = 1.2e9 + i * 0.000123457
        digits, _ = grisu2(value)
        shortest = repr(value).replace(".", "").lstrip("0").rstrip("0")
        if len(digits) > len(shortest):
            longer.append(value)
        assert float(format_json_double(value)) == value
    assert 0 < len(longer) < 200  # rare, and real
