"""Zeek's JSON-lines logs (``LogAscii::use_json=T``): one record <-> one line, as Zeek writes it.

Writer side follows Zeek's ``threading::formatter::JSON`` (rapidjson): unset fields are left out
(or ``null`` with ``json_include_unset_fields``), doubles in rapidjson's shortest form, inf/nan as
``null``, times as epoch doubles (or ISO 8601 / milliseconds), strings under one of Zeek's three
escape policies. JSON logs carry no ``#types``; :func:`infer_schema` recovers them.

Reading keeps strings as Zeek wrote them under the default "hex" policy: that policy is lossy (a
raw byte 0x07 and the four characters ``\x07`` both come out as ``\x07``), so undoing it would
guess. The "pua" and "tsv" policies are exact and are undone when named in ``JsonOptions``.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from wirestream.schemas.zeek_types import (
    TEXT_SCALARS,
    Column,
    LogSchema,
    ZeekType,
    parse_type,
    zeek_log_schemas,
)
from wirestream.schemas.zeeklog.doubles import format_json_double
from wirestream.schemas.zeeklog.escape import (
    json_string,
    json_string_hex,
    json_string_pua,
    json_string_tsv,
    undo_pua,
    unescape_field,
)

TimestampFormat = Literal["epoch", "iso8601", "millis", "millis_unsigned"]
StringPolicy = Literal["hex", "tsv", "pua"]
_STRING_WRITERS = {"hex": json_string_hex, "tsv": json_string_tsv, "pua": json_string_pua}


@dataclass(frozen=True)
class JsonOptions:
    """``LogAscii::json_timestamps``, ``json_include_unset_fields``, ``json_string_escape_policy``."""

    timestamps: TimestampFormat = "epoch"
    include_unset: bool = False
    string_policy: StringPolicy = "hex"

    def __post_init__(self) -> None:
        if self.timestamps not in ("epoch", "iso8601", "millis", "millis_unsigned"):
            raise ValueError(f"unknown JSON timestamp format {self.timestamps!r}")
        if self.string_policy not in _STRING_WRITERS:
            raise ValueError(f"unknown JSON string escape policy {self.string_policy!r}")


DEFAULT_JSON = JsonOptions()


def _double(value: Any) -> str:
    text = format_json_double(float(value))
    return "null" if text is None else text


def format_iso8601(value: float) -> str:
    """Zeek's TS_ISO8601: whole seconds via gmtime, then ``%06.0f`` of the fraction."""
    seconds = math.floor(value)
    frac = math.modf(value)[0]
    if frac < 0:
        frac += 1
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{abs(frac) * 1000000:06.0f}Z"


def _time_writer(fmt: TimestampFormat) -> Callable[[Any], str]:
    if fmt == "epoch":
        return _double
    if fmt == "iso8601":
        return lambda v: '"' + format_iso8601(float(v)) + '"'
    if fmt == "millis":
        return lambda v: str(int(float(v) * 1000))
    return lambda v: str(int(float(v) * 1000) & 0xFFFFFFFFFFFFFFFF)


def _scalar_writer(scalar: str, options: JsonOptions) -> Callable[[Any], str]:
    if scalar == "bool":
        return lambda v: "true" if v else "false"
    if scalar in ("count", "int", "port"):
        return lambda v: str(int(v))
    if scalar in ("double", "interval"):
        return _double
    if scalar == "time":
        return _time_writer(options.timestamps)
    if scalar == "string":
        return _STRING_WRITERS[options.string_policy]
    if scalar in TEXT_SCALARS:
        return json_string_hex
    return json_string  # addr, subnet


@cache
def json_value_writer(ztype: ZeekType, options: JsonOptions = DEFAULT_JSON) -> Callable[[Any], str]:
    """A function giving the JSON text of one non-``None`` value of ``ztype``."""
    scalar = _scalar_writer(ztype.scalar, options)
    if not ztype.is_container:
        return scalar
    return lambda values: "[" + ",".join("null" if v is None else scalar(v) for v in values) + "]"


def record_formatter(
    schema: LogSchema, options: JsonOptions = DEFAULT_JSON
) -> Callable[[dict[str, Any]], str]:
    """A function turning one record into its JSON line (without the newline)."""
    parts = [
        (c.name, json_string(c.name) + ":", json_value_writer(c.type, options))
        for c in schema.columns
    ]
    include_unset = options.include_unset

    def fmt(record: dict[str, Any]) -> str:
        out = []
        for name, key, write in parts:
            value = record.get(name)
            if value is None:
                if include_unset:
                    out.append(key + "null")
                continue
            out.append(key + write(value))
        return "{" + ",".join(out) + "}"

    return fmt


# --- reading ---------------------------------------------------------------------------------


