"""Both wire framings through the real broker: produce, consume, decode."""

from __future__ import annotations

import uuid

import pytest
from wirestream.schemas.avro import bundled_avro_schema, fingerprint
from wirestream.schemas.codec import decode_any, encode_confluent_many, encode_many
from wirestream.schemas.headers import header_values, headers_for
from wirestream.schemas.registry import ConfluentRegistry
from wirestream.schemas.registry_server import RegistryState, serve_in_thread
from wirestream.schemas.store import SchemaStore

from wirestream import topics
from wirestream.admin import ensure_topics
from wirestream.config import Settings
from wirestream.kafka import make_consumer, make_producer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

RECORDS = [
    {
        "ts": 1379288667.706265 + i,
        "uid": f"C{i}",
        "id.orig_h": "192.168.33.10",
        "id.orig_p": 1032 + i,
        "id.resp_h": "2001:db8::1",
        "id.resp_p": 80,
        "proto": "tcp",
        "duration": 0.5 * i,
        "orig_bytes": i * 100,
        "local_orig": i % 2 == 0,
        "tunnel_parents": ["Cx"] if i % 3 == 0 else [],
    }
    for i in range(50)
]


@pytest.fixture
def private(settings: Settings) -> Settings:
    ours = settings.with_overrides(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    ensure_topics(ours, [topics.log_topic_spec("conn", ours)])
    return ours


def produce(settings: Settings, messages: list[bytes], headers) -> None:
    producer = make_producer(settings)
    for value in messages:
        producer.produce(topics.log_topic("conn", settings), value=value, headers=headers)
    assert producer.flush(30) == 0


def consume(settings: Settings, count: int):
    consumer = make_consumer(settings, f"g{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topics.log_topic("conn", settings)])
    got = []
    try:
        while len(got) < count:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(got)} of {count} records arrived"
            assert not msg.error(), msg.error()
            got.append(msg)
    finally:
        consumer.close()
    return got


def full(record):
    return {
        f["zeek_name"]: record.get(f["zeek_name"]) for f in bundled_avro_schema("conn")["fields"]
    }


def by_uid(records):
    return sorted(records, key=lambda r: int(r["uid"][1:]))


def test_single_object_end_to_end(private):
    conn = bundled_avro_schema("conn")
    with SchemaStore(private) as store:
        store.publish(conn)
    produce(
        private, encode_many(RECORDS, conn), headers_for("conn", "s1", "cap1", fingerprint(conn))
    )
    messages = consume(private, len(RECORDS))
    with SchemaStore(private) as fresh:  # a consumer that has never seen the schema
        decoded = [decode_any(m.value(), fresh) for m in messages]
    assert by_uid(decoded) == [full(r) for r in RECORDS]
    meta = header_values(messages[0].headers())
    assert meta == {"log": "conn", "sensor": "s1", "capture": "cap1", "schema": fingerprint(conn)}


def test_confluent_end_to_end(private):
    conn = bundled_avro_schema("conn")
    server, url = serve_in_thread(RegistryState())
    try:
        producer_registry = ConfluentRegistry(url)
        schema_id = producer_registry.register_log(conn, private)
        produce(private, encode_confluent_many(RECORDS, conn, schema_id), [])
        messages = consume(private, len(RECORDS))
        assert all(m.value()[:5] == b"\x00" + schema_id.to_bytes(4, "big") for m in messages)
        consumer_registry = ConfluentRegistry(url)  # resolves the id over HTTP
        with SchemaStore(private) as store:
            decoded = [decode_any(m.value(), store, consumer_registry) for m in messages]
        assert by_uid(decoded) == [full(r) for r in RECORDS]
    finally:
        server.shutdown()
