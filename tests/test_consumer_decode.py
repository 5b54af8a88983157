"""Batch decoding: column-wise decode equals per-message decode; schema change; corrupt input."""

from __future__ import annotations

import math

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from consumer_kit import T0, conn_record, conn_v7_schema
from wirestream.consumers import pandas_out
from wirestream.consumers.decode import BatchDecoder, decode_frame, to_output, ts_order
from wirestream.schemas.avro import bundled_avro_schema
from wirestream.schemas.codec import decode_many, encode_many
from wirestream.schemas.store import SchemaCache

CONN = bundled_avro_schema("conn")


def records(n: int, first: int = 0) -> list[dict]:
    return [conn_record(i, T0 + i * 0.25) for i in range(first, first + n)]


def as_records(frame: pl.DataFrame) -> list[dict]:
    """Decoded rows back in the record contract, to compare with the codec's answer."""
    out = []
    for row in frame.iter_rows(named=True):
        rec = dict(row)
        rec["ts"] = None if rec["ts"] is None else rec["ts"].timestamp()
        d = rec["duration"]
        rec["duration"] = None if d is None else d.total_seconds()
        out.append(rec)
    return out


def close(a: dict, b: dict) -> bool:
    for key in a.keys() | b.keys():
        x, y = a.get(key), b.get(key)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, abs_tol=1e-6):
                return False
        elif x != y:
            return False
    return True


def test_block_decode_equals_per_message_decode() -> None:
    recs = records(500)
    values = encode_many(recs, CONN)
    cache = SchemaCache([CONN])
    decoder = BatchDecoder(cache)
    frame = decoder.decode(values)
    assert decoder.errors.total == 0
    expected = decode_many(values, cache)
    got = as_records(frame)
    assert len(got) == len(expected) == 500
    assert all(close(g, e) for g, e in zip(got, expected, strict=True))
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame.schema["duration"] == pl.Duration("us")
    assert "id.orig_h" in frame.columns  # Zeek names, not Avro's id_orig_h


