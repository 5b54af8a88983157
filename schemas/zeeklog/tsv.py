"""One Zeek TSV field <-> one in-memory value, exactly as Zeek's ASCII writer does it.

``format_value`` and ``parse_value`` are the pure pair; ``field_formatter``/``field_parser`` build
the same functions once per column so the reader and writer pay no per-value dispatch.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from wirestream.schemas.zeek_types import ZeekType
from wirestream.schemas.zeeklog.doubles import format_double, format_time
from wirestream.schemas.zeeklog.escape import escape_field, unescape_field

TEXT_SCALARS = frozenset({"string", "enum", "file", "func", "pattern", "any"})
_NUMERIC_TEXT_CHARS = frozenset(string.hexdigits + ".:-+/TFinaxX ")


@dataclass(frozen=True)
class TsvDialect:
    """The ``#separator``/``#set_separator``/... settings of one log (``LogAscii::*`` in Zeek)."""

    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    meta_prefix: str = "#"
    utf8: bool = True  # LogAscii::enable_utf_8: valid UTF-8 is written raw, not as \xNN

    def __post_init__(self) -> None:
        if not self.separator or not self.set_separator:
            raise ValueError("separator and set_separator must not be empty")


DEFAULT_DIALECT = TsvDialect()

Formatter = Callable[[Any], str]
Parser = Callable[[str], Any]


def _text_formatter(dialect: TsvDialect, sequences: Sequence[str]) -> Formatter:
    """Strings, enums, ...: ``(empty)`` for "", and a value equal to a marker gets ``\\xNN`` first."""
    utf8 = dialect.utf8
    empty = escape_field(dialect.empty_field, sequences, utf8)
    reserved = {dialect.unset_field, dialect.empty_field}

    def fmt(value: Any) -> str:
        text = value if isinstance(value, str) else str(value)
        if not text:
            return empty
        if text in reserved:
            return f"\\x{ord(text[0]):02x}" + escape_field(text[1:], sequences, utf8)
        return escape_field(text, sequences, utf8)

    return fmt


def _scalar_formatter(scalar: str, dialect: TsvDialect, sequences: Sequence[str]) -> Formatter:
    if scalar in TEXT_SCALARS:
        return _text_formatter(dialect, sequences)
    if scalar == "bool":
        render: Formatter = lambda v: "T" if v else "F"  # noqa: E731
    elif scalar in ("count", "int", "port"):
        render = lambda v: str(int(v))  # noqa: E731
    elif scalar == "double":
        render = lambda v: format_double(float(v))  # noqa: E731
    elif scalar in ("time", "interval"):
        render = format_time
    else:  # addr, subnet
        render = str
    if not any(ch in _NUMERIC_TEXT_CHARS for seq in sequences for ch in seq):
        return render
    utf8 = dialect.utf8
    return lambda v: escape_field(render(v), sequences, utf8)


@cache
def field_formatter(ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Formatter:
    """A function turning one value of ``ztype`` (``None`` = unset) into its escaped TSV field."""
    top = (dialect.separator,)
    unset = escape_field(dialect.unset_field, top, dialect.utf8)
    if not ztype.is_container:
        scalar = _scalar_formatter(ztype.scalar, dialect, top)
        return lambda v: unset if v is None else scalar(v)

    inner = (dialect.separator, dialect.set_separator)
    element = _scalar_formatter(ztype.scalar, dialect, inner)
    inner_unset = escape_field(dialect.unset_field, inner, dialect.utf8)
    empty = escape_field(dialect.empty_field, top, dialect.utf8)
    joiner = dialect.set_separator

    def fmt(values: Any) -> str:
        if values is None:
            return unset
        if not values:
            return empty
        return joiner.join(inner_unset if v is None else element(v) for v in values)

    return fmt


def _int_parser(scalar: str) -> Parser:
    def parse(text: str) -> int:
        if scalar == "port" and "/" in text:
            text = text.split("/", 1)[0]
        value = int(text)
        if value < 0 and scalar != "int":
            raise ValueError(f"{scalar} cannot be negative: {text!r}")
        if scalar == "port" and value > 65535:
            raise ValueError(f"port out of range: {text!r}")
        return value

    return parse


def _bool(text: str) -> bool:
    if text == "T" or text == "1":
        return True
    if text == "F" or text == "0":
        return False
    raise ValueError(f"invalid bool {text!r}")


_TINY_NEGATIVE = -5e-324


_OFF_INTEGER = 1e-8  # inside Zeek's [1e-9, 5e-7) band of "prints as an integer, not within 1e-9"


def _double(text: str) -> float:
    """A ``double`` field, read so that writing it again gives the same text.

    Zeek prints -0.0 as ``0.0``, so ``-0.0`` means a tiny negative; and it appends ``.0`` to every
    value within 1e-9 of an integer, so a bare ``5`` means 5 plus a little (5.00000001 prints so).
    """
    value = float(text)
    if value == 0 and text == "-0.0":
        return _TINY_NEGATIVE
    if text.lstrip("-").isdigit():
        sign = -1.0 if text.startswith("-") else 1.0
        nudged = value + sign * _OFF_INTEGER
        if nudged == value:
            nudged = math.nextafter(value, sign * math.inf)
        if format_double(nudged) == text:
            return nudged
    return value


def _scalar_parser(scalar: str, dialect: TsvDialect) -> Parser:
    if scalar in TEXT_SCALARS:
        empty = dialect.empty_field

        def parse_text(text: str) -> str:
            return "" if text == empty else unescape_field(text)

        return parse_text
    if scalar == "bool":
        return _bool
    if scalar in ("count", "int", "port"):
        return _int_parser(scalar)
    if scalar == "double":
        return _double
    if scalar in ("time", "interval"):
        return float
    return unescape_field  # addr, subnet


@cache
def field_parser(ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Parser:
    """A function turning one TSV field into its value (``None`` for unset, ``[]`` for empty)."""
    unset = dialect.unset_field
    scalar = _scalar_parser(ztype.scalar, dialect)
    if not ztype.is_container:
        return lambda text: None if text == unset else scalar(text)

    empty = dialect.empty_field
    set_sep = dialect.set_separator

    def parse(text: str) -> list[Any] | None:
        if text == unset:
            return None
        if text == empty:
            return []
        return [None if part == unset else scalar(part) for part in text.split(set_sep)]

    return parse


def format_value(value: Any, ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> str:
    """The TSV field Zeek writes for ``value`` (record-contract form; ``None`` = unset)."""
    return field_formatter(ztype, dialect)(value)


def parse_value(text: str, ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Any:
    """Inverse of :func:`format_value`. Raises ``ValueError`` on text that is not a ``ztype``."""
    return field_parser(ztype, dialect)(text)
