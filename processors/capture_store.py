"""Reading the compacted captures and capture-parts topics (the thin I/O edge of capture details).

Both topics are compacted and small (one record per capture / per capture partition), so a reader
takes them whole from the beginning up to their current end, read_committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from wirestream.processors.capture_details import CaptureDetails, CapturePart

from wirestream import topics
from wirestream.config import Settings
from wirestream.kafka import make_consumer

log = logging.getLogger(__name__)


# Errors a just-created topic gives while its leader is being elected.
_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)


class CompactedTopicReader:
    """Reads a topic incrementally: each :meth:`refresh` returns the records committed since the
    previous one, up to the topic's end at call time. One long-lived, group-less consumer, so a
    service can follow a compacted topic without re-reading it whole.

    "End" is the high watermark: a transaction committed just before may still lack its commit
    marker for a moment (a read_committed read stops early at the last stable offset), so a
    refresh waits up to ``settle`` seconds for the position to reach the watermark; a transaction
    still open after that is not committed output and is left for a later refresh.
    """

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        # A short fetch wait: the broker answers a connection's requests in order, so a fetch
        # long-polling at the end of the topic (500 ms by default) would delay every watermark
        # and metadata request behind it.
        self.consumer = make_consumer(
            settings,
            f"wirestream-reader-{uuid.uuid4().hex}",
            **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
        )
        self.assigned: set[int] = set()
        self._metadata_at = 0.0

    def _assign_new_partitions(self) -> None:
        if self.assigned and time.monotonic() - self._metadata_at < 60:
            return  # partitions rarely change; look again each minute
        self._metadata_at = time.monotonic()
        meta = self.consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None:
            return
        new = [TopicPartition(self.topic, p, 0) for p in meta.partitions if p not in self.assigned]
        if new:
            self.consumer.incremental_assign(new)
            self.assigned |= {tp.partition for tp in new}

    def refresh(self, timeout: float = 30.0, settle: float = 2.0) -> list[tuple[bytes, bytes]]:
        self._assign_new_partitions()
        ends: dict[int, int] = {}
        positions = {
            tp.partition: tp.offset
            for tp in self.consumer.position([TopicPartition(self.topic, p) for p in self.assigned])
        }
        for p in self.assigned:
            low, high = self._watermarks(p)
            if high > max(low, positions.get(p, -1)):
                ends[p] = high
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        stalled: dict[int, float] = {}
        while ends:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"reading {self.topic}: partitions {sorted(ends)} not read to their end"
                )
            for p, since in list(stalled.items()):
                if now - since > settle:
                    ends.pop(p, None)
                    del stalled[p]
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            p = msg.partition()
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {self.topic}: {msg.error()}")
                if p in ends and msg.offset() >= ends[p]:
                    del ends[p]
                    stalled.pop(p, None)
                elif p in ends:
                    stalled.setdefault(p, now)
                continue
            stalled.pop(p, None)
            if msg.offset() + 1 >= ends.get(p, 0):
                ends.pop(p, None)
            if msg.key() is not None and msg.value() is not None:
                out.append((msg.key(), msg.value()))
        return out

    def _watermarks(self, partition: int, attempts: int = 20) -> tuple[int, int]:
        """Watermarks, retrying while a new topic's leader is still being elected."""
        for attempt in range(attempts):
            try:
                return self.consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=10
                )
            except KafkaException as exc:
                err = exc.args[0]
                if attempt == attempts - 1 or not (err.retriable() or err.code() in _TRANSIENT):
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.consumer.close()


def read_compacted(
    settings: Settings, topic: str, timeout: float = 30.0, settle: float = 2.0
) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a topic up to its committed end, oldest first (tombstones skipped)."""
    reader = CompactedTopicReader(settings, topic)
    try:
        yield from reader.refresh(timeout, settle)
    finally:
        reader.close()


class PartsIndex:
    """Follows the capture-parts topic: which (send, partition) streams are committed, and the
    parts of sends not yet complete (complete sends keep only their keys, so memory stays small).
    """

    def __init__(self, settings: Settings) -> None:
        self.reader = CompactedTopicReader(
            settings, topics.system_topic(topics.CAPTURE_PARTS_TOPIC, settings)
        )
        self.streams: set[tuple[str, int]] = set()
        self.complete: set[str] = set()
        self.open: dict[str, dict[int, CapturePart]] = {}
        # sha256 of every extracted file some committed part stored (content-addressed chunks).
        self.file_hashes: set[str] = set()

    def refresh(self, settle: float = 0.0) -> list[tuple[str, list[CapturePart]]]:
        """Reads new parts; returns the sends that became complete, with all their parts.

        ``settle``: how long to wait for transactions still being committed (see
        :class:`CompactedTopicReader`); 0 reads what is visible now, the rest comes later.
        """
        done = []
        for key, value in self.reader.refresh(timeout=max(30.0, settle + 10), settle=settle):
            try:
                part = CapturePart.from_bytes(value)
            except (ValueError, TypeError) as exc:
                log.warning("skipping unreadable capture part %r: %s", key, exc)
                continue
            self.streams.add((part.send_id, part.partition))
            self.file_hashes.update(f["sha256"] for f in part.files if f.get("sha256"))
            if part.send_id in self.complete:
                continue
            parts = self.open.setdefault(part.send_id, {})
            parts[part.partition] = part
            if len(parts) >= part.partitions:
                self.complete.add(part.send_id)
                done.append((part.send_id, list(self.open.pop(part.send_id).values())))
        return done

    def close(self) -> None:
        self.reader.close()


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