def test_pandas_output_has_project_dtypes_and_ts_index() -> None:
    values = encode_many(records(50), CONN)
    df, errors = decode_frame(values, SchemaCache([CONN]), output="pandas", index="ts")
    assert errors.total == 0
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert str(df["duration"].dtype) == "timedelta64[us]"
    assert str(df["orig_bytes"].dtype) == "UInt64"
    assert str(df["id.orig_p"].dtype) == "UInt16"
    assert str(df["local_orig"].dtype) == "boolean"
    assert isinstance(df["proto"].dtype, pd.CategoricalDtype)
    assert df["local_resp"].isna().all()
    assert df["tunnel_parents"].iloc[0] == ["CP0"] and df["tunnel_parents"].iloc[1] == []
    arrow, _ = decode_frame(values, SchemaCache([CONN]), output="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == 50


def test_schema_change_mid_batch_gives_one_frame_in_input_order() -> None:
    old = conn_v7_schema()
    old_recs = [{k: v for k, v in r.items() if k != "ip_proto"} for r in records(10)]
    new_recs = records(10, first=10)
    a, b = encode_many(old_recs, old), encode_many(new_recs, CONN)
    mixed = a[:5] + b[:5] + a[5:] + b[5:]
    decoder = BatchDecoder(SchemaCache([old, CONN]))
    frame = decoder.decode(mixed)
    assert decoder.errors.total == 0
    uids = [r["uid"] for r in old_recs[:5] + new_recs[:5] + old_recs[5:] + new_recs[5:]]
    assert frame["uid"].to_list() == uids
    ip_proto = dict(zip(frame["uid"], frame["ip_proto"], strict=True))
    assert all(ip_proto[r["uid"]] is None for r in old_recs)
    assert all(ip_proto[r["uid"]] == 6 for r in new_recs)


@pytest.mark.parametrize(
    "bad, kind",
    [
        (b"not avro at all", "corrupt"),
        (b"", "corrupt"),
        (None, "corrupt"),
        ("truncated", "corrupt"),
        ("trailing", "corrupt"),
        ("unknown_fp", "unknown_schema"),
    ],
)
def test_corrupt_messages_are_counted_not_fatal(bad, kind: str) -> None:
    recs = records(20)
    values = encode_many(recs, CONN)
    if bad == "truncated":
        bad = values[3][:-4]
    elif bad == "trailing":
        bad = values[3] + b"\x02"
    elif bad == "unknown_fp":
        bad = b"\xc3\x01" + bytes(8) + values[3][10:]
    for position in (0, 7, 20):  # first, middle, last: the sentinel catches the last one
        batch = values[:position] + [bad] + values[position:]
        decoder = BatchDecoder(SchemaCache([CONN]))
        frame = decoder.decode(batch)
        assert getattr(decoder.errors, kind) == 1, (position, decoder.errors)
        assert decoder.errors.total == 1
        assert frame["uid"].to_list() == [r["uid"] for r in recs]


def test_all_messages_bad_gives_empty_frame_with_columns() -> None:
    df, errors = decode_frame([b"junk", b"\xc3\x01" + bytes(9)], SchemaCache([CONN]))
    assert errors.total == 2
    assert len(df) == 0


class _Registry:
    """A registry id -> schema map (the codecs' RegistryLookup protocol)."""

    def __init__(self, schemas: dict[int, dict]) -> None:
        self.schemas = schemas

    def wire_by_id(self, schema_id: int):
        from wirestream.schemas.codec import UnknownSchemaError, wire_schema

        if schema_id not in self.schemas:
            raise UnknownSchemaError(f"no schema with id {schema_id}")
        return wire_schema(self.schemas[schema_id])


def test_confluent_framing_decodes_column_wise_too() -> None:
    from wirestream.schemas.codec import encode_confluent_many

    recs = records(30)
    confluent = encode_confluent_many(recs, CONN, 7)
    single = encode_many(recs, CONN)
    decoder = BatchDecoder(SchemaCache([CONN]), _Registry({7: CONN}))
    frame = decoder.decode(confluent[:10] + single[10:20] + confluent[20:])
    assert decoder.errors.total == 0
    assert frame["uid"].to_list() == [r["uid"] for r in recs]
    no_registry = BatchDecoder(SchemaCache([CONN]))
    assert no_registry.decode(confluent).height == 0
    assert no_registry.errors.unknown_schema == 30


def test_ts_order_is_stable_nulls_last_and_none_when_already_ordered() -> None:
    frame = pl.DataFrame({"ts": [3, 1, None, 2, 1], "row": [0, 1, 2, 3, 4]})
    order = ts_order(frame)
    assert order is not None and order.to_list() == [1, 4, 3, 0, 2]
    assert ts_order(pl.DataFrame({"ts": [1, 2, 2, None, None]})) is None
    assert ts_order(pl.DataFrame({"ts": [1, None, 2]})) is not None
    assert ts_order(pl.DataFrame({"ts": [2, 1]})) is not None
    assert ts_order(pl.DataFrame({"uid": ["b", "a"]})) is None  # no ts: input order


@pytest.mark.parametrize(
    ("output", "columnwise_rows"),
    [("pandas", 0), ("pandas", 10**9), ("polars", 0), ("arrow", 0)],
)
def test_output_in_ts_order_equals_sorting_first(output: str, columnwise_rows, monkeypatch) -> None:
    """Taking rows in ts order while converting (column by column for big frames, in one go
    for small ones) keeps every row whole, as sorting the frame first does."""
    monkeypatch.setattr(pandas_out, "COLUMNWISE_ROWS", columnwise_rows)
    recs = records(300)
    for i, rec in enumerate(recs):  # three interleaved runs, ties, and rows without ts
        rec["ts"] = None if i % 50 == 7 else T0 + (i % 3) * 10 + (i // 3) * 0.2 - (i % 2) * 0.2
    decoder = BatchDecoder(SchemaCache([CONN]))
    frame = decoder.decode(encode_many(recs, CONN))
    order = ts_order(frame)
    assert order is not None
    got = to_output(frame, decoder.columns, output, order=order)
    want = to_output(
        frame.sort("ts", maintain_order=True, nulls_last=True), decoder.columns, output
    )
    if output == "pandas":
        pd.testing.assert_frame_equal(got, want)
        assert got["ts"].dropna().is_monotonic_increasing and got["ts"].tail(6).isna().all()
    else:
        assert got.equals(want)
