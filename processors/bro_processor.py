"""The Bro processor: pcap topic in, one Avro event per Zeek log line out, exactly once.

A consumer-group service. Each pcap-topic partition carries, per *send* of a capture, a stream of
packet batches closed by an end marker (see ``producers.pcap_wire``). For every (send, partition)
stream the processor runs its own engine instance over the packets in order, and holds the
engine's output (encoded, in an :class:`OutputSpool`) until the end marker arrives. Then ONE Kafka
transaction publishes the stream's log records, its file chunks, its :class:`CapturePart` (counts,
offset ranges, files) and the consumed pcap offsets. So a processor killed at any point leaves
nothing of an unfinished stream visible to read_committed consumers, and a restarted one
re-analyses exactly the unfinished streams.

Why per stream and not per batch: the engine's connection state spans batches and cannot be
checkpointed; committing at batch boundaries would publish conn records whose later packets might
be analysed again after a crash. Memory stays bounded because the spool spills to disk
(``spool_memory`` bytes per open stream in RAM at most), the engine's own state aside.

Consumed offsets of a partition are committed only up to the first message of the oldest stream
still open there (streams of concurrent sends interleave), and streams already completed (their
part exists in the capture-parts topic) are skipped when re-read, so no stream is published twice.

When the last stream of a send completes, the parts are merged into the final captures record
(``capture_details.merge_parts``); a sweep at start-up finishes sends whose finaliser died.

State Zeek keeps across connections lives in one engine per stream here. DHCP, which Zeek joins
across connections, is routed to a single partition by the producer (``producers.partitioning``);
what Zeek logs once per site (weirds once per originator, x509 certificates de-duplicated across
connections, known_services/software when their scripts are loaded) can appear once per
partition that saw it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from wirestream.processors import capture_details as cd
from wirestream.processors.engine.api import ExtractedFile, Packet, Record
from wirestream.processors.engine.gc_policy import analysis_gc
from wirestream.processors.file_meta import file_metadata, safe_name
from wirestream.processors.service import (
    DEFAULT_SPOOL_MEMORY,
    LogEncoder,
    OutputSpool,
    TopicEnsurer,
)
from wirestream.producers import pcap_wire

from wirestream import topics
from wirestream.config import ENGINES, Settings
from wirestream.kafka import make_consumer, make_producer

log = logging.getLogger(__name__)

PROCESSOR_GROUP = "wirestream-processor"


def processor_group(settings: Settings) -> str:
    """The processors' consumer group; topic namespaces (``topic_prefix``) get their own."""
    return settings.topic_prefix + PROCESSOR_GROUP


FILE_CHUNK_BYTES = 512 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024  # extracted files beyond this are cut (and marked truncated)
FINALISE_WINDOW = 120.0  # seconds a send's completion is re-checked after this processor's part
RECHECK_EVERY = 2.0
ASSIGN_SETTLE = 30.0  # seconds an assignment waits for in-flight capture-parts transactions
# Java's default partitioner: a uid lands in the same partition number of every log topic, for
# our consumers and for Kafka Streams / ksqlDB joins alike.
LOG_PARTITIONER = "murmur2_random"


class EngineSession(Protocol):
    """One engine instance analysing one (send, partition) stream, writing to a Sink."""

    def process(self, packet: Packet) -> None: ...

    def finish(self) -> None:
        """End of the stream: flush every pending record (Zeek's end of trace)."""


# Builds a session writing into the given sink (``log(name, record)``, ``file(extracted)``).
EngineFactory = Callable[[Any], EngineSession]


class EngineUnavailable(RuntimeError):
    """The asked-for analysis engine cannot run here."""


def engine_options() -> Any:
    """What each stream's engine runs with: ``zeek -r`` defaults plus file hashing and
    extraction (the capture details list every extracted file with its metadata)."""
    from wirestream.processors.analyze_cli import AnalyzeOptions

    return AnalyzeOptions(hashes=("MD5", "SHA1", "SHA256"), extract=True)


