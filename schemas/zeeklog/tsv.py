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

from wirestream.schemas.zeek_types import TEXT_SCALARS, ZeekType
from wirestream.schemas.zeeklog.doubles import format_double, format_time
from wirestream.schemas.zeeklog.escape import escape_field, unescape_field

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


def _plain_text_test(sequences: Sequence[str]) -> str:
    """Python source for a C-speed test of ``v`` (a str): True when it is printable ASCII with no
    backslash or separator start, so it is written as is. Anything else takes the exact (slow)
    path, which may still find nothing to escape. (str methods: ~6x faster than a regex search;
    for ASCII text, ``isprintable`` is exactly the range 0x20-0x7e.)"""
    specials = sorted({seq[0] for seq in sequences} | {"\\"})
    absent = "".join(
        f" and {ch!r} not in v" for ch in specials if ch.isascii() and ch.isprintable()
    )
    return f"v.isascii() and v.isprintable(){absent}"


def _plain_text(sequences: Sequence[str]) -> Callable[[str], bool]:
    """:func:`_plain_text_test` as a function."""
    scope: dict[str, Any] = {}
    exec(f"def plain(v):\n    return {_plain_text_test(sequences)}\n", scope)  # noqa: S102 - our own template
    return scope["plain"]


def _text_formatter(dialect: TsvDialect, sequences: Sequence[str], unset: str) -> Formatter:
    """Strings, enums, ...: ``(empty)`` for "", and a value equal to a marker gets ``\\xNN`` first."""
    utf8 = dialect.utf8
    empty = escape_field(dialect.empty_field, sequences, utf8)
    reserved = frozenset({dialect.unset_field, dialect.empty_field})
    plain = _plain_text(sequences)

    def fmt(value: Any) -> str:
        if value is None:
            return unset
        if value.__class__ is not str:
            value = str(value)
        if not value:
            return empty
        if value in reserved:
            return f"\\x{ord(value[0]):02x}" + escape_field(value[1:], sequences, utf8)
        if plain(value):
            return value
        return escape_field(value, sequences, utf8)

    return fmt


def _scalar_formatter(
    scalar: str, dialect: TsvDialect, sequences: Sequence[str], unset: str
) -> Formatter:
    """One value (``None`` = unset) -> its field text, for a scalar type."""
    if scalar in TEXT_SCALARS:
        return _text_formatter(dialect, sequences, unset)
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
    if any(ch in _NUMERIC_TEXT_CHARS for seq in sequences for ch in seq):
        plain, utf8 = render, dialect.utf8
        render = lambda v: escape_field(plain(v), sequences, utf8)  # noqa: E731
    return lambda v: unset if v is None else render(v)


