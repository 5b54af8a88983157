"""``read_zeek_log``: a Zeek log file -> typed pandas DataFrame, fast.

Fast path (ordinary TSV logs): Arrow's CSV reader splits the tab-separated body (no quoting) into
typed columns in parallel, vectorised expressions convert them, and escapes are undone only in the few
values that contain a backslash. Anything unusual (JSON, multi-byte separators, lines that do not
fit the header, values that do not parse, a broken gzip stream) goes through the exact record
reader instead, so the result is the same, with problem lines reported. dtypes come from
``wirestream.schemas.frames``. (Zeek escapes CR, so a raw CR only ever comes from a CRLF
conversion; both readers drop it before the line end.)
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from wirestream.schemas.frames import (
    arrow_type,
    frame_from_records,
    is_category,
    seconds_to_micros,
    series_from_arrow,
)
from wirestream.schemas.zeek_types import TEXT_SCALARS, LogSchema, ZeekType
from wirestream.schemas.zeeklog.errors import ZeekLogError, ZeekLogTruncatedError
from wirestream.schemas.zeeklog.escape import display_text, unescape_field
from wirestream.schemas.zeeklog.json_lines import JsonOptions
from wirestream.schemas.zeeklog.reader import (
    GZIP_MAGIC,
    GZIP_TRUNCATION_ERRORS,
    ZeekLogHeader,
    open_binary,
    read_zeek_records,
    split_meta_line,
)
from wirestream.schemas.zeeklog.tsv import BOOL_TEXT, TsvDialect

log = logging.getLogger(__name__)


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
            return _read_fast(path, schema)
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


def _starts_like_json(path: Path) -> bool:
    """Peek (through gzip) at the first byte: JSON logs go to the exact reader straight away."""
    stream, _ = open_binary(path)
    with stream:
        try:
            return stream.read(64).lstrip()[:1] == b"{"
        except GZIP_TRUNCATION_ERRORS:
            return False  # the header reader says what is broken, as ZeekLogTruncatedError


def _read_fast(path: Path, schema: LogSchema | None) -> pd.DataFrame:
    """Arrow streams the file (gunzipping on the way) past the header; never holds it whole."""
    if _starts_like_json(path):
        raise _NotFast("JSON lines")
    with read_zeek_records(path, schema=schema, strict=False) as zlog:
        header, skip = zlog.header, zlog.header_lines
    if header.format != "tsv" or not header.has_meta:
        raise _NotFast(f"{header.format} without meta header")
    dialect = header.dialect
    if len(dialect.separator.encode()) != 1:
        raise _NotFast("multi-byte separator")
    prefix = dialect.meta_prefix
    meta: list[tuple[str, str]] = []
    try:
        table = _split_columns(_input_stream(path), header, skip, meta)
        if any(key != "close" for key, _ in meta):
            raise _NotFast("meta lines other than #close inside the data")
        first = table.column(0)
        if pa.types.is_string(first.type) and pc.any(pc.starts_with(first, prefix)).as_py():
            # A meta line that happened to have as many fields as a row: the exact reader.
            raise _NotFast("meta lines inside the data")
        columns = dict(zip(header.fields, table.columns, strict=True))
        del table, first  # each column is released once converted
        frame = _convert(columns, header)
    except (ValueError, OSError, pa.ArrowException) as exc:  # incl. a broken gzip stream
        raise _NotFast(f"line or value that does not fit: {str(exc)[:200]}") from exc
    if meta:
        header.close = meta[-1][1]
    _annotate(frame, header, [], None)
    return frame


def _input_stream(path: Path) -> pa.NativeFile:
    with path.open("rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    return pa.input_stream(str(path), compression="gzip" if gz else None)


_CSV_TYPES = {"count": pa.uint64(), "int": pa.int64(), "port": pa.uint16(), "bool": pa.bool_()}


def _csv_type(ztype: ZeekType, name: str) -> pa.DataType:
    """What the CSV engine parses a column into: numbers and bools directly, category columns
    dictionary-encoded, the rest as text."""
    if is_category(ztype, name):
        return pa.dictionary(pa.int32(), pa.string())
    if ztype.is_container:
        return pa.string()
    if ztype.scalar in ("time", "interval"):
        return pa.float64()
    return _CSV_TYPES.get(ztype.scalar, pa.string())


def _split_columns(
    source: pa.NativeFile, header: ZeekLogHeader, skip: int, meta: list[tuple[str, str]]
) -> pa.Table:
    """Arrow's CSV reader: tab-split, no quoting, header lines skipped. A line with the wrong
    field count is an error, except meta lines (``#close``), which are collected in ``meta``."""
    dialect = header.dialect
    prefix = dialect.meta_prefix

    def misfit(row: Any) -> str:
        if row.text.startswith(prefix):
            meta.append(split_meta_line(row.text[len(prefix) :], dialect.separator))
            return "skip"
        return "error"

    return pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=list(header.fields), skip_rows=skip, block_size=4 << 20
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=dialect.separator,
            quote_char=False,
            escape_char=False,
            double_quote=False,
            ignore_empty_lines=False,
            invalid_row_handler=misfit,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={
                n: _csv_type(t, n) for n, t in zip(header.fields, header.types, strict=True)
            },
            null_values=[dialect.unset_field],
            strings_can_be_null=True,
            true_values=["T", "1"],
            false_values=["F", "0"],
        ),
    )