def resolve_engine(kind: str, settings: Settings) -> tuple[str, EngineFactory]:
    """The engine for ``--engine auto|builtin|zeek`` as (name, factory); auto prefers a real
    Zeek when one is installed (as ``wirestream analyze`` does), else the built-in engine."""
    from wirestream.processors.zeek_engine import find_zeek

    if kind not in ENGINES:
        raise EngineUnavailable(f"unknown engine {kind!r}; use one of {', '.join(ENGINES)}")
    zeek = find_zeek(settings.zeek_path) if kind in ("auto", "zeek") else None
    if kind == "zeek" and zeek is None:
        raise EngineUnavailable(
            "--engine zeek: no zeek binary found (set WIRESTREAM_ZEEK_PATH or put zeek on PATH)"
        )
    options = engine_options()
    if zeek is not None:
        return "zeek", lambda sink: ZeekStreamSession(zeek, sink, options)
    from wirestream.processors.analyze_cli import build_engine

    return "builtin", lambda sink: build_engine(sink, options)


class ZeekStreamSession:
    """A real Zeek over one stream: packets spool to a temporary pcap, Zeek reads it at the end.

    UNVERIFIED here (no Zeek installed): relies on ``zeek_engine.run_zeek``, itself tested only
    against a fake zeek script.
    """

    def __init__(self, zeek: str, sink: Any, options: Any) -> None:
        import tempfile

        self.zeek, self.sink, self.options = zeek, sink, options
        self.file = tempfile.NamedTemporaryFile(suffix=".pcap", delete=False)  # noqa: SIM115
        self.linktype: int | None = None

    def process(self, packet: Packet) -> None:
        from wirestream.processors.engine.pcapio import pcap_file_header, pcap_record

        if self.linktype is None:
            self.linktype = packet.linktype
            self.file.write(pcap_file_header(packet.linktype))
        elif packet.linktype != self.linktype:
            raise ValueError("zeek engine: packets of several link types in one stream")
        self.file.write(pcap_record(packet.ts, packet.data, packet.wirelen))

    def finish(self) -> None:
        import os

        from wirestream.processors.zeek_engine import run_zeek

        self.file.close()
        try:
            if self.linktype is not None:
                run_zeek(self.zeek, [self.file.name], self.sink, self.options)
        finally:
            os.unlink(self.file.name)


@dataclass
class _Sink:
    """Receives one stream's engine output: encodes records into the spool, keeps files."""

    encoder: LogEncoder
    capture_id: str
    spool: OutputSpool
    files: list[ExtractedFile] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def log(self, log_name: str, record: Record) -> None:
        self.spool.append(self.encoder.encode(log_name, record, self.capture_id))
        self.counts[log_name] = self.counts.get(log_name, 0) + 1

    def file(self, extracted: ExtractedFile) -> None:
        self.files.append(extracted)


@dataclass
class _Stream:
    """An open (send, partition) stream: its engine, output and where it started."""

    send_id: str
    partition: int
    first_offset: int
    sink: _Sink
    session: EngineSession | None
    next_seq: int = 0
    packets: int = 0
    errors: list[str] = field(default_factory=list)


