"""Event-time windows over a log topic, in a consumer group: ``(start, end, DataFrame)`` as they close.

Event time is the Kafka timestamp (= Zeek ``ts``, ms). Windows are epoch-aligned: tumbling
(``every``) or hopping (length ``every``, a new one each ``hop``). A window closes when the
watermark passes its end; the watermark is the smallest, over the assigned partitions still
receiving data, of the largest ts seen there, minus ``lateness`` (so one fast partition cannot
close windows a slower one still fills; a window it passes only by leaving out partitions at
their end waits ``IDLE_PARTITION_GRACE_S`` first, for their share of the same burst). A record
whose windows have all closed is *late*: it is counted (``Windows.late``) and dropped. Windows
without records are not yielded. With ``idle_flush``, an idle caught-up stream hands out
windows that wall-clock time says are done before the watermark closes them; records for such
a window that come later (replayed data pausing mid-burst) are not late: they go out as
another ``(start, end, frame)`` of that window.

Delivery is at-least-once. Offsets are committed only when the caller comes back for the next
window (or leaves the ``with`` block normally, or a rebalance takes partitions away), i.e. after
the window was handed out and processed; the committed offset of a partition is its oldest
record not yet handed out (in an open window, or in a closed one still being decoded: closed
windows are decoded on a worker thread while consuming goes on, and handed out in order).
Commits between windows do not wait for the broker; leaving the ``with`` block does. Each commit also stores, as offset metadata, the end
of the last closed window; a restarted member (or the next owner of the partition) drops
re-read records for windows that had closed, so it resumes after the last committed window.
If the process dies between handing out a window and that commit, the window comes again.
Processes with the same ``group`` split the partitions between them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from wirestream.consumers import session
from wirestream.consumers.decode import BatchDecoder, Output, to_output, ts_order
from wirestream.consumers.errors import ConsumerError, WindowSpecError
from wirestream.consumers.timespec import DurationLike, millis_to_time, parse_duration

from wirestream.config import Settings
from wirestream.kafka import watermark_offsets

log = logging.getLogger(__name__)

Window = tuple[pd.Timestamp, pd.Timestamp, Any]
BATCH = 10_000
POLL_S = 0.05  # longest wait for the next message: how often stop() and idle flushes are checked
NO_DATA = -(2**62)
COLUMNWISE_MIN = 64  # smaller batches (live data) gain nothing from the column-wise path
# How long a window waits, once the watermark passed its end only because partitions at their
# end were left out, before it closes: their records of the same burst may still be in flight
# (one fetch fills partitions one after another), and closing drops those as late.
IDLE_PARTITION_GRACE_S = 1.0
# Closed windows being decoded on the worker thread while the main thread keeps consuming;
# beyond this many, consuming waits for the oldest (bounds the raw records held).
MAX_IN_FLIGHT = 3


@dataclass
class _Buffer:
    """One open window's raw records, per partition, with the oldest offset of each."""

    values: dict[int, list[bytes | None]] = field(default_factory=dict)
    first_offset: dict[int, int] = field(default_factory=dict)

    def add(self, partition: int, offset: int, value: bytes | None) -> None:
        bucket = self.values.get(partition)
        if bucket is None:
            self.values[partition] = [value]
            self.first_offset[partition] = offset
        else:
            bucket.append(value)

    def drop_partitions(self, partitions: set[int]) -> None:
        for p in partitions:
            self.values.pop(p, None)
            self.first_offset.pop(p, None)

    def __len__(self) -> int:
        return sum(len(v) for v in self.values.values())

    def ordered_values(self) -> list[bytes | None]:
        return [v for p in sorted(self.values) for v in self.values[p]]


@dataclass
class _InFlight:
    """A window taken out of the buffers, decoding on the worker thread, not yet handed out.

    Its records still count for the committed offsets (``first_offset``) until it is handed
    out. ``closes``: its end is at or below the watermark (closed in event time, not an idle
    flush). ``buffer`` keeps the raw records in case a rebalance takes partitions away before
    the hand-out: then the window is decoded again without them.
    """

    start: int
    end: int
    closes: bool
    buffer: _Buffer
    result: Future | None  # None: nothing to decode (an empty window)
    stale: bool = False


