"""Fingerprint -> schema resolution, backed by the compacted schemas topic.

Producers :meth:`SchemaStore.publish` each writer schema once (key: fingerprint hex, value:
:func:`~wirestream.schemas.avro.schema_json`, the full schema, because the fingerprint's
canonical form drops ``zeek_name`` and ``logicalType``). A consumer meeting a fingerprint it
has not seen reads the topic (from where it last stopped, up to the high watermark), so it can
decode records whose schema it never saw, from any producer, at any time after publication.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from wirestream.schemas.avro import AvroSchema, schema_json
from wirestream.schemas.codec import UnknownSchemaError, WireSchema, wire_schema

from wirestream import topics
from wirestream.config import Settings

log = logging.getLogger(__name__)
_FINGERPRINT_KEY = re.compile(rb"[0-9a-f]{16}")


class SchemaConflictError(ValueError):
    """Two schemas with one fingerprint that would decode the same bytes differently."""


class SchemaCache:
    """In-memory fingerprint -> prepared schema map; the base of the topic-backed store.

    Schemas whose canonical forms match share a fingerprint. If they differ only in
    documentation (e.g. ``zeek_type`` count vs int) the first one is kept; if they would decode
    differently (other ``zeek_name`` or time-ness of a field) adding the second is an error.
    """

    def __init__(self, schemas: Iterable[AvroSchema] = ()) -> None:
        self._wire: dict[str, WireSchema] = {}
        for schema in schemas:
            self.add(schema)

    def add(self, schema: AvroSchema | WireSchema) -> WireSchema:
        """Remember a schema; returns the prepared schema now held for its fingerprint."""
        ws = wire_schema(schema)
        held = self._wire.get(ws.fingerprint)
        if held is None:
            self._wire[ws.fingerprint] = ws
            return ws
        if held.fields != ws.fields:
            raise SchemaConflictError(
                f"fingerprint {ws.fingerprint} already names a schema of log {held.log!r} "
                f"that decodes differently: {schema_json(held.schema)} vs {schema_json(ws.schema)}"
            )
        return held

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._wire

    def __len__(self) -> int:
        return len(self._wire)

    def fingerprints(self) -> list[str]:
        return list(self._wire)

    def wire(self, fingerprint: str) -> WireSchema:
        """The prepared schema of a fingerprint; UnknownSchemaError if none is known."""
        try:
            return self._wire[fingerprint]
        except KeyError:
            raise UnknownSchemaError(f"no schema known for fingerprint {fingerprint}") from None

    def schema(self, fingerprint: str) -> AvroSchema:
        return self.wire(fingerprint).schema


def ensure_schemas_topic(settings: Settings) -> str:
    """Create the compacted schemas topic if missing (spec from ``topics``); returns its name."""
    from wirestream.admin import ensure_topics

    name = topics.system_topic(topics.SCHEMAS_TOPIC, settings)
    ensure_topics(settings, [s for s in topics.system_topic_specs(settings) if s.name == name])
    return name


class TopicReader:
    """Reads a topic from where it last stopped up to its high watermark, without a group."""

    def __init__(self, settings: Settings, topic: str, timeout: float = 15.0) -> None:
        from wirestream.kafka import make_consumer

        self.topic = topic
        self.timeout = timeout
        self._positions: dict[int, int] = {}  # partition -> next offset to read
        self._consumer = make_consumer(
            settings, f"wirestream-reader-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": False}
        )

    def read_new(self) -> list[tuple[bytes | None, bytes | None]]:
        """(key, value) of every record written since the last call (all, the first time)."""
        consumer = self._consumer
        meta = consumer.list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
        if meta is None or meta.error is not None:
            log.debug("topic %s not there yet", self.topic)
            return []
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), self.timeout)[1]
            for p in meta.partitions
        }
        todo = {p for p, end in ends.items() if self._positions.get(p, 0) < end}
        if not todo:
            return []
        consumer.assign(
            [TopicPartition(self.topic, p, self._positions.get(p, OFFSET_BEGINNING)) for p in todo]
        )
        records = []
        deadline = time.monotonic() + self.timeout
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {self.topic} took over {self.timeout}s")
            msg = consumer.poll(0.2)  # returns as soon as a record is there
            if msg is None:  # compaction gaps or control records: ask where we actually are
                for tp in consumer.position([TopicPartition(self.topic, p) for p in todo]):
                    if tp.offset >= ends[tp.partition]:
                        self._positions[tp.partition] = tp.offset
                        todo.discard(tp.partition)
                continue
            if msg.error():
                raise KafkaException(msg.error())
            records.append((msg.key(), msg.value()))
            self._positions[msg.partition()] = msg.offset() + 1
            if self._positions[msg.partition()] >= ends[msg.partition()]:
                todo.discard(msg.partition())
        consumer.unassign()
        return records

    def close(self) -> None:
        self._consumer.close()


def read_topic(
    settings: Settings, topic: str, timeout: float = 15.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) a topic holds now, oldest first per partition."""
    reader = TopicReader(settings, topic, timeout)
    try:
        return reader.read_new()
    finally:
        reader.close()


