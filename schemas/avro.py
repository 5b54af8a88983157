"""The one mapping from a Zeek log's columns to an Avro record schema.

Every log topic carries Avro; this module decides, once, what each Zeek column becomes.

Mapping (Zeek ``#types`` -> Avro):

=====================================  ==================================================
Zeek type                              Avro type
=====================================  ==================================================
``time``                               ``long`` with ``logicalType: timestamp-micros``
``interval``, ``double``               ``double`` (seconds for ``interval``)
``count``, ``int``                     ``long`` (a count >= 2**63 is refused, clearly)
``port``                               ``int``
``bool``                               ``boolean``
``addr``, ``subnet``, ``enum``,        ``string`` (Zeek's text form)
``string``, ``pattern``, ``func``,
``file``, ``any``
``set[T]``, ``vector[T]``              ``array`` of T (order kept as written; items never null)
=====================================  ==================================================

Every field is a union ``["null", T]`` with ``"default": null``, optional in Zeek or not.
Why: Zeek leaves "non-optional" columns unset in practice (old logs, other versions, site
scripts), and Avro schema resolution needs a default for any column a newer Zeek adds (conn
``ip_proto``, dns ``opcode``), so a reader with a newer schema decodes older records with the
new column null. The cost is one byte per field. Consumers that must enforce Zeek's
optionality read it from ``zeek_log_schemas()``, not from the wire schema.

Names: Avro names must match ``[A-Za-z_][A-Za-z0-9_]*``. A Zeek column becomes a legal name by
replacing every other character with ``_`` (``id.orig_h`` -> ``id_orig_h``; a leading digit gets
a ``_`` prefix); the original name is kept as the field property ``zeek_name`` and its type as
``zeek_type``, which is how decoding gets the record contract's keys back. Two columns mapping
to one Avro name is an error. The record is ``zeek.logs.<log>`` (log name made legal the same
way) with the property ``zeek_log``.

The schema depends only on the log name and the (name, type) of its columns, in order, so the
same columns always give the same schema text and the same fingerprint: a schema derived at run
time from a ``#fields``/``#types`` header equals the bundled one for the same Zeek version.
Fingerprints are CRC-64-AVRO of the Parsing Canonical Form, which keeps field names and Avro
types but drops ``zeek_name``/``zeek_type``/``logicalType``; the schema store therefore keeps
the full schema (:func:`schema_json`) per fingerprint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from fastavro.schema import fingerprint as _crc64_fingerprint
from fastavro.schema import to_parsing_canonical_form
from wirestream.schemas.zeek_types import Column, LogSchema, ZeekType, parse_type

NAMESPACE = "zeek.logs"
AvroSchema = dict[str, Any]

TIMESTAMP_MICROS: AvroSchema = {"type": "long", "logicalType": "timestamp-micros"}
SCALAR_TO_AVRO: dict[str, str | AvroSchema] = {
    "time": TIMESTAMP_MICROS,
    "interval": "double",
    "double": "double",
    "count": "long",
    "int": "long",
    "port": "int",
    "bool": "boolean",
    "addr": "string",
    "subnet": "string",
    "enum": "string",
    "string": "string",
    "pattern": "string",
    "func": "string",
    "file": "string",
    "any": "string",
}

_ILLEGAL = re.compile(r"[^A-Za-z0-9_]")


class AvroMappingError(ValueError):
    """A Zeek log that cannot become one well-formed Avro record."""


def avro_name(zeek_name: str) -> str:
    """A legal Avro name for a Zeek column or log name: ``id.orig_h`` -> ``id_orig_h``."""
    if not zeek_name:
        raise AvroMappingError("empty name")
    name = _ILLEGAL.sub("_", zeek_name)
    return f"_{name}" if name[0].isdigit() else name


def avro_type(zeek_type: ZeekType) -> str | AvroSchema | list[Any]:
    """The non-null Avro type of one Zeek column type (without the null union)."""
    try:
        scalar = SCALAR_TO_AVRO[zeek_type.scalar]
    except KeyError:
        raise AvroMappingError(f"no Avro mapping for Zeek type {zeek_type}") from None
    if isinstance(scalar, dict):
        scalar = dict(scalar)  # every schema gets its own node: callers may mutate theirs
    if zeek_type.is_container:
        return {"type": "array", "items": scalar}
    return scalar


def avro_field(column: Column) -> AvroSchema:
    return {
        "name": avro_name(column.name),
        "type": ["null", avro_type(column.type)],
        "default": None,
        "zeek_name": column.name,
        "zeek_type": str(column.type),
    }


def avro_schema(log: LogSchema) -> AvroSchema:
    """The Avro record schema of one Zeek log (see the module docstring for the mapping)."""
    fields = [avro_field(c) for c in log.columns]
    seen: dict[str, str] = {}
    for field in fields:
        other = seen.setdefault(field["name"], field["zeek_name"])
        if other != field["zeek_name"]:
            raise AvroMappingError(
                f"log {log.name!r}: columns {other!r} and {field['zeek_name']!r} "
                f"both map to Avro field {field['name']!r}"
            )
    return {
        "type": "record",
        "name": avro_name(log.name),
        "namespace": NAMESPACE,
        "doc": f"Zeek {log.name} log",
        "zeek_log": log.name,
        "fields": fields,
    }


def log_schema_from_header(log: str, fields: Sequence[str], types: Sequence[str]) -> LogSchema:
    """The columns a Zeek TSV header declares (``#fields`` and ``#types``), e.g. of a site log."""
    if len(fields) != len(types):
        raise AvroMappingError(
            f"log {log!r}: {len(fields)} #fields but {len(types)} #types in the header"
        )
    if len(set(fields)) != len(fields):
        raise AvroMappingError(f"log {log!r}: duplicate column names in #fields")
    return LogSchema(
        log, tuple(Column(f, parse_type(t)) for f, t in zip(fields, types, strict=True))
    )


def log_schema_from_json(
    log: str, record: Mapping[str, Any], known: Mapping[str, LogSchema] | None = None
) -> LogSchema:
    """Columns for a JSON log record: the known log's columns, then any extra keys, typed by value.

    Zeek's JSON omits unset columns, so for a known log every known column is kept (whether this
    record has it or not) and only keys the known schema lacks are typed, in record order, by
    the JSON reader's inference (known Zeek column names first, then the value).
    For an unknown log the record's keys are all there is.
    """
    from wirestream.schemas.zeek_types import zeek_log_schemas
    from wirestream.schemas.zeeklog.json_lines import infer_type

    base = (known if known is not None else zeek_log_schemas()).get(log)
    columns = list(base.columns) if base else []
    have = {c.name for c in columns}
    columns += [Column(k, infer_type(k, [v])) for k, v in record.items() if k not in have]
    return LogSchema(log, tuple(columns))


def schema_json(schema: AvroSchema) -> str:
    """The stored form of a schema: compact JSON with sorted keys, identical for equal schemas."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_TYPE_KEYS = ("type", "name", "namespace", "doc", "zeek_log", "items", "logicalType")
_FIELD_KEYS = ("name", "type", "default", "zeek_name", "zeek_type")


def _ordered(node: Any, first: tuple[str, ...] = _TYPE_KEYS) -> Any:
    """A schema node with its keys in the fixed display order, recursively."""
    if isinstance(node, list):
        return [_ordered(v) for v in node]
    if not isinstance(node, dict):
        return node
    keys = [k for k in first if k in node] + [k for k in node if k not in first]
    return {
        k: [_ordered(f, _FIELD_KEYS) for f in node[k]] if k == "fields" else _ordered(node[k])
        for k in keys
    }


def avsc_text(schema: AvroSchema) -> str:
    """The readable ``.avsc`` text of a record schema: one field per line, stable bytes.

    Keys come in a fixed order (type, name, ...), so a schema read back from the sorted JSON of
    the schemas topic prints the same as the committed file.
    """
    ordered = _ordered(schema)
    head = {k: v for k, v in ordered.items() if k != "fields"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    fields = [f"    {json.dumps(f, ensure_ascii=False)}" for f in ordered.get("fields", [])]
    return "{\n" + "\n".join(lines) + '\n  "fields": [\n' + ",\n".join(fields) + "\n  ]\n}\n"


@cache
def _fingerprint_of_json(text: str) -> str:
    return _crc64_fingerprint(to_parsing_canonical_form(json.loads(text)), "CRC-64-AVRO")


def fingerprint(schema: AvroSchema) -> str:
    """CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, as 16 hex digits.

    The hex spells the 8 bytes exactly as they follow ``C3 01`` in a single-object message
    (little-endian), which is also what fastavro prints; topic keys and headers use it.
    """
    return _fingerprint_of_json(schema_json(schema))


def fingerprint_int(fingerprint_hex: str) -> int:
    """The fingerprint as the signed 64-bit number the Avro spec and Java print."""
    return int.from_bytes(bytes.fromhex(fingerprint_hex), "little", signed=True)


def zeek_log_of(schema: AvroSchema) -> str:
    """The Zeek log a record schema describes (``zeek_log``, else the record name)."""
    return schema.get("zeek_log") or schema["name"]


@cache
def bundled_avro_schema(log: str) -> AvroSchema:
    """The Avro schema of a log Zeek ships (from ``zeek_log_schemas()``); KeyError if unknown."""
    from wirestream.schemas.zeek_types import zeek_log_schemas

    return avro_schema(zeek_log_schemas()[log])