def _next_batch(consumer: Consumer) -> list[Any]:
    """What is queued now (up to BATCH), else wait up to POLL_S for the first message only.

    ``consume(BATCH, timeout)`` waits the whole timeout unless BATCH messages come: on live data
    every record sat ~POLL_S in the client before the window could see it.
    """
    msgs = consumer.consume(BATCH, timeout=0)
    if msgs:
        return msgs
    msgs = consumer.consume(1, timeout=POLL_S)
    if msgs:
        msgs += consumer.consume(BATCH - 1, timeout=0)
    return msgs


def window_starts(ts_ms: int, every_ms: int, hop_ms: int) -> range:
    """Starts of the epoch-aligned windows of length every_ms (one per hop_ms) holding ts_ms."""
    last = ts_ms // hop_ms * hop_ms
    first = (ts_ms - every_ms) // hop_ms * hop_ms + hop_ms
    return range(first, last + 1, hop_ms)


class Windows:
    """Iterator of ``(start, end, frame)``; use as a context manager (see module docstring)."""

    def __init__(
        self,
        log_name: str,
        every: DurationLike = "1min",
        hop: DurationLike | None = None,
        *,
        group: str | None = None,
        lateness: DurationLike = "30s",
        settings: Settings | None = None,
        output: Output = "pandas",
        index: str | None = None,
        stop_at_end: bool = False,
        idle_flush: float | None = None,
        from_beginning: bool = True,
    ) -> None:
        self.log = log_name
        every_td = parse_duration(every, "every")
        hop_td = parse_duration(hop, "hop") if hop is not None else every_td
        self.every_ms = int(every_td / pd.Timedelta(milliseconds=1))
        self.hop_ms = int(hop_td / pd.Timedelta(milliseconds=1))
        if self.every_ms <= 0 or self.hop_ms <= 0:
            raise WindowSpecError("every and hop must be at least 1ms")
        if self.hop_ms > self.every_ms:
            raise WindowSpecError(f"hop ({hop}) longer than every ({every}) would skip records")
        self.lateness_ms = int(parse_duration(lateness, "lateness") / pd.Timedelta(milliseconds=1))
        self.settings = session.resolved(settings)
        self.group = group or f"wirestream-windows-{log_name}"
        self.output, self.index = output, index
        self.stop_at_end, self.idle_flush = stop_at_end, idle_flush
        self.late = 0  # records that arrived after all their windows closed
        self.windows_out = 0
        self._consumer: Consumer | None = None
        self._decoder: BatchDecoder | None = None
        self._buffers: dict[int, _Buffer] = {}
        self._closed_ms = NO_DATA  # end of the last window closed (in flight or handed out)
        self._handed_closed_ms = NO_DATA  # end of the last closed window handed out
        self._in_flight: deque[_InFlight] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._drop_before: dict[int, int] = {}  # per partition, from commit metadata
        self._max_ts: dict[int, int] = {}
        self._next_offset: dict[int, int] = {}
        self._at_end: set[int] = set()
        self._ready_since: dict[int, float] = {}  # window start -> when the watermark passed it
        self._assigned: set[int] = set()
        self._handed_out = False  # a window was yielded and its offsets not yet committed
        self._unconfirmed = False  # offsets committed without waiting since the last commit()
        self._from_beginning = from_beginning
        self._stopping = False
        self.topic = ""

    # -- group membership -------------------------------------------------------------------

    def _open(self) -> None:
        consumer = session.open_consumer(
            self.settings,
            self.group,
            **{
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest" if self._from_beginning else "latest",
                "partition.assignment.strategy": "cooperative-sticky",
            },
        )
        try:
            self.topic, _parts = session.log_partitions(consumer, self.log, self.settings)
        except Exception:
            consumer.close()
            raise
        self._consumer = consumer
        self._decoder = session.decoder(self.settings)
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        try:
            committed = consumer.committed(parts, timeout=10) if parts else []
        except KafkaException as exc:
            log.warning("%s: cannot read committed offsets: %s", self.topic, exc)
            committed = []
        for tp in committed:
            if tp.metadata:
                try:
                    self._drop_before[tp.partition] = int(tp.metadata)
                except ValueError:
                    log.warning(
                        "%s[%d]: ignoring commit metadata %r", self.topic, tp.partition, tp.metadata
                    )
        starts = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        for tp in partitions:
            self._assigned.add(tp.partition)
            self._at_end.discard(tp.partition)
            # A partition with nothing to read must not hold the watermark back until its
            # end-of-partition event happens to arrive: decide that now.
            try:
                low, high = watermark_offsets(
                    consumer, TopicPartition(tp.topic, tp.partition), timeout=10
                )
            except KafkaException:
                continue
            start = starts.get(tp.partition, low if self._from_beginning else high)
            if start >= high:
                self._at_end.add(tp.partition)
        log.info(
            "%s: assigned partitions %s (group %s)",
            self.topic,
            sorted(tp.partition for tp in partitions),
            self.group,
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        self._commit(gone)  # the caller has processed everything handed out so far
        for buf in self._buffers.values():
            buf.drop_partitions(gone)
        for window in self._in_flight:
            if gone & set(window.buffer.values):
                window.buffer.drop_partitions(gone)
                window.stale = True  # decoded again without them when handed out
        for state in (self._drop_before, self._max_ts, self._next_offset):
            for p in gone:
                state.pop(p, None)
        self._assigned -= gone
        self._at_end -= gone
        log.info("%s: revoked partitions %s", self.topic, sorted(gone))

    # -- offsets ------------------------------------------------------------------------------

    def safe_offsets(self, partitions: set[int] | None = None) -> dict[int, int]:
        """Per partition, the offset to resume from: the oldest record not yet handed out."""
        out = {}
        for p in partitions if partitions is not None else self._assigned:
            if p not in self._next_offset:
                continue
            held = [*self._buffers.values(), *(w.buffer for w in self._in_flight)]
            oldest = [b.first_offset[p] for b in held if p in b.first_offset]
            out[p] = min(oldest) if oldest else self._next_offset[p]
        return out

    def _commit(self, partitions: set[int] | None = None, *, wait: bool = True) -> None:
        if self._consumer is None:
            return
        offsets = self.safe_offsets(partitions)
        if not offsets:
            return
        tps = []
        for p, off in offsets.items():
            closed = max(self._handed_closed_ms, self._drop_before.get(p, NO_DATA))
            tps.append(
                TopicPartition(
                    self.topic, p, off, metadata="" if closed == NO_DATA else str(closed)
                )
            )
        try:
            self._consumer.commit(offsets=tps, asynchronous=not wait)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
                return
            raise ConsumerError(f"{self.topic}: commit failed: {exc}") from None
        log.debug(
            "%s: committed %s (windows closed up to %s)",
            self.topic,
            offsets,
            self._handed_closed_ms,
        )

    @property
    def errors(self):
        """Messages skipped as undecodable so far (a :class:`DecodeErrors`), or None."""
        return self._decoder.errors if self._decoder is not None else None

    def stop(self) -> None:
        """Ask the iteration to end at its next poll (e.g. from another thread); open windows
        are dropped uncommitted, so their records come again to whoever reads on."""
        self._stopping = True

    def commit(self) -> None:
        """Commit everything handed out so far and wait for the broker's answer (iteration
        commits without waiting before the next window; leaving the ``with`` block waits)."""
        self._commit()
        self._handed_out = self._unconfirmed = False

    # -- the stream ---------------------------------------------------------------------------

    def _watermark(self) -> int:
        active = [p for p in self._assigned if p not in self._at_end]
        if active:
            if any(p not in self._max_ts for p in active):
                return NO_DATA  # a partition we know nothing about yet may hold old records
            return min(self._max_ts[p] for p in active) - self.lateness_ms
        seen = [self._max_ts[p] for p in self._assigned if p in self._max_ts]
        return max(seen) - self.lateness_ms if seen else NO_DATA

    def _take_tumbling(self, msgs: list[Any]) -> bool:
        """``_take_batch`` for tumbling windows, column-wise; False (nothing done) if the batch
        needs the per-message path: an error/end-of-partition event, or a record far enough
        behind its partition's newest that the watermark may already have closed its window.

        Otherwise every record's fate depends only on its partition and window: it is late iff
        its window ended at or before the partition's floor (last window handed out, or commit
        metadata), else it joins that window's buffer; so records are grouped, not looped over.
        """
        if not msgs or any(map(Message.error, msgs)):
            return False
        every, lateness = self.every_ms, self.lateness_ms
        parts = np.fromiter(map(Message.partition, msgs), np.int64, len(msgs))
        stamps = np.fromiter((ts for _t, ts in map(Message.timestamp, msgs)), np.int64, len(msgs))
        ends = stamps - stamps % every + every
        seen = np.unique(parts).tolist()
        floors = {}
        for p in seen:
            mine = parts == p
            # The partition's newest ts as each record arrives (a running max, as the loop has).
            newest = np.maximum.accumulate(stamps[mine])
            newest = np.maximum(newest, self._max_ts.get(p, NO_DATA))
            if bool((ends[mine] <= newest - lateness).any()):
                return False  # the watermark may decide: per-message path
            floor = self._closed_ms
            drop = self._drop_before.get(p, NO_DATA)
            floors[p] = drop if drop > floor else floor
        values = np.fromiter(map(Message.value, msgs), object, len(msgs))
        floor_of = np.empty(len(msgs), np.int64)
        for p in seen:
            floor_of[parts == p] = floors[p]
        keep = ends > floor_of
        self.late += int(len(msgs) - keep.sum())
        order = np.lexsort((parts, ends))  # stable: offset order within (window, partition)
        order = order[keep[order]]
        if len(order):
            key_end, key_part = ends[order], parts[order]
            cut = np.flatnonzero((np.diff(key_end) != 0) | (np.diff(key_part) != 0)) + 1
            for group in np.split(order, cut):
                first = int(group[0])
                start, p = int(ends[first]) - every, int(parts[first])
                buf = self._buffers.get(start)
                if buf is None:
                    buf = self._buffers[start] = _Buffer()
                bucket = buf.values.get(p)
                if bucket is None:
                    bucket = buf.values[p] = []
                    buf.first_offset[p] = msgs[first].offset()
                bucket += values[group].tolist()
        for p in seen:
            mine = parts == p
            self._next_offset[p] = msgs[int(np.flatnonzero(mine)[-1])].offset() + 1
            newest = int(stamps[mine].max())
            if newest > self._max_ts.get(p, NO_DATA):
                self._max_ts[p] = newest
            self._at_end.discard(p)
        return True

    def _take_batch(self, msgs: list[Any]) -> bool:
        """Place a batch of messages into window buffers; True if any carried data.

        A record goes into each of its windows that has not closed: not handed out here or
        before a restart (``floor_end``), and not past the watermark. Tumbling windows (the
        common case) take a shorter path: one window per record.
        """
        every, hop, lateness = self.every_ms, self.hop_ms, self.lateness_ms
        tumbling = every == hop
        if tumbling and len(msgs) >= COLUMNWISE_MIN and self._take_tumbling(msgs):
            return True
        buffers, max_ts, next_offset = self._buffers, self._max_ts, self._next_offset
        drop_before, at_end, closed = self._drop_before, self._at_end, self._closed_ms
        got_data = False
        late = 0
        for msg in msgs:
            err = msg.error()
            p = msg.partition()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise ConsumerError(f"{self.topic}: {err.str()}")
                at_end.add(p)
                continue
            got_data = True
            if p in at_end:
                at_end.discard(p)
            off = msg.offset()
            ts = msg.timestamp()[1]
            next_offset[p] = off + 1
            newest = max_ts.get(p, NO_DATA)
            if ts > newest:
                max_ts[p] = newest = ts
            floor_end = closed
            if p in drop_before and drop_before[p] > floor_end:
                floor_end = drop_before[p]
            first_start = ts - ts % every if tumbling else (ts - every) // hop * hop + hop
            if first_start + every <= newest - lateness:
                # Far behind this partition's newest record: its window may have closed in
                # event time already even if it was not handed out yet (that happens per batch).
                floor_end = max(floor_end, self._watermark())
            if tumbling:
                if first_start + every <= floor_end:
                    late += 1
                    continue
                buf = buffers.get(first_start)
                if buf is None:
                    buf = buffers[first_start] = _Buffer()
                bucket = buf.values.get(p)
                if bucket is None:
                    buf.values[p] = [msg.value()]
                    buf.first_offset[p] = off
                else:
                    bucket.append(msg.value())
                continue
            placed = False
            for start in range(first_start, ts // hop * hop + 1, hop):
                if start + every <= floor_end:
                    continue  # that window has closed (or was handed out before a restart)
                buf = buffers.get(start)
                if buf is None:
                    buf = buffers[start] = _Buffer()
                buf.add(p, off, msg.value())
                placed = True
            if not placed:
                late += 1
        self.late += late
        return got_data

    def _all_partitions_watermark(self) -> int:
        """The watermark counting every assigned partition, idle or not (no grace needed)."""
        if not self._assigned or any(p not in self._max_ts for p in self._assigned):
            return NO_DATA
        return min(self._max_ts[p] for p in self._assigned) - self.lateness_ms

    def _graced_watermark(self) -> int:
        """The watermark, but windows it passed only by leaving out idle partitions wait
        IDLE_PARTITION_GRACE_S first (the watermark stays below them until then)."""
        strict, loose = self._all_partitions_watermark(), self._watermark()
        if loose <= strict:
            self._ready_since.clear()
            return strict
        now = time.monotonic()
        watermark = strict
        for start in sorted(self._buffers):
            end = start + self.every_ms
            if end <= strict:
                continue
            if end > loose:
                break
            since = self._ready_since.setdefault(start, now)
            if now - since < IDLE_PARTITION_GRACE_S:
                break
            watermark = end
        return watermark

    def _frame_of(self, values: list[bytes | None]) -> Any:
        """Worker thread: raw records -> the window's frame, sorted by ts, in ``output`` form
        (None if nothing decoded). Only this thread touches the decoder while iterating."""
        assert self._decoder is not None
        frame = self._decoder.decode(values)
        if frame.height == 0:
            return None
        order = ts_order(frame)
        return to_output(frame, self._decoder.columns, self.output, self.index, order)

    def _close_ready(self, watermark: int, flush_to: int = NO_DATA) -> None:
        """Take out the windows ending by ``watermark`` (event time: they are closed, later
        records for them are late) or by ``flush_to`` (idle flush: handed out early, but still
        open in event time, so records that come after go out in a later hand-out, not dropped)
        and start decoding them on the worker thread; :meth:`_hand_out` yields them in order.
        """
        for start in sorted(self._buffers):
            end = start + self.every_ms
            if end > watermark and end > flush_to:
                break
            buf = self._buffers.pop(start)
            self._ready_since.pop(start, None)
            closes = end <= watermark
            if closes:
                self._closed_ms = max(self._closed_ms, end)
            job = None
            if len(buf):
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="wirestream-windows")
                job = self._pool.submit(self._frame_of, buf.ordered_values())
            self._in_flight.append(_InFlight(start, end, closes, buf, job))

    def _hand_out(self, wait: bool) -> Iterator[Window]:
        """Yield the decoded windows in order, committing each once the caller comes back.

        ``wait=False`` (a backlog is being read): only those already decoded, unless more than
        MAX_IN_FLIGHT wait; ``wait=True`` (caught up): all of them, so live windows go out at once.
        """
        while self._in_flight:
            window = self._in_flight[0]
            job = window.result
            if (
                not wait
                and job is not None
                and not job.done()
                and len(self._in_flight) <= MAX_IN_FLIGHT
            ):
                return
            out = job.result() if job is not None else None
            if window.stale:  # a rebalance took partitions away: decode what is still ours
                values = window.buffer.ordered_values()
                out = None
                if values and self._pool is not None:
                    out = self._pool.submit(self._frame_of, values).result()
            self._in_flight.popleft()
            if window.closes:
                self._handed_closed_ms = max(self._handed_closed_ms, window.end)
            if out is None:
                continue
            self.windows_out += 1
            self._handed_out = True
            yield (millis_to_time(window.start), millis_to_time(window.end), out)
            # Not waiting for the broker (~8 ms a window); a commit lost in a crash means the
            # window comes again, as for any crash. Leaving the with-block commits and waits.
            self._commit(wait=False)
            self._handed_out, self._unconfirmed = False, True

    def __iter__(self) -> Iterator[Window]:
        if self._consumer is None:
            self._open()
        consumer = self._consumer
        assert consumer is not None
        last_data = time.monotonic()
        while not self._stopping:
            with session.paused_gc():  # not across the yields below: the caller's code runs there
                msgs = _next_batch(consumer)
                if self._take_batch(msgs):
                    last_data = time.monotonic()
            all_at_end = bool(self._assigned) and self._at_end >= self._assigned
            if self.stop_at_end and all_at_end and not msgs:
                self._close_ready(2**62)
                yield from self._hand_out(wait=True)
                return
            flush_to = NO_DATA
            if (
                self.idle_flush is not None
                and all_at_end
                and time.monotonic() - last_data >= self.idle_flush
            ):
                # Idle and caught up: hand out what wall-clock time says is done, without
                # closing it in event time. Replayed data (ts far behind the clock) pauses
                # mid-burst; treating the clock as the watermark dropped the rest as late.
                flush_to = int(time.time() * 1000) - self.lateness_ms
            self._close_ready(self._graced_watermark(), flush_to)
            # A full batch means a backlog: keep consuming while the worker decodes.
            yield from self._hand_out(wait=len(msgs) < BATCH)

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> Windows:
        if self._consumer is None:
            self._open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and (self._handed_out or self._unconfirmed):
            self.commit()  # left normally: the last window was processed
        self.close()

    def close(self) -> None:
        """Leave the group without committing anything not yet committed."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._in_flight.clear()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.debug("closing consumer: %s", exc)
        if self.late:
            log.info(
                "%s: %d late record(s) dropped (their windows had closed)", self.topic, self.late
            )


def windows(
    log: str,
    every: DurationLike = "1min",
    hop: DurationLike | None = None,
    *,
    group: str | None = None,
    lateness: DurationLike = "30s",
    settings: Settings | None = None,
    output: Output = "pandas",
    index: str | None = None,
    stop_at_end: bool = False,
    idle_flush: float | None = None,
    from_beginning: bool = True,
) -> Windows:
    """Event-time windows of a log as ``(start, end, frame)``, in consumer group ``group``.

    ``every``: window length; ``hop``: distance between window starts (hopping windows; default
    = every, tumbling). ``lateness``: how long after a window's end (in event time) records may
    still arrive. ``stop_at_end``: flush all windows and stop once every assigned partition is
    read to its end. ``idle_flush``: seconds; when caught up and idle that long, windows older
    than wall-clock now - lateness are handed out (for live data; later records of such a
    window come in another hand-out of it, see the module docstring). ``from_beginning``:
    where a new group starts. Use ``with windows(...) as stream: for start, end, df in stream: ...``;
    see the module docstring for the at-least-once commit rules.
    """
    return Windows(
        log,
        every,
        hop,
        group=group,
        lateness=lateness,
        settings=settings,
        output=output,
        index=index,
        stop_at_end=stop_at_end,
        idle_flush=idle_flush,
        from_beginning=from_beginning,
    )
