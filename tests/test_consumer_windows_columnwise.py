"""windows(): the column-wise tumbling path places records exactly as the per-message loop does.

No broker: real confluent-kafka Message objects are built in memory and fed to both paths of
``Windows._take_batch`` from the same state; buffers, offsets, watermark inputs and late
counts must come out identical (or the column-wise path must decline the batch).
"""

from __future__ import annotations

import copy

import pytest
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.consumers import windowing

from wirestream.config import Settings

EVERY_MS = 1000


def _windows(lateness_ms: int, closed_ms: int, drop_before: dict[int, int]) -> windowing.Windows:
    stream = windowing.Windows(
        "conn",
        every=f"{EVERY_MS}ms",
        lateness=f"{lateness_ms}ms",
        settings=Settings(bootstrap_servers="127.0.0.1:1"),
    )
    stream._assigned = {0, 1, 2}
    stream._at_end = {1}
    stream._closed_ms = closed_ms
    stream._drop_before = dict(drop_before)
    return stream


def _state(stream: windowing.Windows) -> tuple:
    buffers = {
        start: (dict(buf.values), dict(buf.first_offset))
        for start, buf in stream._buffers.items()
        if len(buf)
    }
    return buffers, stream._next_offset, stream._max_ts, stream._at_end, stream.late


batches = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 8000)),  # partition, ts offset in ms
    min_size=1,
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(
    batch=batches,
    lateness_ms=st.sampled_from([0, 300, 2000, 30_000]),
    closed_ms=st.sampled_from([windowing.NO_DATA, 12_000, 14_000]),
    drop_before=st.dictionaries(st.integers(0, 2), st.sampled_from([13_000, 16_000]), max_size=2),
    sort_ts=st.booleans(),
)
def test_columnwise_equals_per_message(batch, lateness_ms, closed_ms, drop_before, sort_ts) -> None:
    if sort_ts:  # mostly in order, as Zeek writes: the column-wise path takes these
        batch = sorted(batch, key=lambda pt: pt[1])
    offsets = {0: 100, 1: 200, 2: 300}
    msgs = []
    for i, (p, ts) in enumerate(batch):
        msgs.append(
            Message(
                topic="t",
                partition=p,
                offset=offsets[p],
                value=b"v%d" % i,
                timestamp=(1, 10_000 + ts),
            )
        )
        offsets[p] += 1
    loop = _windows(lateness_ms, closed_ms, drop_before)
    loop._max_ts = {0: 10_500}
    columnwise = copy.deepcopy(loop)
    saved = windowing.COLUMNWISE_MIN
    try:
        windowing.COLUMNWISE_MIN = 10**9
        assert loop._take_batch(msgs)
    finally:
        windowing.COLUMNWISE_MIN = saved
    before = copy.deepcopy(_state(columnwise))
    if not columnwise._take_tumbling(msgs):  # declined: nothing may have changed
        assert _state(columnwise) == before
        assert columnwise._take_batch(msgs)
    assert _state(columnwise) == _state(loop)


def test_columnwise_takes_in_order_batches() -> None:
    stream = _windows(30_000, windowing.NO_DATA, {})
    msgs = [
        Message(topic="t", partition=i % 3, offset=i // 3, value=b"x", timestamp=(1, 10_000 + i))
        for i in range(500)
    ]
    assert stream._take_tumbling(msgs)
    assert len(stream._buffers) == 1 and len(stream._buffers[10_000]) == 500


@pytest.mark.parametrize("value", [None, b""])
def test_columnwise_keeps_empty_values(value) -> None:
    stream = _windows(30_000, windowing.NO_DATA, {})
    msgs = [
        Message(topic="t", partition=0, offset=i, value=value, timestamp=(1, 10_000 + i))
        for i in range(100)
    ]
    assert stream._take_tumbling(msgs)
    assert stream._buffers[10_000].values[0] == [value] * 100