def _unescape_text(value: str) -> str:
    return display_text(unescape_field(value))


def _fix_text(column: pa.ChunkedArray, empty: str) -> pa.ChunkedArray:
    """``(empty)`` -> "" and escapes undone, touching only the values that need it."""
    is_empty = pc.equal(column, empty)
    if pc.any(is_empty).as_py():
        column = pc.if_else(is_empty, "", column)
    escaped = pc.fill_null(pc.match_substring(column, "\\"), False)
    if pc.any(escaped).as_py():
        values = pc.filter(column, escaped).to_pylist()
        column = pc.replace_with_mask(
            _one_chunk(column),
            _one_chunk(escaped),
            pa.array([_unescape_text(v) for v in values], pa.string()),
        )
    return column


def _fix_dictionary(column: pa.ChunkedArray, empty: str) -> pa.ChunkedArray:
    """:func:`_fix_text` on the (small) dictionary of a category column instead of every row."""
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return column
    dictionary = column.chunk(0).dictionary
    fixed = _one_chunk(_fix_text(pa.chunked_array([dictionary], pa.string()), empty))
    if fixed.equals(dictionary):
        return column
    if len(pc.unique(fixed)) != len(fixed):  # two spellings of one value: re-encode the text
        return pa.chunked_array([_fix_text(column.cast(pa.string()), empty)])
    chunks = [pa.DictionaryArray.from_arrays(c.indices, fixed) for c in column.chunks]
    return pa.chunked_array(chunks)


def _empty_lists(
    column: pa.ChunkedArray, empty: str, target: pa.DataType
) -> pa.ChunkedArray | None:
    """The common container column: every value unset or ``(empty)`` (no splitting needed)."""
    if not pc.all(pc.fill_null(pc.equal(column, empty), True)).as_py():
        return None
    is_null = _one_chunk(column.is_null())
    offsets = pa.array(np.zeros(len(column) + 1, dtype=np.int32))
    values = pa.array([], target.value_type)
    return pa.chunked_array([pa.ListArray.from_arrays(offsets, values, mask=is_null)], type=target)


def _container_column(
    column: pa.ChunkedArray, ztype: ZeekType, dialect: TsvDialect
) -> pa.ChunkedArray:
    """Set/vector text -> ``list<T>`` of :func:`arrow_type`."""
    target = arrow_type(ztype)
    lists = _empty_lists(column, dialect.empty_field, target)
    if lists is not None:
        return lists
    split = pa.chunked_array([_split_container(column, ztype, dialect)])
    if ztype.scalar in ("time", "interval"):
        return _seconds_column(split, ztype)
    return split.cast(target)