class BroProcessor:
    """Consumes the pcap topic in a consumer group; publishes Zeek logs transactionally."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: str | None = None,
        engine_factory: EngineFactory | None = None,
        engine_name: str | None = None,
        group_id: str | None = None,
        instance: str | None = None,
        spool_memory: int = DEFAULT_SPOOL_MEMORY,
        transaction_timeout_ms: int = 60_000,
    ) -> None:
        self.settings = settings
        if engine_factory is None:
            engine_name, engine_factory = resolve_engine(engine or settings.engine, settings)
        self.engine_name = engine_name or "custom"
        self.engine_factory = engine_factory
        self.group_id = group_id or processor_group(settings)
        self.instance = instance or uuid.uuid4().hex[:12]
        self.spool_memory = spool_memory
        self.pcap_topic = topics.system_topic(topics.PCAP_TOPIC, settings)
        self.parts_topic = topics.system_topic(topics.CAPTURE_PARTS_TOPIC, settings)
        self.captures_topic = topics.system_topic(topics.CAPTURES_TOPIC, settings)
        self.chunks_topic = topics.system_topic(topics.FILE_CHUNKS_TOPIC, settings)
        self.streams: dict[tuple[int, str], _Stream] = {}
        self.completed: set[tuple[str, int]] = set()
        self.stored_files: set[str] = set()  # sha256 of file contents this processor stored
        self.stop_event = threading.Event()
        self.streams_done = 0
        # send_id -> (a part this processor committed, when): sends it may have to finalise.
        self.unfinished: dict[str, tuple[cd.CapturePart, float]] = {}
        self.consumer = make_consumer(
            settings,
            self.group_id,
            **{
                "max.poll.interval.ms": 900_000,
                "fetch.max.bytes": topics.PCAP_MAX_MESSAGE_BYTES * 2,
                "max.partition.fetch.bytes": topics.PCAP_MAX_MESSAGE_BYTES,
            },
        )
        # A stable transactional.id per (group, instance): a restarted instance fences its
        # predecessor and aborts its open transaction at once instead of waiting for the timeout.
        self.producer = make_producer(
            settings,
            **{
                "transactional.id": f"{self.group_id}-{self.instance}",
                "transaction.timeout.ms": transaction_timeout_ms,
                "linger.ms": 20,
                "partitioner": LOG_PARTITIONER,
            },
        )
        self.producer.init_transactions(60)
        from wirestream.processors.capture_store import PartsIndex

        self.parts = PartsIndex(settings)
        self.encoders: dict[str, LogEncoder] = {}
        self.topic_ensurer = TopicEnsurer(settings)
        self._publish_schema = _schema_publisher(settings)

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()

    @analysis_gc()  # a long-running analysis: the same collector settings as `analyze`
    def run(self, *, max_idle: float | None = None) -> None:
        """Process until stopped (SIGTERM/SIGINT via :func:`serve`, or ``stop()``)."""
        self._finish_orphaned_sends()
        self.consumer.subscribe(
            [self.pcap_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        idle_since = last_check = time.monotonic()
        try:
            while not self.stop_event.is_set():
                msg = self.consumer.poll(0.5)
                if self.unfinished and time.monotonic() - last_check > RECHECK_EVERY:
                    self._check_unfinished()
                    last_check = time.monotonic()
                if msg is None:
                    if max_idle is not None and time.monotonic() - idle_since > max_idle:
                        break
                    continue
                idle_since = time.monotonic()
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer: %s", msg.error())
                    continue
                self._handle(msg)
        finally:
            self.close()

    def close(self) -> None:
        for stream in self.streams.values():
            stream.sink.spool.close()
        self.streams.clear()
        with contextlib.suppress(RuntimeError):
            self.consumer.close()
        with contextlib.suppress(RuntimeError):
            self.parts.close()
        self.producer.flush(10)

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [p.partition for p in partitions])
        # Every stream committed before this assignment must be known, or it would be analysed
        # and published again: wait out transactions being committed right now (the previous
        # owner's last commit returned before it gave the partition up; its markers may lag).
        self._finish(self.parts.refresh(settle=ASSIGN_SETTLE))
        self.completed = set(self.parts.streams)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        revoked = {p.partition for p in partitions}
        log.info("revoked %s", sorted(revoked))
        for key in [k for k in self.streams if k[0] in revoked]:
            self.streams.pop(key).sink.spool.close()

    # --- messages ----------------------------------------------------------------------------

    def _handle(self, msg: Message) -> None:
        try:
            self._dispatch(msg)
        except (pcap_wire.WireError, ValueError) as exc:
            # A malformed message must not stop the service (it would be re-read forever).
            log.error(
                "skipping malformed message at %s/%d@%d: %s",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                exc,
            )

    def _dispatch(self, msg: Message) -> None:
        headers = pcap_wire.header_map(msg.headers())
        kind, send = headers.get(pcap_wire.KIND), headers.get(pcap_wire.SEND, b"").decode()
        partition = msg.partition()
        if not send or kind not in (pcap_wire.PACKETS, pcap_wire.END):
            log.warning(
                "skipping foreign message at %s/%d@%d", msg.topic(), partition, msg.offset()
            )
            return
        if (send, partition) in self.completed:
            return  # re-read after a restart: its output is already committed
        if kind == pcap_wire.PACKETS:
            seq = int(headers.get(pcap_wire.SEQ, b"-1"))
            md5 = headers.get(pcap_wire.CAPTURE, b"").decode()
            sensor = headers.get(pcap_wire.SENSOR, b"").decode() or self.settings.sensor
            self._packets(send, partition, msg.offset(), seq, md5, sensor, msg.value())
        else:
            self._end(send, partition, msg.offset(), msg.value())

    def _open(self, send: str, partition: int, offset: int, md5: str, sensor: str) -> _Stream:
        encoder = self.encoders.get(sensor)
        if encoder is None:
            encoder = self.encoders[sensor] = LogEncoder(
                self.settings, sensor, self._publish_schema
            )
        sink = _Sink(encoder, md5, OutputSpool(self.spool_memory))
        stream = _Stream(send, partition, offset, sink, None)
        try:
            stream.session = self.engine_factory(sink)
        except Exception as exc:  # an engine that cannot start fails this capture, not the service
            log.exception("engine failed to start")
            stream.errors.append(f"engine failed to start: {exc}")
        self.streams[(partition, send)] = stream
        return stream

    def _packets(
        self, send: str, partition: int, offset: int, seq: int, md5: str, sensor: str, value: bytes
    ) -> None:
        stream = self.streams.get((partition, send))
        if stream is None:
            stream = self._open(send, partition, offset, md5, sensor)
            if seq != 0:
                stream.errors.append(f"partition {partition}: stream starts at batch {seq}, not 0")
        if seq != stream.next_seq:
            stream.errors.append(
                f"partition {partition}: batch {seq} where {stream.next_seq} was due"
            )
        stream.next_seq = seq + 1
        if stream.session is None:
            return
        try:
            for packet in pcap_wire.decode_packets(value):
                stream.session.process(packet)
                stream.packets += 1
        except Exception as exc:
            log.exception("engine failed on %s partition %d", send, partition)
            stream.errors.append(f"partition {partition}: analysis failed: {exc}")
            stream.session = None

    def _end(self, send: str, partition: int, offset: int, value: bytes) -> None:
        marker = pcap_wire.EndMarker.from_bytes(value)
        stream = self.streams.pop((partition, send), None)
        if stream is None:  # no packets of this capture hashed to this partition
            stream = self._open(send, partition, offset, marker.md5, marker.sensor)
            self.streams.pop((partition, send))
        if marker.batches != stream.next_seq:
            stream.errors.append(
                f"partition {partition}: {marker.batches} batches sent, {stream.next_seq} received"
            )
        if stream.session is not None:
            try:
                stream.session.finish()
            except Exception as exc:
                log.exception("engine failed finishing %s partition %d", send, partition)
                stream.errors.append(f"partition {partition}: analysis failed at end: {exc}")
        if marker.error:
            stream.errors.append(marker.error)
        try:
            part = self._commit_stream(stream, marker, offset)
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].fatal():
                raise  # fenced by a newer instance of this processor: stop
            log.error("stream %s/%d not committed (%s); it will be re-read", send, partition, exc)
            return
        finally:
            stream.sink.spool.close()
        self.completed.add((send, partition))
        self.streams_done += 1
        self.unfinished[send] = (part, time.monotonic())
        self._check_unfinished()

    # --- output ------------------------------------------------------------------------------

    def _commit_offset(self, partition: int, end_offset: int) -> int:
        """Next offset to consume on restart: past this stream, but not past an open stream."""
        open_starts = [s.first_offset for (p, _), s in self.streams.items() if p == partition]
        return min([end_offset + 1, *open_starts])

    def _commit_stream(
        self, stream: _Stream, marker: pcap_wire.EndMarker, end_offset: int
    ) -> cd.CapturePart:
        offsets: dict[str, dict[int, list[int]]] = {}
        topic_of: dict[str, str] = {}
        counts: dict[str, int] = {}
        failures: list[str] = []

        def tracker(log_name: str) -> Callable[[KafkaError | None, Message], None]:
            """A delivery callback per log, widening that log's offset range per partition."""
            ranges = offsets.setdefault(log_name, {})

            def delivered(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    failures.append(str(err))
                    return
                offset = msg.offset()
                rng = ranges.get(msg.partition())
                if rng is None:
                    ranges[msg.partition()] = [offset, offset]
                elif offset < rng[0]:
                    rng[0] = offset
                elif offset > rng[1]:
                    rng[1] = offset

            return delivered

        self.topic_ensurer.ensure(set(stream.sink.counts))
        callbacks: dict[str, Callable[[KafkaError | None, Message], None]] = {}
        produce = self.producer.produce
        self.producer.begin_transaction()
        try:
            for m in stream.sink.spool:
                callback = callbacks.get(m.log)
                if callback is None:
                    callback = callbacks[m.log] = tracker(m.log)
                    topic_of[m.log] = m.topic
                counts[m.log] = counts.get(m.log, 0) + 1
                try:
                    produce(
                        m.topic,
                        m.value,
                        m.key,
                        headers=m.headers,
                        timestamp=m.timestamp_ms,
                        on_delivery=callback,
                    )
                except BufferError:
                    self._produce(
                        topic=m.topic,
                        key=m.key,
                        value=m.value,
                        headers=m.headers,
                        timestamp=m.timestamp_ms,
                        on_delivery=callback,
                    )
            files = [self._publish_file(f, marker) for f in stream.sink.files]
            if self.producer.flush(120):
                failures.append("output not delivered within 120 s")
            if failures:
                raise KafkaException(
                    KafkaError(KafkaError._FAIL, f"delivery failed: {failures[0]}")
                )
            part = cd.CapturePart(
                send_id=marker.send_id,
                md5=marker.md5,
                name=marker.name,
                sensor=marker.sensor,
                partition=marker.partition,
                partitions=marker.partitions,
                capture=marker.capture,
                logs={
                    lg: {
                        "topic": topic_of[lg],
                        "records": counts[lg],
                        "offsets": {str(p): r for p, r in sorted(offsets.get(lg, {}).items())},
                    }
                    for lg in sorted(counts)
                },
                files=files,
                errors=stream.errors,
                engine=self.engine_name,
                finished_at=time.time(),
                processor=self.instance,
                sent_at=marker.sent_at,
            )
            self._produce(topic=self.parts_topic, key=part.key(), value=part.to_bytes())
            next_offset = self._commit_offset(stream.partition, end_offset)
            self.producer.send_offsets_to_transaction(
                [TopicPartition(self.pcap_topic, stream.partition, next_offset)],
                self.consumer.consumer_group_metadata(),
                60,
            )
            self.producer.commit_transaction(120)
        except BaseException:
            log.exception(
                "transaction for %s partition %d failed; aborting", marker.send_id, marker.partition
            )
            try:
                self.producer.abort_transaction(60)
            except KafkaException as exc:
                log.error("abort failed: %s", exc)
            self._rewind_all()
            raise
        log.info(
            "%s (%s) partition %d: %d packets, %d records%s",
            marker.name,
            marker.md5,
            marker.partition,
            stream.packets,
            sum(counts.values()),
            f", errors: {stream.errors}" if stream.errors else "",
        )
        return part

    def _produce(self, **kwargs: Any) -> None:
        while True:
            try:
                self.producer.produce(**kwargs)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _publish_file(
        self, extracted: ExtractedFile, marker: pcap_wire.EndMarker
    ) -> dict[str, Any]:
        """Chunks of one extracted file (once per content), and its metadata for the details."""
        data = extracted.data[:MAX_FILE_BYTES]
        meta = file_metadata(data)
        entry = {
            "fuid": extracted.fuid,
            "filename": safe_name(extracted.filename, extracted.fuid),
            "truncated": extracted.truncated or len(extracted.data) > MAX_FILE_BYTES,
            **meta,
        }
        sha = meta["sha256"]
        from wirestream.processors.file_analysis import chunk_messages

        for key, value, headers in chunk_messages(
            data,
            sha,
            extracted.fuid,
            marker.md5,
            stored=sha in self.stored_files or sha in self.parts.file_hashes,
            chunk=FILE_CHUNK_BYTES,
        ):
            self._produce(topic=self.chunks_topic, key=key, value=value, headers=headers)
        self.stored_files.add(sha)
        return entry

    def _rewind_all(self) -> None:
        """After a failed transaction: forget open streams and re-read from the committed offsets."""
        for stream in self.streams.values():
            stream.sink.spool.close()
        self.streams.clear()
        assigned = self.consumer.assignment()
        if not assigned:
            return
        for tp in self.consumer.committed(assigned, timeout=30):
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))

    # --- capture completion ------------------------------------------------------------------

    def _check_unfinished(self) -> None:
        """Finalises sends of which this processor committed a part, once all parts are visible.

        A part committed by another processor a moment ago may not be readable yet (transaction
        markers are written after the commit returns), so sends stay on the list and are checked
        again while idle, for ``FINALISE_WINDOW`` seconds; after that the last committer has
        certainly seen every part (and the start-up sweep catches anything left).
        """
        self._finish(self.parts.refresh())
        now = time.monotonic()
        for send_id, (own, since) in list(self.unfinished.items()):
            parts = {**self.parts.open.get(send_id, {}), own.partition: own}
            if len(parts) >= own.partitions:
                self._write_details(cd.merge_parts(list(parts.values())))
                del self.unfinished[send_id]
            elif now - since > FINALISE_WINDOW:
                del self.unfinished[send_id]

    def _finish(self, complete: list[tuple[str, list[cd.CapturePart]]]) -> None:
        """Writes the details of sends that just became complete and that this processor has a
        part of; the others are finalised by whoever committed their last part."""
        for send_id, parts in complete:
            if send_id in self.unfinished:
                self._write_details(cd.merge_parts(parts))
                del self.unfinished[send_id]

    def _finish_orphaned_sends(self) -> None:
        """Sends whose every part is committed but whose final record is missing (a finaliser
        killed between the two) are finished here."""
        from wirestream.processors.capture_store import read_captures, read_parts

        by_send: dict[str, list[cd.CapturePart]] = {}
        for part in read_parts(self.settings).values():
            by_send.setdefault(part.send_id, []).append(part)
        if not by_send:
            return
        final = {d.send_id for d in read_captures(self.settings).values() if d.done}
        for send_id, parts in by_send.items():
            if send_id not in final and len({p.partition for p in parts}) >= parts[0].partitions:
                log.info("finishing capture %s (send %s) left unfinished", parts[0].md5, send_id)
                self._write_details(cd.merge_parts(parts))

    def _write_details(self, details: cd.CaptureDetails) -> None:
        self.producer.begin_transaction()
        try:
            self._produce(
                topic=self.captures_topic, key=details.md5.encode(), value=details.to_bytes()
            )
            self.producer.commit_transaction(60)
        except BaseException:
            self.producer.abort_transaction(60)
            raise
        log.info("capture %s (%s): %s", details.name, details.md5, details.status)


def _schema_publisher(settings: Settings) -> Callable[[Any], None] | None:
    """Announces writer schemas on the schemas topic so consumers can decode by fingerprint."""
    try:
        from wirestream.schemas.store import SchemaStore
    except ImportError:
        log.warning("schema store not available: writer schemas are not announced")
        return None
    store = SchemaStore(settings)
    return store.publish


def serve(processor: BroProcessor) -> None:
    """Runs a processor until SIGTERM or SIGINT, then stops cleanly (open streams are dropped
    uncommitted and re-analysed by whoever gets their partitions)."""

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        processor.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    processor.run()
