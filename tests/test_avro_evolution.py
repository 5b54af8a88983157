"""Schema evolution across Zeek versions: old records decode with the new reader schema."""

from __future__ import annotations

import pytest
from wirestream.schemas.avro import avro_schema, bundled_avro_schema
from wirestream.schemas.codec import decode_body, encode_body
from wirestream.schemas.zeek_types import LogSchema, ZeekType, zeek_log_schemas

SAMPLES = {
    "time": 1379288667.706265,
    "interval": 0.44746,
    "double": 3.14,
    "count": 42,
    "int": -42,
    "port": 443,
    "bool": True,
    "addr": "10.0.0.1",
    "subnet": "10.0.0.0/24",
    "enum": "tcp",
    "string": "hurz",
    "pattern": "/^a/",
}


def sample(ztype: ZeekType):
    value = SAMPLES[ztype.scalar]
    return [value, value] if ztype.is_container else value


def full_record(log: LogSchema) -> dict:
    return {c.name: sample(c.type) for c in log.columns}


def version_pairs(shared, version):
    old = zeek_log_schemas(shared / f"zeek-ref/schemas_other_versions/log_schemas_{version}.json")
    new = zeek_log_schemas()
    return [(old[name], new[name]) for name in sorted(set(old) & set(new))]


@pytest.mark.parametrize("version", ["v7.0.11", "v8.0.10"])
def test_old_records_decode_with_new_reader(shared, version):
    changed = 0
    for old, new in version_pairs(shared, version):
        record = full_record(old)
        body = encode_body(record, avro_schema(old))
        decoded = decode_body(body, avro_schema(old), bundled_avro_schema(new.name))
        assert list(decoded) == new.names
        for name in new.names:
            expected = record.get(name) if name in old.names else None
            assert decoded[name] == expected, (new.name, name)
        changed += old.names != new.names
    assert changed >= 2  # conn ip_proto, dns opcode at least


@pytest.mark.parametrize("version", ["v7.0.11", "v8.0.10"])
def test_new_records_decode_with_old_reader(shared, version):
    """Forward compatibility too: consumers still on an old schema drop the new columns."""
    for old, new in version_pairs(shared, version):
        record = full_record(new)
        body = encode_body(record, bundled_avro_schema(new.name))
        decoded = decode_body(body, bundled_avro_schema(new.name), avro_schema(old))
        assert decoded == {n: record.get(n) if n in new.names else None for n in old.names}


def test_conn_ip_proto_and_dns_opcode(shared):
    pairs = dict((o.name, (o, n)) for o, n in version_pairs(shared, "v7.0.11"))
    old_conn, new_conn = pairs["conn"]
    assert "ip_proto" not in old_conn.names and "ip_proto" in new_conn.names
    decoded = decode_body(
        encode_body({"ts": 1.0, "proto": "udp"}, avro_schema(old_conn)),
        avro_schema(old_conn),
        bundled_avro_schema("conn"),
    )
    assert decoded["ip_proto"] is None and decoded["proto"] == "udp" and decoded["ts"] == 1.0
    old_dns, _ = pairs["dns"]
    decoded = decode_body(
        encode_body({"query": "example.com"}, avro_schema(old_dns)),
        avro_schema(old_dns),
        bundled_avro_schema("dns"),
    )
    assert decoded["opcode"] is None and decoded["query"] == "example.com"
