"""Wire codecs: Zeek records (the in-memory record contract) <-> Avro messages.

Two framings of the same Avro binary body:

- single-object (default): ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint
  (little-endian) + body. Self-describing given a schema store keyed by fingerprint.
- Confluent: ``00`` + 4-byte big-endian Schema Registry id + body, for Kafka Connect / ksqlDB.

Encoding uses a straight-line encoder generated per schema (:mod:`.fastencode`, ~3x faster than
fastavro's writer, byte-identical); decoding uses fastavro's ``schemaless_reader`` and a generated
function per schema (a dict literal, no per-field loop) that renames Avro fields back to Zeek
names and turns ``long`` micros into float seconds (``us / 1000000``; the other way is
:func:`~wirestream.schemas.fastencode.ticks`). Times are exact for every microsecond value up to
the year 2242 (sub-microsecond digits, which Zeek's JSON can carry, are rounded). fastavro
parses schemas with logical types removed: we convert times ourselves, where fastavro would
build a ``datetime`` per value.

Zeek strings are bytes; bytes that are not UTF-8 ride in the record's ``str`` as lone surrogates
(``surrogateescape``), which Avro strings (UTF-8) cannot hold. Such a byte ``b`` is written as the
code point ``U+F0000 + b``, Zeek's own ``STRING_ESCAPE_POLICY_PUA``, and mapped back on decode.
Text that really holds U+F0080..U+F00FF is written as the PUA code points of its UTF-8 bytes, so
the mapping stays reversible. Only records holding such text pay for it: encoding retries when
a string will not encode or the body shows PUA bytes; decoding looks for them in the message.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from wirestream.schemas.avro import AvroSchema, fingerprint, schema_json, zeek_log_of
from wirestream.schemas.fastencode import Encoder, make_encoder, ticks
from wirestream.schemas.zeeklog.escape import PUA_BYTE_BASE, bytes_text

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER = 10
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER = 5
Record = dict[str, Any]

# Avro logical time type -> units per second (as source text for the generated converters).
_TIME_SCALE = {"timestamp-micros": "1000000", "timestamp-millis": "1000"}


# Non-UTF-8 bytes as surrogates, or text already in the PUA byte range (U+F0080..U+F00FF).
_PUA_HIGH = f"{chr(PUA_BYTE_BASE + 0x80)}-{chr(PUA_BYTE_BASE + 0xFF)}"
_ESCAPED = re.compile(f"[\udc80-\udcff{_PUA_HIGH}]")
_PUA = re.compile(f"[{_PUA_HIGH}]+")
_PUA_UTF8 = (b"\xf3\xb0\x82", b"\xf3\xb0\x83")  # UTF-8 lead bytes of U+F0080..U+F00FF


def _pua_of(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp <= 0xDCFF:  # a non-UTF-8 byte (surrogateescape) -> its PUA code point
        return chr(PUA_BYTE_BASE + cp - 0xDC00)
    return "".join(chr(PUA_BYTE_BASE + b) for b in match.group().encode())  # genuine PUA: its bytes


def _bytes_of(match: re.Match[str]) -> str:
    return bytes_text(
        bytes(ord(c) - PUA_BYTE_BASE for c in match.group())
    )  # genuine PUA chars reassemble here


def pua_escape(value: Any) -> Any:
    """A str (or list of str) with non-UTF-8 bytes as Zeek's PUA code points (Avro-safe)."""
    if isinstance(value, str):
        return _ESCAPED.sub(_pua_of, value)
    if isinstance(value, list):
        return [pua_escape(v) for v in value]
    return value


def pua_unescape(value: Any) -> Any:
    """Inverse of :func:`pua_escape`: for any reader that gets Avro strings without this codec."""
    if isinstance(value, str):
        return _PUA.sub(_bytes_of, value)
    if isinstance(value, list):
        return [pua_unescape(v) for v in value]
    return value


class CodecError(ValueError):
    """A message or record that does not fit the codec (bad framing, unknown column...)."""


