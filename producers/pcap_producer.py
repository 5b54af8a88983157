"""Publishes packet captures on the pcap topic, ready for the Bro processors.

A capture is streamed (never loaded whole) into packet-aligned batches, one stream per pcap-topic
partition; packets go to partitions by a symmetric hash of their IP pair (see ``partitioning``),
and every partition's stream ends with an end-of-capture marker (see ``pcap_wire``). The whole send
- batches, end markers and the ``sent`` captures record - is ONE Kafka transaction, so processors
(read_committed) see a capture entirely or not at all, even if the sender dies half-way; the
transaction timeout (15 min, the broker's default maximum) bounds how long one send may take.

Identity is the content md5. It is computed first in a fast hashing pass so that a capture sent
before is recognised (from the compacted captures topic) before anything is published, and
computed again while streaming to detect a file that changed under us.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from wirestream.processors.capture_details import FAILED, SENT, CaptureDetails
from wirestream.processors.engine.api import Packet
from wirestream.producers import pcap_wire
from wirestream.producers.partitioning import partition_for
from wirestream.producers.pcap_reader import CaptureError, CaptureInfo, HashingFile, read_capture

from wirestream import topics
from wirestream.config import Settings
from wirestream.kafka import make_producer

log = logging.getLogger(__name__)

# Batches well below the topic's 8 MiB limit keep processors' per-message work small.
DEFAULT_BATCH_BYTES = 1 << 20
TRANSACTION_TIMEOUT_MS = 900_000
KNOWN_TTL = 5.0  # seconds a read of the captures topic serves duplicate checks
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp")


@dataclass
class SendResult:
    path: str
    md5: str
    send_id: str
    status: str  # "sent", "duplicate" (already sent; skipped) or "failed"
    packets: int = 0
    batches: int = 0
    partitions: int = 0
    error: str | None = None
    info: dict = field(default_factory=dict)


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _produce(producer: Producer, **kwargs) -> None:
    """produce(), waiting for queue space instead of failing when librdkafka's queue is full."""
    while True:
        try:
            producer.produce(**kwargs)
            return
        except BufferError:
            producer.poll(0.1)


class _Batcher:
    """Per-partition packet buffers, flushed as a batch when one reaches ``batch_bytes``."""

    def __init__(
        self, producer: Producer, topic: str, send_id: str, md5: str, sensor: str, batch_bytes: int
    ):
        self.producer, self.topic, self.send_id = producer, topic, send_id
        self.md5, self.sensor, self.batch_bytes = md5, sensor, batch_bytes
        self.buffers: dict[int, list[Packet]] = {}
        self.sizes: dict[int, int] = {}
        self.batches: dict[int, int] = {}
        self.packets: dict[int, int] = {}

    def add(self, partition: int, packet: Packet) -> None:
        size = pcap_wire.packet_size(packet)
        if self.sizes.get(partition, 0) + size > self.batch_bytes:
            self.flush(partition)
        self.buffers.setdefault(partition, []).append(packet)
        self.sizes[partition] = self.sizes.get(partition, 0) + size
        self.packets[partition] = self.packets.get(partition, 0) + 1

    def flush(self, partition: int) -> None:
        packets = self.buffers.pop(partition, [])
        self.sizes.pop(partition, None)
        if not packets:
            return
        seq = self.batches.get(partition, 0)
        _produce(
            self.producer,
            topic=self.topic,
            partition=partition,
            key=self.send_id.encode(),
            value=pcap_wire.encode_packets(packets),
            headers=pcap_wire.batch_headers(self.send_id, seq, self.md5, self.sensor),
        )
        self.batches[partition] = seq + 1
        self.producer.poll(0)

    def flush_all(self) -> None:
        for partition in list(self.buffers):
            self.flush(partition)


