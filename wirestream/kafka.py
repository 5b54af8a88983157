"""Kafka client factories: every producer, consumer and admin client is built here from Settings.

Keeps transport apart from serialization: callers get plain confluent-kafka clients configured
with the one set of connection/security properties, plus the role-specific options they ask for.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from wirestream.config import Settings


def resolve_bootstrap(settings: Settings, *, start: bool = True) -> Settings:
    """Settings with a bootstrap address: the configured one, else the local broker (started if asked)."""
    if settings.bootstrap_servers:
        return settings
    from wirestream.broker.runtime import ensure_local_broker

    return settings.with_overrides(bootstrap_servers=ensure_local_broker(settings, start=start))


def _conf(settings: Settings, extra: dict[str, Any]) -> dict[str, Any]:
    conf: dict[str, Any] = dict(settings.kafka_client_config())
    conf.update(extra)
    return conf


def make_producer(settings: Settings, **extra: Any) -> Producer:
    """An idempotent producer (acks=all); pass ``transactional.id`` etc. through ``extra``."""
    base = {"enable.idempotence": True, "acks": "all", "linger.ms": 20, "compression.type": "zstd"}
    return Producer(_conf(settings, {**base, **extra}))


def make_consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    """A read_committed consumer with manual commits unless told otherwise."""
    base = {
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    return Consumer(_conf(settings, {**base, **extra}))


def make_admin(settings: Settings, **extra: Any) -> AdminClient:
    return AdminClient(_conf(settings, extra))


# Errors a partition reports while a new topic's leadership settles; they clear by themselves.
_SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._TRANSPORT,
        KafkaError.REQUEST_TIMED_OUT,
    }
)


def watermark_offsets(
    consumer: Consumer, tp: TopicPartition, timeout: float = 10.0
) -> tuple[int, int]:
    """(low, high) of a partition, retrying while a just-created topic elects its leaders."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=max(0.5, deadline - time.monotonic()))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.code() if isinstance(error, KafkaError) else None
            if code not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
