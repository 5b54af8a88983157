"""Kafka client factories: every producer, consumer and admin client is built here from Settings.

Keeps transport apart from serialization: callers get plain confluent-kafka clients configured
with the one set of connection/security properties, plus the role-specific options they ask for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from wirestream.config import Settings

librdkafka_log = logging.getLogger("wirestream.librdkafka")
ADMIN_PROBE_S = 10.0  # how long an admin client waits for a first broker answer


class KafkaUnreachable(ConnectionError):
    """No bootstrap server answered: one clear error instead of librdkafka's retry chatter."""


class _DebugLog:
    """librdkafka's ``logger``: its lines (a refused connect is an ERROR to it, repeated every
    backoff) go to logging at DEBUG; the caller reports the failure once, with the address."""

    def log(self, level: int, msg: str, *args: Any) -> None:
        librdkafka_log.debug(msg, *args)


_DEBUG_LOG = _DebugLog()


def _debug_error(err: KafkaError) -> None:
    librdkafka_log.debug("librdkafka error: %s", err)


def quiet_options() -> dict[str, Any]:
    """Client options that send librdkafka's log lines and error events to logging at DEBUG,
    for callers that report a failure once, in their own words."""
    return {"logger": _DEBUG_LOG, "error_cb": _debug_error}


def resolve_bootstrap(settings: Settings, *, start: bool = True) -> Settings:
    """Settings with a bootstrap address: the configured one, else the local broker (started if asked)."""
    if settings.bootstrap_servers:
        return settings
    from wirestream.broker.runtime import ensure_local_broker

    return settings.with_overrides(bootstrap_servers=ensure_local_broker(settings, start=start))


def _conf(
    settings: Settings, extra: dict[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Client config, each layer over the one before: ``defaults`` (tuning a caller suggests),
    then the settings (their ``kafka_options`` included), then ``extra`` (what the caller needs)."""
    return {**(defaults or {}), **settings.kafka_client_config(), **extra}


def make_producer(settings: Settings, **extra: Any) -> Producer:
    """An idempotent producer (acks=all); pass ``transactional.id`` etc. through ``extra``."""
    base = {"enable.idempotence": True, "acks": "all", "linger.ms": 20, "compression.type": "lz4"}
    return Producer(_conf(settings, {**base, **extra}))


def make_consumer(
    settings: Settings,
    group_id: str,
    *,
    defaults: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Consumer:
    """A read_committed consumer with manual commits unless told otherwise; ``defaults`` are
    options the settings' ``kafka_options`` may override."""
    base = {
        "group.id": group_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    return Consumer(_conf(settings, {**base, **extra}, defaults))


def make_admin(
    settings: Settings, *, probe_s: float | None = ADMIN_PROBE_S, **extra: Any
) -> AdminClient:
    """An admin client that fails fast and quietly: librdkafka's log lines and error events go
    to logging at DEBUG, and (unless ``probe_s`` is None) a metadata probe must succeed first,
    else :class:`KafkaUnreachable` naming the bootstrap address: an unreachable broker used to
    print connect failures for the whole 60 s admin timeout before its error."""
    seen: dict[str, KafkaError] = {}  # "last" error event; "down" once all brokers were down

    def on_error(err: KafkaError) -> None:
        _debug_error(err)
        seen["last"] = err
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            seen["down"] = err

    admin = AdminClient(_conf(settings, {"logger": _DEBUG_LOG, "error_cb": on_error, **extra}))
    if probe_s is not None:
        _probe(admin, settings.bootstrap_servers or "", probe_s, seen)
    return admin


def _probe(admin: AdminClient, bootstrap: str, timeout: float, seen: dict[str, KafkaError]) -> None:
    """Returns once a broker answers a metadata request; gives up at ``timeout`` or as soon as
    librdkafka reports all brokers down (a refused connect: no point waiting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            reason = exc.args[0].str() if isinstance(exc.args[0], KafkaError) else str(exc)
        admin.poll(0)  # serves error_cb
        if "down" in seen or time.monotonic() >= deadline:
            detail = seen["last"].str() if "last" in seen else reason
            raise KafkaUnreachable(f"cannot reach Kafka at {bootstrap}: {detail}")


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
