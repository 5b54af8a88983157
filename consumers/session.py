"""The consumer side's Kafka edge: quiet clients, log topic lookup, readable broker errors.

librdkafka retries an unreachable broker forever and prints every failure to stderr; here its
log goes through Python ``logging`` (DEBUG) instead, and the first metadata request decides:
either the topic is there, or the user gets one sentence (:mod:`.errors`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from wirestream.consumers.errors import BrokerUnreachableError, ConsumerError, UnknownLogError

from wirestream import topics
from wirestream.config import Settings
from wirestream.kafka import make_consumer, quiet_options, resolve_bootstrap, watermark_offsets

log = logging.getLogger(__name__)

METADATA_TIMEOUT_S = 10.0
# Bulk reads. librdkafka stops prefetching a partition once its local queue holds
# queued.min.messages and then backs off fetch.queue.backoff.ms (default 1 s): that backoff left
# consume() idle ~70% of the time (135k msgs/s on 1M conn records); 10 ms fixed it (260k-480k
# msgs/s). The queue itself need not be deep then: 1M messages / 128 MiB per partition buffered
# most of a 1M-record topic (peak RSS +480 MB reading it, vs +275-295 MB with 100k / 32 MiB, at
# the same speed: 2.1-3.4 s both ways, 3 runs each, load 4). Bigger fetches too. Settings'
# kafka_options win.
BULK_FETCH = {
    "queued.min.messages": "100000",
    "queued.max.messages.kbytes": "32768",
    "fetch.queue.backoff.ms": "10",
    "fetch.max.bytes": "52428800",
    "max.partition.fetch.bytes": "10485760",
    "fetch.wait.max.ms": "10",
}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic GC off while consume() builds a Message object per record.

    Those objects are GC-tracked, so a bulk read triggered a collection every ~700 of them,
    each one walking the young objects again: ~0.55 CPU-s per 1M records, a third of the
    consuming thread's time. Nothing read here forms cycles, so nothing waits to be freed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def resolved(settings: Settings | None) -> Settings:
    """The given settings (or those from env/config file) with a bootstrap address."""
    if settings is None:
        from wirestream.config import load_settings

        settings = load_settings()
    try:
        return resolve_bootstrap(settings, start=False)
    except Exception as exc:  # noqa: BLE001 - any local-broker problem reads the same to a user
        raise BrokerUnreachableError("the local broker", str(exc).splitlines()[0]) from None


def open_consumer(settings: Settings, group: str | None = None, **extra: Any) -> Consumer:
    """A read_committed consumer with bulk-read fetch sizing whose librdkafka chatter goes to
    logging, not stderr."""
    group_id = group or f"wirestream-reader-{uuid.uuid4().hex}"
    return make_consumer(settings, group_id, defaults=BULK_FETCH, **{**quiet_options(), **extra})


def log_topics(consumer: Consumer, settings: Settings) -> dict[str, str]:
    """Every log topic on the broker, by log name."""
    out = {}
    for topic in list_topics(consumer, settings):
        name = topics.log_of_topic(topic, settings)
        if name:
            out[name] = topic
    return dict(sorted(out.items()))


def list_topics(consumer: Consumer, settings: Settings, topic: str | None = None) -> dict:
    try:
        return consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics
    except KafkaException as exc:
        raise BrokerUnreachableError(settings.bootstrap_servers, _short(exc)) from None


def _short(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    return err.str() if isinstance(err, KafkaError) else str(exc)


def log_partitions(
    consumer: Consumer, log_name: str, settings: Settings, partitions: list[int] | None = None
) -> tuple[str, list[int]]:
    """(topic, partitions) of a log; UnknownLogError if the broker has no such topic."""
    topic = topics.log_topic(log_name, settings)
    meta = list_topics(consumer, settings).get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise UnknownLogError(log_name, topic, list(log_topics(consumer, settings)))
    have = sorted(meta.partitions)
    if partitions is None:
        return topic, have
    wrong = sorted(set(partitions) - set(have))
    if wrong:
        raise ConsumerError(f"{topic} has partitions {have}, not {wrong}")
    return topic, sorted(set(partitions))


def watermarks(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
    """(low, high) offsets per partition; high is the last stable offset for read_committed."""
    out = {}
    for p in partitions:
        try:
            out[p] = watermark_offsets(
                consumer, TopicPartition(topic, p), timeout=METADATA_TIMEOUT_S
            )
        except KafkaException as exc:
            raise ConsumerError(f"{topic}[{p}]: cannot get offsets: {_short(exc)}") from None
    return out


def offsets_for_time(
    consumer: Consumer, topic: str, partitions: list[int], ms: int
) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is >= ms (-1: none is)."""
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, ms) for p in partitions], timeout=METADATA_TIMEOUT_S
        )
    except KafkaException as exc:
        raise ConsumerError(f"{topic}: offsets_for_times failed: {_short(exc)}") from None
    out = {}
    for tp in found:
        if tp.error is not None:
            raise ConsumerError(f"{topic}[{tp.partition}]: offsets_for_times: {tp.error}")
        out[tp.partition] = tp.offset
    return out


class _SharedLookup:
    """One schema store per broker and topic prefix for the whole process, behind a lock.

    Every read would otherwise re-read the schemas topic from the start (a few hundred ms);
    schemas never change under a fingerprint, so sharing them is safe.
    """

    def __init__(self, settings: Settings) -> None:
        from wirestream.schemas.store import SchemaStore

        self._store = SchemaStore(settings)
        self._lock = threading.Lock()

    def wire(self, fingerprint: str):
        with self._lock:
            return self._store.wire(fingerprint)

    def close(self) -> None:
        with self._lock:
            self._store.close()


MAX_SHARED_LOOKUPS = 8
_LOOKUPS: dict[tuple[str, str], _SharedLookup] = {}
_LOOKUPS_LOCK = threading.Lock()


def schema_lookup(settings: Settings) -> _SharedLookup:
    """The fingerprint -> schema resolver consumers decode with (the schemas-topic store)."""
    key = (settings.bootstrap_servers, settings.topic_prefix)
    with _LOOKUPS_LOCK:
        lookup = _LOOKUPS.get(key)
        if lookup is None:
            if len(_LOOKUPS) >= MAX_SHARED_LOOKUPS:  # each holds a consumer: keep a few
                _LOOKUPS.pop(next(iter(_LOOKUPS))).close()
            lookup = _LOOKUPS[key] = _SharedLookup(settings)
        return lookup


_REGISTRIES: dict[str, object] = {}


def registry_lookup(settings: Settings):
    """The Schema Registry for Confluent-framed messages, if one is configured (else None)."""
    if not settings.schema_registry_url:
        return None
    with _LOOKUPS_LOCK:
        registry = _REGISTRIES.get(settings.schema_registry_url)
        if registry is None:
            from wirestream.schemas.registry import registry_for

            registry = _REGISTRIES[settings.schema_registry_url] = registry_for(settings)
        return registry


def decoder(settings: Settings):
    """A batch decoder resolving writer schemas through the schemas topic (and registry)."""
    from wirestream.consumers.decode import BatchDecoder

    return BatchDecoder(schema_lookup(settings), registry_lookup(settings))
