"""Kafka record headers of every log message, decided in one place.

Headers let a consumer route, filter or audit a record without decoding its Avro body: which
log, which sensor and capture produced it, and which writer schema (fingerprint hex) encoded it.
"""

from __future__ import annotations

from collections.abc import Iterable

LOG = "log"
SENSOR = "sensor"
CAPTURE = "capture"
SCHEMA = "schema"

Headers = list[tuple[str, bytes]]


def headers_for(log: str, sensor: str, capture_id: str, fingerprint: str) -> Headers:
    """The headers of one log record (all values UTF-8 text; ``schema`` is the fingerprint hex)."""
    return [
        (LOG, log.encode()),
        (SENSOR, sensor.encode()),
        (CAPTURE, capture_id.encode()),
        (SCHEMA, fingerprint.encode()),
    ]


def header_values(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Headers as a dict of text (the last value wins for repeated keys; None -> "")."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}
