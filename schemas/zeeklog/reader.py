"""Read a Zeek log (TSV or JSON lines, plain or gzip) into its header and a stream of records.

Records follow the project's in-memory record contract (see ``wirestream.schemas.zeeklog``).
Lines that do not fit the header are skipped, counted with their line numbers and logged; they
never stop the read. A gzip stream that breaks off keeps every row before the break: strict mode
raises :class:`ZeekLogTruncatedError` after them, ``strict=False`` ends quietly and records it.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

from wirestream.schemas.zeek_types import Column, LogSchema, ZeekType, parse_type
from wirestream.schemas.zeeklog.errors import LineProblem, ZeekLogError, ZeekLogTruncatedError
from wirestream.schemas.zeeklog.escape import bytes_text, unescape_header_value
from wirestream.schemas.zeeklog.json_lines import (
    DEFAULT_JSON,
    JsonOptions,
    infer_schema,
    json_value_reader,
    known_column_types,
)
from wirestream.schemas.zeeklog.tsv import DEFAULT_DIALECT, TsvDialect, field_parser

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
# What a gzip stream that ends early or is corrupt raises while it is read.
GZIP_TRUNCATION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
_SEPARATOR_LINE = re.compile(r"^(?P<prefix>[^\t]*?)separator[ \t](?P<value>.*)$")
# A Zeek column name: record field identifiers joined by dots (``id.orig_h``).
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LOGGED_PROBLEMS = 10

Source = str | os.PathLike[str] | IO[bytes]


@dataclass
class ZeekLogHeader:
    """What a log says about itself: format, separators, columns, ``#open``/``#close``."""

    format: Literal["tsv", "json"]
    path: str | None
    fields: tuple[str, ...]
    types: tuple[ZeekType, ...]
    type_names: tuple[str, ...]
    dialect: TsvDialect = DEFAULT_DIALECT
    json: JsonOptions | None = None
    open: str | None = None
    close: str | None = None
    has_meta: bool = True  # False: a single names line (``tsv=T`` filter, zeek-cut) or JSON

    @property
    def schema(self) -> LogSchema:
        return LogSchema(
            self.path or "unknown",
            tuple(Column(n, t, True) for n, t in zip(self.fields, self.types, strict=True)),
        )


def open_binary(source: Source) -> tuple[IO[bytes], bool]:
    """Open ``source`` for reading, gunzipping when its first bytes are the gzip magic."""
    if isinstance(source, str | os.PathLike):
        raw: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by ZeekLog
    else:
        raw = source
        if not hasattr(raw, "peek"):
            raw = io.BytesIO(raw.read())
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), True
    return raw, False


def _types_for_names(names: list[str], schema: LogSchema | None) -> list[ZeekType]:
    given = {c.name: c.type for c in schema.columns} if schema else {}
    known = known_column_types()
    return [given.get(n) or known.get(n) or parse_type("string") for n in names]