class PcapProducer:
    """Sends captures; one transactional producer reused across sends."""

    def __init__(self, settings: Settings, batch_bytes: int = DEFAULT_BATCH_BYTES):
        if not 0 < batch_bytes < topics.PCAP_MAX_MESSAGE_BYTES - 65_536:
            raise ValueError(
                f"batch_bytes must be in (0, {topics.PCAP_MAX_MESSAGE_BYTES - 65_536})"
            )
        self.settings = settings
        self.batch_bytes = batch_bytes
        self.pcap_topic = topics.system_topic(topics.PCAP_TOPIC, settings)
        self.captures_topic = topics.system_topic(topics.CAPTURES_TOPIC, settings)
        self.producer = self._new_producer()
        self._known: dict[str, CaptureDetails] | None = None
        self._known_at = 0.0

    def _new_producer(self) -> Producer:
        producer = make_producer(
            self.settings,
            **{
                "transactional.id": f"wirestream-send-{uuid.uuid4().hex}",
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "message.max.bytes": topics.PCAP_MAX_MESSAGE_BYTES,
                "linger.ms": 50,
            },
        )
        producer.init_transactions(30)
        return producer

    def partitions(self) -> int:
        meta = self.producer.list_topics(self.pcap_topic, timeout=10).topics.get(self.pcap_topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(
                f"pcap topic {self.pcap_topic} does not exist (create the topics first)"
            )
        return len(meta.partitions)

    def known_captures(self, refresh: bool = False) -> dict[str, CaptureDetails]:
        """Latest details per md5, following the captures topic incrementally."""
        from wirestream.processors.capture_store import CompactedTopicReader

        if self._known is None:
            self._known = {}
            self._captures_reader = CompactedTopicReader(self.settings, self.captures_topic)
            refresh = True
        if refresh:
            for key, value in self._captures_reader.refresh():
                try:
                    self._known[key.decode()] = CaptureDetails.from_bytes(value)
                except (ValueError, TypeError) as exc:
                    log.warning("skipping unreadable captures record %r: %s", key, exc)
            self._known_at = time.monotonic()
        return self._known

    def send(
        self,
        path: str | Path,
        *,
        sensor: str | None = None,
        force: bool = False,
        progress: bool = False,
    ) -> SendResult:
        """Publishes one capture file; returns what happened (never raises for bad input files)."""
        path = Path(path)
        sensor = sensor or self.settings.sensor
        send_id = uuid.uuid4().hex
        try:
            md5 = file_md5(path)
        except OSError as exc:
            return SendResult(str(path), "", send_id, FAILED, error=f"cannot read {path}: {exc}")
        previous = self.known_captures(refresh=time.monotonic() - self._known_at > KNOWN_TTL).get(
            md5
        )
        if previous is not None and not force:
            log.info("%s already sent (md5 %s, status %s); skipping", path, md5, previous.status)
            return SendResult(str(path), md5, previous.send_id, "duplicate", info=previous.capture)
        try:
            return self._send_file(path, md5, sensor, send_id, progress)
        except (KafkaException, RuntimeError) as exc:
            # The send's transaction was aborted: nothing of it is visible. Start afresh.
            log.error("sending %s failed: %s", path, exc)
            self.producer = self._new_producer()
            return SendResult(str(path), md5, send_id, FAILED, error=f"publishing failed: {exc}")

    def _send_file(
        self, path: Path, md5: str, sensor: str, send_id: str, progress: bool
    ) -> SendResult:
        nparts = self.partitions()
        info = CaptureInfo()
        error: str | None = None
        batcher: _Batcher | None = None
        bar = _progress_bar(path, progress)
        self.producer.begin_transaction()
        try:
            with path.open("rb") as raw:
                f = HashingFile(raw)
                try:
                    last = 0
                    for packet in read_capture(f, info):
                        if batcher is None:
                            batcher = _Batcher(
                                self.producer,
                                self.pcap_topic,
                                send_id,
                                md5,
                                sensor,
                                self.batch_bytes,
                            )
                        batcher.add(partition_for(packet.linktype, packet.data, nparts), packet)
                        if bar is not None and f.count - last > (1 << 20):
                            bar.update(f.count - last)
                            last = f.count
                except CaptureError as exc:
                    error = str(exc)
                    log.warning("capture %s: %s", path, exc)
                f.drain()
                if bar is not None:
                    bar.update(f.count - last)
            if f.md5.hexdigest() != md5:
                raise RuntimeError(f"{path} changed while being sent (md5 differs); not sent")
            details = CaptureDetails(
                md5=md5,
                name=path.name,
                sensor=sensor,
                send_id=send_id,
                status=SENT,
                capture=_info_dict(info),
                partitions=nparts,
                sent_at=time.time(),
            )
            if batcher is None:  # nothing readable: the capture is done, and failed, right here
                details.status = FAILED
                details.partitions = 0
                details.errors = [error or f"{path.name}: no packets in capture"]
                details.finished_at = details.sent_at
            else:
                batcher.flush_all()
                for p in range(nparts):
                    marker = pcap_wire.EndMarker(
                        send_id=send_id,
                        md5=md5,
                        name=path.name,
                        sensor=sensor,
                        partition=p,
                        partitions=nparts,
                        batches=batcher.batches.get(p, 0),
                        packets=batcher.packets.get(p, 0),
                        capture=_info_dict(info),
                        error=error,
                        sent_at=details.sent_at,
                    )
                    _produce(
                        self.producer,
                        topic=self.pcap_topic,
                        partition=p,
                        key=send_id.encode(),
                        value=marker.to_bytes(),
                        headers=pcap_wire.end_headers(send_id),
                    )
            _produce(
                self.producer, topic=self.captures_topic, key=md5.encode(), value=details.to_bytes()
            )
            self.producer.commit_transaction(TRANSACTION_TIMEOUT_MS / 1000)
        except BaseException:
            _abort(self.producer)
            raise
        finally:
            if bar is not None:
                bar.close()
        if self._known is not None:
            self._known[md5] = details
        batches = sum(batcher.batches.values()) if batcher else 0
        if details.status == FAILED:
            log.warning("not sent %s (md5 %s): %s", path, md5, error)
        else:
            log.info(
                "sent %s: md5 %s, %d packets in %d batches over %d partitions%s",
                path,
                md5,
                info.packets,
                batches,
                nparts,
                f" (error: {error})" if error else "",
            )
        return SendResult(
            str(path),
            md5,
            send_id,
            details.status,
            packets=info.packets,
            batches=batches,
            partitions=details.partitions,
            error=error,
            info=details.capture,
        )

    def close(self) -> None:
        self.producer.flush(30)
        if self._known is not None:
            self._captures_reader.close()


def _abort(producer: Producer) -> None:
    try:
        producer.abort_transaction(30)
    except KafkaException as exc:
        log.error("aborting the send transaction failed: %s", exc)


def _info_dict(info: CaptureInfo) -> dict:
    return {
        "format": info.format,
        "linktype": info.linktype,
        "snaplen": info.snaplen,
        "packets": info.packets,
        "bytes_read": info.bytes_read,
        "first_ts": info.first_ts,
        "last_ts": info.last_ts,
    }


def _progress_bar(path: Path, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, leave=False)


def capture_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus capture files (by suffix) found under named directories, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                sorted(
                    q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in CAPTURE_SUFFIXES
                )
            )
        else:
            out.append(p)
    return out


def send_captures(
    settings: Settings,
    paths: Iterable[str | Path],
    *,
    sensor: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> list[SendResult]:
    """Sends each capture file (directories are searched); one bad file never stops the others."""
    producer = PcapProducer(settings)
    try:
        return [
            producer.send(p, sensor=sensor, force=force, progress=progress)
            for p in capture_files(paths)
        ]
    finally:
        producer.close()


def watch_folder(
    settings: Settings,
    folder: str | Path,
    *,
    sensor: str | None = None,
    interval: float = 2.0,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Sends every capture that appears in ``folder`` once its size stopped changing for one interval."""
    folder = Path(folder)
    producer = PcapProducer(settings)
    sizes: dict[Path, int] = {}
    done: set[Path] = set()
    log.info("watching %s for captures", folder)
    try:
        while not stop():
            for path in capture_files([folder]):
                if path in done:
                    continue
                size = path.stat().st_size if path.exists() else -1
                if sizes.get(path) == size:
                    result = producer.send(path, sensor=sensor)
                    log.info("%s: %s", path, result.status)
                    done.add(path)
                else:
                    sizes[path] = size
            time.sleep(interval)
    finally:
        producer.close()
