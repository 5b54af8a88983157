"""The generated encoders write exactly fastavro's bytes, and refuse what fastavro refuses."""

from __future__ import annotations

import io

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codec import ALL_SCHEMA, records
from wirestream.schemas.avro import bundled_avro_schema
from wirestream.schemas.codec import (
    CodecError,
    decode,
    encode,
    encode_body,
    pua_escape,
    wire_schema,
)
from wirestream.schemas.fastencode import zigzag
from wirestream.schemas.store import SchemaCache


def fastavro_body(record, schema) -> bytes:
    ws = wire_schema(schema)
    datum = {k: pua_escape(v) for k, v in ws.to_avro(record).items()}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, ws.parsed, datum)
    return buf.getvalue()


@settings(max_examples=200, deadline=None)
@given(records)
def test_generated_bytes_equal_fastavro(record):
    assert wire_schema(ALL_SCHEMA).encoder is not None
    assert encode_body(record, ALL_SCHEMA) == fastavro_body(record, ALL_SCHEMA)


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_matches_fastavro_long(n):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, "long", n)
    assert zigzag(n) == buf.getvalue()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("id.orig_p", 2**31),  # port is an Avro int
        ("id.orig_p", "80"),
        ("orig_bytes", 2**63),
        ("orig_bytes", 1.5),
        ("duration", "1s"),
        ("local_orig", 1),
        ("uid", 42),
        ("uid", b"bytes"),
        ("tunnel_parents", "not-a-list"),
        ("tunnel_parents", [None]),
        ("ts", float("nan")),
        ("ts", float("inf")),
    ],
)
def test_bad_values_are_named(column, value):
    with pytest.raises(CodecError, match=column.replace(".", r"\.")):
        encode({column: value}, bundled_avro_schema("conn"))


def test_schemas_out_of_scope_use_fastavro():
    schema = {
        "type": "record",
        "name": "other",
        "fields": [
            {"name": "m", "type": ["null", {"type": "map", "values": "long"}], "default": None},
            {"name": "f", "type": "float"},
        ],
    }
    ws = wire_schema(schema)
    assert ws.encoder is None
    record = {"m": {"a": 1}, "f": 0.5}
    assert decode(encode(record, schema), SchemaCache([schema])) == record
