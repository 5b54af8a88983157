"""Confluent Schema Registry use: register log schemas, resolve registry ids to schemas.

For the Confluent wire format (``Settings.wire_format = "confluent"``): each log topic's value
subject (TopicNameStrategy, ``<topic>-value``) holds the log's Avro schema, and messages carry
the registry id. The HTTP work is confluent-kafka's ``SchemaRegistryClient``; this module only
adds the project's subject naming and the prepared-schema cache the codecs use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from wirestream.schemas.avro import AvroSchema, schema_json
from wirestream.schemas.codec import (
    UnknownSchemaError,
    WireSchema,
    encode_confluent_many,
    encode_many,
    wire_schema,
)

from wirestream.config import WIRE_FORMATS, ConfigError, Settings
from wirestream.topics import log_topic

log = logging.getLogger(__name__)


def subject_for(log_name: str, settings: Settings | None = None) -> str:
    """The value subject of a log's topic (Confluent's TopicNameStrategy)."""
    return f"{log_topic(log_name, settings)}-value"


class ConfluentRegistry:
    """Registry ids <-> prepared schemas, cached; implements the codecs' ``RegistryLookup``."""

    def __init__(self, url: str) -> None:
        if not url:
            raise ConfigError(
                "the Confluent wire format needs a Schema Registry URL "
                "(set schema_registry_url / WIRESTREAM_SCHEMA_REGISTRY_URL)"
            )
        self.url = url
        self.client = SchemaRegistryClient({"url": url})
        self._by_id: dict[int, WireSchema] = {}
        self._ids: dict[tuple[str, str], int] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfluentRegistry:
        return cls(settings.schema_registry_url)

    def register(self, subject: str, schema: AvroSchema | WireSchema) -> int:
        """Register a schema under a subject (idempotent); returns its registry id."""
        ws = wire_schema(schema)
        key = (subject, schema_json(ws.schema))
        schema_id = self._ids.get(key)
        if schema_id is None:
            schema_id = self.client.register_schema(subject, Schema(key[1], "AVRO"))
            self._ids[key] = schema_id
            self._by_id[schema_id] = ws
            log.debug("registered %s under %s as id %d", ws.log, subject, schema_id)
        return schema_id

    def register_log(
        self, schema: AvroSchema | WireSchema, settings: Settings | None = None
    ) -> int:
        """Register a log's schema under its topic's value subject."""
        ws = wire_schema(schema)
        return self.register(subject_for(ws.log, settings), ws)

    def wire_by_id(self, schema_id: int) -> WireSchema:
        """The prepared schema of a registry id (fetched once, then cached)."""
        held = self._by_id.get(schema_id)
        if held is not None:
            return held
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            fetched = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchemaError(f"no schema with id {schema_id} at {self.url}") from exc
            raise
        if fetched.schema_type not in (None, "AVRO"):
            raise UnknownSchemaError(f"schema id {schema_id} is {fetched.schema_type}, not Avro")
        ws = self._by_id[schema_id] = wire_schema(json.loads(fetched.schema_str))
        return ws


WireEncoder = Callable[[Iterable[Mapping[str, Any]], AvroSchema | WireSchema], list[bytes]]


def registry_for(settings: Settings) -> ConfluentRegistry | None:
    """The registry consumers decode Confluent-framed messages with, if one is configured."""
    return ConfluentRegistry.from_settings(settings) if settings.schema_registry_url else None


def wire_encoder(settings: Settings) -> WireEncoder:
    """``encode_many`` for the configured ``wire_format``.

    ``single-object``: :func:`~wirestream.schemas.codec.encode_many` (publish the schema to the
    store yourself). ``confluent``: each schema is registered once under its log topic's value
    subject and records are framed with its id.
    """
    if settings.wire_format == "single-object":
        return encode_many
    if settings.wire_format == "confluent":
        registry = ConfluentRegistry.from_settings(settings)

        def encode_confluent_log(
            records: Iterable[Mapping[str, Any]], schema: AvroSchema | WireSchema
        ) -> list[bytes]:
            return encode_confluent_many(records, schema, registry.register_log(schema, settings))

        return encode_confluent_log
    raise ConfigError(
        f"wire_format {settings.wire_format!r} unknown; use one of {', '.join(WIRE_FORMATS)}"
    )
