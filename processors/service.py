"""Helpers of the Bro processor: turning engine records into Kafka messages, and spooling them.

The processor publishes a capture partition's output only when the whole stream is analysed (one
Kafka transaction), so output must be held until then. :class:`OutputSpool` holds encoded
messages in memory up to a bound and spills the rest to an anonymous temporary file, so memory
stays bounded however large the capture is (disk grows instead).
"""

from __future__ import annotations

import logging
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wirestream.schemas import codec
from wirestream.schemas.avro import (
    AvroSchema,
    avro_schema,
    bundled_avro_schema,
    fingerprint,
    log_schema_from_json,
)
from wirestream.schemas.headers import headers_for
from wirestream.schemas.registry import ConfluentRegistry

from wirestream import topics
from wirestream.config import Settings

log = logging.getLogger(__name__)

DEFAULT_SPOOL_MEMORY = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message ready to produce (topic, partition by key, Kafka timestamp in ms)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp_ms: int
    log: str


def record_key(record: dict[str, Any]) -> bytes | None:
    """Partition key of a log record: the connection uid, so a connection's records of every log
    land in the same partition number; files key by their first connection, else their fuid."""
    uid = record.get("uid")
    if not uid:
        conns = record.get("conn_uids") or []
        uid = conns[0] if conns else record.get("fuid")
    return str(uid).encode() if uid else None


class LogEncoder:
    """Encodes records as Avro with the log's schema in the configured wire format, announcing
    each new schema (schemas topic; with ``wire_format = "confluent"`` also the registry).

    A log's schema is the bundled Zeek one; a record with columns it lacks (a newer Zeek, a site
    script) gets a schema extended by :func:`log_schema_from_json`, announced before use.
    """

    def __init__(
        self,
        settings: Settings,
        sensor: str,
        publish_schema: Callable[[AvroSchema], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sensor = sensor
        self.publish_schema = publish_schema
        self._schemas: dict[str, tuple[AvroSchema, str]] = {}
        self._published: set[str] = set()
        self._meta_cache: dict[tuple[str, str, str], tuple[str, list[tuple[str, bytes]]]] = {}
        # Confluent framing: each schema registered once under its topic's subject, id by fp.
        self._registry = (
            ConfluentRegistry.from_settings(settings)
            if settings.wire_format == "confluent"
            else None
        )
        self._registry_ids: dict[str, int] = {}

    def _schema(self, log_name: str, record: dict[str, Any]) -> tuple[AvroSchema, str]:
        have = self._schemas.get(log_name)
        if have is not None:
            return have
        try:
            schema = bundled_avro_schema(log_name)
        except KeyError:
            schema = avro_schema(log_schema_from_json(log_name, record))
        return self._use(log_name, schema)

    def use_schema(self, log_name: str, schema: AvroSchema) -> str:
        """Encode this log with ``schema`` from now on (e.g. the columns a log file declares)."""
        return self._use(log_name, schema)[1]

    def _use(self, log_name: str, schema: AvroSchema) -> tuple[AvroSchema, str]:
        fp = fingerprint(schema)
        if fp not in self._published and self.publish_schema is not None:
            self.publish_schema(schema)
        self._published.add(fp)
        if self._registry is not None and fp not in self._registry_ids:
            self._registry_ids[fp] = self._registry.register_log(schema, self.settings)
        self._schemas[log_name] = (schema, fp)
        return schema, fp

    def _value(self, record: dict[str, Any], schema: AvroSchema, fp: str) -> bytes:
        if self._registry is None:
            return codec.encode(record, schema)
        return codec.encode_confluent(record, schema, self._registry_ids[fp])

    def encode(self, log_name: str, record: dict[str, Any], capture_id: str) -> OutMessage:
        schema, fp = self._schema(log_name, record)
        try:
            value = self._value(record, schema, fp)
        except codec.CodecError:
            extended = avro_schema(log_schema_from_json(log_name, record))
            if fingerprint(extended) == fp:
                raise
            log.info("log %s: record has columns beyond its schema; extending it", log_name)
            schema, fp = self._use(log_name, extended)
            value = self._value(record, schema, fp)
        ts = record.get("ts")
        topic, headers = self._meta(log_name, capture_id, fp)
        return OutMessage(
            topic=topic,
            key=record_key(record),
            value=value,
            headers=headers,
            timestamp_ms=int(ts * 1000) if isinstance(ts, (int, float)) else 0,
            log=log_name,
        )

    def _meta(self, log_name: str, capture_id: str, fp: str) -> tuple[str, list[tuple[str, bytes]]]:
        """Topic and headers, built once per (log, capture, schema) and shared by its records
        (treat them as read-only)."""
        key = (log_name, capture_id, fp)
        meta = self._meta_cache.get(key)
        if meta is None:
            if len(self._meta_cache) > 10_000:
                self._meta_cache.clear()
            meta = self._meta_cache[key] = (
                topics.log_topic(log_name, self.settings),
                headers_for(log_name, self.sensor, capture_id, fp),
            )
        return meta


class OutputSpool:
    """Append-only store of :class:`OutMessage`, memory-bounded (spills to a temp file).

    Each message is framed as ``<H q i I`` (id of its topic/log/headers, timestamp ms, key length
    or -1, value length) + key + value; a stream's messages share few distinct topic/headers
    combinations, kept once in a table.
    """

    _FRAME = struct.Struct("<HqiI")

    def __init__(self, max_memory: int = DEFAULT_SPOOL_MEMORY) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115
        self._meta: list[tuple[str, str, list[tuple[str, bytes]]]] = []
        self._meta_ids: dict[tuple[str, str, int], int] = {}
        self.count = 0

    def append(self, message: OutMessage) -> None:
        ident = (message.topic, message.log, id(message.headers))
        meta_id = self._meta_ids.get(ident)
        if meta_id is None:
            meta_id = self._meta_ids[ident] = len(self._meta)
            self._meta.append((message.topic, message.log, message.headers))
        key = message.key
        self._file.write(
            self._FRAME.pack(
                meta_id, message.timestamp_ms, -1 if key is None else len(key), len(message.value)
            )
        )
        if key:
            self._file.write(key)
        self._file.write(message.value)
        self.count += 1

    def __iter__(self) -> Iterator[OutMessage]:
        self._file.seek(0)
        read, frame, size = self._file.read, self._FRAME.unpack, self._FRAME.size
        meta = self._meta
        for _ in range(self.count):
            meta_id, ts, key_len, value_len = frame(read(size))
            key = None if key_len < 0 else read(key_len)
            topic, log_name, headers = meta[meta_id]
            yield OutMessage(topic, key, read(value_len), headers, ts, log_name)
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()


class TopicEnsurer:
    """Creates each log topic the first time the processor is about to write to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.known: set[str] = set()

    def ensure(self, logs: set[str]) -> None:
        missing = {g for g in logs if topics.log_topic(g, self.settings) not in self.known}
        if not missing:
            return
        from wirestream.admin import ensure_topics

        ensure_topics(
            self.settings, [topics.log_topic_spec(g, self.settings) for g in sorted(missing)]
        )
        self.known |= {topics.log_topic(g, self.settings) for g in missing}
