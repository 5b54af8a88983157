"""Decoded (polars) frames -> pandas with the project's Zeek dtypes, column-wise through Arrow.

The dtypes are decided in one place, ``wirestream.schemas.frames``; this module only casts the
decoded Arrow columns to ``frames.arrow_type`` of their Zeek type (e.g. Avro long -> uint64 for
``count``) and hands them to ``frames.series_from_arrow``. No Python object per value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import polars as pl
import pyarrow as pa
from wirestream.consumers.decode import column_in_order, take_rows
from wirestream.schemas import frames

if TYPE_CHECKING:
    from wirestream.consumers.decode import Column

COLUMNWISE_ROWS = 200_000


def _series(array: pa.ChunkedArray, col: Column | None, name: str) -> pd.Series:
    if col is None or col.zeek_type is None:  # a schema without Zeek types: Arrow's own mapping
        return pd.Series(pd.arrays.ArrowExtensionArray(array), name=name, copy=False)
    target = frames.arrow_type(col.zeek_type)
    if target == pa.string() and array.type == pa.large_string():
        pass  # pandas keeps Arrow strings as large_string: casting to string and back is 2 copies
    elif array.type != target:
        array = array.cast(target, safe=False)
    return frames.series_from_arrow(array, col.zeek_type, name)


def to_pandas(
    frame: pl.DataFrame,
    columns: dict[str, Column],
    *,
    index: str | None = None,
    order: pl.Series | None = None,
) -> pd.DataFrame:
    """A pandas frame with Zeek dtypes; ``index`` (e.g. ``"ts"``) becomes the index if given.

    Rows are taken in ``order`` (positions, e.g. ts order) if given. A big frame is taken and
    converted column by column, so a sorted copy of the whole frame (and an Arrow copy of every
    text column at once) never exists beside the result; a small one in one go, which has less
    per-call overhead (a 16k-row window: 8 ms instead of 12.5).
    """
    if order is not None and frame.height < COLUMNWISE_ROWS:
        frame, order = take_rows(frame, order), None
    if order is None:
        table = frame.to_arrow()
        arrays = ((name, table.column(name)) for name in table.column_names)
    else:  # a generator: one column's Arrow copy at a time
        arrays = (
            (name, pa.chunked_array([column_in_order(frame.get_column(name), order)]))
            for name in frame.columns
        )
    data = {name: _series(array, columns.get(name), name) for name, array in arrays}
    out = pd.DataFrame(data, copy=False) if data else pd.DataFrame()
    if index is not None:
        if index not in out.columns:
            raise KeyError(f"cannot index on {index!r}: no such column")
        out = out.set_index(index)
    return out