class ZeekLog:
    """An open Zeek log: ``header`` now, records by iterating (once), problems as they are found."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        name: str,
        schema: LogSchema | None = None,
        json_options: JsonOptions | None = None,
        strict: bool = True,
        utf8: bool | None = None,
    ) -> None:
        self.name = name
        self.strict = strict
        self.problems: list[LineProblem] = []
        self.error: ZeekLogError | None = None
        self.rows_read = 0
        self._stream = stream
        self._lines = iter(stream)
        self._line_number = 0
        self._schema = schema
        self._consumed = False
        self._header_done: str | None = None  # a data line read while looking for the header
        first = self._next_line()
        if first is not None and first.lstrip().startswith("{"):
            self.header = self._json_header(first, schema, json_options or DEFAULT_JSON)
        else:
            self.header = self._tsv_header(first, schema)
        if utf8 is not None:
            self.header.dialect = replace(self.header.dialect, utf8=utf8)
        # Lines before the first data line (what a bulk reader skips); JSON has none.
        pending = 1 if self._header_done is not None else 0
        self.header_lines = 0 if self.header.format == "json" else self._line_number - pending

    # -- line access ------------------------------------------------------------------------

    def _next_line(self) -> str | None:
        try:
            raw = next(self._lines)
        except StopIteration:
            return None
        self._line_number += 1
        return bytes_text(_chomp(raw))

    def _raw_lines(self) -> Iterator[tuple[int, str]]:
        """Remaining lines with their numbers; a cut-off last line of a broken stream is dropped."""
        held: tuple[int, bytes] | None = None
        while True:
            try:
                raw = next(self._lines)
            except StopIteration:
                if held is not None:
                    yield held[0], bytes_text(held[1])
                return
            except GZIP_TRUNCATION_ERRORS as exc:
                self._truncated(exc, partial=held is not None)
                return
            self._line_number += 1
            if not raw.endswith(b"\n"):
                held = (self._line_number, raw)
                continue
            yield self._line_number, bytes_text(_chomp(raw))

    def _truncated(self, exc: BaseException, partial: bool) -> None:
        where = f"after line {self._line_number}" + (" (cut-off line dropped)" if partial else "")
        error = ZeekLogTruncatedError(
            f"{self.name}: stream broke off {where}: {exc}; {self.rows_read} rows kept",
            line_number=self._line_number,
            rows_read=self.rows_read,
        )
        self.error = error
        log.warning("%s", error)

    def problem(self, line_number: int, reason: str, text: str) -> None:
        self.problems.append(LineProblem(line_number, reason, text[:200]))
        if len(self.problems) <= _LOGGED_PROBLEMS:
            log.warning("%s line %d skipped: %s", self.name, line_number, reason)

    # -- headers ----------------------------------------------------------------------------

    def _tsv_header(self, first: str | None, schema: LogSchema | None) -> ZeekLogHeader:
        if first is None:
            raise ZeekLogError(f"{self.name}: empty file, no Zeek header")
        match = _SEPARATOR_LINE.match(first)
        if match is None:
            # No meta header: a single line of column names (``tsv=T``, zeek-cut output).
            names = first.split("\t")
            types = _types_for_names(names, schema)
            return ZeekLogHeader(
                "tsv",
                schema.name if schema else None,
                tuple(names),
                tuple(types),
                tuple(str(t) for t in types),
                has_meta=False,
            )
        prefix = match.group("prefix")
        separator = unescape_header_value(match.group("value"))
        meta: dict[str, str] = {}
        while True:
            line = self._next_line()
            if line is None or not line.startswith(prefix):
                self._header_done = line
                break
            key, value = split_meta_line(line[len(prefix) :], separator)
            meta[key] = value
            if key == "types":
                self._header_done = None
                break
        if "fields" not in meta:
            raise ZeekLogError(f"{self.name}: header has no {prefix}fields line")
        names = meta["fields"].split(separator)
        if "types" in meta:
            type_names = meta["types"].split(separator)
            if len(type_names) != len(names):
                raise ZeekLogError(f"{self.name}: {len(names)} fields but {len(type_names)} types")
            try:
                types = [parse_type(t) for t in type_names]
            except ValueError as exc:
                raise ZeekLogError(f"{self.name}: {exc}") from exc
        else:
            types = _types_for_names(names, schema)
            type_names = [str(t) for t in types]
        dialect = TsvDialect(
            separator=separator,
            set_separator=unescape_header_value(meta.get("set_separator", ",")),
            empty_field=unescape_header_value(meta.get("empty_field", "(empty)")),
            unset_field=unescape_header_value(meta.get("unset_field", "-")),
            meta_prefix=prefix,
        )
        path = meta.get("path")
        return ZeekLogHeader(
            "tsv",
            unescape_header_value(path) if path is not None else None,
            tuple(names),
            tuple(types),
            tuple(type_names),
            dialect,
            open=meta.get("open"),
        )

    def _json_header(
        self, first: str, schema: LogSchema | None, options: JsonOptions
    ) -> ZeekLogHeader:
        self._json_rows: list[tuple[int, dict[str, Any]]] = []
        lines = [(self._line_number, first)]
        lines.extend(self._raw_lines())
        for number, line in lines:
            if not line.strip():
                self.problem(number, "empty line", line)
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                self.problem(number, f"not JSON: {exc}", line)
                continue
            if not isinstance(obj, dict):
                self.problem(number, "not a JSON object", line)
                continue
            self._json_rows.append((number, obj))
        log_name = self.name.split(".", 1)[0] if schema is None else schema.name
        rows = [obj for _, obj in self._json_rows]
        if schema is not None:
            extra = infer_schema(rows, None, schema)
            names = [c.name for c in schema.columns]
            columns = list(schema.columns) + [c for c in extra.columns if c.name not in names]
            inferred = LogSchema(schema.name, tuple(columns))
        else:
            inferred = infer_schema(rows, log_name)
        types = tuple(c.type for c in inferred.columns)
        options = replace(options, include_unset=_writes_unset_as_null(rows, inferred.names))
        return ZeekLogHeader(
            "json",
            log_name,
            tuple(inferred.names),
            types,
            tuple(str(t) for t in types),
            json=options,
            has_meta=False,
        )

    # -- records ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._consumed:
            raise ZeekLogError(f"{self.name}: records can be read once")
        self._consumed = True
        try:
            if self.header.format == "json":
                yield from self._json_records()
            else:
                yield from self._tsv_records()
        finally:
            self.close_stream()
        if self.problems:
            log.warning("%s: %d lines skipped", self.name, len(self.problems))
        if self.error is not None and self.strict:
            raise self.error

    def _json_records(self) -> Iterator[dict[str, Any]]:
        readers = [
            (name, json_value_reader(t, self.header.json or DEFAULT_JSON))
            for name, t in zip(self.header.fields, self.header.types, strict=True)
        ]
        for number, obj in self._json_rows:
            try:
                record = {name: read(obj.get(name)) for name, read in readers}
            except (ValueError, TypeError) as exc:
                self.problem(number, str(exc), json.dumps(obj))
                continue
            self.rows_read += 1
            yield record

    def _tsv_records(self) -> Iterator[dict[str, Any]]:
        header = self.header
        dialect = header.dialect
        sep = dialect.separator
        prefix = dialect.meta_prefix if header.has_meta else None
        names = header.fields
        parsers: list[Callable[[str], Any]] = [field_parser(t, dialect) for t in header.types]
        columns = list(zip(names, parsers, strict=True))
        width = len(names)
        pending = self._header_done
        lines: Iterator[tuple[int, str]] = self._raw_lines()
        if pending is not None:
            lines = _chain_first((self._line_number, pending), lines)
        for number, line in lines:
            if prefix is not None and line.startswith(prefix):
                self._meta_line(number, line[len(prefix) :])
                continue
            values = line.split(sep)
            if len(values) != width:
                self.problem(number, f"{len(values)} fields, header has {width}", line)
                continue
            try:
                record = {
                    name: parse(value) for (name, parse), value in zip(columns, values, strict=True)
                }
            except ValueError as exc:
                self.problem(number, str(exc), line)
                continue
            self.rows_read += 1
            yield record

    def _meta_line(self, number: int, body: str) -> None:
        key, value = split_meta_line(body, self.header.dialect.separator)
        if key == "close":
            self.header.close = value
        elif (
            key == "fields"
            and tuple(value.split(self.header.dialect.separator)) != self.header.fields
        ):
            raise ZeekLogError(f"{self.name} line {number}: a second header with other columns")

    def to_list(self) -> list[dict[str, Any]]:
        """Every record; on a broken stream (strict) the error carries the rows in ``records``."""
        rows: list[dict[str, Any]] = []
        try:
            rows.extend(self)
        except ZeekLogTruncatedError as exc:
            exc.records = rows
            raise
        return rows

    def close_stream(self) -> None:
        self._stream.close()

    def __enter__(self) -> ZeekLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_stream()


def _writes_unset_as_null(rows: list[dict[str, Any]], names: list[str]) -> bool:
    """Was the log written with ``json_include_unset_fields``? Every row has every key, some null."""
    width = len(names)
    if not rows or any(len(r) != width for r in rows):
        return False
    return any(v is None for r in rows for v in r.values())


def _chomp(raw: bytes) -> bytes:
    """Drop the line end. Zeek writes ``\n`` and escapes CR, so a CR before it is from a
    CRLF conversion, not data (the bulk reader in ``read_zeek_log`` treats it the same way)."""
    if raw.endswith(b"\r\n"):
        return raw[:-2]
    return raw[:-1] if raw.endswith(b"\n") else raw


def split_meta_line(body: str, separator: str) -> tuple[str, str]:
    """``key<sep>value``; a space also ends the key (``#separator `` does, and edited logs do)."""
    key, found, value = body.partition(separator)
    if " " in key or not found:
        key, _, rest = body.partition(" ")
        return key, rest
    return key, value


def _chain_first(
    first: tuple[int, str], rest: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def read_zeek_records(
    source: Source,
    *,
    schema: LogSchema | None = None,
    json_options: JsonOptions | None = None,
    strict: bool = True,
    utf8: bool | None = None,
) -> ZeekLog:
    """Open a Zeek log (TSV or JSON lines, plain or gzip by magic bytes) and parse its header.

    ``schema`` gives column types where the log has no ``#types`` (JSON, names-only TSV);
    ``json_options`` names the escape policy/timestamp format a JSON log was written with.
    Iterate the result for records; see :class:`ZeekLog` for problems and errors.
    """
    name = (
        Path(source).name
        if isinstance(source, str | os.PathLike)
        else getattr(source, "name", "<stream>")
    )
    stream, _ = open_binary(source)
    try:
        return ZeekLog(
            stream,
            name=str(name),
            schema=schema,
            json_options=json_options,
            strict=strict,
            utf8=utf8,
        )
    except GZIP_TRUNCATION_ERRORS as exc:
        stream.close()
        raise ZeekLogTruncatedError(
            f"{name}: broken before the header ended: {exc}", line_number=0, rows_read=0
        ) from exc
    except BaseException:
        stream.close()
        raise


def zeek_log_header(path: str | os.PathLike[str]) -> ZeekLogHeader:
    """The header of the log at ``path``; ZeekLogError when the file is no Zeek log at all.

    The reader itself takes any first line as tab-separated column names (so it round-trips any
    text), which would let a command turn a README or a pcap into a one-column "log". Commands
    that are handed arbitrary files ask here first.
    """
    with read_zeek_records(path, strict=False) as zlog:
        header = zlog.header
    names_only = header.format == "tsv" and not header.has_meta
    if names_only and not all(_COLUMN_NAME.fullmatch(name) for name in header.fields):
        raise ZeekLogError(
            f"{zlog.name}: not a Zeek log: the first line is neither a #separator header, "
            "JSON, nor tab-separated column names"
        )
    return header
