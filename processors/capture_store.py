"""Reading the compacted captures and capture-parts topics (the thin I/O edge of capture details).

Both topics are compacted and small (one record per capture / per capture partition), so a reader
takes them whole from the beginning up to their current end, read_committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import KafkaError, TopicPartition
from wirestream.processors.capture_details import CaptureDetails, CapturePart

from wirestream import topics
from wirestream.config import Settings
from wirestream.kafka import make_consumer, watermark_offsets

log = logging.getLogger(__name__)


def read_compacted(
    settings: Settings, topic: str, timeout: float = 30.0, settle: float = 2.0
) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a topic up to its committed end, oldest first (tombstones skipped).

    "End" is the high watermark as of the call: a transaction committed just before may still
    lack its commit marker for a moment (the read stops early at the last stable offset), so the
    read waits up to ``settle`` seconds for the position to reach the watermark; a transaction
    still open after that is not committed output and is not waited for.
    """
    consumer = make_consumer(
        settings, f"wirestream-reader-{uuid.uuid4().hex}", **{"enable.partition.eof": True}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            return
        parts = [TopicPartition(topic, p, 0) for p in tmeta.partitions]
        ends: dict[int, int] = {}
        for tp in parts:
            low, high = watermark_offsets(consumer, tp, timeout=10)
            if high > low:
                ends[tp.partition] = high
        if not ends:
            return
        consumer.assign(parts)
        deadline = time.monotonic() + timeout
        stalled: dict[int, float] = {}
        while ends:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"reading {topic}: partitions {sorted(ends)} not read to their end"
                )
            for p, since in list(stalled.items()):
                if now - since > settle:
                    ends.pop(p, None)
                    del stalled[p]
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {topic}: {msg.error()}")
                p = msg.partition()
                if p in ends and msg.offset() >= ends[p]:
                    del ends[p]
                    stalled.pop(p, None)
                elif p in ends:
                    stalled.setdefault(p, now)
                continue
            stalled.pop(msg.partition(), None)
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
            if msg.key() is not None and msg.value() is not None:
                yield msg.key(), msg.value()
    finally:
        consumer.close()


def read_captures(settings: Settings) -> dict[str, CaptureDetails]:
    """The newest details record of every capture, by md5."""
    out: dict[str, CaptureDetails] = {}
    for key, value in read_compacted(
        settings, topics.system_topic(topics.CAPTURES_TOPIC, settings)
    ):
        try:
            out[key.decode()] = CaptureDetails.from_bytes(value)
        except (ValueError, TypeError) as exc:
            log.warning("skipping unreadable captures record %r: %s", key, exc)
    return out


def read_parts(settings: Settings) -> dict[str, CapturePart]:
    """Every committed per-partition result, by key ``<send_id>/<partition>``."""
    out: dict[str, CapturePart] = {}
    topic = topics.system_topic(topics.CAPTURE_PARTS_TOPIC, settings)
    for key, value in read_compacted(settings, topic):
        try:
            out[key.decode()] = CapturePart.from_bytes(value)
        except (ValueError, TypeError) as exc:
            log.warning("skipping unreadable capture part %r: %s", key, exc)
    return out


def wait_for_details(
    settings: Settings, send_ids: dict[str, str], timeout: float = 600.0, poll: float = 1.0
) -> dict[str, CaptureDetails]:
    """Waits until each md5 in ``send_ids`` (md5 -> send_id) has a final record for that send."""
    deadline = time.monotonic() + timeout
    while True:
        seen = read_captures(settings)
        done = {
            md5: d
            for md5, d in seen.items()
            if md5 in send_ids and d.done and d.send_id == send_ids[md5]
        }
        if len(done) == len(send_ids):
            return done
        if time.monotonic() > deadline:
            missing = sorted(set(send_ids) - set(done))
            raise TimeoutError(f"no final details after {timeout:.0f}s for {missing}")
        time.sleep(poll)
