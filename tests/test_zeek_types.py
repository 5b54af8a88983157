"""Zeek type strings, including old Bro ``table[T]`` sets, parse into one model."""

from __future__ import annotations

import pytest
from wirestream.schemas.zeek_types import ZeekType, ZeekTypeError, parse_type, zeek_log_schemas


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count", ZeekType("count")),
        ("set[addr]", ZeekType("addr", "set")),
        ("vector[interval]", ZeekType("interval", "vector")),
        ("table[string]", ZeekType("string", "set")),
    ],
)
def test_parse(text, expected):
    assert parse_type(text) == expected


@pytest.mark.parametrize("text", ["", "set[set[count]]", "record", "vector[]", "counts"])
def test_rejects_unknown(text):
    with pytest.raises(ZeekTypeError):
        parse_type(text)


def test_bundled_schemas_cover_the_default_logs():
    schemas = zeek_log_schemas()
    for log in (
        "conn",
        "dns",
        "http",
        "files",
        "ssl",
        "x509",
        "weird",
        "notice",
        "quic",
        "known_services",
    ):
        assert log in schemas
    conn = schemas["conn"]
    assert conn.names[:6] == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
    assert str(conn.columns[-2].type) == "set[string]"