class UnknownSchemaError(LookupError):
    """A fingerprint or registry id no schema is known for."""


@dataclass(frozen=True)
class FieldView:
    """How one Avro field maps to a record key, and whether it carries time."""

    avro_name: str
    zeek_name: str
    time_scale: str | None  # "1000000" for timestamp-micros (scalar or array items), else None
    is_array: bool
    avro_type: str | None = None  # primitive of the value or of the array items, else None
    nullable: bool = True


@dataclass(frozen=True, eq=False)
class WireSchema:
    """A schema prepared for the wire: parsed once, with its fingerprint and converters."""

    schema: AvroSchema
    fingerprint: str
    log: str
    parsed: Any
    prefix: bytes
    fields: tuple[FieldView, ...]
    zeek_names: frozenset[str]
    to_avro: Any
    from_avro: Any
    encoder: Encoder | None  # generated (wirestream.schemas.fastencode); None: use fastavro

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireSchema) and self.schema == other.schema


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


def _non_null(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        rest = [t for t in avro_type if t != "null"]
        if len(rest) != 1:
            raise CodecError(f"only [null, T] unions are supported, got {avro_type!r}")
        return rest[0]
    return avro_type


def field_views(schema: AvroSchema) -> tuple[FieldView, ...]:
    """What decoding needs from a record schema: names and time-ness of each field."""
    if schema.get("type") != "record":
        raise CodecError(f"expected an Avro record schema, got type {schema.get('type')!r}")
    views = []
    for field in schema["fields"]:
        inner = _non_null(field["type"])
        is_array = isinstance(inner, dict) and inner.get("type") == "array"
        scalar = inner["items"] if is_array else inner
        logical = scalar.get("logicalType") if isinstance(scalar, dict) else None
        primitive = scalar.get("type") if isinstance(scalar, dict) else scalar
        views.append(
            FieldView(
                field["name"],
                field.get("zeek_name", field["name"]),
                _TIME_SCALE.get(logical) if logical else None,
                is_array,
                primitive if isinstance(primitive, str) else None,
                isinstance(field["type"], list),
            )
        )
    return tuple(views)


def _compile(name: str, body: str) -> Any:
    namespace: dict[str, Any] = {"_ticks": ticks}
    exec(body, namespace)  # generated from field names quoted with repr(): no injection
    return namespace[name]


def _to_avro_source(views: Sequence[FieldView]) -> str:
    items = []
    for i, view in enumerate(views):
        get = f"g({view.zeek_name!r})"
        if view.time_scale is None:
            items.append(f"{view.avro_name!r}: {get}")
            continue
        conv = (
            f"[_ticks(x, {view.time_scale}) for x in v{i}]"
            if view.is_array
            else f"_ticks(v{i}, {view.time_scale})"
        )
        items.append(f"{view.avro_name!r}: None if (v{i} := {get}) is None else {conv}")
    return "def to_avro(r):\n    g = r.get\n    return {" + ", ".join(items) + "}\n"


def _from_avro_source(views: Sequence[FieldView]) -> str:
    items = []
    for i, view in enumerate(views):
        get = f"d[{view.avro_name!r}]"
        if view.time_scale is None:
            items.append(f"{view.zeek_name!r}: {get}")
            continue
        conv = (
            f"[x / {view.time_scale} for x in v{i}]"
            if view.is_array
            else f"v{i} / {view.time_scale}"
        )
        items.append(f"{view.zeek_name!r}: None if (v{i} := {get}) is None else {conv}")
    return "def from_avro(d):\n    return {" + ", ".join(items) + "}\n"


@lru_cache(maxsize=4096)
def _wire_schema_of_json(text: str) -> WireSchema:
    import json

    schema = json.loads(text)
    views = field_views(schema)
    fp = fingerprint(schema)
    return WireSchema(
        schema=schema,
        fingerprint=fp,
        log=zeek_log_of(schema),
        parsed=parse_schema(_strip_logical(schema)),
        prefix=SINGLE_OBJECT_MAGIC + bytes.fromhex(fp),
        fields=views,
        zeek_names=frozenset(v.zeek_name for v in views),
        to_avro=_compile("to_avro", _to_avro_source(views)),
        from_avro=_compile("from_avro", _from_avro_source(views)),
        encoder=make_encoder(views),
    )


# id(schema dict) -> (the dict, its WireSchema): the dict is held so its id stays unique.
_BY_IDENTITY: dict[int, tuple[AvroSchema, WireSchema]] = {}
_BY_IDENTITY_MAX = 4096


def wire_schema(schema: AvroSchema | WireSchema) -> WireSchema:
    """The prepared form of a schema, cached (schemas are treated as immutable once used).

    The same dict object is found by identity (~0.1 us); an equal new dict by its text (~100 us
    to serialize), so callers encoding one record at a time may pass the dict they keep.
    """
    if isinstance(schema, WireSchema):
        return schema
    held = _BY_IDENTITY.get(id(schema))
    if held is not None and held[0] is schema:
        return held[1]
    ws = _wire_schema_of_json(schema_json(schema))
    if len(_BY_IDENTITY) >= _BY_IDENTITY_MAX:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(schema)] = (schema, ws)
    return ws


