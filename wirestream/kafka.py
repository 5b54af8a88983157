"""Kafka client factories: every producer, consumer and admin client is built here from Settings.

Keeps transport apart from serialization: callers get plain confluent-kafka clients configured
with the one set of connection/security properties, plus the role-specific options they ask for.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
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
