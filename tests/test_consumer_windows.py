"""windows(): event-time windows in a consumer group on a real broker."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pandas as pd
import pytest
from consumer_kit import T0, conn_record, create_log_topic, drop_topics, fresh_settings, produce
from wirestream.consumers import windows
from wirestream.consumers.windowing import window_starts

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]


@pytest.fixture
def fresh(settings):
    s = fresh_settings(settings)
    yield s
    drop_topics(s)


def records(n: int, step: float = 0.5) -> list[dict]:
    return [conn_record(i, T0 + i * step) for i in range(n)]


def expected_windows(recs: list[dict], every_s: float, hop_s: float | None = None) -> dict:
    every_ms, hop_ms = int(every_s * 1000), int((hop_s or every_s) * 1000)
    out: dict[pd.Timestamp, set[str]] = {}
    for r in recs:
        for start in window_starts(int(r["ts"] * 1000), every_ms, hop_ms):
            out.setdefault(pd.Timestamp(start, unit="ms", tz="UTC"), set()).add(r["uid"])
    return out


def collect(stream) -> dict:
    got = {}
    for start, end, frame in stream:
        assert start not in got, "a window came twice"
        assert frame["ts"].min() >= start and frame["ts"].max() < end
        got[start] = set(frame["uid"])
    return got


def test_window_starts() -> None:
    assert list(window_starts(65_000, 60_000, 60_000)) == [60_000]
    assert list(window_starts(65_000, 60_000, 30_000)) == [30_000, 60_000]
    assert list(window_starts(60_000, 60_000, 30_000)) == [30_000, 60_000]
    assert list(window_starts(59_999, 60_000, 30_000)) == [0, 30_000]


def test_tumbling_and_hopping_windows_hold_exactly_their_records(fresh) -> None:
    recs = records(600)  # 300 s of records over 3 partitions
    produce(fresh, recs)
    with windows(
        "conn",
        every="1min",
        group=f"g-{uuid.uuid4().hex[:6]}",
        settings=fresh,
        stop_at_end=True,
        output="polars",
    ) as stream:
        assert collect(stream) == expected_windows(recs, 60)
    with windows(
        "conn",
        every="1min",
        hop="20s",
        group=f"g-{uuid.uuid4().hex[:6]}",
        settings=fresh,
        stop_at_end=True,
    ) as stream:
        assert collect(stream) == expected_windows(recs, 60, 20)


def test_late_records_are_counted_not_placed(fresh) -> None:
    recs = records(240)  # 120 s
    late = conn_record(9999, T0 + 1)  # produced last, after windows up to ~T0+90 closed
    produce(fresh, recs, partition_of=lambda r: 0)
    produce(fresh, [late], partition_of=lambda r: 0)
    with windows(
        "conn",
        every="30s",
        lateness="0s",
        group=f"g-{uuid.uuid4().hex[:6]}",
        settings=fresh,
        stop_at_end=True,
        output="polars",
    ) as stream:
        got = collect(stream)
    assert stream.late == 1
    assert stream.errors.total == 0
    assert got == expected_windows(recs, 30)


def test_group_members_split_partitions_and_see_every_record_once(fresh) -> None:
    create_log_topic(fresh)
    group = f"g-{uuid.uuid4().hex[:6]}"
    seen: list[Counter] = [Counter(), Counter()]
    streams = [
        windows("conn", every="1min", group=group, settings=fresh, idle_flush=0.3, output="polars")
        for _ in range(2)
    ]

    def member(k: int) -> None:
        with streams[k] as stream:
            for _start, _end, frame in stream:
                seen[k].update(frame["uid"].to_list())

    threads = [threading.Thread(target=member, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not all(s._assigned for s in streams) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(s._assigned for s in streams), "both members joined and got partitions"
    assert not streams[0]._assigned & streams[1]._assigned
    recs = records(900)
    produce(fresh, recs)
    while sum(len(c) for c in seen) < 900 and time.monotonic() < deadline + 60:
        time.sleep(0.2)
    for s in streams:
        s.stop()
    for t in threads:
        t.join(30)
    total = seen[0] + seen[1]
    assert [s.late for s in streams] == [0, 0], "no record of the burst counted as late"
    assert set(total) == {r["uid"] for r in recs}
    assert max(total.values()) == 1, "a record was handed out twice"
    assert seen[0] and seen[1], "each member handled its own partitions"


def test_idle_flush_mid_burst_hands_later_records_out_instead_of_dropping_them(fresh) -> None:
    """Replayed data (ts years behind the clock) pausing longer than idle_flush: the flush hands
    the open windows out early, and the rest of the burst must follow, not count as late."""
    create_log_topic(fresh)
    recs = records(900)
    seen: Counter = Counter()
    stream = windows(
        "conn",
        every="1min",
        group=f"g-{uuid.uuid4().hex[:6]}",
        settings=fresh,
        idle_flush=0.3,
        output="polars",
    )

    def member() -> None:
        with stream:
            for _start, _end, frame in stream:
                seen.update(frame["uid"].to_list())

    thread = threading.Thread(target=member)
    thread.start()
    try:
        produce(fresh, recs[:450])  # ends mid-window: [T0+220 s, T0+280 s) is still filling
        deadline = time.monotonic() + 60
        while len(seen) < 450 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(seen) == 450, "the idle flush handed the first half out"
        produce(fresh, recs[450:])
        while len(seen) < 900 and time.monotonic() < deadline + 60:
            time.sleep(0.1)
    finally:
        stream.stop()
        thread.join(30)
    assert stream.late == 0
    assert set(seen) == {r["uid"] for r in recs}
    assert max(seen.values()) == 1, "a record was handed out twice"


def test_restart_resumes_after_the_last_committed_window(fresh) -> None:
    recs = records(720)  # 360 s: six 1-minute windows
    produce(fresh, recs)
    group = f"g-{uuid.uuid4().hex[:6]}"
    expected = expected_windows(recs, 60)
    starts = sorted(expected)
    first_run = {}
    with windows("conn", every="1min", group=group, settings=fresh, output="polars") as stream:
        for start, _end, frame in stream:
            first_run[start] = set(frame["uid"])
            if len(first_run) == 3:
                break  # leaving the with-block normally commits the 3rd window too
    assert list(first_run) == starts[:3]
    with windows(
        "conn", every="1min", group=group, settings=fresh, stop_at_end=True, output="polars"
    ) as stream:
        second_run = collect(stream)
    assert list(second_run) == starts[3:]
    assert {**first_run, **second_run} == expected


def test_crash_before_commit_hands_the_window_out_again(fresh) -> None:
    recs = records(360)
    produce(fresh, recs)
    group = f"g-{uuid.uuid4().hex[:6]}"
    stream = windows("conn", every="1min", group=group, settings=fresh, output="polars")
    with pytest.raises(RuntimeError), stream:
        for _start, _end, _frame in stream:
            raise RuntimeError("processing failed")  # not committed: at-least-once
    with windows(
        "conn", every="1min", group=group, settings=fresh, stop_at_end=True, output="polars"
    ) as again:
        got = collect(again)
    assert got == expected_windows(recs, 60)
