"""Single-object and Confluent codecs: framing, conversions, errors, arbitrary values."""

from __future__ import annotations

import io
import math

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.schemas.avro import avro_schema, bundled_avro_schema, fingerprint
from wirestream.schemas.codec import (
    SINGLE_OBJECT_HEADER,
    CodecError,
    UnknownSchemaError,
    decode,
    decode_any,
    decode_body,
    decode_confluent,
    decode_many,
    encode,
    encode_body,
    encode_confluent,
    encode_confluent_many,
    encode_many,
    split_confluent,
    split_single_object,
    wire_schema,
)
from wirestream.schemas.headers import header_values, headers_for
from wirestream.schemas.store import SchemaCache, SchemaConflictError
from wirestream.schemas.zeek_types import SCALARS, Column, LogSchema, ZeekType

CONN = bundled_avro_schema("conn")
RECORD = {
    "ts": 1379288667.706265,
    "uid": "CoyZrY2g74UvMMgp4a",
    "id.orig_h": "192.168.33.10",
    "id.orig_p": 1032,
    "id.resp_h": "54.245.228.191",
    "id.resp_p": 80,
    "proto": "tcp",
    "service": "http",
    "duration": 0.44746,
    "orig_bytes": 601,
    "conn_state": "RSTO",
    "local_orig": None,
    "history": "ShADadR",
    "tunnel_parents": [],
}


def full(record: dict, schema=CONN) -> dict:
    """The decoded form: every column, absent ones None."""
    return {f["zeek_name"]: record.get(f["zeek_name"]) for f in schema["fields"]}


def test_single_object_framing():
    message = encode(RECORD, CONN)
    assert message[:2] == b"\xc3\x01"
    assert message[2:10].hex() == fingerprint(CONN)
    fp, body = split_single_object(message)
    assert fp == fingerprint(CONN)
    # the body is plain Avro binary any Avro library reads with the schema
    plain = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(CONN))
    assert plain["id_orig_h"] == "192.168.33.10"
    assert plain["ts"].timestamp() == pytest.approx(RECORD["ts"], abs=1e-6)


def test_round_trip_and_store_lookup():
    store = SchemaCache([CONN])
    assert decode(encode(RECORD, CONN), store) == full(RECORD)
    messages = encode_many([RECORD, {"ts": 0.0}, {}], CONN)
    assert decode_many(messages, store) == [full(RECORD), full({"ts": 0.0}), full({})]


def test_unknown_fingerprint_is_a_clear_error():
    with pytest.raises(UnknownSchemaError, match=fingerprint(CONN)):
        decode(encode(RECORD, CONN), SchemaCache())


def test_time_is_micros_on_the_wire():
    body = encode_body({"ts": 1.000001}, CONN)
    raw = fastavro.schemaless_reader(io.BytesIO(body), wire_schema(CONN).parsed)
    assert raw["ts"] == 1000001
    assert decode_body(body, CONN)["ts"] == 1.000001
    assert decode_body(encode_body({"ts": -1.5}, CONN), CONN)["ts"] == -1.5


def test_bad_framing():
    for junk in (b"", b"\xc3", b"\xc3\x01abc", b"\x00\x00\x00\x00\x01abc", b"hello world!"):
        with pytest.raises(CodecError):
            decode(junk, SchemaCache([CONN]))
    with pytest.raises(CodecError):
        split_confluent(b"\xc3\x01")


def test_bad_records_name_the_column():
    with pytest.raises(CodecError, match="'ts'"):
        encode({"ts": "yesterday"}, CONN)
    with pytest.raises(CodecError, match="orig_bytes"):
        encode({"orig_bytes": 2**64 - 1}, CONN)  # Zeek counts above 2**63 do not fit a long
    with pytest.raises(CodecError, match=r"\['bogus'\]"):
        encode({"ts": 1.0, "bogus": 1}, CONN)


def test_non_utf8_bytes_survive():
    """Zeek strings are bytes: non-UTF-8 ones (surrogateescape) go as Zeek's PUA code points."""
    http = bundled_avro_schema("http")
    raw = b"/a\xff\xfe\x80".decode("utf-8", "surrogateescape")
    record = {"uri": raw, "tags": [raw, "plain"], "user_agent": "caf\u00e9 \U0001f600"}
    message = encode(record, http)
    assert "\U000f00ff".encode() in message
    assert decode(message, SchemaCache([http])) == full(record, http)


def test_confluent_framing():
    message = encode_confluent(RECORD, CONN, 7)
    assert message[:5] == b"\x00\x00\x00\x00\x07"
    schema_id, body = split_confluent(message)
    assert schema_id == 7 and body == encode_body(RECORD, CONN)
    assert encode_confluent_many([RECORD], CONN, 7) == [message]

    class Registry:
        def wire_by_id(self, schema_id):
            if schema_id != 7:
                raise UnknownSchemaError(schema_id)
            return wire_schema(CONN)

    assert decode_confluent(message, Registry()) == full(RECORD)
    assert decode_any(message, SchemaCache(), Registry()) == full(RECORD)
    assert decode_any(encode(RECORD, CONN), SchemaCache([CONN])) == full(RECORD)
    with pytest.raises(CodecError, match="Registry"):
        decode_any(message, SchemaCache())
    with pytest.raises(CodecError):
        encode_confluent(RECORD, CONN, -1)


