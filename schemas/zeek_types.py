"""Zeek's log column types, parsed once: the single place that knows what ``set[addr]`` means.

Zeek writes a type string per column in the ``#types`` header (and ``log_schemas.json`` uses the
same strings). Old Bro logs also use ``table[T]`` for sets. Everything else in the project asks
this module, never the raw string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SCALARS = frozenset(
    {
        "time",
        "interval",
        "count",
        "int",
        "double",
        "port",
        "addr",
        "subnet",
        "bool",
        "enum",
        "string",
        "pattern",
        "func",
        "file",
        "any",
    }
)
# Scalars whose values are free text (escaped where a log format needs it). addr and subnet are
# text in records too, but Zeek writes them without escaping.
TEXT_SCALARS = frozenset({"string", "enum", "file", "func", "pattern", "any"})
CONTAINERS = {"set": "set", "vector": "vector", "table": "set"}
_CONTAINER_RE = re.compile(r"^(set|vector|table)\[(\w+)\]$")


class ZeekTypeError(ValueError):
    """A type string Zeek does not write."""


@dataclass(frozen=True)
class ZeekType:
    """One column type: a scalar, or a set/vector of a scalar."""

    scalar: str
    container: str | None = None  # "set" or "vector"

    @property
    def is_container(self) -> bool:
        return self.container is not None

    def __str__(self) -> str:
        return f"{self.container}[{self.scalar}]" if self.container else self.scalar


@cache
def parse_type(text: str) -> ZeekType:
    """Parse a Zeek type string such as ``count``, ``set[string]`` or ``table[addr]``."""
    text = text.strip()
    if text in SCALARS:
        return ZeekType(text)
    match = _CONTAINER_RE.match(text)
    if match and match.group(2) in SCALARS:
        return ZeekType(match.group(2), CONTAINERS[match.group(1)])
    raise ZeekTypeError(f"unknown Zeek type {text!r}")


@dataclass(frozen=True)
class Column:
    name: str
    type: ZeekType
    optional: bool = True


@dataclass(frozen=True)
class LogSchema:
    """A Zeek log's columns in log order."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


BUNDLED_SCHEMAS = Path(__file__).with_name("zeek_log_schemas.json")


@cache
def zeek_log_schemas(path: Path | None = None) -> dict[str, LogSchema]:
    """Every log's columns, from Zeek's own field lists (``log_schemas.json`` format)."""
    raw = json.loads((path or BUNDLED_SCHEMAS).read_text())
    return {
        log: LogSchema(
            log,
            tuple(
                Column(c["name"], parse_type(c["type"]), bool(c.get("optional", True)))
                for c in cols
            ),
        )
        for log, cols in raw.items()
    }
