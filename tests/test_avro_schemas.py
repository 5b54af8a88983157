"""The Zeek -> Avro mapping, the committed .avsc files and fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from wirestream.schemas import generate
from wirestream.schemas.avro import (
    NAMESPACE,
    AvroMappingError,
    avro_name,
    avro_schema,
    bundled_avro_schema,
    fingerprint,
    fingerprint_int,
    log_schema_from_header,
    log_schema_from_json,
)
from wirestream.schemas.zeek_types import Column, LogSchema, parse_type, zeek_log_schemas

AVSC = Path(generate.__file__).with_name("avsc")


def test_every_log_has_a_committed_avsc_that_parses():
    names = {p.stem for p in AVSC.glob("*.avsc")}
    assert names == set(zeek_log_schemas())
    for path in AVSC.glob("*.avsc"):
        schema = json.loads(path.read_text())
        fastavro.parse_schema(schema)
        assert schema == bundled_avro_schema(path.stem)


def test_regeneration_is_deterministic_and_matches_committed(tmp_path):
    assert generate.main(["--out", str(tmp_path)]) == 0
    for path in AVSC.glob("*.avsc"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
    assert generate.main(["--check"]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0


def test_generate_check_reports_stale_and_prunes(tmp_path):
    generate.main(["--out", str(tmp_path)])
    (tmp_path / "conn.avsc").write_text("{}")
    (tmp_path / "gone.avsc").write_text("{}")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    generate.main(["--out", str(tmp_path)])
    assert not (tmp_path / "gone.avsc").exists()
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0


def test_generate_from_another_version(tmp_path, shared):
    source = shared / "zeek-ref/schemas_other_versions/log_schemas_v7.0.11.json"
    generate.main(["--from", str(source), "--out", str(tmp_path)])
    assert (tmp_path / "telemetry.avsc").is_file()
    conn = json.loads((tmp_path / "conn.avsc").read_text())
    assert "ip_proto" not in {f["name"] for f in conn["fields"]}


@pytest.mark.parametrize(
    ("zeek", "avro"),
    [
        ("time", {"type": "long", "logicalType": "timestamp-micros"}),
        ("interval", "double"),
        ("double", "double"),
        ("count", "long"),
        ("int", "long"),
        ("port", "int"),
        ("bool", "boolean"),
        ("addr", "string"),
        ("subnet", "string"),
        ("enum", "string"),
        ("string", "string"),
        ("pattern", "string"),
        ("set[string]", {"type": "array", "items": "string"}),
        ("table[addr]", {"type": "array", "items": "string"}),
        ("vector[count]", {"type": "array", "items": "long"}),
        ("vector[interval]", {"type": "array", "items": "double"}),
        (
            "vector[time]",
            {"type": "array", "items": {"type": "long", "logicalType": "timestamp-micros"}},
        ),
    ],
)
def test_type_mapping(zeek, avro):
    schema = avro_schema(LogSchema("x", (Column("c", parse_type(zeek), optional=False),)))
    (field,) = schema["fields"]
    assert field["type"] == ["null", avro]
    assert field["default"] is None  # non-optional columns are nullable too (documented)


def test_names_and_properties():
    conn = bundled_avro_schema("conn")
    assert conn["name"] == "conn" and conn["namespace"] == NAMESPACE
    assert conn["zeek_log"] == "conn"
    by_zeek = {f["zeek_name"]: f for f in conn["fields"]}
    assert by_zeek["id.orig_h"]["name"] == "id_orig_h"
    assert by_zeek["id.orig_h"]["zeek_type"] == "addr"
    assert [f["zeek_name"] for f in conn["fields"]] == zeek_log_schemas()["conn"].names


def test_avro_name_rules():
    assert avro_name("id.orig_h") == "id_orig_h"
    assert avro_name("3com-thing") == "_3com_thing"
    assert avro_name("ümlaut") == "_mlaut"
    with pytest.raises(AvroMappingError):
        avro_name("")


def test_colliding_columns_are_an_error():
    log = LogSchema(
        "site", (Column("a.b", parse_type("count")), Column("a_b", parse_type("count")))
    )
    with pytest.raises(AvroMappingError, match="a.b"):
        avro_schema(log)


def test_unmapped_type_is_an_error():
    from wirestream.schemas.zeek_types import ZeekType

    with pytest.raises(AvroMappingError):
        avro_schema(LogSchema("x", (Column("c", ZeekType("opaque")),)))


# Avro spec test vectors (share/test/data/schema-tests.txt): schema -> signed 64-bit fingerprint.
SPEC_FINGERPRINTS = [
    ("null", 7195948357588979594),
    ("boolean", -6970731678124411036),
    ("int", 8247732601305521295),
    ("long", -3434872931120570953),
    ("double", -8181574048448539266),
    ("string", -8142146995180207161),
    ({"fields": [], "type": "record", "name": "foo"}, -4824392279771201922),
    ({"fields": [], "type": "record", "name": "foo", "namespace": "x.y"}, 5916914534497305771),
    ({"fields": [], "type": "record", "name": "foo", "doc": "Useful info"}, -4824392279771201922),
    (
        {
            "fields": [
                {"type": "boolean", "aliases": [], "name": "f1", "default": True},
                {"order": "descending", "name": "f2", "doc": "Hello", "type": "int"},
            ],
            "type": "record",
            "name": "foo",
        },
        -4860222112080293046,
    ),
    ({"type": "enum", "name": "foo", "symbols": ["A1"]}, -6342190197741309591),
    ({"name": "foo", "type": "fixed", "size": 15}, 1756455273707447556),
    ({"items": {"type": "null"}, "type": "array"}, -589620603366471059),
    ({"values": "string", "type": "map"}, -8732877298790414990),
]


@pytest.mark.parametrize(("schema", "expected"), SPEC_FINGERPRINTS)
def test_fingerprint_matches_avro_spec(schema, expected):
    assert fingerprint_int(fingerprint(schema)) == expected


def test_fingerprint_ignores_zeek_properties_but_not_types():
    conn = bundled_avro_schema("conn")
    undocumented = {
        **conn,
        "doc": "other",
        "fields": [{**f, "zeek_type": "?"} for f in conn["fields"]],
    }
    assert fingerprint(undocumented) == fingerprint(conn)
    retyped = {
        **conn,
        "fields": [{**conn["fields"][0], "type": ["null", "double"]}, *conn["fields"][1:]],
    }
    assert fingerprint(retyped) != fingerprint(conn)


def test_header_derived_schema_equals_bundled():
    conn = zeek_log_schemas()["conn"]
    derived = log_schema_from_header("conn", conn.names, [str(c.type) for c in conn.columns])
    assert avro_schema(derived) == bundled_avro_schema("conn")


def test_site_log_from_header_is_deterministic():
    fields = ["ts", "uid", "id.orig_h", "hits", "tags"]
    types = ["time", "string", "addr", "count", "set[string]"]
    one = avro_schema(log_schema_from_header("my_site", fields, types))
    two = avro_schema(log_schema_from_header("my_site", list(fields), list(types)))
    assert one == two and fingerprint(one) == fingerprint(two)
    assert one["name"] == "my_site"
    other = avro_schema(log_schema_from_header("my_site", fields[:-1], types[:-1]))
    assert fingerprint(other) != fingerprint(one)


def test_bad_headers_are_errors():
    with pytest.raises(AvroMappingError, match="#types"):
        log_schema_from_header("x", ["a", "b"], ["count"])
    with pytest.raises(AvroMappingError, match="duplicate"):
        log_schema_from_header("x", ["a", "a"], ["count", "count"])


def test_json_record_of_known_log_keeps_known_columns_and_adds_extras():
    record = {"ts": 1.5, "uid": "C1", "site_score": 0.5, "site_tags": ["a"], "site_n": 3}
    derived = log_schema_from_json("conn", record)
    known = zeek_log_schemas()["conn"]
    assert derived.columns[: len(known.columns)] == known.columns
    extra = {c.name: str(c.type) for c in derived.columns[len(known.columns) :]}
    assert extra == {"site_score": "double", "site_tags": "vector[string]", "site_n": "count"}


def test_json_record_of_unknown_log():
    record = {"ts": 1.5, "flag": True, "peer": "x", "when_ts": 2.0, "nothing": None}
    derived = log_schema_from_json("custom", record)
    types = {c.name: str(c.type) for c in derived.columns}
    assert types == {
        "ts": "time",
        "flag": "bool",
        "peer": "string",
        "when_ts": "time",
        "nothing": "string",
    }
    again = log_schema_from_json("custom", dict(record))
    assert fingerprint(avro_schema(again)) == fingerprint(avro_schema(derived))


def test_stored_form_prints_like_the_committed_file():
    from wirestream.schemas.avro import avsc_text, schema_json

    for path in AVSC.glob("*.avsc"):
        stored = json.loads(schema_json(json.loads(path.read_text())))  # sorted keys
        assert avsc_text(stored) == path.read_text(), path.name
