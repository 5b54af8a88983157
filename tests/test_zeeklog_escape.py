"""Zeek's escaping rules, checked against the vectors in Zeek's own log-writer tests."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from wirestream.schemas.zeek_types import parse_type
from wirestream.schemas.zeeklog import TsvDialect, format_value, parse_value
from wirestream.schemas.zeeklog.escape import (
    bytes_text,
    escape_field,
    escape_utf8,
    json_string_hex,
    json_string_pua,
    json_string_tsv,
    text_bytes,
    undo_pua,
    unescape_field,
)

STRING = parse_type("string")
SET_STRING = parse_type("set[string]")
zeek_bytes = st.binary(max_size=40).map(bytes_text)
zeek_text = st.one_of(st.text(max_size=40), zeek_bytes)


def test_reserved_values_get_their_first_byte_escaped():
    # ascii-escape-notset-str: a string equal to the unset marker, unset, and empty.
    assert format_value("-", STRING) == "\\x2d"
    assert format_value(None, STRING) == "-"
    assert format_value("", STRING) == "(empty)"
    assert format_value("(empty)", STRING) == "\\x28empty)"
    # ascii-escape-empty-str: inside a set, with a custom empty marker.
    assert format_value(["EMPTY"], SET_STRING, TsvDialect(empty_field="EMPTY")) == "\\x45MPTY"


def test_set_separator_is_escaped_only_inside_containers():
    # ascii-escape-set-separator
    assert format_value(["AA", ",", ",,", "CC"], SET_STRING) == "AA,\\x2c,\\x2c\\x2c,CC"
    assert format_value("a,b", STRING) == "a,b"
    assert parse_value("AA,\\x2c,\\x2c\\x2c,CC", SET_STRING) == ["AA", ",", ",,", "CC"]


def test_multi_byte_separator_is_escaped_as_a_whole():
    # ascii-escape: separator "||"
    assert format_value("fa||ure", STRING, TsvDialect(separator="||")) == "fa\\x7c\\x7cure"
    assert format_value("fa|ure", STRING, TsvDialect(separator="||")) == "fa|ure"


def test_binary_without_utf8_mode():
    # ascii-escape-binary (LogAscii::enable_utf_8 = F)
    latin = TsvDialect(utf8=False)
    cases = {
        b"AB\0CD\0": "AB\\x00CD\\x00",
        b"AB\xffCD\0": "AB\\xffCD\\x00",
        b"AB\\xffCD\0": "AB\\\\xffCD\\x00",
        b"foo \xc2\xae bar \\xc2\\xae baz": "foo \\xc2\\xae bar \\\\xc2\\\\xae baz",
        b"foo \x0e bar ^N baz": "foo \\x0e bar ^N baz",
    }
    for raw, text in cases.items():
        assert format_value(bytes_text(raw), STRING, latin) == text
        assert text_bytes(parse_value(text, STRING, latin)) == raw


def test_utf8_mode_keeps_valid_text_and_escapes_controls():
    # ascii-utf8-enabled and ascii-utf8-enabled-control-characters
    assert format_value("दुनिया को नमस्ते", STRING) == "दुनिया को नमस्ते"
    assert format_value("foo \n\t\0 bar", STRING) == "foo \\x0a\\x09\\x00 bar"
    # One bad byte in a run hex-escapes the whole run (Zeek's escape_utf8), runs end at escapes.
    assert escape_utf8("é\x01".encode()) == b"\\xc3\\xa9\\x01"
    assert escape_field("é\\\x01") == "é\\\\\\x01"


def test_backslash_is_doubled_and_undone():
    assert format_value("a\\b", STRING) == "a\\\\b"
    assert parse_value("a\\\\b", STRING) == "a\\b"
    # A backslash Zeek did not write as an escape (old Bro logs) stays as it is.
    assert unescape_field("Amazon.com\\, Inc.") == "Amazon.com\\, Inc."


def test_json_hex_policy_vectors():
    # ascii-json-utf8, ssh.log.hex
    assert json_string_hex("\b\f\n\r\t\x00\x15") == '"\\b\\f\\n\\r\\t\\\\x00\\\\x15"'
    assert json_string_hex(bytes_text(b"\xc3\x28")) == '"\\\\xc3("'
    assert (
        json_string_hex("a rocket 🚀!\x00 NUL\x00")
        == '"a rocket \\\\xf0\\\\x9f\\\\x9a\\\\x80!\\\\x00 NUL\\\\x00"'
    )
    assert json_string_hex("ñ") == '"ñ"'


def test_json_pua_and_tsv_policies():
    assert json_string_pua(bytes_text(b"\xc3\x28")) == '"\\udb80\\udcc3("'
    assert json_string_pua("a rocket 🚀!\x00") == '"a rocket 🚀!\\udb80\\udc00"'
    assert json_string_tsv("\t\\t\t") == '"\\\\x09\\\\\\\\t\\\\x09"'


@given(zeek_text)
def test_escape_then_unescape_is_identity(text):
    assert unescape_field(escape_field(text, ("\t", ","))) == text
    assert unescape_field(escape_field(text, ("\t",), utf8=False)) == text


@given(zeek_text)
def test_escaped_field_has_no_raw_separator_and_is_utf8(text):
    out = escape_field(text, ("\t", ","))
    assert "\t" not in out and "," not in out and "\n" not in out
    out.encode("utf-8")  # never carries surrogates: every bad byte became \xNN
    latin = escape_field(text, ("\t",), utf8=False)
    assert latin.isascii() and latin.isprintable()


@given(st.lists(zeek_text, min_size=1, max_size=5))
def test_set_values_round_trip(values):
    if values == [""]:
        values = [
            "",
            "",
        ]  # a lone "" element prints as (empty), like an empty set (Zeek's ambiguity)
    assert parse_value(format_value(values, SET_STRING), SET_STRING) == values


@given(zeek_text.filter(lambda t: not any(0xF0000 <= ord(c) <= 0xF00FF for c in t)))
def test_json_pua_policy_is_lossless(text):
    assert undo_pua(json.loads(json_string_pua(text))) == text


@given(zeek_text)
def test_json_hex_policy_is_a_fixed_point(text):
    once = json.loads(json_string_hex(text))
    assert json.loads(json_string_hex(once)) == once
