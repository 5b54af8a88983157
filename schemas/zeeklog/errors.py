"""Errors and per-line problem reports of the Zeek log reader and writer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ZeekLogError(ValueError):
    """A Zeek log that cannot be read or written as asked."""


class ZeekLogTruncatedError(ZeekLogError):
    """The (gzip) stream broke off: rows before the break are good and carried here.

    ``rows_read`` counts them; ``records`` (from ``ZeekLog.to_list``) or ``frame`` (from
    ``read_zeek_log``) holds them when the caller asked for everything at once.
    """

    def __init__(self, message: str, *, line_number: int, rows_read: int) -> None:
        super().__init__(message)
        self.line_number = line_number
        self.rows_read = rows_read
        self.records: list[dict[str, Any]] | None = None
        self.frame: Any = None


@dataclass(frozen=True)
class LineProblem:
    """One data line that does not fit the header: skipped, counted and reported, never fatal."""

    line_number: int
    reason: str
    text: str