@cache
def field_formatter(ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Formatter:
    """A function turning one value of ``ztype`` (``None`` = unset) into its escaped TSV field."""
    top = (dialect.separator,)
    unset = escape_field(dialect.unset_field, top, dialect.utf8)
    if not ztype.is_container:
        return _scalar_formatter(ztype.scalar, dialect, top, unset)

    inner = (dialect.separator, dialect.set_separator)
    inner_unset = escape_field(dialect.unset_field, inner, dialect.utf8)
    element = _scalar_formatter(ztype.scalar, dialect, inner, inner_unset)
    empty = escape_field(dialect.empty_field, top, dialect.utf8)
    joiner = dialect.set_separator

    def fmt(values: Any) -> str:
        if values is None:
            return unset
        if not values:
            return empty
        return joiner.join([element(v) for v in values])

    return fmt


def _int_parser(scalar: str, unset: str) -> Parser:
    def parse(text: str) -> int | None:
        if text == unset:
            return None
        if scalar == "port" and "/" in text:
            text = text.split("/", 1)[0]
        value = int(text)
        if value < 0 and scalar != "int":
            raise ValueError(f"{scalar} cannot be negative: {text!r}")
        if scalar == "port" and value > 65535:
            raise ValueError(f"port out of range: {text!r}")
        return value

    return parse


BOOL_TEXT = {"T": True, "F": False, "1": True, "0": False}
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
    """One field (or set element) -> value; the unset marker -> ``None``."""
    unset = dialect.unset_field
    if scalar in TEXT_SCALARS:
        empty = dialect.empty_field

        def parse_text(text: str) -> str | None:
            if text == unset:
                return None
            if text == empty:
                return ""
            return unescape_field(text) if "\\" in text else text

        return parse_text
    if scalar in ("count", "int", "port"):
        return _int_parser(scalar, unset)
    if scalar == "bool":

        def parse_bool(text: str) -> bool | None:
            if text == unset:
                return None
            try:
                return BOOL_TEXT[text]
            except KeyError:
                raise ValueError(f"invalid bool {text!r}") from None

        return parse_bool
    convert: Parser
    if scalar == "double":
        convert = _double
    elif scalar in ("time", "interval"):
        convert = float
    else:  # addr, subnet
        convert = unescape_field
    return lambda text: None if text == unset else convert(text)


@cache
def field_parser(ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Parser:
    """A function turning one TSV field into its value (``None`` for unset, ``[]`` for empty)."""
    scalar = _scalar_parser(ztype.scalar, dialect)
    if not ztype.is_container:
        return scalar
    unset = dialect.unset_field
    empty = dialect.empty_field
    set_sep = dialect.set_separator

    def parse(text: str) -> list[Any] | None:
        if text == unset:
            return None
        if text == empty:
            return []
        return [scalar(part) for part in text.split(set_sep)]

    return parse


def format_value(value: Any, ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> str:
    """The TSV field Zeek writes for ``value`` (record-contract form; ``None`` = unset)."""
    return field_formatter(ztype, dialect)(value)


def parse_value(text: str, ztype: ZeekType, dialect: TsvDialect = DEFAULT_DIALECT) -> Any:
    """Inverse of :func:`format_value`. Raises ``ValueError`` on text that is not a ``ztype``."""
    return field_parser(ztype, dialect)(text)


def _inline_expr(i: int, ztype: ZeekType, dialect: TsvDialect, names: dict[str, Any]) -> str:
    """Python source for column ``i``'s field text (value in ``v``); same result as its formatter."""
    full = f"F{i}"
    names[full] = field_formatter(ztype, dialect)
    get = f"(v := g(K{i}))"
    top = (dialect.separator,)
    numeric_safe = not any(ch in _NUMERIC_TEXT_CHARS for ch in dialect.separator)
    if ztype.is_container:  # unset and empty inline, as the container formatter writes them
        names["E"] = escape_field(dialect.empty_field, top, dialect.utf8)
        return f"(U if {get} is None else E if not v else {full}(v))"
    if ztype.scalar not in TEXT_SCALARS and not numeric_safe:
        return f"{full}(g(K{i}))"
    scalar = ztype.scalar
    if scalar in ("addr", "subnet"):  # the formatter's str(v), for the usual str value
        return f"(U if {get} is None else v if v.__class__ is str else {full}(v))"
    if scalar in ("count", "int", "port"):
        return f"(U if {get} is None else str(v) if v.__class__ is int else {full}(v))"
    if scalar in ("time", "interval"):
        return f'(U if {get} is None else f"{{v:.6f}}")'
    if scalar == "bool":
        return f'(U if {get} is None else "T" if v else "F")'
    if scalar in TEXT_SCALARS:
        plain = _plain_text_test(top)
        return f"(v if {get}.__class__ is str and v and {plain} and v not in R else {full}(v))"
    return f"{full}(g(K{i}))"


def joined_line_formatter(
    columns: Sequence[tuple[str, ZeekType]], dialect: TsvDialect = DEFAULT_DIALECT
) -> Callable[[dict[str, Any]], str]:
    """One record -> its TSV line by joining the columns' :func:`field_formatter` results.

    Costs nothing to build, unlike :func:`line_formatter`'s ~2 ms compile, so a log that gets
    only a few rows never pays for the compile (the writer switches after a number of rows).
    """
    formatters = [(name, field_formatter(ztype, dialect)) for name, ztype in columns]
    sep = dialect.separator

    def line(r: dict[str, Any]) -> str:
        g = r.get
        return sep.join([fmt(g(name)) for name, fmt in formatters])

    return line


def line_formatter(
    columns: Sequence[tuple[str, ZeekType]], dialect: TsvDialect = DEFAULT_DIALECT
) -> Callable[[dict[str, Any]], str]:
    """One record -> its TSV line (no newline), compiled once per log for the writer's hot loop.

    Each column's common case (plain ASCII text, ints, times) is inlined; everything else calls the
    column's :func:`field_formatter`, so the output is the same as joining those.
    """
    names: dict[str, Any] = {
        "U": escape_field(dialect.unset_field, (dialect.separator,), dialect.utf8),
        "R": frozenset({dialect.unset_field, dialect.empty_field}),
        "SEP": dialect.separator,
    }
    parts = []
    for i, (name, ztype) in enumerate(columns):
        names[f"K{i}"] = name
        parts.append(_inline_expr(i, ztype, dialect, names))
    source = (
        "def line(r):\n    g = r.get\n    return SEP.join([\n        "
        + ",\n        ".join(parts)
        + "\n    ])\n"
    )
    exec(compile(source, "<zeek line formatter>", "exec"), names)  # noqa: S102 - built from our own templates
    return names["line"]
