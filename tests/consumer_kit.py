"""Test data for the consumer tests: conn records produced like the pipeline does, plus a
brute-force reader (plain consumer + per-message codec decode) to check results against."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from wirestream.schemas.avro import AvroSchema, avro_schema, bundled_avro_schema
from wirestream.schemas.codec import SchemaLookup, decode, encode_many, wire_schema
from wirestream.schemas.headers import headers_for
from wirestream.schemas.store import SchemaStore
from wirestream.schemas.zeek_types import LogSchema, zeek_log_schemas

from wirestream import topics
from wirestream.admin import ensure_topics
from wirestream.config import Settings
from wirestream.kafka import make_admin, make_consumer, make_producer

T0 = 1_700_000_000.0


def fresh_settings(settings: Settings, partitions: int = 3) -> Settings:
    """Settings whose every topic (log and system) is new: a unique topic prefix."""
    return settings.with_overrides(
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.", topic_partitions=partitions
    )


def conn_record(i: int, ts: float, rng: random.Random | None = None) -> dict[str, Any]:
    rng = rng or random.Random(i)
    return {
        "ts": round(ts, 6),
        "uid": f"C{i:08d}",
        "id.orig_h": f"10.0.{i % 256}.{rng.randrange(1, 255)}",
        "id.orig_p": rng.randrange(1024, 65536),
        "id.resp_h": "192.168.1.1",
        "id.resp_p": 443,
        "proto": "tcp",
        "service": None if i % 3 else "ssl",
        "duration": None if i % 5 == 0 else round(rng.random() * 10, 6),
        "orig_bytes": rng.randrange(10**6),
        "resp_bytes": rng.randrange(10**6),
        "conn_state": "SF",
        "local_orig": bool(i % 2),
        "local_resp": None,
        "missed_bytes": 0,
        "history": "ShADadFf",
        "orig_pkts": 3,
        "orig_ip_bytes": 300,
        "resp_pkts": 4,
        "resp_ip_bytes": 500,
        "tunnel_parents": [] if i % 4 else [f"CP{i}"],
        "ip_proto": 6,
    }


def conn_v7_schema() -> AvroSchema:
    """conn as Zeek 7 wrote it: today's columns without ``ip_proto`` (the only difference in
    shared/zeek-ref/schemas_other_versions), so the test needs no shared data."""
    conn = zeek_log_schemas()["conn"]
    return avro_schema(LogSchema("conn", tuple(c for c in conn.columns if c.name != "ip_proto")))


def create_log_topic(settings: Settings, log: str = "conn") -> str:
    ensure_topics(settings, [topics.log_topic_spec(log, settings)])
    return topics.log_topic(log, settings)


def produce(
    settings: Settings,
    records: Iterable[dict[str, Any]],
    *,
    log: str = "conn",
    schema: AvroSchema | None = None,
    partition_of: Any = None,
    raw: Iterable[tuple[int, float, bytes]] = (),
    publish: bool = True,
    capture: str = "cap",
) -> None:
    """Publish the schema, then produce records like the pipeline (ts as Kafka timestamp).

    ``partition_of(record)`` picks partitions (default: by key); ``raw`` adds arbitrary
    ``(partition, ts, value)`` messages (corrupt ones, foreign fingerprints).
    """
    schema = schema or bundled_avro_schema(log)
    topic = create_log_topic(settings, log)
    if publish:
        with SchemaStore(settings) as store:
            store.publish(schema)
    fp = wire_schema(schema).fingerprint
    producer = make_producer(settings, **{"linger.ms": 5})
    records = list(records)
    for record, value in zip(records, encode_many(records, schema), strict=True):
        extra = {} if partition_of is None else {"partition": partition_of(record)}
        producer.produce(
            topic,
            key=record["uid"].encode(),
            value=value,
            headers=headers_for(log, "test", capture, fp),
            timestamp=int(record["ts"] * 1000),
            **extra,
        )
    for partition, ts, value in raw:
        producer.produce(topic, value=value, partition=partition, timestamp=int(ts * 1000))
    assert producer.flush(30) == 0


def brute_force(settings: Settings, lookup: SchemaLookup, log: str = "conn") -> list[dict]:
    """Every decodable record of the topic, read one by one (the reference answer)."""
    topic = topics.log_topic(log, settings)
    consumer = make_consumer(settings, f"brute-{uuid.uuid4().hex[:8]}")
    parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out, todo = [], {p for p, e in ends.items() if e > 0}
    while todo:
        msg = consumer.poll(5)
        assert msg is not None, f"brute-force read stalled on {todo}"
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF
            continue
        with contextlib.suppress(Exception):  # corrupt test messages are skipped here too
            out.append(decode(msg.value(), lookup))
        if msg.offset() + 1 >= ends[msg.partition()]:
            todo.discard(msg.partition())
    consumer.close()
    return out


def drop_topics(settings: Settings) -> None:
    admin = make_admin(settings)
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    if mine:
        for future in admin.delete_topics(mine).values():
            with contextlib.suppress(Exception):  # best-effort cleanup
                future.result(30)