class SchemaStore(SchemaCache):
    """Schemas by fingerprint: a local cache in front of the compacted schemas topic."""

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        super().__init__()
        self.settings = settings
        self.topic = topics.system_topic(topics.SCHEMAS_TOPIC, settings)
        self.timeout = timeout
        self._published: set[str] = set()
        self._producer = None
        self._reader: TopicReader | None = None
        self._topic_ready = False
        self._lock = threading.RLock()  # one reader/producer; callers may share the store

    # --- writing ------------------------------------------------------------------------

    def publish(self, schema: AvroSchema | WireSchema) -> str:
        """Make a schema resolvable by every consumer; idempotent. Returns its fingerprint.

        Reads the topic first, so a schema another process published under the same
        fingerprint that would decode differently is refused (SchemaConflictError) instead of
        overwriting it in the compacted topic.
        """
        with self._lock:
            ws = wire_schema(schema)
            if ws.fingerprint in self._published:
                return self.add(ws).fingerprint
            if not self._topic_ready:
                ensure_schemas_topic(self.settings)
                self._topic_ready = True
            self.refresh()
            ws = self.add(ws)
            if ws.fingerprint not in self._published:
                self._produce(ws)
            return ws.fingerprint

    def _produce(self, ws: WireSchema) -> None:
        if self._producer is None:
            from wirestream.kafka import make_producer

            self._producer = make_producer(self.settings, **{"linger.ms": 0})
        errors: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err)

        self._producer.produce(
            self.topic,
            key=ws.fingerprint.encode(),
            value=schema_json(ws.schema).encode(),
            on_delivery=delivered,
        )
        remaining = self._producer.flush(self.timeout)
        if remaining or errors:
            raise KafkaException(
                errors[0] if errors else KafkaError(KafkaError._TIMED_OUT, "publish timed out")
            )
        self._published.add(ws.fingerprint)
        log.debug("published schema %s (%s) to %s", ws.fingerprint, ws.log, self.topic)

    # --- reading ------------------------------------------------------------------------

    def wire(self, fingerprint: str) -> WireSchema:
        """The schema of a fingerprint: from the cache, else from the schemas topic."""
        held = self._wire.get(fingerprint)
        if held is not None:
            return held
        with self._lock:
            if fingerprint not in self._wire:
                self.refresh()
        try:
            return self._wire[fingerprint]
        except KeyError:
            raise UnknownSchemaError(
                f"no schema for fingerprint {fingerprint} in {self.topic} (was it published?)"
            ) from None

    def refresh(self) -> int:
        """Read schemas published since the last read, up to the high watermark; returns count."""
        if self._reader is None:
            self._reader = TopicReader(self.settings, self.topic, self.timeout)
        return sum(self._take(key, value) for key, value in self._reader.read_new())

    def _take(self, key: bytes | None, value: bytes | None) -> int:
        if key is None or not _FINGERPRINT_KEY.fullmatch(key):
            return 0  # other records share the topic (the registry's confluent/... keys)
        if value is None:  # tombstone: keep what we have, old records still need it
            return 0
        try:
            schema = json.loads(value)
            ws = wire_schema(schema)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping unreadable schema %r in %s: %s", key, self.topic, exc)
            return 0
        if key.decode() != ws.fingerprint:
            log.warning("schema keyed %r in %s has fingerprint %s", key, self.topic, ws.fingerprint)
        known = ws.fingerprint in self._wire
        try:
            self.add(ws)
        except SchemaConflictError as exc:  # only a writer bypassing publish() can cause this
            log.error("schemas topic %s: %s; keeping the first", self.topic, exc)
            return 0
        self._published.add(ws.fingerprint)
        return 0 if known else 1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._producer is not None:
            self._producer.flush(self.timeout)
            self._producer = None

    def __enter__(self) -> SchemaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
