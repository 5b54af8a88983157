"""The 3-node local cluster: RF 3 with min ISR 2 keeps ``acks=all`` producing when a node stops."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirestream.admin import EXISTS, TopicError, describe_topics, ensure_topics
from wirestream.broker.runtime import (
    down,
    ensure_local_broker,
    free_base_port,
    status,
    stop_node,
    up,
)
from wirestream.config import Settings
from wirestream.kafka import make_consumer, make_producer
from wirestream.topics import log_topic_spec

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not (shutil.which("java") and shutil.which("mvn")),
        reason="needs `java` (17+) and `mvn` on PATH",
    ),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh cluster on free ports in a temporary home, purged afterwards."""
    home: Path = tmp_path_factory.mktemp("cluster-home")
    settings = Settings(home=home, kafka_port=free_base_port("cluster"), topic_replication=3)
    try:
        result = up(settings, "cluster")
        yield settings.with_overrides(bootstrap_servers=result.status.bootstrap)
    finally:
        down(settings, "cluster", purge=True)


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    """Produce with the project's producer (idempotent, acks=all); every record must be acked."""
    producer = make_producer(settings, **{"message.timeout.ms": 30000})
    failures: list[str] = []

    def report(err, _msg) -> None:  # noqa: ANN001 - librdkafka callback signature
        if err is not None:
            failures.append(str(err))

    for value in values:
        producer.produce(topic, value, on_delivery=report)
    assert producer.flush(60) == 0
    assert failures == []


def consume_all(settings: Settings, topic: str, expect: int) -> list[bytes]:
    consumer = make_consumer(settings, f"g-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while len(got) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def wait_isr(settings: Settings, topic: str, size: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        (info,) = describe_topics(settings, [topic])
        if info.min_in_sync == size or time.monotonic() > deadline:
            return info.min_in_sync
        time.sleep(0.5)


def test_cluster_keeps_producing_with_one_node_down(cluster: Settings) -> None:
    current = status(cluster, "cluster")
    assert current.running and current.brokers == 3
    assert [n.broker_port for n in current.nodes] == [
        cluster.kafka_port,
        cluster.kafka_port + 10,
        cluster.kafka_port + 20,
    ]

    prefixed = cluster.with_overrides(topic_prefix=f"c{uuid.uuid4().hex[:8]}.")
    spec = log_topic_spec("conn", prefixed)
    ensure_topics(prefixed, [spec])
    (info,) = describe_topics(prefixed, [spec.name])
    assert (info.replication, info.min_in_sync) == (3, 3)

    before = [f"before-{i}".encode() for i in range(100)]
    produce(cluster, spec.name, before)

    assert stop_node(cluster, "cluster", 3)
    assert wait_isr(cluster, spec.name, 2) == 2
    degraded = status(cluster, "cluster")
    assert not degraded.running and degraded.brokers == 2
    assert [n.alive for n in degraded.nodes] == [True, True, False]
    # Clients without a configured bootstrap still find the (degraded) local cluster.
    assert ensure_local_broker(cluster, start=False) == cluster.bootstrap_servers

    # Existing RF-3 topics still pass ensure_topics; a new one cannot get 3 replicas now.
    assert ensure_topics(prefixed, [spec]) == {spec.name: EXISTS}
    with pytest.raises(TopicError, match="above the 2 live broker"):
        ensure_topics(prefixed, [log_topic_spec("dns", prefixed)])

    after = [f"after-{i}".encode() for i in range(100)]
    produce(cluster, spec.name, after)  # acks=all with 2 in-sync replicas = min.insync.replicas
    assert sorted(consume_all(cluster, spec.name, 200)) == sorted(before + after)

    # `up` again starts only the stopped node; it catches up and rejoins the ISR.
    again = up(cluster, "cluster")
    assert again.started_nodes == (3,) and again.status.brokers == 3
    assert wait_isr(cluster, spec.name, 3) == 3