def _one_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _fix_double(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """As ``tsv._double``: "-0.0" is a tiny negative, a bare integer is 1e-8 off it."""
    value = pc.cast(column, pa.float64())
    bare = pc.fill_null(pc.match_substring_regex(column, r"^-?[0-9]+$"), False)
    if pc.any(bare).as_py():
        sign = pc.if_else(pc.starts_with(column, "-"), -1e-8, 1e-8)
        value = pc.if_else(bare, pc.add(value, sign), value)
    tiny = pc.fill_null(pc.equal(column, "-0.0"), False)
    if pc.any(tiny).as_py():
        value = pc.if_else(tiny, -5e-324, value)
    return value


_CSV_INTS = {"count": pa.uint64(), "int": pa.int64(), "port": pa.uint16()}


def _element_values(values: pa.Array, scalar: str, dialect: TsvDialect) -> pa.Array:
    """Set/vector elements (text) -> typed values; the unset marker is a null element."""
    unset = pc.fill_null(pc.equal(values, dialect.unset_field), False)
    if pc.any(unset).as_py():
        values = pc.if_else(unset, pa.scalar(None, pa.string()), values)
    if scalar in TEXT_SCALARS:
        return _one_chunk(_fix_text(values, dialect.empty_field))
    if scalar in _CSV_INTS:
        return values.cast(_CSV_INTS[scalar])
    if scalar == "double":
        return _one_chunk(_fix_double(values))
    if scalar in ("time", "interval"):
        return values.cast(pa.float64())
    if scalar == "bool":
        known = pc.or_(values.is_null(), pc.is_in(values, pa.array(list(BOOL_TEXT))))
        if not pc.all(known, min_count=0).as_py():
            raise ValueError("invalid bool in a set/vector")
        truth = pc.is_in(values, pa.array([t for t, v in BOOL_TEXT.items() if v]))
        return pc.if_else(values.is_null(), pa.scalar(None, pa.bool_()), truth)
    return values  # addr, subnet


def _split_container(column: pa.ChunkedArray, ztype: ZeekType, dialect: TsvDialect) -> pa.Array:
    """``a,b`` -> list, ``(empty)`` -> [], unset -> null; elements converted in one flat pass."""
    column = _one_chunk(column)
    is_empty = pc.fill_null(pc.equal(column, dialect.empty_field), False)
    text = pc.if_else(is_empty, pa.scalar(None, pa.string()), column)
    lists = pc.split_pattern(text, pattern=dialect.set_separator)
    values = _element_values(lists.values, ztype.scalar, dialect)
    unset = pc.and_(lists.is_null(), pc.invert(is_empty))
    return pa.ListArray.from_arrays(lists.offsets, values, mask=unset)


def _convert(columns: dict[str, pa.ChunkedArray], header: ZeekLogHeader) -> pd.DataFrame:
    """Finish every column; columns are independent and Arrow releases the GIL, so in threads.

    Each raw column is popped from ``columns`` as it is taken, so its memory goes as soon as its
    pandas form exists (a lower peak means fewer fresh pages to fault in).
    """
    dialect = header.dialect

    def finish(column_spec: tuple[str, ZeekType]) -> pd.Series:
        name, ztype = column_spec
        column = columns.pop(name)
        scalar = ztype.scalar
        if ztype.is_container:
            column = _container_column(column, ztype, dialect)
        elif scalar in ("time", "interval"):
            column = _seconds_column(column, ztype)
        elif scalar == "double":
            column = _fix_double(column)
        elif pa.types.is_dictionary(column.type):
            column = _fix_dictionary(column, dialect.empty_field)
        elif scalar in TEXT_SCALARS:
            column = _fix_text(column, dialect.empty_field)
        return series_from_arrow(column, ztype, name)

    specs = list(zip(header.fields, header.types, strict=True))
    with ThreadPoolExecutor(max_workers=min(len(specs), os.cpu_count() or 1)) as pool:
        series = list(pool.map(finish, specs))
    return pd.DataFrame({s.name: s for s in series}, copy=False)


def _seconds_column(column: pa.ChunkedArray, ztype: ZeekType) -> pa.ChunkedArray:
    target = pa.timestamp("us", tz="UTC") if ztype.scalar == "time" else pa.duration("us")
    if not ztype.is_container:
        return seconds_to_micros(column).cast(target)
    chunks = []
    for chunk in column.chunks:
        values = seconds_to_micros(chunk.flatten()).cast(target)
        chunks.append(pa.ListArray.from_arrays(chunk.offsets, values, mask=chunk.is_null()))
    return pa.chunked_array(chunks, type=pa.list_(target))
