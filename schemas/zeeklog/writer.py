"""Write Zeek logs byte for byte as Zeek's ASCII writer does (TSV with meta header, or JSON lines).

Streaming: each ``write`` formats one record with per-column formatters built once, and lines
are buffered in memory and flushed in blocks, so the pcap analyzer can write millions of rows.
"""

from __future__ import annotations

import gzip
import io
import os
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any, Literal

from wirestream.schemas.zeek_types import LogSchema
from wirestream.schemas.zeeklog.errors import ZeekLogError
from wirestream.schemas.zeeklog.escape import escape_header_value
from wirestream.schemas.zeeklog.json_lines import DEFAULT_JSON, JsonOptions, record_formatter
from wirestream.schemas.zeeklog.tsv import (
    DEFAULT_DIALECT,
    TsvDialect,
    joined_line_formatter,
    line_formatter,
)

Stamp = float | int | datetime | str | None
_FLUSH_BYTES = 1 << 16
# TSV rows formatted by joining field formatters before the compiled line formatter pays off.
_COMPILE_AFTER_ROWS = 100


def format_log_timestamp(stamp: Stamp = None) -> str:
    """``#open``/``#close`` text: local time ``%Y-%m-%d-%H-%M-%S`` as Zeek's ``Ascii::Timestamp``.

    ``None`` means now; a ``str`` is taken as already formatted (e.g. read from another log).
    """
    if isinstance(stamp, str):
        return stamp
    if isinstance(stamp, datetime):
        stamp = stamp.timestamp()
    seconds = int(stamp) if stamp else int(time.time())
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(seconds))


class ZeekLogWriter:
    """Write one Zeek log: ``write(record)`` per row, then ``close(close_time)``.

    ``fmt="tsv"`` writes Zeek's default format (meta header, ``#close`` footer); ``tsv_names_only``
    is the ``tsv=T`` filter option (one names line, no footer); ``fmt="json"`` writes JSON lines.
    ``write_open``/``write_close`` exist to reproduce logs whose ``#open``/``#close`` lines were cut.
    ``type_names`` overrides the ``#types`` text (old Bro logs say ``table[string]``).
    ``gzip_level`` > 0 compresses as ``LogAscii::gzip_level`` does.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        schema: LogSchema,
        fmt: Literal["tsv", "json"] = "tsv",
        *,
        open_time: Stamp = None,
        path: str | None = None,
        dialect: TsvDialect = DEFAULT_DIALECT,
        json_options: JsonOptions = DEFAULT_JSON,
        tsv_names_only: bool = False,
        write_open: bool = True,
        type_names: Sequence[str] | None = None,
        gzip_level: int = 0,
    ) -> None:
        if fmt not in ("tsv", "json"):
            raise ZeekLogError(f"unknown Zeek log format {fmt!r}")
        if not schema.columns:
            raise ZeekLogError(f"log {schema.name!r} has no columns")
        self.schema = schema
        self.fmt = fmt
        self.dialect = dialect
        self.rows_written = 0
        self._meta = fmt == "tsv" and not tsv_names_only
        self._escape_prefix = fmt == "tsv"
        self._owns = isinstance(target, str | os.PathLike)
        raw: IO[bytes] = open(target, "wb") if self._owns else target  # noqa: SIM115
        self._raw = raw
        self._out: IO[bytes] = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=gzip_level) if gzip_level else raw
        )
        self._buffer: list[str] = []
        self._buffered = 0
        self._closed = False
        names = schema.names
        if fmt == "json":
            self._format = record_formatter(schema, json_options)
        else:
            self._format = joined_line_formatter(
                [(c.name, c.type) for c in schema.columns], dialect
            )
        # TSV switches to the compiled formatter (same text) once the log has enough rows.
        self._compile_at = _COMPILE_AFTER_ROWS if fmt == "tsv" else -1
        if fmt == "tsv":
            types = (
                list(type_names)
                if type_names is not None
                else [str(c.type) for c in schema.columns]
            )
            if len(types) != len(names):
                raise ZeekLogError(f"{len(names)} columns but {len(types)} type names")
            self._emit_header(
                path if path is not None else schema.name,
                names,
                types,
                open_time,
                tsv_names_only,
                write_open,
            )

    def _emit_header(
        self,
        path: str,
        names: list[str],
        types: list[str],
        open_time: Stamp,
        names_only: bool,
        write_open: bool,
    ) -> None:
        d = self.dialect
        sep = d.separator
        if names_only:
            self._emit(sep.join(names))
            return
        p = d.meta_prefix
        lines = [
            f"{p}separator {escape_header_value(sep)}",
            f"{p}set_separator{sep}{escape_header_value(d.set_separator)}",
            f"{p}empty_field{sep}{escape_header_value(d.empty_field)}",
            f"{p}unset_field{sep}{escape_header_value(d.unset_field)}",
            f"{p}path{sep}{escape_header_value(path)}",
        ]
        if write_open:
            lines.append(f"{p}open{sep}{format_log_timestamp(open_time)}")
        lines.append(f"{p}fields{sep}{sep.join(names)}")
        lines.append(f"{p}types{sep}{sep.join(types)}")
        for line in lines:
            self._emit(line)

    def _emit(self, line: str) -> None:
        self._buffer.append(line)
        self._buffer.append("\n")
        self._buffered += len(line)
        if self._buffered >= _FLUSH_BYTES:
            self.flush()

    def format_line(self, record: dict[str, Any]) -> str:
        """The line (no newline) Zeek writes for ``record``; a line starting like meta gets ``\\x23``."""
        line = self._format(record)
        if self._escape_prefix and line.startswith(self.dialect.meta_prefix):
            line = f"\\x{ord(line[0]):02x}" + line[1:]
        return line

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (record-contract dict; missing keys are unset)."""
        if self._closed:
            raise ZeekLogError("write after close")
        if self.rows_written == self._compile_at:
            columns = [(c.name, c.type) for c in self.schema.columns]
            self._format = line_formatter(columns, self.dialect)
        self._emit(self.format_line(record))
        self.rows_written += 1

    def write_all(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def flush(self) -> None:
        if self._buffer:
            self._out.write("".join(self._buffer).encode("utf-8", "surrogateescape"))
            self._buffer.clear()
            self._buffered = 0

    def close(self, close_time: Stamp = None, *, write_close: bool = True) -> None:
        """Write the ``#close`` footer (TSV with meta) and close what this writer opened."""
        if self._closed:
            return
        if self._meta and write_close:
            d = self.dialect
            self._emit(f"{d.meta_prefix}close{d.separator}{format_log_timestamp(close_time)}")
        self.flush()
        self._closed = True
        if self._out is not self._raw:
            self._out.close()
        if self._owns:
            self._raw.close()
        elif isinstance(self._raw, io.IOBase) and not self._raw.closed:
            self._raw.flush()

    def __enter__(self) -> ZeekLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