def _unknown_columns(record: Mapping[str, Any], ws: WireSchema) -> CodecError:
    extra = sorted(set(record) - ws.zeek_names)
    return CodecError(f"{ws.log}: record has columns the schema lacks: {extra}")


def _explain(record: Mapping[str, Any], ws: WireSchema, exc: Exception) -> CodecError:
    """Name the offending column of a record that does not encode (slow path, errors only)."""
    for view in ws.fields:
        value = record.get(view.zeek_name)
        single = {view.zeek_name: pua_escape(value)}
        try:
            if ws.encoder is not None:
                ws.encoder(single, b"")
            else:
                _fastavro_body(single, ws)
        except Exception:  # noqa: BLE001 - any rejection pinpoints the column
            return CodecError(f"{ws.log}: column {view.zeek_name!r} cannot hold {value!r}")
    return CodecError(f"{ws.log}: cannot encode record: {exc}")


def _has_pua(message: bytes, start: int) -> bool:
    return message.find(_PUA_UTF8[0], start) >= 0 or message.find(_PUA_UTF8[1], start) >= 0


def _fastavro_body(record: Mapping[str, Any], ws: WireSchema) -> bytes:
    buf = io.BytesIO()
    datum = ws.to_avro(record)
    schemaless_writer(buf, ws.parsed, datum)
    return buf.getvalue()


def _encode_one(record: Mapping[str, Any], ws: WireSchema, prefix: bytes) -> bytes:
    """prefix + Avro body of one record; non-UTF-8 text retried with Zeek's PUA mapping."""
    if not record.keys() <= ws.zeek_names:
        raise _unknown_columns(record, ws)
    try:
        try:
            if ws.encoder is not None:
                message = ws.encoder(record, prefix)
            else:
                message = prefix + _fastavro_body(record, ws)
            if _has_pua(message, len(prefix)):
                raise UnicodeEncodeError("utf-8", "", 0, 0, "PUA text must be escaped")
            return message
        except UnicodeEncodeError:
            escaped = {k: pua_escape(v) for k, v in record.items()}
            if ws.encoder is not None:
                return ws.encoder(escaped, prefix)
            return prefix + _fastavro_body(escaped, ws)
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise _explain(record, ws, exc) from exc


