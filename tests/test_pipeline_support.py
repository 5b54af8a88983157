"""Shared set-up for the pipeline tests: a private topic namespace on the real broker."""

from __future__ import annotations

import signal
import subprocess
import uuid

from wirestream import topics
from wirestream.config import Settings


def create_topics(settings: Settings, logs: tuple[str, ...] = ()) -> None:
    """The system topics (and the given log topics) under the settings' prefix, on the broker."""
    from wirestream.admin import ensure_topics

    specs = topics.system_topic_specs(settings) + [topics.log_topic_spec(g, settings) for g in logs]
    ensure_topics(settings, specs)


def private_settings(settings: Settings) -> Settings:
    """Settings whose every topic is new: a unique topic prefix, system topics created."""
    ours = settings.with_overrides(topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    create_topics(ours)
    return ours


def read_all(
    settings: Settings, topic: str, timeout: float = 30.0, settle: float | None = None
) -> list:
    """Every committed message of a topic, read up to the high watermark of each partition.

    Stopping at the first end-of-partition event would miss a transaction committed a moment
    ago (its markers can lag the commit, so read_committed reads stop short at the last stable
    offset); the tests' transactions are all finished, so waiting for the watermark is safe.
    With ``settle``, a partition stuck below its watermark that long (an open transaction, e.g.
    of a killed producer) counts as read.
    """
    import time

    from confluent_kafka import KafkaError, TopicPartition

    from wirestream.kafka import make_consumer

    consumer = make_consumer(
        settings, uuid.uuid4().hex, **{"enable.partition.eof": True, "fetch.wait.max.ms": 10}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        ends = {}
        for p in meta.partitions:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    break
                except Exception:  # a new topic's leader may still be being elected
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        out = []
        deadline = time.monotonic() + timeout
        stuck: dict[int, float] = {}
        while ends:
            for p, since in list(stuck.items()):
                if settle is not None and time.monotonic() - since > settle:
                    ends.pop(p, None)
                    del stuck[p]
            assert time.monotonic() < deadline, (
                f"reading {topic}: {sorted(ends)} not read to their end"
            )
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF and msg.offset() >= ends.get(
                    msg.partition(), 0
                ):
                    ends.pop(msg.partition(), None)
                continue
            out.append(msg)
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
        return out
    finally:
        consumer.close()


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM a worker subprocess as a service manager would; kill it if it does not stop."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)