def parse_iso8601(text: str) -> float:
    """``2008-07-09T16:13:30.005432Z`` -> epoch seconds."""
    stamp, _, frac = text.rstrip("Z").partition(".")
    whole = calendar.timegm(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").timetuple())
    return whole + (int(frac) / 10 ** len(frac) if frac else 0.0)


def _time_reader(fmt: TimestampFormat) -> Callable[[Any], float]:
    def read(v: Any) -> float:
        if isinstance(v, str):
            return parse_iso8601(v)
        if fmt in ("millis", "millis_unsigned"):
            if fmt == "millis_unsigned" and v >= 2**63:
                v -= 2**64
            return v / 1000.0
        return float(v)

    return read


def _strict_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {v!r}")
    return v


def _strict_bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true/false, got {v!r}")
    return v


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _scalar_reader(scalar: str, options: JsonOptions) -> Callable[[Any], Any]:
    if scalar == "bool":
        return _strict_bool
    if scalar in ("count", "int", "port"):
        return _strict_int
    if scalar in ("double", "interval"):
        return _number
    if scalar == "time":
        return _time_reader(options.timestamps)
    if scalar == "string" and options.string_policy == "tsv":
        return lambda v: unescape_field(_text(v))
    if scalar == "string" and options.string_policy == "pua":
        return lambda v: undo_pua(_text(v))
    return _text


@cache
def json_value_reader(ztype: ZeekType, options: JsonOptions = DEFAULT_JSON) -> Callable[[Any], Any]:
    """A function turning one decoded JSON value into the record-contract value of ``ztype``."""
    scalar = _scalar_reader(ztype.scalar, options)
    if not ztype.is_container:
        return lambda v: None if v is None else scalar(v)

    def read(values: Any) -> list[Any] | None:
        if values is None:
            return None
        if not isinstance(values, list):
            raise ValueError(f"expected a JSON array, got {values!r}")
        return [None if v is None else scalar(v) for v in values]

    return read


@cache
def known_column_types() -> dict[str, ZeekType]:
    """Column name -> type over every known Zeek log, for names whose type never varies."""
    seen: dict[str, set[ZeekType]] = {}
    for schema in zeek_log_schemas().values():
        for col in schema.columns:
            seen.setdefault(col.name, set()).add(col.type)
    return {name: next(iter(types)) for name, types in seen.items() if len(types) == 1}


def _infer_scalar(values: Iterable[Any]) -> str:
    kinds = set()
    negative = False
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
            negative = negative or v < 0
        elif isinstance(v, float):
            kinds.add("double")
        else:
            kinds.add("string")
    if kinds == {"bool"}:
        return "bool"
    if kinds == {"int"}:
        return "int" if negative else "count"
    if kinds and kinds <= {"int", "double"}:
        return "double"
    return "string"


def _fits(ztype: ZeekType, values: list[Any]) -> bool:
    read = json_value_reader(ztype)
    try:
        for v in values:
            read(v)
    except (ValueError, TypeError):
        return False
    return True


def infer_type(name: str, values: list[Any]) -> ZeekType:
    """A column's Zeek type from its JSON values: known Zeek column names first, then the values."""
    known = known_column_types().get(name)
    present = [v for v in values if v is not None]
    if known is not None and _fits(known, present):
        return known
    if present and all(isinstance(v, list) for v in present):
        scalar = _infer_scalar(x for v in present for x in v if x is not None)
        return ZeekType(scalar, "vector")
    scalar = _infer_scalar(present)
    if scalar == "double" and (name == "ts" or name.endswith(("_ts", ".ts"))):
        scalar = "time"
    return parse_type(scalar)


def merge_key_order(records: Iterable[dict[str, Any]]) -> list[str]:
    """Column order from records that each omit unset fields: keys keep their relative order."""
    order: list[str] = []
    known: set[str] = set()
    for record in records:
        previous: str | None = None
        for key in record:
            if key not in known:
                at = order.index(previous) + 1 if previous is not None else 0
                order.insert(at, key)
                known.add(key)
            previous = key
    return order


def infer_schema(
    records: list[dict[str, Any]], log_name: str | None = None, schema: LogSchema | None = None
) -> LogSchema:
    """The columns of a JSON log: ``schema`` or the known log's types where they apply, else inferred."""
    if schema is None and log_name is not None:
        schema = zeek_log_schemas().get(log_name)
    given = {c.name: c for c in schema.columns} if schema is not None else {}
    names = merge_key_order(records)
    columns = []
    for name in names:
        if name in given:
            columns.append(given[name])
        else:
            ztype = infer_type(name, [r.get(name) for r in records])
            columns.append(Column(name, ztype, True))
    return LogSchema(log_name or (schema.name if schema else "unknown"), tuple(columns))
