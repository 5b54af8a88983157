"""The small Confluent-compatible registry, driven by confluent-kafka's own client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from wirestream.schemas.avro import bundled_avro_schema, schema_json
from wirestream.schemas.codec import UnknownSchemaError
from wirestream.schemas.registry import ConfluentRegistry, subject_for
from wirestream.schemas.registry_server import RegistryState, TopicRegistryState, serve_in_thread

from wirestream.config import ConfigError, Settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def registry():
    server, url = serve_in_thread(RegistryState())
    yield url
    server.shutdown()


def avro(log: str) -> Schema:
    return Schema(schema_json(bundled_avro_schema(log)), "AVRO")


def test_register_and_look_up(registry):
    client = SchemaRegistryClient({"url": registry})
    conn_id = client.register_schema("zeek.conn-value", avro("conn"))
    dns_id = client.register_schema("zeek.dns-value", avro("dns"))
    assert conn_id != dns_id
    # idempotent per subject; the same schema under another subject keeps its global id
    fresh = SchemaRegistryClient({"url": registry})  # no client-side cache
    assert fresh.register_schema("zeek.conn-value", avro("conn")) == conn_id
    assert fresh.register_schema("other-value", avro("conn")) == conn_id
    assert json.loads(fresh.get_schema(conn_id).schema_str) == bundled_avro_schema("conn")
    assert fresh.get_subjects() == ["other-value", "zeek.conn-value", "zeek.dns-value"]
    latest = fresh.get_latest_version("zeek.dns-value")
    assert (latest.schema_id, latest.version) == (dns_id, 1)
    # a second schema in a subject is version 2 and becomes latest
    http_id = fresh.register_schema("zeek.dns-value", avro("http"))
    again = SchemaRegistryClient({"url": registry}).get_latest_version("zeek.dns-value")
    assert (again.schema_id, again.version) == (http_id, 2)
    assert fresh.get_versions("zeek.dns-value") == [1, 2]


def test_errors_follow_the_confluent_api(registry):
    client = SchemaRegistryClient({"url": registry})
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_schema(4242)
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as no_subject:
        client.get_latest_version("nope-value")
    assert no_subject.value.error_code == 40401
    with pytest.raises(SchemaRegistryError) as invalid:
        client.register_schema("x-value", Schema('{"type": "record"}', "AVRO"))
    assert invalid.value.error_code == 42201
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(f"{registry}/nothing/here")
    assert unknown.value.code == 404
    with pytest.raises(UnknownSchemaError):
        ConfluentRegistry(registry).wire_by_id(4242)


def test_registry_client_caches_and_subjects(registry):
    reg = ConfluentRegistry(registry)
    conn = bundled_avro_schema("conn")
    settings = Settings(topic_prefix="p.")
    assert subject_for("conn", settings) == "p.zeek.conn-value"
    schema_id = reg.register_log(conn, settings)
    assert reg.wire_by_id(schema_id).schema == conn
    assert ConfluentRegistry(registry).wire_by_id(schema_id).log == "conn"


def test_missing_url_is_a_config_error():
    with pytest.raises(ConfigError, match="Schema Registry URL"):
        ConfluentRegistry.from_settings(Settings())


@pytest.mark.broker
def test_topic_backed_registry_survives_restart(settings):
    private = settings.with_overrides(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    server, url = serve_in_thread(TopicRegistryState(private))
    try:
        client = SchemaRegistryClient({"url": url})
        conn_id = client.register_schema("zeek.conn-value", avro("conn"))
        dns_id = client.register_schema("zeek.dns-value", avro("dns"))
    finally:
        server.shutdown()
    server, url = serve_in_thread(TopicRegistryState(private))
    try:
        client = SchemaRegistryClient({"url": url})
        assert client.get_subjects() == ["zeek.conn-value", "zeek.dns-value"]
        assert json.loads(client.get_schema(dns_id).schema_str) == bundled_avro_schema("dns")
        assert client.register_schema("zeek.conn-value", avro("conn")) == conn_id
        assert client.register_schema("zeek.http-value", avro("http")) == max(conn_id, dns_id) + 1
    finally:
        server.shutdown()


def test_wire_encoder_follows_settings(registry):
    from wirestream.schemas.codec import decode_any
    from wirestream.schemas.registry import registry_for, wire_encoder
    from wirestream.schemas.store import SchemaCache

    conn = bundled_avro_schema("conn")
    record = {"ts": 1.5, "uid": "C1"}
    single = wire_encoder(Settings())([record], conn)[0]
    assert single[:2] == b"\xc3\x01"
    confluent_settings = Settings(wire_format="confluent", schema_registry_url=registry)
    framed = wire_encoder(confluent_settings)([record], conn)[0]
    assert framed[:1] == b"\x00"
    lookup = registry_for(confluent_settings)
    assert decode_any(framed, SchemaCache(), lookup)["uid"] == "C1"
    assert decode_any(single, SchemaCache([conn]), lookup)["ts"] == 1.5
    assert registry_for(Settings()) is None
    with pytest.raises(ConfigError, match="wire_format"):
        wire_encoder(Settings(wire_format="protobuf"))


def test_confluent_kafka_avro_deserializer_reads_our_framing(registry):
    """Interop: a stock Confluent client decodes what wire_format = "confluent" writes."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from wirestream.schemas.registry import wire_encoder

    conn = bundled_avro_schema("conn")
    record = {"ts": 1.5, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 53, "proto": "udp"}
    framed = wire_encoder(Settings(wire_format="confluent", schema_registry_url=registry))(
        [record], conn
    )[0]
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    got = deserialize(framed, SerializationContext("zeek.conn", MessageField.VALUE))
    assert got["uid"] == "C1" and got["id_orig_h"] == "10.0.0.1" and got["id_orig_p"] == 53
    assert got["ts"].timestamp() == 1.5  # timestamp-micros, as the schema says
    assert got["duration"] is None
