"""Bounded reads of a log topic into one DataFrame: a time window, offset ranges, or the tail.

Time windows use event time: the Kafka timestamp of every log record is its Zeek ``ts``. Each
partition is sought with ``offsets_for_times(start)`` (no record before that offset has
``ts >= start``) and read up to ``offsets_for_times(end + lateness)``. Zeek writes a record when
its connection ends, so ``ts`` is not monotonic in a partition; ``lateness`` is how far past the
window's end to keep reading for records logged late. A record in ``[start, end)`` is missed
only if it sits behind a record with ``ts >= end + lateness``; ``lateness=None`` reads every
partition to its end (exact, slower). The result holds exactly the records with
``start <= ts < end`` (decoded ``ts``; the Kafka timestamp where ``ts`` is unset), sorted by ts.

Reads are read_committed: records of aborted or still open transactions never show.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import polars as pl
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from wirestream.consumers import session
from wirestream.consumers.decode import (
    BatchDecoder,
    Column,
    DecodeErrors,
    Output,
    columns_of,
    empty_frame,
    to_output,
    ts_order,
)
from wirestream.consumers.errors import ConsumerError, WindowSpecError
from wirestream.consumers.timespec import (
    DurationLike,
    TimeLike,
    parse_duration,
    parse_time,
    to_millis,
)

from wirestream.config import Settings

log = logging.getLogger(__name__)

DEFAULT_LATENESS = "5min"
STALL_TIMEOUT_S = 30.0
BATCH = 20_000
CHUNK = 100_000  # records per decode job
MAX_PENDING_CHUNKS = 2  # fetched chunks waiting for the decode thread; beyond, fetch waits


@dataclass
class ReadStats:
    """What a read did: records fetched/decoded/returned and decode errors."""

    topic: str = ""
    fetched: int = 0
    returned: int = 0
    errors: DecodeErrors = field(default_factory=DecodeErrors)
    seconds: float = 0.0


@dataclass
class Ranges:
    """Half-open offset ranges to read per partition, and the Kafka-timestamp filter."""

    begin: dict[int, int]
    stop: dict[int, int]
    min_ms: int | None = None
    max_ms: int | None = None  # exclusive

    def todo(self) -> dict[int, tuple[int, int]]:
        return {p: (b, self.stop[p]) for p, b in self.begin.items() if b < self.stop[p]}


def _progress_bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="rec",
        unit_scale=True,
        disable=progress is False or total == 0,
        delay=0 if progress else 1.0,  # None: only reads that take more than a moment
        leave=False,
    )


def fetch(
    consumer: Consumer,
    topic: str,
    ranges: Ranges,
    *,
    progress: bool | None = None,
    stall_timeout: float = STALL_TIMEOUT_S,
    headers_filter: tuple[str, bytes] | None = None,
    chunk: int = CHUNK,
) -> Iterator[tuple[list[bytes | None], list[int]]]:
    """Raw values (and Kafka timestamps) of the records in ``ranges``, in chunks of ~``chunk``.

    Per batch from librdkafka, the consumer's positions tell whether any partition went past its
    stop offset; if none did (the usual case) the batch is taken with list comprehensions and
    no per-message bookkeeping.
    """
    todo = ranges.todo()
    if not todo:
        return
    stop = {p: s for p, (_b, s) in todo.items()}
    lo = ranges.min_ms if ranges.min_ms is not None else -(2**63)
    hi = ranges.max_ms if ranges.max_ms is not None else 2**63
    timed = ranges.min_ms is not None or ranges.max_ms is not None
    assigned = [TopicPartition(topic, p, b) for p, (b, _s) in todo.items()]
    consumer.assign(assigned)
    pending = set(todo)
    bar = _progress_bar(sum(s - b for b, s in todo.values()), topic, progress)
    last_progress = time.monotonic()
    values: list[bytes | None] = []
    stamps: list[int] = []
    try:
        left = sum(s - b for b, s in todo.values())  # an upper bound (markers take offsets)
        while pending:
            # Ask for no more than is left, so small reads return without waiting a timeout.
            msgs = consumer.consume(max(1, min(BATCH, left)), timeout=0.2)
            left -= len(msgs)
            positions = consumer.position([TopicPartition(topic, tp.partition) for tp in assigned])
            overshoot = False
            for tp in positions:
                if tp.offset >= stop[tp.partition] and tp.partition in pending:
                    pending.discard(tp.partition)  # also past transaction markers at the end
                    consumer.pause([TopicPartition(topic, tp.partition)])
                overshoot = overshoot or tp.offset > stop[tp.partition]
            if not msgs:
                if pending and time.monotonic() - last_progress > stall_timeout:
                    where = {p: stop[p] for p in pending}
                    raise ConsumerError(
                        f"{topic}: no progress for {stall_timeout:.0f}s reading up to offsets "
                        f"{where} (an open transaction, or the broker went away?)"
                    )
                continue
            last_progress = time.monotonic()
            bar.update(len(msgs))
            if any(map(Message.error, msgs)):  # rare: one C call per message to find out
                for msg in msgs:
                    if msg.error() is not None:
                        _raise_unless_eof(topic, msg.error())
                msgs = [m for m in msgs if m.error() is None]
            if overshoot or headers_filter is not None:
                _take_checked(msgs, stop, lo, hi, headers_filter, values, stamps)
            elif not timed:  # no time bounds: timestamps are not needed at all
                values += map(Message.value, msgs)
            else:
                batch_stamps = [ts for _type, ts in map(Message.timestamp, msgs)]
                if batch_stamps and lo <= min(batch_stamps) and max(batch_stamps) < hi:
                    values += map(Message.value, msgs)
                    stamps += batch_stamps
                else:
                    keep = [i for i, ts in enumerate(batch_stamps) if lo <= ts < hi]
                    values += [msgs[i].value() for i in keep]
                    stamps += [batch_stamps[i] for i in keep]
            if len(values) >= chunk:
                yield values, stamps
                values, stamps = [], []
        if values:
            yield values, stamps
    finally:
        bar.close()
        # Pausing outlives the assignment in librdkafka: resume, or a later read on this
        # consumer (tail() looking further back) would wait forever on a paused partition.
        consumer.resume(assigned)
        consumer.unassign()


def _take_checked(
    msgs: list[Any],
    stop: dict[int, int],
    lo: int,
    hi: int,
    headers_filter: tuple[str, bytes] | None,
    values: list[bytes | None],
    stamps: list[int],
) -> None:
    """Message by message: offsets below the stop, time and header filters."""
    for msg in msgs:
        if msg.offset() >= stop[msg.partition()]:
            continue
        ts = msg.timestamp()[1]
        if lo <= ts < hi and (headers_filter is None or headers_filter in (msg.headers() or ())):
            values.append(msg.value())
            stamps.append(ts)


def _raise_unless_eof(topic: str, err: KafkaError) -> None:
    if err.code() == KafkaError._PARTITION_EOF:
        return
    raise ConsumerError(f"{topic}: {err.str()}")


def time_ranges(
    consumer: Consumer,
    topic: str,
    partitions: list[int],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    lateness: pd.Timedelta | None,
) -> Ranges:
    """Per-partition offsets that cover every record with start <= ts < end (see module doc)."""
    marks = session.watermarks(consumer, topic, partitions)
    begin = {p: low for p, (low, _high) in marks.items()}
    stop = {p: high for p, (_low, high) in marks.items()}
    min_ms = max_ms = None
    if start is not None:
        min_ms = to_millis(start) - 1  # Kafka ms may be 1 below ts*1000 after float rounding
        for p, off in session.offsets_for_time(consumer, topic, partitions, min_ms).items():
            begin[p] = stop[p] if off < 0 else max(off, begin[p])
    if end is not None:
        max_ms = to_millis(end, ceil=True) + 1
        if lateness is not None:
            until = max_ms + to_millis(pd.Timestamp(0, tz="UTC") + lateness, ceil=True)
            for p, off in session.offsets_for_time(consumer, topic, partitions, until).items():
                if off >= 0:
                    stop[p] = min(off, stop[p])
    return Ranges(begin, stop, min_ms, max_ms)


def offset_ranges(
    consumer: Consumer, topic: str, partitions: list[int], offsets: Mapping[int, Any]
) -> Ranges:
    """Explicit half-open ``{partition: (first, stop)}`` ranges, clipped to what exists."""
    marks = session.watermarks(consumer, topic, partitions)
    begin, stop = {}, {}
    for p, span in offsets.items():
        try:
            first, end = (int(x) for x in span)
        except (TypeError, ValueError) as exc:
            raise WindowSpecError(
                f"offsets[{p}] must be a (first, stop) pair of ints, not {span!r}"
            ) from exc
        if p not in marks:
            raise WindowSpecError(f"{topic} has no partition {p} (has {sorted(marks)})")
        low, high = marks[p]
        begin[p], stop[p] = max(first, low), min(end, high)
    return Ranges(begin, stop)


def _micros_lit(stamp: pd.Timestamp) -> pl.Expr:
    """A time as a microsecond literal, rounded up: for µs ts, ts >= t iff ts >= ceil_us(t)."""
    return pl.lit(-(-stamp.value // 1000)).cast(pl.Datetime("us", "UTC"))


def filter_window(
    frame: pl.DataFrame,
    stamps_ms: list[int] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> pl.DataFrame:
    """Keep rows with start <= ts < end; rows without ts are judged by their Kafka timestamp."""
    if (start is None and end is None) or frame.height == 0 or "ts" not in frame.columns:
        return frame
    ts = pl.col("ts")
    kafka = pl.Series("_kafka_ms", stamps_ms, dtype=pl.Int64) if stamps_ms is not None else None
    keep = pl.lit(True)
    kafka_keep = pl.lit(True)
    if start is not None:
        keep = keep & (ts >= _micros_lit(start))
        kafka_keep = kafka_keep & (pl.col("_kafka_ms") >= to_millis(start, ceil=True))
    if end is not None:
        keep = keep & (ts < _micros_lit(end))
        kafka_keep = kafka_keep & (pl.col("_kafka_ms") < to_millis(end, ceil=True))
    if kafka is None or frame.height != len(kafka):
        return frame.filter(keep.fill_null(False))
    return (
        frame.with_columns(kafka)
        .filter(pl.when(ts.is_null()).then(kafka_keep).otherwise(keep))
        .drop("_kafka_ms")
    )


def _fallback_columns(log_name: str) -> dict[str, Column]:
    """Columns of a log Zeek ships, so an empty result still has them."""
    from wirestream.schemas.avro import bundled_avro_schema

    try:
        return columns_of(bundled_avro_schema(log_name))
    except KeyError:
        return {}


def _fetch_decode(
    decoder: BatchDecoder,
    consumer: Consumer,
    topic: str,
    ranges: Ranges,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    progress: bool | None,
    headers_filter: tuple[str, bytes] | None,
    stats: ReadStats,
) -> pl.DataFrame:
    """One process: chunks are decoded in a worker thread while the next ones are fetched
    (polars decodes without the GIL), so decoding mostly hides behind the Kafka client."""

    def decode_chunk(values: list[bytes | None], stamps: list[int]) -> pl.DataFrame:
        errors_before = decoder.errors.total
        part = decoder.decode(values)
        aligned = decoder.errors.total == errors_before  # else rows no longer match stamps
        return filter_window(part, stamps if aligned and stamps else None, start, end)

    frames: list[pl.DataFrame] = []
    pending: deque[Future] = deque()
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="wirestream-decode") as pool,
        session.paused_gc(),
    ):
        for values, stamps in fetch(
            consumer, topic, ranges, progress=progress, headers_filter=headers_filter
        ):
            stats.fetched += len(values)
            pending.append(pool.submit(decode_chunk, values, stamps))
            while len(pending) > MAX_PENDING_CHUNKS:  # bound the raw bytes held in memory
                frames.append(pending.popleft().result())
        frames += [f.result() for f in pending]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    return (
        frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed", rechunk=False)
    )


def read_ranges(
    log_name: str,
    settings: Settings,
    consumer: Consumer,
    topic: str,
    ranges: Ranges,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    output: Output = "pandas",
    index: str | None = None,
    progress: bool | None = None,
    lookup: Any = None,
    headers_filter: tuple[str, bytes] | None = None,
    sort: bool = True,
    keep_last: int | None = None,
) -> tuple[Any, ReadStats]:
    """Fetch, decode, filter by time and shape one read; the shared core of read/tail/frames."""
    started = time.perf_counter()
    stats = ReadStats(topic=topic)
    decoder = BatchDecoder(lookup) if lookup is not None else session.decoder(settings)
    frame = _fetch_decode(
        decoder, consumer, topic, ranges, start, end, progress, headers_filter, stats
    )
    columns, errors = decoder.columns, decoder.errors
    stats.errors = errors
    if errors.total:
        log.warning(
            "%s: skipped %s message(s) (%s); e.g. %s",
            topic,
            errors.total,
            errors.summary(),
            "; ".join(errors.samples[:2]),
        )
    # Rows are taken in ts order while converting (no sorted copy of the whole frame first).
    order = ts_order(frame) if sort else None
    if keep_last is not None:
        if order is not None:
            order = order.tail(keep_last)
        else:
            frame = frame.tail(keep_last)
    if frame.width == 0:
        columns = columns or _fallback_columns(log_name)
        frame = empty_frame(columns)
    stats.returned = len(order) if order is not None else frame.height
    stats.seconds = time.perf_counter() - started
    out = to_output(frame, columns, output, index, order)
    if isinstance(out, pd.DataFrame):
        out.attrs["wirestream"] = {
            "topic": topic,
            "fetched": stats.fetched,
            "errors": stats.errors.total,
            "error_summary": stats.errors.summary(),
        }
    return out, stats


def read(
    log: str,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    offsets: Mapping[int, tuple[int, int]] | None = None,
    settings: Settings | None = None,
    partitions: Iterable[int] | None = None,
    lateness: DurationLike | None = DEFAULT_LATENESS,
    output: Output = "pandas",
    index: str | None = None,
    progress: bool | None = None,
) -> Any:
    """Records of one Zeek log as a DataFrame: a time window, or offset ranges per partition.

    ``start``/``end``: datetimes (naive = UTC), epoch seconds, ISO text, ``'now'`` or relative
    text such as ``'-15min'``; either may be omitted (from the beginning / to the current end).
    ``offsets``: ``{partition: (first, stop)}`` half-open ranges instead of times.
    ``lateness``: see the module docstring. ``output``: ``'pandas'`` (Zeek dtypes, default),
    ``'polars'`` or ``'arrow'``; ``index='ts'`` indexes pandas output by ts. Undecodable
    messages are skipped, logged and counted in ``df.attrs['wirestream']['errors']``.
    """
    settings = session.resolved(settings)
    if offsets is not None and (start is not None or end is not None):
        raise WindowSpecError("give either start/end times or offsets, not both")
    now = pd.Timestamp.now(tz="UTC")
    t_start = parse_time(start, "start", now) if start is not None else None
    t_end = parse_time(end, "end", now) if end is not None else None
    if t_start is not None and t_end is not None and t_end < t_start:
        raise WindowSpecError(f"end {t_end} is before start {t_start}")
    late = parse_duration(lateness, "lateness") if lateness is not None else None
    consumer = session.open_consumer(settings)
    try:
        topic, parts = session.log_partitions(
            consumer, log, settings, list(partitions) if partitions is not None else None
        )
        if offsets is not None:
            ranges = offset_ranges(consumer, topic, parts, offsets)
        else:
            ranges = time_ranges(consumer, topic, parts, t_start, t_end, late)
        out, _stats = read_ranges(
            log,
            settings,
            consumer,
            topic,
            ranges,
            start=t_start,
            end=t_end,
            output=output,
            index=index,
            progress=progress,
        )
        return out
    finally:
        consumer.close()


def tail(
    log: str,
    n: int = 10,
    *,
    settings: Settings | None = None,
    partitions: Iterable[int] | None = None,
    output: Output = "pandas",
    index: str | None = None,
) -> Any:
    """The ``n`` newest records (by ts) of a log: the last ``n`` of every partition, merged."""
    if n < 0:
        raise WindowSpecError(f"n must be >= 0, not {n}")
    settings = session.resolved(settings)
    consumer = session.open_consumer(settings)
    try:
        topic, parts = session.log_partitions(
            consumer, log, settings, list(partitions) if partitions is not None else None
        )
        marks = session.watermarks(consumer, topic, parts)
        want = n
        while True:
            ranges = Ranges(
                {p: max(low, high - want) for p, (low, high) in marks.items()},
                {p: high for p, (_low, high) in marks.items()},
            )
            out, stats = read_ranges(
                log,
                settings,
                consumer,
                topic,
                ranges,
                output=output,
                index=index,
                progress=False,
                keep_last=n,
            )
            # Transaction markers use offsets too: look further back if that left us short.
            exhausted = all(ranges.begin[p] <= low for p, (low, _h) in marks.items())
            if stats.returned >= n or exhausted:
                return out
            want *= 2
    finally:
        consumer.close()