def _avro_text(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else pua_escape(value)
    if isinstance(value, list):
        return [_avro_text(v) for v in value]
    return value


def avro_datum(record: Mapping[str, Any], schema: AvroSchema | WireSchema) -> dict[str, Any]:
    """A record as the Avro value any Avro writer takes (e.g. fastavro's container writer)."""
    ws = wire_schema(schema)
    if not record.keys() <= ws.zeek_names:
        raise _unknown_columns(record, ws)
    try:
        datum = ws.to_avro(record)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _explain(record, ws, exc) from exc
    return {k: _avro_text(v) for k, v in datum.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ticks_of(value: Any, per_second: int) -> Any:
    """Avro libraries hand logical times as datetimes: back to exact ticks."""
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(microseconds=1_000_000 // per_second)
    if isinstance(value, list):
        return [_ticks_of(v, per_second) for v in value]
    return value


def record_of_datum(datum: Mapping[str, Any], schema: AvroSchema | WireSchema) -> Record:
    """Inverse of :func:`avro_datum`; times may be ticks or datetimes (e.g. fastavro.reader)."""
    ws = wire_schema(schema)
    plain = {k: pua_unescape(v) for k, v in datum.items()}
    for view in ws.fields:
        if view.time_scale is not None:
            plain[view.avro_name] = _ticks_of(plain.get(view.avro_name), int(view.time_scale))
    return ws.from_avro(plain)


def encode_body(record: Mapping[str, Any], schema: AvroSchema | WireSchema) -> bytes:
    """The bare Avro binary body of one record (no framing)."""
    return _encode_one(record, wire_schema(schema), b"")


def _encode_framed(
    records: Iterable[Mapping[str, Any]], ws: WireSchema, prefix: bytes
) -> list[bytes]:
    return [_encode_one(record, ws, prefix) for record in records]


def encode(record: Mapping[str, Any], schema: AvroSchema | WireSchema) -> bytes:
    """One record as an Avro single-object message."""
    ws = wire_schema(schema)
    return _encode_framed((record,), ws, ws.prefix)[0]


def encode_many(
    records: Iterable[Mapping[str, Any]], schema: AvroSchema | WireSchema
) -> list[bytes]:
    """Many records of one log as single-object messages (schema prepared once)."""
    ws = wire_schema(schema)
    return _encode_framed(records, ws, ws.prefix)


def message_fingerprint(message: bytes) -> str:
    """The writer schema fingerprint (hex) of a single-object message; CodecError if not one."""
    if message[:2] != SINGLE_OBJECT_MAGIC or len(message) < SINGLE_OBJECT_HEADER:
        raise CodecError(
            f"not an Avro single-object message (starts {bytes(message[:2]).hex() or 'empty'})"
        )
    return bytes(message[2:SINGLE_OBJECT_HEADER]).hex()


def split_single_object(message: bytes) -> tuple[str, bytes]:
    """``(fingerprint hex, Avro body)`` of a single-object message; CodecError if not one."""
    return message_fingerprint(message), bytes(message[SINGLE_OBJECT_HEADER:])


class SchemaLookup(Protocol):
    """Anything that resolves a fingerprint to a prepared schema (e.g. the schema store)."""

    def wire(self, fingerprint: str) -> WireSchema: ...


class RegistryLookup(Protocol):
    """Anything that resolves a Confluent Schema Registry id to a prepared schema."""

    def wire_by_id(self, schema_id: int) -> WireSchema: ...


def _read(message: bytes, offset: int, writer: WireSchema, reader: WireSchema | None) -> Record:
    fo = io.BytesIO(message)
    fo.seek(offset)
    target = writer if reader is None or reader.fingerprint == writer.fingerprint else reader
    try:
        if target is writer:
            datum = schemaless_reader(fo, writer.parsed)
        else:
            datum = schemaless_reader(fo, writer.parsed, reader.parsed)
    except (EOFError, IndexError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise CodecError(
            f"{writer.log}: body does not decode with schema {writer.fingerprint}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if fo.tell() != len(message):
        raise CodecError(
            f"{writer.log}: {len(message) - fo.tell()} byte(s) left after the record: "
            f"not written with schema {writer.fingerprint}"
        )
    if _PUA_UTF8[0] in message or _PUA_UTF8[1] in message:
        datum = {k: pua_unescape(v) for k, v in datum.items()}
    return target.from_avro(datum)


def decode_body(
    body: bytes, writer: AvroSchema | WireSchema, reader: AvroSchema | WireSchema | None = None
) -> Record:
    """Decode a bare Avro body written with ``writer``; with ``reader``, resolve to that schema."""
    return _read(body, 0, wire_schema(writer), wire_schema(reader) if reader is not None else None)


def decode(
    message: bytes, store: SchemaLookup, reader: AvroSchema | WireSchema | None = None
) -> Record:
    """A single-object message back to a record; the writer schema comes from ``store``.

    With ``reader`` (e.g. the newest schema of the log), Avro resolution applies: columns the
    writer lacked come back None, columns the reader lacks are dropped.
    """
    writer = store.wire(message_fingerprint(message))
    return _read(message, SINGLE_OBJECT_HEADER, writer, _maybe_wire(reader))


def decode_many(
    messages: Iterable[bytes], store: SchemaLookup, reader: AvroSchema | WireSchema | None = None
) -> list[Record]:
    """Many single-object messages back to records (one store lookup per distinct schema)."""
    reader_ws = _maybe_wire(reader)
    writers: dict[str, WireSchema] = {}
    out = []
    for message in messages:
        fp = message_fingerprint(message)
        writer = writers.get(fp)
        if writer is None:
            writer = writers[fp] = store.wire(fp)
        out.append(_read(message, SINGLE_OBJECT_HEADER, writer, reader_ws))
    return out


def _maybe_wire(schema: AvroSchema | WireSchema | None) -> WireSchema | None:
    return None if schema is None else wire_schema(schema)


# --- Confluent framing ----------------------------------------------------------------------


def confluent_prefix(schema_id: int) -> bytes:
    if not 0 <= schema_id < 2**31:
        raise CodecError(f"Schema Registry id out of range: {schema_id}")
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")


def encode_confluent(
    record: Mapping[str, Any], schema: AvroSchema | WireSchema, schema_id: int
) -> bytes:
    """One record in the Confluent wire format (magic 0, 4-byte id, Avro body)."""
    return _encode_framed((record,), wire_schema(schema), confluent_prefix(schema_id))[0]


def encode_confluent_many(
    records: Iterable[Mapping[str, Any]], schema: AvroSchema | WireSchema, schema_id: int
) -> list[bytes]:
    return _encode_framed(records, wire_schema(schema), confluent_prefix(schema_id))


def confluent_schema_id(message: bytes) -> int:
    """The Schema Registry id of a Confluent-framed message; CodecError if not one."""
    if len(message) < CONFLUENT_HEADER or message[:1] != CONFLUENT_MAGIC:
        raise CodecError(
            f"not a Confluent-framed message (starts {bytes(message[:1]).hex() or 'empty'})"
        )
    return int.from_bytes(message[1:CONFLUENT_HEADER], "big")


def split_confluent(message: bytes) -> tuple[int, bytes]:
    """``(schema id, Avro body)`` of a Confluent-framed message; CodecError if not one."""
    return confluent_schema_id(message), bytes(message[CONFLUENT_HEADER:])


def decode_confluent(
    message: bytes, registry: RegistryLookup, reader: AvroSchema | WireSchema | None = None
) -> Record:
    schema_id = confluent_schema_id(message)
    return _read(message, CONFLUENT_HEADER, registry.wire_by_id(schema_id), _maybe_wire(reader))


def decode_any(
    message: bytes,
    store: SchemaLookup,
    registry: RegistryLookup | None = None,
    reader: AvroSchema | WireSchema | None = None,
) -> Record:
    """Decode either framing, told apart by the first byte (C3 vs 00)."""
    if message[:1] == CONFLUENT_MAGIC:
        if registry is None:
            raise CodecError("Confluent-framed message but no Schema Registry configured")
        return decode_confluent(message, registry, reader)
    return decode(message, store, reader)


def normalized(record: Mapping[str, Any], columns: Iterable[str]) -> Record:
    """A record with every column present (absent -> None): the form decoding returns."""
    return {c: record.get(c) for c in columns}
