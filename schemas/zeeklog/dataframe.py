"""``read_zeek_log``: a Zeek log file -> typed pandas DataFrame, fast.

Fast path (ordinary TSV logs): polars splits the tab-separated body (no quoting) into string
columns in parallel, vectorised expressions convert them, and escapes are undone only in the few
values that contain a backslash. Anything unusual (JSON, multi-byte separators, lines that do not
fit the header, values that do not parse) goes through the exact record reader instead, so the
result is the same, with problem lines reported. dtypes come from ``wirestream.schemas.frames``.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
from wirestream.schemas.frames import frame_from_arrays, frame_from_records, seconds_to_micros
from wirestream.schemas.zeek_types import LogSchema, ZeekType
from wirestream.schemas.zeeklog.errors import ZeekLogError, ZeekLogTruncatedError
from wirestream.schemas.zeeklog.escape import display_text, unescape_field
from wirestream.schemas.zeeklog.json_lines import JsonOptions
from wirestream.schemas.zeeklog.reader import GZIP_MAGIC, ZeekLogHeader, read_zeek_records
from wirestream.schemas.zeeklog.tsv import TEXT_SCALARS, TsvDialect

log = logging.getLogger(__name__)

_INT_TYPES = {"count": pl.UInt64, "int": pl.Int64, "port": pl.UInt16}
_BOOLS = {"T": True, "F": False, "1": True, "0": False}


class _NotFast(Exception):
    """This file needs the exact reader (reason in the message)."""


def read_zeek_log(
    path: str | Path,
    *,
    schema: LogSchema | None = None,
    json_options: JsonOptions | None = None,
    strict: bool = True,
    exact: bool = False,
) -> pd.DataFrame:
    """Read a Zeek log (TSV or JSON lines, plain or gzip) into a DataFrame with Zeek's column names.

    dtypes per ``wirestream.schemas.frames``; unset is NA. A header-only log gives zero rows with
    the right columns. Lines that do not fit are skipped and listed in ``df.attrs["zeek_problems"]``.
    A truncated gzip raises :class:`ZeekLogTruncatedError` whose ``frame`` holds the rows before the
    break; with ``strict=False`` that frame is returned and ``df.attrs["zeek_error"]`` says why.
    ``exact=True`` forces the record-by-record reader (the reference for the fast path).
    """
    path = Path(path)
    if not exact:
        try:
            return _read_fast(path, schema, strict)
        except _NotFast as why:
            log.debug("%s: exact reader (%s)", path.name, why)
    return _read_exact(path, schema, json_options, strict)


def _read_exact(
    path: Path, schema: LogSchema | None, json_options: JsonOptions | None, strict: bool
) -> pd.DataFrame:
    zlog = read_zeek_records(path, schema=schema, json_options=json_options, strict=False)
    records = list(zlog)
    frame = frame_from_records(records, zlog.header.schema)
    _annotate(frame, zlog.header, zlog.problems, zlog.error)
    return _finish(frame, zlog.error, strict)


def _finish(frame: pd.DataFrame, error: ZeekLogError | None, strict: bool) -> pd.DataFrame:
    if error is not None and strict:
        if isinstance(error, ZeekLogTruncatedError):
            error.frame = frame
        raise error
    return frame


def _annotate(frame: pd.DataFrame, header: ZeekLogHeader, problems: list[Any], error: Any) -> None:
    frame.attrs["zeek_path"] = header.path
    frame.attrs["zeek_open"] = header.open
    frame.attrs["zeek_close"] = header.close
    frame.attrs["zeek_problems"] = list(problems)
    frame.attrs["zeek_error"] = str(error) if error is not None else None


# --- fast path -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> tuple[bytes, BaseException | None]:
    """The whole (decompressed) file; a broken gzip gives the bytes up to its last full line."""
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw, None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw) + inflater.flush()
    except zlib.error as exc:
        raise _NotFast(f"gzip error {exc}") from exc
    if not inflater.eof:
        cut = data.rfind(b"\n") + 1
        return data[:cut], EOFError(
            "Compressed file ended before the end-of-stream marker was reached"
        )
    if inflater.unused_data:
        raise _NotFast("multi-member gzip")
    return data, None


def _split_header(data: bytes, prefix: bytes) -> tuple[int, bytes]:
    """Offset where data rows start, and the body with the trailing meta lines (``#close``) cut."""
    start = 0
    while data.startswith(prefix, start):
        start = data.index(b"\n", start) + 1 if b"\n" in data[start:] else len(data)
    end = len(data)
    while True:
        cut = data.rfind(b"\n", start, end - 1) + 1 if end > start else start
        if end > start and data.startswith(prefix, max(cut, start)) and cut >= start:
            end = cut
            continue
        break
    return start, data[start:end]


def _read_fast(path: Path, schema: LogSchema | None, strict: bool) -> pd.DataFrame:
    with read_zeek_records(path, schema=schema, strict=False) as zlog:
        header = zlog.header
    if header.format != "tsv" or not header.has_meta:
        raise _NotFast(f"{header.format} without meta header")
    dialect = header.dialect
    if len(dialect.separator.encode()) != 1:
        raise _NotFast("multi-byte separator")
    data, broken = _read_bytes(path)
    prefix = dialect.meta_prefix.encode()
    _, body = _split_header(data, prefix)
    sep = dialect.separator.encode()
    if body and not body.endswith(b"\n"):
        body += b"\n"
    rows = body.count(b"\n")
    width = len(header.fields)
    if b"\n" + prefix in body or body.count(sep) != rows * (width - 1) or b"\r" in body:
        raise _NotFast("lines that do not fit the header")
    close = _close_value(data, prefix, dialect)
    if rows == 0:
        frame = frame_from_records([], header.schema)
    else:
        try:
            frame = _convert(_split_columns(body, header), header)
        except (pl.exceptions.PolarsError, ValueError, pa.ArrowInvalid) as exc:
            raise _NotFast(f"value that does not parse: {exc}") from exc
    header.close = close
    error = None
    if broken is not None:
        error = ZeekLogTruncatedError(
            f"{path.name}: stream broke off after {rows} data rows: {broken}",
            line_number=data.count(b"\n"),
            rows_read=rows,
        )
        log.warning("%s", error)
    _annotate(frame, header, [], error)
    return _finish(frame, error, strict)


def _close_value(data: bytes, prefix: bytes, dialect: TsvDialect) -> str | None:
    marker = prefix + b"close"
    at = data.rfind(b"\n" + marker)
    if at < 0:
        return None
    line = data[at + 1 + len(marker) :].split(b"\n", 1)[0].decode("utf-8", "replace")
    return line[1:] if line[:1] in (dialect.separator, " ") else line


def _split_columns(body: bytes, header: ZeekLogHeader) -> pl.DataFrame:
    frame = pl.read_csv(
        body,
        has_header=False,
        separator=header.dialect.separator,
        quote_char=None,
        new_columns=list(header.fields),
        schema_overrides=dict.fromkeys(header.fields, pl.String),
        null_values=[header.dialect.unset_field],
        empty_string_is_null=False,
        infer_schema=False,
    )
    if frame.width != len(header.fields):
        raise ValueError("column count differs from the header")
    return frame


def _unescape_text(value: str) -> str:
    return display_text(unescape_field(value))


def _text_expr(col: pl.Expr, empty: str) -> pl.Expr:
    """String-like values: ``(empty)`` -> "", escapes undone (Python only where a backslash is)."""
    undone = col.map_elements(_unescape_text, return_dtype=pl.String, skip_nulls=True)
    return (
        pl.when(col == empty)
        .then(pl.lit(""))
        .when(col.str.contains("\\", literal=True))
        .then(undone)
        .otherwise(col)
    )


def _double_expr(col: pl.Expr) -> pl.Expr:
    """As ``tsv._double``: "-0.0" is a tiny negative, a bare integer is 1e-8 off it."""
    value = col.cast(pl.Float64, strict=True)
    bare = col.str.contains(r"^-?[0-9]+$")
    sign = pl.when(col.str.starts_with("-")).then(pl.lit(-1.0)).otherwise(pl.lit(1.0))
    return (
        pl.when(col == "-0.0")
        .then(pl.lit(-5e-324))
        .when(bare)
        .then(value + sign * 1e-8)
        .otherwise(value)
    )


def _scalar_expr(col: pl.Expr, scalar: str, dialect: TsvDialect, element: bool) -> pl.Expr:
    if element:
        col = pl.when(col == dialect.unset_field).then(pl.lit(None, pl.String)).otherwise(col)
    if scalar in TEXT_SCALARS or scalar in ("addr", "subnet"):
        return _text_expr(col, dialect.empty_field) if scalar in TEXT_SCALARS else col
    if scalar in _INT_TYPES:
        return col.cast(_INT_TYPES[scalar], strict=True)
    if scalar == "double":
        return _double_expr(col)
    if scalar in ("time", "interval"):
        return col.cast(pl.Float64, strict=True)
    if scalar == "bool":
        return col.replace_strict(_BOOLS, return_dtype=pl.Boolean)
    raise ValueError(f"no fast conversion for {scalar}")


def _column_expr(name: str, ztype: ZeekType, dialect: TsvDialect) -> pl.Expr:
    col = pl.col(name)
    if not ztype.is_container:
        return _scalar_expr(col, ztype.scalar, dialect, element=False).alias(name)
    parts = col.str.split(dialect.set_separator).list.eval(
        _scalar_expr(pl.element(), ztype.scalar, dialect, element=True)
    )
    return (
        pl.when(col == dialect.empty_field)
        .then(parts.list.slice(0, 0))
        .otherwise(parts)
        .alias(name)
    )


def _convert(raw: pl.DataFrame, header: ZeekLogHeader) -> pd.DataFrame:
    dialect = header.dialect
    converted = raw.select(
        [_column_expr(n, t, dialect) for n, t in zip(header.fields, header.types, strict=True)]
    )
    table = converted.to_arrow()
    arrays: dict[str, pa.ChunkedArray] = {}
    for name, ztype in zip(header.fields, header.types, strict=True):
        column = table.column(name)
        if ztype.scalar in ("time", "interval"):
            column = _seconds_column(column, ztype)
        elif ztype.scalar in TEXT_SCALARS or ztype.scalar in ("addr", "subnet"):
            column = _plain_strings(column)
        arrays[name] = column
    return frame_from_arrays(arrays, header.schema)


def _seconds_column(column: pa.ChunkedArray, ztype: ZeekType) -> pa.ChunkedArray:
    target = pa.timestamp("us", tz="UTC") if ztype.scalar == "time" else pa.duration("us")
    if not ztype.is_container:
        return seconds_to_micros(column).cast(target)
    chunks = []
    for chunk in column.chunks:
        values = seconds_to_micros(chunk.flatten()).cast(target)
        chunks.append(pa.ListArray.from_arrays(chunk.offsets, values, mask=chunk.is_null()))
    return pa.chunked_array(chunks, type=pa.list_(target))


def _plain_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """polars hands over ``string_view``/``large_string``; frames use plain ``string``."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return column.cast(pa.list_(pa.string()))
    return column.cast(pa.string())