def test_reader_schema_resolution_in_decode():
    old = {**CONN, "fields": [f for f in CONN["fields"] if f["name"] != "ip_proto"]}
    store = SchemaCache([old])
    decoded = decode(encode({**RECORD}, old), store, reader=CONN)
    assert decoded == full(RECORD)


def test_store_conflicts():
    cache = SchemaCache([CONN])
    same_wire = {**CONN, "fields": [{**f, "zeek_type": "x"} for f in CONN["fields"]]}
    assert cache.add(same_wire).schema == CONN  # first kept: decodes identically
    renamed = {**CONN, "fields": [{**CONN["fields"][0], "zeek_name": "when"}, *CONN["fields"][1:]]}
    with pytest.raises(SchemaConflictError):
        cache.add(renamed)
    as_long = {
        **CONN,
        "fields": [{**CONN["fields"][0], "type": ["null", "long"]}, *CONN["fields"][1:]],
    }
    with pytest.raises(SchemaConflictError):
        cache.add(as_long)


def test_headers():
    headers = headers_for("conn", "sensor-1", "cap-9", fingerprint(CONN))
    assert dict(headers) == {
        "log": b"conn",
        "sensor": b"sensor-1",
        "capture": b"cap-9",
        "schema": fingerprint(CONN).encode(),
    }
    assert header_values(headers)["schema"] == fingerprint(CONN)
    assert header_values(None) == {}


# --- arbitrary values per Zeek type ---------------------------------------------------------

zeek_text = st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")))
SCALAR_VALUES = {
    # any microsecond time up to the year 2242 (2**33 s) comes back exactly
    "time": st.integers(-(2**33) * 10**6, 2**33 * 10**6).map(lambda us: us / 1e6),
    "interval": st.floats(allow_nan=False),
    "double": st.floats(allow_nan=False),
    "count": st.integers(0, 2**63 - 1),
    "int": st.integers(-(2**63), 2**63 - 1),
    "port": st.integers(0, 65535),
    "bool": st.booleans(),
}
ALL_TYPES = [ZeekType(s) for s in sorted(SCALARS)] + [
    ZeekType(s, c) for s in sorted(SCALARS) for c in ("set", "vector")
]
ALL_LOG = LogSchema(
    "everything", tuple(Column(f"c.{i}_{t.scalar}", t) for i, t in enumerate(ALL_TYPES))
)
ALL_SCHEMA = avro_schema(ALL_LOG)


def value_strategy(ztype: ZeekType):
    scalar = SCALAR_VALUES.get(ztype.scalar, zeek_text)
    return st.none() | (st.lists(scalar, max_size=4) if ztype.is_container else scalar)


records = st.fixed_dictionaries({c.name: value_strategy(c.type) for c in ALL_LOG.columns})


@settings(max_examples=150, deadline=None)
@given(records)
def test_arbitrary_values_round_trip(record):
    store = SchemaCache([ALL_SCHEMA])
    assert decode(encode(record, ALL_SCHEMA), store) == record


@settings(max_examples=50, deadline=None)
@given(st.lists(records, max_size=5))
def test_batches_round_trip(batch):
    store = SchemaCache([ALL_SCHEMA])
    assert decode_many(encode_many(batch, ALL_SCHEMA), store) == batch


def test_times_far_out_are_exact():
    for us in (4365105201908789, 2**33 * 10**6 - 1, -(2**33) * 10**6 + 1, 1):
        assert decode_body(encode_body({"ts": us / 1e6}, CONN), CONN)["ts"] == us / 1e6


def test_nan_and_infinities():
    record = {"duration": math.inf}
    assert decode_body(encode_body(record, CONN), CONN)["duration"] == math.inf
    back = decode_body(encode_body({"duration": math.nan}, CONN), CONN)
    assert math.isnan(back["duration"])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.binary(max_size=8))
def test_damaged_messages_raise_codec_errors(cut, tail):
    """A cut or re-tailed body is a CodecError or (if still well-formed) a record: nothing else."""
    message = encode(RECORD, CONN)
    damaged = message[: SINGLE_OBJECT_HEADER + cut % (len(message) - SINGLE_OBJECT_HEADER)] + tail
    try:
        decoded = decode(damaged, SchemaCache([CONN]))
    except CodecError:
        return
    assert set(decoded) == set(full(RECORD))


def test_trailing_bytes_are_refused():
    with pytest.raises(CodecError, match="left after the record"):
        decode(encode(RECORD, CONN) + b"\x00", SchemaCache([CONN]))
