"""Zeek types -> pandas dtypes: the ONE place that decides how a Zeek column looks in a DataFrame.

Decisions (unset is always NA, never 0/False/""):

- ``time`` -> ``datetime64[us, UTC]`` (tz-aware). Zeek writes 6 decimals, so microseconds are
  exact; nanoseconds from a float epoch would only add float noise.
- ``interval`` -> ``timedelta64[us]`` (same reason).
- ``count`` -> ``UInt64`` (Zeek's count is unsigned 64-bit; Int64 would overflow on real values);
  ``int`` -> ``Int64``; ``port`` -> ``UInt16``; ``double`` -> ``Float64`` (all nullable).
- ``bool`` -> ``boolean`` (real booleans with NA).
- ``addr``/``subnet``/``string``/... -> ``string[pyarrow]``; ``enum`` columns and a short list of
  low-cardinality, enum-like string columns (``proto``, ``service``, ``conn_state``, ``method``,
  ``qtype_name``, ...) -> ``category`` (categories sorted, so equal data gives equal frames).
- ``set[T]``/``vector[T]`` -> ``list<T>[pyarrow]`` (``ArrowDtype``): element access gives Python
  lists, ``[]`` for empty, NA for unset.
- Bytes that are not UTF-8 (carried as surrogates in records) appear as ``\\xNN`` text.

Every frame is built the same way, from Arrow arrays: :func:`frame_from_records` turns records into
them, the fast file reader gets them from its CSV engine; :func:`series_from_arrow` finishes both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from wirestream.schemas.zeek_types import TEXT_SCALARS, LogSchema, ZeekType
from wirestream.schemas.zeeklog.escape import display_text

CATEGORY_COLUMNS = frozenset(
    {
        "proto",
        "service",
        "conn_state",
        "method",
        "qtype_name",
        "qclass_name",
        "rcode_name",
        "status_msg",
        "version",
        "cipher",
        "curve",
        "mime_type",
        "source",
        "action",
        "note",
    }
)
TEXT_TYPES = TEXT_SCALARS | {"addr", "subnet"}

_ARROW_SCALARS: dict[str, pa.DataType] = {
    "time": pa.timestamp("us", tz="UTC"),
    "interval": pa.duration("us"),
    "count": pa.uint64(),
    "int": pa.int64(),
    "port": pa.uint16(),
    "double": pa.float64(),
    "bool": pa.bool_(),
}
_NULLABLE = {
    pa.uint64(): pd.UInt64Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
STRING_DTYPE = pd.StringDtype("pyarrow")


def is_category(ztype: ZeekType, name: str | None = None) -> bool:
    """Enum columns, and enum-like string columns by name, become ``category``."""
    if ztype.is_container:
        return False
    return ztype.scalar == "enum" or (ztype.scalar == "string" and name in CATEGORY_COLUMNS)


def arrow_type(ztype: ZeekType) -> pa.DataType:
    """The Arrow type of a Zeek column (before category encoding)."""
    scalar = _ARROW_SCALARS.get(ztype.scalar, pa.string())
    return pa.list_(scalar) if ztype.is_container else scalar


def pandas_dtype(ztype: ZeekType, name: str | None = None) -> Any:
    """The pandas dtype of a Zeek column (``name`` matters only for the category choice)."""
    if ztype.is_container:
        return pd.ArrowDtype(arrow_type(ztype))
    if is_category(ztype, name):
        return pd.CategoricalDtype()
    scalar = ztype.scalar
    if scalar == "time":
        return pd.DatetimeTZDtype("us", "UTC")
    if scalar == "interval":
        return pd.api.types.pandas_dtype("timedelta64[us]")
    if scalar in TEXT_TYPES:
        return STRING_DTYPE
    return _NULLABLE[_ARROW_SCALARS[scalar]]


# --- record values -> Arrow ------------------------------------------------------------------


def _finite_or_none(v: Any) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def seconds_to_micros(seconds: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Float seconds -> int64 microseconds, rounded (inf/nan become null)."""
    micros = pc.round(pc.multiply(seconds, 1e6))
    try:
        return micros.cast(pa.int64())
    except pa.ArrowInvalid:  # inf or nan somewhere: those become null
        finite = pc.if_else(pc.is_finite(micros), micros, pa.scalar(None, pa.float64()))
        return finite.cast(pa.int64())


