"""The schema store on the real broker: publish once, resolve unknown fingerprints from the topic."""

from __future__ import annotations

import uuid

import pytest
from wirestream.schemas.avro import avro_schema, bundled_avro_schema, fingerprint
from wirestream.schemas.codec import UnknownSchemaError, decode, encode
from wirestream.schemas.store import SchemaStore, read_topic
from wirestream.schemas.zeek_types import Column, LogSchema, parse_type

from wirestream import topics
from wirestream.config import Settings

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


@pytest.fixture
def private(settings: Settings) -> Settings:
    """Settings with a topic prefix of their own, so the schemas topic is new."""
    return settings.with_overrides(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")


def test_publish_is_idempotent_and_keyed_by_fingerprint(private):
    conn = bundled_avro_schema("conn")
    with SchemaStore(private) as store:
        assert store.publish(conn) == fingerprint(conn)
        store.publish(conn)
        store.publish(dict(conn))  # an equal schema, another object
    records = read_topic(private, topics.system_topic(topics.SCHEMAS_TOPIC, private))
    assert records == [(fingerprint(conn).encode(), _json(conn))]


def _json(schema) -> bytes:
    from wirestream.schemas.avro import schema_json

    return schema_json(schema).encode()


def test_consumer_decodes_a_schema_it_never_saw(private):
    site = avro_schema(
        LogSchema(
            "site_log",
            (
                Column("ts", parse_type("time")),
                Column("id.orig_h", parse_type("addr")),
                Column("tags", parse_type("set[string]")),
            ),
        )
    )
    record = {"ts": 1700000000.25, "id.orig_h": "10.1.2.3", "tags": ["a", "b"]}
    message = encode(record, site)
    with SchemaStore(private) as producer_side, SchemaStore(private) as consumer_side:
        with pytest.raises(UnknownSchemaError, match=fingerprint(site)):
            decode(message, consumer_side)  # nothing published yet: a clear error
        producer_side.publish(bundled_avro_schema("dns"))
        producer_side.publish(site)
        assert decode(message, consumer_side) == record
        assert len(consumer_side) == 2  # read everything up to the end, once
        # later publications are picked up incrementally
        producer_side.publish(bundled_avro_schema("http"))
        http = bundled_avro_schema("http")
        assert decode(encode({"uri": "/"}, http), consumer_side)["uri"] == "/"


def test_store_ignores_registry_records_sharing_the_topic(private):
    from wirestream.schemas.registry_server import TopicRegistryState

    TopicRegistryState(private).register(
        "zeek.conn-value", _json(bundled_avro_schema("conn")).decode()
    )
    with SchemaStore(private) as store:
        assert store.refresh() == 0
        store.publish(bundled_avro_schema("conn"))
    with SchemaStore(private) as fresh:
        assert fresh.refresh() == 1


def test_publishing_a_conflicting_schema_is_refused(private):
    from wirestream.schemas.store import SchemaConflictError

    conn = bundled_avro_schema("conn")
    renamed = {**conn, "fields": [{**conn["fields"][0], "zeek_name": "when"}, *conn["fields"][1:]]}
    with SchemaStore(private) as first:
        first.publish(conn)
    with SchemaStore(private) as second, pytest.raises(SchemaConflictError):
        second.publish(renamed)  # same fingerprint, decodes to other keys
    records = read_topic(private, topics.system_topic(topics.SCHEMAS_TOPIC, private))
    assert records == [(fingerprint(conn).encode(), _json(conn))]
