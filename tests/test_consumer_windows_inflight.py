"""windows(): closed windows decode on a worker thread; until handed out they still hold offsets.

No broker: real confluent-kafka Message objects with real Avro values are fed to
``Windows._take_batch``; the windows the watermark closed are decoded in the background and
handed out in order. Checked: committed offsets never pass a record not yet handed out, the
commit metadata (end of the last closed window) only counts handed-out windows, a rebalance
that takes a partition away removes its records from windows still in flight, and each frame
comes out sorted by ts across partitions.
"""

from __future__ import annotations

import pandas as pd
import polars as pl
from confluent_kafka import Message
from consumer_kit import conn_record
from wirestream.consumers import windowing
from wirestream.consumers.decode import BatchDecoder
from wirestream.schemas.avro import bundled_avro_schema
from wirestream.schemas.codec import encode_many
from wirestream.schemas.store import SchemaCache

from wirestream.config import Settings

CONN = bundled_avro_schema("conn")
T0_MS = 1_700_000_040_000  # a minute boundary


def _stream() -> windowing.Windows:
    stream = windowing.Windows(
        "conn",
        every="1min",
        lateness="0s",
        output="polars",
        settings=Settings(bootstrap_servers="127.0.0.1:1"),
    )
    stream._assigned = {0, 1, 2}
    stream._decoder = BatchDecoder(SchemaCache([CONN]))
    return stream


def _messages(count: int, step_ms: int) -> list[Message]:
    """Records every step_ms, round-robin over 3 partitions; ts out of order across them."""
    recs = []
    for i in range(count):
        ts_ms = T0_MS + i * step_ms + (-(i % 3) * 700)  # later partitions lag a little
        recs.append(conn_record(i, ts_ms / 1000))
    values = encode_many(recs, CONN)
    offsets = {0: 1000, 1: 2000, 2: 3000}
    msgs = []
    for i, (rec, value) in enumerate(zip(recs, values, strict=True)):
        p = i % 3
        msgs.append(
            Message(
                topic="t",
                partition=p,
                offset=offsets[p],
                value=value,
                timestamp=(1, round(rec["ts"] * 1000)),
            )
        )
        offsets[p] += 1
    return msgs


def test_in_flight_windows_hold_their_offsets_until_handed_out() -> None:
    stream = _stream()
    msgs = _messages(600, 1000)  # 600 s: ten 1-minute windows
    assert stream._take_batch(msgs)
    first_offsets = stream.safe_offsets()
    assert first_offsets == {0: 1000, 1: 2000, 2: 3000}
    stream._close_ready(stream._watermark())
    assert len(stream._in_flight) >= 8 and not stream._buffers.keys() & {
        w.start for w in stream._in_flight
    }
    # Nothing handed out yet: the commit point stays at the first record of every partition
    # and no window counts as closed in the commit metadata.
    assert stream.safe_offsets() == first_offsets
    assert stream._handed_closed_ms == windowing.NO_DATA
    out = stream._hand_out(wait=True)
    start, end, frame = next(out)
    assert start == pd.Timestamp(T0_MS, unit="ms", tz="UTC")
    assert stream._handed_closed_ms == T0_MS + 60_000
    second = stream._in_flight[0]
    assert stream.safe_offsets() == {p: second.buffer.first_offset[p] for p in (0, 1, 2)}
    ts = frame["ts"]
    assert ts.is_sorted() and ts.min() >= start and ts.max() < end
    assert frame.height == sum(1 for m in msgs if T0_MS <= m.timestamp()[1] < T0_MS + 60_000)
    rest = list(out)
    assert [s for s, _e, _f in rest] == sorted(s for s, _e, _f in rest)
    assert not stream._in_flight
    stream.close()


def test_rebalance_takes_a_partitions_records_out_of_in_flight_windows() -> None:
    stream = _stream()
    msgs = _messages(300, 1000)
    assert stream._take_batch(msgs)
    stream._close_ready(stream._watermark())
    assert stream._in_flight
    stream._on_revoke(None, [type("TP", (), {"partition": 1})()])
    got = list(stream._hand_out(wait=True))
    uids = pl.concat([f for _s, _e, f in got])["uid"].to_list()
    in_flight_end = got[-1][1].value // 1_000_000
    expected = [
        f"C{i:08d}"
        for i, m in enumerate(msgs)
        if m.partition() != 1 and m.timestamp()[1] < in_flight_end
    ]
    assert sorted(uids) == sorted(expected)
    assert 1 not in stream.safe_offsets()
    stream.close()