def scalar_arrow(values: list[Any], scalar: str) -> pa.Array:
    """Record-contract values of one scalar type -> an Arrow array of :func:`arrow_type`."""
    if scalar in ("time", "interval"):
        micros = seconds_to_micros(pa.array([_finite_or_none(v) for v in values], pa.float64()))
        return micros.cast(_ARROW_SCALARS[scalar])
    if scalar in _ARROW_SCALARS:
        return pa.array(values, _ARROW_SCALARS[scalar])
    return pa.array([None if v is None else display_text(str(v)) for v in values], pa.string())


def column_arrow(values: list[Any], ztype: ZeekType) -> pa.Array:
    """One column of record values (lists for containers) -> Arrow."""
    if not ztype.is_container:
        return scalar_arrow(values, ztype.scalar)
    offsets = [0]
    flat: list[Any] = []
    for v in values:
        if v is not None:
            flat.extend(v)
        offsets.append(len(flat))
    mask = pa.array([v is None for v in values], pa.bool_())
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), scalar_arrow(flat, ztype.scalar), mask=mask
    )


# --- Arrow -> pandas -------------------------------------------------------------------------


def _sorted_categorical(array: pa.ChunkedArray) -> pd.Categorical:
    """Dictionary-encode in Arrow, with categories sorted so equal data gives equal frames."""
    if pa.types.is_dictionary(array.type):  # already encoded (the CSV reader does it)
        array = array.unify_dictionaries()
        dictionary = array.chunk(0).dictionary if array.num_chunks else pa.array([], pa.string())
        indices = pa.concat_arrays([c.indices for c in array.chunks] or [pa.array([], pa.int32())])
    else:
        encoded = array.combine_chunks().dictionary_encode()
        dictionary, indices = encoded.dictionary, encoded.indices
    order = pc.array_sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = np.full(len(indices), -1, dtype=np.int32)
    if len(order):
        codes = rank[indices.fill_null(0).to_numpy()]
        if indices.null_count:
            codes[indices.is_null().to_numpy(zero_copy_only=False)] = -1
    categories = pd.Index(dictionary.take(pa.array(order, pa.int64())).to_pylist(), dtype="str")
    return pd.Categorical.from_codes(codes, categories=categories)


def series_from_arrow(array: pa.Array | pa.ChunkedArray, ztype: ZeekType, name: str) -> pd.Series:
    """Finish one column: Arrow array of :func:`arrow_type` -> Series of :func:`pandas_dtype`."""
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array], type=array.type)
    if ztype.is_container:
        return pd.Series(pd.arrays.ArrowExtensionArray(array), name=name, copy=False)
    if is_category(ztype, name):
        return pd.Series(_sorted_categorical(array), name=name, copy=False)
    scalar = ztype.scalar
    if scalar in TEXT_TYPES:
        return pd.Series(pd.arrays.ArrowStringArray(array), name=name, copy=False)
    if scalar in ("time", "interval"):
        series = array.to_pandas()
    else:
        series = array.to_pandas(types_mapper=_NULLABLE.get)
    series.name = name
    return series


def frame_from_arrays(
    arrays: Mapping[str, pa.Array | pa.ChunkedArray], schema: LogSchema
) -> pd.DataFrame:
    """A DataFrame from one Arrow array per schema column (names as in Zeek, e.g. ``id.orig_h``)."""
    columns = {c.name: series_from_arrow(arrays[c.name], c.type, c.name) for c in schema.columns}
    if not columns:
        return pd.DataFrame()
    return pd.DataFrame(columns, copy=False)


def frame_from_records(records: Iterable[Mapping[str, Any]], schema: LogSchema) -> pd.DataFrame:
    """Records (the in-memory record contract) -> a typed DataFrame; absent keys are unset."""
    rows = records if isinstance(records, list) else list(records)
    arrays = {c.name: column_arrow([r.get(c.name) for r in rows], c.type) for c in schema.columns}
    return frame_from_arrays(arrays, schema)


def empty_frame(schema: LogSchema) -> pd.DataFrame:
    """Zero rows, the right columns and dtypes (a header-only log)."""
    return frame_from_records([], schema)
