"""Exact Zeek log files: read and write TSV and JSON-lines logs byte for byte as Zeek does.

The in-memory record is the project contract: ``dict`` keyed by Zeek column names; ``time`` and
``interval`` as float seconds, ``count``/``int``/``port`` as int, ``double`` float, ``bool`` bool,
``addr``/``subnet``/``enum``/``string`` str, sets/vectors as lists, unset as ``None``.
Zeek strings are bytes: bytes that are not UTF-8 ride in the ``str`` as lone surrogates
(``surrogateescape``); :func:`text_bytes` returns them, :func:`display_text` makes them printable.
"""

from typing import Any

from wirestream.schemas.zeeklog.errors import LineProblem, ZeekLogError, ZeekLogTruncatedError
from wirestream.schemas.zeeklog.escape import display_text, text_bytes
from wirestream.schemas.zeeklog.json_lines import JsonOptions
from wirestream.schemas.zeeklog.reader import ZeekLog, ZeekLogHeader, read_zeek_records
from wirestream.schemas.zeeklog.tsv import DEFAULT_DIALECT, TsvDialect, format_value, parse_value
from wirestream.schemas.zeeklog.writer import ZeekLogWriter, format_log_timestamp


def __getattr__(name: str) -> Any:
    """``read_zeek_log`` pulls in pandas/pyarrow: load it only when asked for."""
    if name == "read_zeek_log":
        from wirestream.schemas.zeeklog.dataframe import read_zeek_log

        return read_zeek_log
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_DIALECT",
    "JsonOptions",
    "LineProblem",
    "TsvDialect",
    "ZeekLog",
    "ZeekLogError",
    "ZeekLogHeader",
    "ZeekLogTruncatedError",
    "ZeekLogWriter",
    "display_text",
    "format_log_timestamp",
    "format_value",
    "parse_value",
    "read_zeek_log",
    "read_zeek_records",
    "text_bytes",
]
