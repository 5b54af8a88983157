"""Generated Avro binary encoders: one straight-line function per log schema.

Why: fastavro's ``schemaless_writer`` resolves every ``["null", T]`` union per value and costs
~40 us for a conn record; a function generated once per schema that reads the record's own keys,
converts times and writes the union branch index inline is about 3x faster, and every log record
the pipeline produces goes through it. Scope is exactly what :mod:`wirestream.schemas.avro`
emits: records whose fields are ``["null", T]`` (or T) with T one of ``boolean``, ``int``,
``long``, ``double``, ``string`` or an array of those. Anything else gets no generated encoder
and the codec uses fastavro. Tests check the bytes against fastavro's for arbitrary records.

Avro binary, as used here: union branch index and lengths are zigzag varints; ``int``/``long``
zigzag varints (range checked: 32/64 bit); ``double`` 8 bytes little-endian; ``boolean`` one
byte; ``string`` length + UTF-8; ``array`` one block (count, items) then a 0 count.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

_DOUBLE = struct.Struct("<d").pack
_SMALL = {n: bytes([((n << 1) ^ (n >> 63)) & 0xFF]) for n in range(-64, 64)}
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
SUPPORTED = frozenset({"boolean", "int", "long", "double", "string"})

Encoder = Callable[[Mapping[str, Any], bytes], bytes]


class FieldShape(Protocol):
    zeek_name: str
    avro_type: str | None
    nullable: bool
    is_array: bool
    time_scale: str | None


def zigzag(n: int) -> bytes:
    """An Avro ``long``: zigzag, then base-128 varint, least significant group first."""
    small = _SMALL.get(n)
    if small is not None and n.__class__ is int:
        return small
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def int32(n: int) -> bytes:
    if not _INT_MIN <= n <= _INT_MAX:
        raise OverflowError(f"{n} does not fit an Avro int")
    return zigzag(n)


def text(value: str) -> bytes:
    data = value.encode()  # non-str has no .encode: AttributeError -> a clear CodecError
    return zigzag(len(data)) + data


def boolean(value: bool) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise TypeError(f"{value!r} is not a bool")


def double(value: float) -> bytes:
    try:
        return _DOUBLE(value)
    except struct.error:
        raise TypeError(f"{value!r} is not a number") from None


def items(value: Any) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{value!r} is not a list")
    return value


def ticks(seconds: float, per_second: int) -> int:
    """Whole ticks (micros) of float seconds, exact for decimal micros up to year 2242.

    Splitting off the whole seconds first keeps the product small: ``round(x * 1e6)`` alone
    is off by one for some microsecond values past 2**51 us (year 2041).
    """
    whole = math.floor(seconds)
    return int(whole) * per_second + round((seconds - whole) * per_second)


_WRITERS = {
    "boolean": "boolean",
    "int": "int32",
    "long": "zigzag",
    "double": "double",
    "string": "text",
}


def _value_expr(shape: FieldShape, var: str) -> str:
    if shape.time_scale is not None:
        return f"zigzag(ticks({var}, {shape.time_scale}))"
    return f"{_WRITERS[shape.avro_type]}({var})"


def encoder_source(shapes: Sequence[FieldShape]) -> str | None:
    """Python source of ``encode(record, prefix) -> bytes``; None if a field is out of scope."""
    lines = ["def encode(r, prefix):", "    g = r.get", "    p = [prefix]", "    a = p.append"]
    for shape in shapes:
        if shape.avro_type not in SUPPORTED:
            return None
        lines.append(f"    v = g({shape.zeek_name!r})")
        if shape.is_array:
            item = _value_expr(shape, "x")
            write = [
                "n = len(items(v))",
                "if n:",
                "    a(zigzag(n))",
                f"    for x in v: a({item})",
                "a(b'\\x00')",
            ]
        else:
            write = [f"a({_value_expr(shape, 'v')})"]
        if shape.nullable:
            lines += [
                "    if v is None:",
                "        a(b'\\x00')",
                "    else:",
                "        a(b'\\x02')",
            ]
            lines += [f"        {w}" for w in write]
        else:
            lines += [f"    {w}" for w in write]
    lines.append("    return b''.join(p)")
    return "\n".join(lines) + "\n"


def make_encoder(shapes: Sequence[FieldShape]) -> Encoder | None:
    """The generated encoder of a record schema's fields, or None when out of scope."""
    source = encoder_source(shapes)
    if source is None:
        return None
    namespace: dict[str, Any] = {
        "zigzag": zigzag,
        "int32": int32,
        "text": text,
        "boolean": boolean,
        "double": double,
        "items": items,
        "ticks": ticks,
    }
    exec(source, namespace)  # names quoted with repr(), types from a closed set: no injection
    return namespace["encode"]
