"""Consumer benchmark: Kafka topic window -> DataFrame, this library vs the plain path.

Produces the same N conn records (default 1M) once to two topics on the broker (kept between
runs; re-produced only if the count differs): ``bench.zeek.conn`` in the single-object framing
(the default ``wire_format``) and ``benchcf.zeek.conn`` in the Confluent framing (written with
the project's ``wire_encoder`` for ``wire_format = "confluent"``, ids from the project's own
registry, ``schemas/registry_server.py``, which this script starts on the ``benchcf.`` schemas
topic). Then, in the same run, each path in a fresh process:

* wirestream: ``read()`` of the whole time span, and ``windows()`` over it (1-minute windows),
  on each topic;
* the issue's plain path (issue 6), on the Confluent topic: confluent-kafka ``Consumer``,
  ``confluent_kafka.schema_registry.avro.AvroDeserializer`` per message (its
  ``SchemaRegistryClient`` against our registry), then ``pd.DataFrame(list_of_dicts)``;
* the strict plain path, on each topic: the same consumer, fastavro's ``schemaless_reader`` per
  message with the writer schema already in hand (no registry, no deserializer layers), then
  ``pd.DataFrame`` and ts converted to datetimes;

and prints one table: rows/s (wall and CPU), peak memory per million rows (the growth of the
kernel's peak-RSS mark: tracemalloc does not see Rust/librdkafka allocations) and the load
average of each path, then every ratio side by side (library vs the issue's AvroDeserializer
path, library vs fastavro-direct); then decode alone; then live latency: records produced
one by one while ``windows()`` (``--live-every``, default 250 ms windows, 0 lateness) is open:
p50/p99 of hand-out minus the window's end and of hand-out minus produce; and ``tail()``:
p50/p99 of produce -> visible in a fresh call.

    WIRESTREAM_BOOTSTRAP_SERVERS=127.0.0.1:19092 .venv/bin/python benchmarks/bench_consumer.py
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import fastavro
import pandas as pd
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from wirestream.schemas.avro import bundled_avro_schema
from wirestream.schemas.codec import (
    CONFLUENT_HEADER,
    SINGLE_OBJECT_HEADER,
    encode_many,
    wire_schema,
)
from wirestream.schemas.headers import headers_for
from wirestream.schemas.registry import wire_encoder
from wirestream.schemas.registry_server import TopicRegistryState, serve_in_thread
from wirestream.schemas.store import SchemaStore

from wirestream import topics
from wirestream.config import Settings, load_settings
from wirestream.kafka import make_admin, make_consumer, make_producer, resolve_bootstrap

LOG = "conn"
BENCH_PREFIX = "bench."  # single-object topic (and its schemas topic)
CONFLUENT_PREFIX = (
    "benchcf."  # Confluent-framed topic; the registry keeps its ids on its schemas topic
)
T0 = 1_700_000_000.0  # first record's ts; records spread over SPAN_S seconds
SPAN_S = 3600.0


def conn_record(i: int, rng: random.Random) -> dict:
    """A plausible conn record; ts roughly increasing with a little disorder, like Zeek's."""
    ts = T0 + i * SPAN_S / N_DEFAULT - rng.random() * 2.0
    proto = rng.choice(("tcp", "tcp", "tcp", "udp", "icmp"))
    return {
        "ts": round(max(ts, T0), 6),
        "uid": f"C{rng.getrandbits(64):016x}",
        "id.orig_h": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "id.orig_p": rng.randrange(1024, 65536),
        "id.resp_h": f"192.168.{rng.randrange(4)}.{rng.randrange(1, 255)}",
        "id.resp_p": rng.choice((53, 80, 443, 22, 8080, 123)),
        "proto": proto,
        "service": rng.choice((None, "dns", "http", "ssl")),
        "duration": None if rng.random() < 0.2 else round(rng.random() * 30, 6),
        "orig_bytes": rng.randrange(0, 100_000),
        "resp_bytes": rng.randrange(0, 1_000_000),
        "conn_state": rng.choice(("SF", "S0", "REJ", "RSTO", "OTH")),
        "local_orig": rng.random() < 0.5,
        "local_resp": None if rng.random() < 0.5 else False,
        "missed_bytes": 0,
        "history": rng.choice(("ShADadFf", "S", "Dd", "ShADadfF")),
        "orig_pkts": rng.randrange(1, 200),
        "orig_ip_bytes": rng.randrange(40, 200_000),
        "resp_pkts": rng.randrange(0, 800),
        "resp_ip_bytes": rng.randrange(0, 1_200_000),
        "tunnel_parents": [] if rng.random() < 0.95 else [f"C{rng.getrandbits(32):08x}"],
        "ip_proto": {"tcp": 6, "udp": 17, "icmp": 1}[proto],
    }


N_DEFAULT = 1_000_000


def topic_count(settings: Settings, topic: str) -> int:
    consumer = make_consumer(settings, f"bench-count-{uuid.uuid4().hex[:8]}")
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return -1
        total = 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def produce(settings: Settings, n: int) -> None:
    """(Re)create the bench topic and fill it with n conn records (ts as Kafka timestamp), framed
    by ``settings.wire_format`` through the project's encoder for it (Confluent: registered
    under ``<topic>-value`` at ``settings.schema_registry_url``). Same seed, same records."""
    topic = topics.log_topic(LOG, settings)
    admin = make_admin(settings)
    if topic in admin.list_topics(timeout=10).topics:
        admin.delete_topics([topic])[topic].result(30)
        time.sleep(2)
    spec = topics.log_topic_spec(LOG, settings)
    admin.create_topics(
        [NewTopic(spec.name, spec.partitions, spec.replication, config=spec.config)]
    )[topic].result(30)
    schema = bundled_avro_schema(LOG)
    with SchemaStore(settings) as store:
        fp = store.publish(schema)
    headers = headers_for(LOG, "bench", "bench-capture", fp)
    encode = wire_encoder(settings)
    producer = make_producer(settings, **{"linger.ms": 50, "batch.size": 1_000_000})
    rng = random.Random(42)
    started = time.perf_counter()
    chunk = 50_000
    for first in range(0, n, chunk):
        records = [conn_record(i, rng) for i in range(first, min(n, first + chunk))]
        for record, value in zip(records, encode(records, schema), strict=True):
            while True:
                try:
                    producer.produce(
                        topic,
                        key=record["uid"].encode(),
                        value=value,
                        headers=headers,
                        timestamp=int(record["ts"] * 1000),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)
        print(f"  produced {min(n, first + chunk):,}", end="\r", flush=True)
    producer.flush(120)
    print(f"  produced {n:,} records in {time.perf_counter() - started:.0f}s")


def consume_all(settings: Settings, on_message) -> None:
    """Every message of the log topic, start to end, through ``on_message`` (the plain paths'
    shared consumer loop: confluent-kafka's ``Consumer``, batches of 10k)."""
    topic = topics.log_topic(LOG, settings)
    consumer = make_consumer(settings, f"bench-plain-{uuid.uuid4().hex[:8]}")
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for p in meta.partitions:
        ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    done = {p for p, end in ends.items() if end == 0}
    while len(done) < len(ends):
        for msg in consumer.consume(10_000, timeout=1.0):
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(msg.error())
                continue
            on_message(msg)
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
    consumer.close()


def fastavro_read(settings: Settings) -> pd.DataFrame:
    """The strict baseline: fastavro per message with the writer schema in hand (no registry,
    no deserializer layers), into dicts, then pd.DataFrame and ts as datetimes."""
    parsed = wire_schema(bundled_avro_schema(LOG)).parsed  # fastavro's parsed writer schema
    skip = CONFLUENT_HEADER if settings.wire_format == "confluent" else SINGLE_OBJECT_HEADER
    rows = []

    def on_message(msg: Message) -> None:
        buf = io.BytesIO(msg.value())
        buf.seek(skip)
        rows.append(fastavro.schemaless_reader(buf, parsed))

    consume_all(settings, on_message)
    frame = pd.DataFrame(rows)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="us", utc=True)
    return frame


def avro_deserializer_read(settings: Settings) -> pd.DataFrame:
    """Issue 6's plain path, literally: confluent-kafka ``AvroDeserializer`` per message (its
    ``SchemaRegistryClient`` resolves the id at our registry), then ``pd.DataFrame(dicts)``.
    Its dicts already hold ts as datetimes (timestamp-micros), so nothing follows."""
    topic = topics.log_topic(LOG, settings)
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": settings.schema_registry_url}))
    context = SerializationContext(topic, MessageField.VALUE)
    rows = []
    consume_all(settings, lambda msg: rows.append(deserialize(msg.value(), context)))
    return pd.DataFrame(rows)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> float:
    """Reset the kernel's peak-RSS mark (VmHWM) so each measurement gets its own peak; returns
    the current RSS. Linux only (clear_refs 5); elsewhere peaks accumulate across runs."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


@dataclass
class Timing:
    seconds: float  # wall clock
    cpu: float  # CPU seconds of this process, all threads (librdkafka, polars, Python)
    rows: int
    peak_mb: float = 0.0  # growth of the process's peak RSS during the run


def timed(fn, rows_of) -> Timing:
    """Wall and CPU time of fn(); CPU time is what this process did, whatever the machine load
    (the broker and other jobs share the 2 cores), so its ratio is the steadier comparison."""
    gc.collect()
    before = reset_peak()
    started, cpu0 = time.perf_counter(), time.process_time()
    result = fn()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    rows = rows_of(result)
    del result
    return Timing(elapsed, cpu, rows, peak_mb() - before)


def show(label: str, t: Timing) -> None:
    per_m = t.peak_mb / max(t.rows, 1) * 1e6
    print(
        f"{label:<46} {t.rows:>10,} rows {t.seconds:6.2f}s {t.rows / t.seconds:>10,.0f} rows/s | "
        f"CPU {t.cpu:6.2f}s {t.rows / t.cpu:>10,.0f} rows/CPU-s | peak RSS +{t.peak_mb:,.0f} MB "
        f"({per_m:,.0f} MB per 1M rows)"
    )


def ratio(fast: Timing, slow: Timing) -> str:
    wall = (slow.seconds / slow.rows) / (fast.seconds / fast.rows)
    cpu = (slow.cpu / slow.rows) / (fast.cpu / fast.rows)
    return f"{wall:.1f}x wall, {cpu:.1f}x CPU"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values_ms: list[float]) -> str:
    return (
        f"p50 {percentile(values_ms, 0.5):6.0f} ms  p99 {percentile(values_ms, 0.99):6.0f} ms  "
        f"max {max(values_ms):6.0f} ms"
    )


class LiveTopic:
    """A fresh conn topic (own prefix) and a producer sending one record at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.with_overrides(topic_prefix=f"benchlive{uuid.uuid4().hex[:6]}.")
        self.schema = bundled_avro_schema(LOG)
        with SchemaStore(self.settings) as store:
            fp = store.publish(self.schema)
        self.admin = make_admin(self.settings)
        spec = topics.log_topic_spec(LOG, self.settings)
        self.admin.create_topics(
            [NewTopic(spec.name, spec.partitions, spec.replication, config=spec.config)]
        )[spec.name].result(30)
        self.topic = spec.name
        self.producer = make_producer(self.settings, **{"linger.ms": 0})
        self.headers = headers_for(LOG, "bench", "live", fp)
        self.rng = random.Random(7)
        self.count = 0

    def send(self) -> tuple[str, float]:
        """Produce one record stamped now; (uid, its ts in epoch seconds)."""
        record = conn_record(self.count, self.rng)
        self.count += 1
        record["ts"] = time.time()
        self.producer.produce(
            self.topic,
            key=record["uid"].encode(),
            value=encode_many([record], self.schema)[0],
            headers=self.headers,
            timestamp=int(record["ts"] * 1000),
        )
        self.producer.poll(0)
        return record["uid"], record["ts"]

    def drop(self) -> None:
        self.producer.flush(10)
        names = [self.topic, topics.system_topic(topics.SCHEMAS_TOPIC, self.settings)]
        self.admin.delete_topics(names)


def live_windows(settings: Settings, samples: int, every_s: float) -> None:
    """Records produced one by one (every 20 ms, ts = now, 3 partitions) while ``windows()``
    (lateness 0) is open; per record, the hand-out time of its window minus (a) the window's
    end in event time and (b) the record's produce time."""
    from wirestream.consumers import windows

    live = LiveTopic(settings)
    produced: dict[str, float] = {}
    handed: dict[str, float] = {}
    stream = windows(
        LOG,
        every=f"{round(every_s * 1000)}ms",
        lateness="0s",
        settings=live.settings,
        group=f"bench-live-{uuid.uuid4().hex[:6]}",
        idle_flush=0.2,
        output="polars",
    )

    def watch() -> None:
        with stream:
            for _start, _end, frame in stream:
                now = time.time()
                for uid in frame["uid"].to_list():
                    handed.setdefault(uid, now)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + 30
    while not stream._assigned and time.monotonic() < deadline:  # group join
        time.sleep(0.1)
    time.sleep(0.5)
    for _ in range(samples):
        uid, ts = live.send()
        produced[uid] = ts
        time.sleep(0.02)
    live.producer.flush(10)
    deadline = time.monotonic() + 15
    while len(handed) < samples and time.monotonic() < deadline:
        time.sleep(0.05)
    stream.stop()
    watcher.join(10)
    live.drop()
    seen = [u for u in produced if u in handed]
    if not seen:
        print(f"live windows(every={every_s}s): nothing handed out")
        return
    # the window's end in event time: ts in ms (as Kafka stores it), epoch-aligned
    every_ms = round(every_s * 1000)
    ends = {u: (int(produced[u] * 1000) // every_ms + 1) * every_ms / 1000 for u in seen}
    after_end = [(handed[u] - ends[u]) * 1000 for u in seen]
    after_produce = [(handed[u] - produced[u]) * 1000 for u in seen]
    print(f"live windows(every={every_s:g}s, lateness 0): {len(seen)}/{samples} handed out")
    print(
        f"  hand-out - window end      {spread(after_end)}  (the library's own delay: the "
        "watermark passes the end once all 3 partitions have a newer record)"
    )
    print(
        f"  hand-out - record produced {spread(after_produce)}  (target p99 < 1 s; includes "
        f"up to {every_s:g} s of waiting for the window to end)"
    )


def live_tail(settings: Settings, samples: int) -> None:
    """Produce one record (acked), then call ``tail(LOG, 5)`` until it shows: produce ->
    visible in a fresh tail() call (which opens a consumer each time)."""
    from wirestream.consumers import tail

    live = LiveTopic(settings)
    tail(LOG, 1, settings=live.settings, output="polars")  # warm: schema lookup, imports
    lat = []
    for _ in range(samples):
        started = time.time()
        uid, _ts = live.send()
        live.producer.flush(10)
        while uid not in set(tail(LOG, 5, settings=live.settings, output="polars")["uid"]):
            pass
        lat.append((time.time() - started) * 1000)
    live.drop()
    print(f"live tail(5): {samples} records  {spread(lat)}  (produce, ack, fresh tail() call)")


@dataclass(frozen=True)
class MeasuredPath:
    label: str
    framing: str  # the topic it reads: "single-object" or "confluent"
    kind: str  # "library", "fastavro" (strict baseline) or "avro-deserializer" (the issue's)


RUNS = {
    "read-pandas": MeasuredPath("wirestream read() pandas", "single-object", "library"),
    "read-polars": MeasuredPath("wirestream read() polars", "single-object", "library"),
    "windows": MeasuredPath("wirestream windows(1min)", "single-object", "library"),
    "fastavro": MeasuredPath("plain: fastavro per message", "single-object", "fastavro"),
    "cf-read-pandas": MeasuredPath("wirestream read() pandas", "confluent", "library"),
    "cf-windows": MeasuredPath("wirestream windows(1min)", "confluent", "library"),
    "cf-fastavro": MeasuredPath("plain: fastavro per message", "confluent", "fastavro"),
    "cf-avro-deserializer": MeasuredPath(
        "plain: AvroDeserializer/message", "confluent", "avro-deserializer"
    ),
}
BASELINE_NAMES = {
    "avro-deserializer": "AvroDeserializer (issue 6's plain path)",
    "fastavro": "fastavro-direct (strict)",
}


def one_run(name: str, settings: Settings) -> Timing:
    """One measured path, after a small read to warm imports and the schema lookup."""
    from wirestream.consumers import read, windows

    start = pd.Timestamp(T0, unit="s", tz="UTC")
    end = start + pd.Timedelta(seconds=SPAN_S + 10)
    read(LOG, start, start + pd.Timedelta(seconds=1), settings=settings, progress=False)

    def all_windows() -> int:
        rows = 0
        with windows(
            LOG,
            every="1min",
            lateness="30s",
            settings=settings,
            group=f"bench-{uuid.uuid4().hex[:8]}",
            stop_at_end=True,
        ) as stream:
            for _s, _e, frame in stream:
                rows += len(frame)
        return rows

    action = name.removeprefix("cf-")
    if action == "windows":
        return timed(all_windows, lambda r: r)
    if action == "fastavro":
        return timed(lambda: fastavro_read(settings), len)
    if action == "avro-deserializer":
        return timed(lambda: avro_deserializer_read(settings), len)
    output = action.split("-")[1]
    return timed(
        lambda: read(LOG, start, end, settings=settings, output=output, progress=False), len
    )


def one_run_in_subprocess(name: str, registry_url: str) -> Timing:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", name, "--registry", registry_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"--one {name} failed:\n{proc.stderr[-3000:]}")
    return Timing(**json.loads(proc.stdout.strip().splitlines()[-1]))


def confluent_settings(settings: Settings, registry_url: str) -> Settings:
    return settings.with_overrides(
        topic_prefix=CONFLUENT_PREFIX, wire_format="confluent", schema_registry_url=registry_url
    )


def settings_for(name: str, settings: Settings, registry_url: str) -> Settings:
    return (
        confluent_settings(settings, registry_url)
        if RUNS[name].framing == "confluent"
        else settings
    )


def show_table(got: dict[str, tuple[Timing, str]]) -> None:
    """All paths, one line each: framing, rows/s by wall and CPU, peak RSS per 1M rows, load."""
    print(
        f"\n{'path':<32} {'topic':<13} {'rows':>9} {'wall s':>7} {'rows/s':>9} "
        f"{'CPU s':>7} {'rows/CPU-s':>10} {'MB/1M rows':>10}  load 1/5/15 at start"
    )
    for name, (t, load_at_start) in got.items():
        path = RUNS[name]
        per_m = t.peak_mb / max(t.rows, 1) * 1e6
        print(
            f"{path.label:<32} {path.framing:<13} {t.rows:>9,} {t.seconds:>7.2f} "
            f"{t.rows / t.seconds:>9,.0f} {t.cpu:>7.2f} {t.rows / t.cpu:>10,.0f} "
            f"{per_m:>10,.0f}  {load_at_start}"
        )


def show_ratios(got: dict[str, tuple[Timing, str]]) -> None:
    """Every library path against every baseline on the same topic (per-row time ratios)."""
    print(
        f"\n{'library path':<32} {'topic':<13} {'vs baseline':<40} {'wall':>6} {'CPU':>6}"
        "   (target >= 10x and >= 300k rows/s)"
    )
    for kind, baseline_name in BASELINE_NAMES.items():
        for name, (t, _load) in got.items():
            path = RUNS[name]
            if path.kind != "library":
                continue
            base = [
                b
                for b, (_, _l) in got.items()
                if RUNS[b].kind == kind and RUNS[b].framing == path.framing
            ]
            if not base:
                continue
            slow = got[base[0]][0]
            wall = (slow.seconds / slow.rows) / (t.seconds / t.rows)
            cpu = (slow.cpu / slow.rows) / (t.cpu / t.rows)
            print(
                f"{path.label:<32} {path.framing:<13} {baseline_name:<40} "
                f"{wall:>5.1f}x {cpu:>5.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=N_DEFAULT, help="records in each topic")
    parser.add_argument("--reproduce", action="store_true", help="produce the data again")
    parser.add_argument("--skip-plain", action="store_true", help="skip the slow baselines")
    parser.add_argument(
        "--skip-confluent", action="store_true", help="skip the Confluent-framed topic"
    )
    parser.add_argument("--live", type=int, default=300, help="live-latency samples (0: skip)")
    parser.add_argument(
        "--live-every", type=float, default=0.25, help="window length (s) for live latency"
    )
    parser.add_argument("--live-only", action="store_true", help="only the live-latency part")
    parser.add_argument("--one", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--registry", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    settings = resolve_bootstrap(load_settings()).with_overrides(topic_prefix=BENCH_PREFIX)
    if args.one:
        one_settings = settings_for(args.one, settings, args.registry)
        print(json.dumps(dataclasses.asdict(one_run(args.one, one_settings))))
        return
    if args.live_only:
        live_windows(settings, args.live, args.live_every)
        live_tail(settings, max(20, args.live // 3))
        return

    # Our Confluent-compatible registry, its state on the benchcf. schemas topic, so the ids in
    # the kept Confluent topic stay valid across runs; the measured paths use it over HTTP.
    registry_url = ""
    if not args.skip_confluent:
        state = TopicRegistryState(settings.with_overrides(topic_prefix=CONFLUENT_PREFIX))
        _server, registry_url = serve_in_thread(state)
        print(f"schema registry (schemas/registry_server.py) at {registry_url}")
    prepared = [settings]
    if registry_url:
        prepared.append(confluent_settings(settings, registry_url))
    for topic_settings in prepared:
        topic = topics.log_topic(LOG, topic_settings)
        have = topic_count(topic_settings, topic)
        if args.reproduce or have != args.records:
            print(f"producing {args.records:,} conn records to {topic} (topic has {have})")
            produce(topic_settings, args.records)

    print(f"\n{args.records:,} conn records per topic, 3 partitions, ts over {SPAN_S:.0f}s")
    print(f"load average at start: {load()} ({os.cpu_count()} CPUs, shared with the broker)")
    print("each line: a fresh process (imports and a small read first), so no run inherits")
    print("another's allocator memory in its peak-RSS figure")
    got: dict[str, tuple[Timing, str]] = {}
    for name, path in RUNS.items():
        if path.kind != "library" and args.skip_plain:
            continue
        if path.framing == "confluent" and not registry_url:
            continue
        load_at_start = load()
        got[name] = (one_run_in_subprocess(name, registry_url), load_at_start)
        show(f"{path.label} [{path.framing}]", got[name][0])
    show_table(got)
    show_ratios(got)
    print(f"load average after the throughput runs: {load()}")
    decode_only(settings, 200_000)
    if args.live:
        print()
        live_windows(settings, args.live, args.live_every)
        live_tail(settings, max(20, args.live // 3))


def raw_values(settings: Settings, n: int) -> list[bytes]:
    """The first n message values of the bench topic (for the decode-only comparison)."""
    topic = topics.log_topic(LOG, settings)
    consumer = make_consumer(settings, f"bench-raw-{uuid.uuid4().hex[:8]}")
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    values: list[bytes] = []
    while len(values) < n:
        values += [m.value() for m in consumer.consume(10_000, timeout=1.0) if m.error() is None]
    consumer.close()
    return values[:n]


def decode_only(settings: Settings, n: int) -> None:
    """Messages already in memory -> pandas: the library's decode vs fastavro + pd.DataFrame.

    Both paths above share librdkafka's per-message cost (confluent-kafka builds a Python
    Message per record); this isolates what the library itself does.
    """
    from wirestream.consumers.decode import decode_frame
    from wirestream.schemas.store import SchemaCache

    values = raw_values(settings, n)
    schema = bundled_avro_schema(LOG)
    parsed = wire_schema(schema).parsed
    cache = SchemaCache([schema])

    def plain() -> pd.DataFrame:
        rows = []
        for value in values:
            buf = io.BytesIO(value)
            buf.seek(SINGLE_OBJECT_HEADER)
            rows.append(fastavro.schemaless_reader(buf, parsed))
        return pd.DataFrame(rows)

    decode_frame(values[:100], cache)  # warm-up: first use loads pandas/Arrow extension code
    print(f"\ndecode only ({n:,} messages already in memory -> pandas):")
    fast = timed(lambda: decode_frame(values, cache)[0], len)
    show("  wirestream decode_frame", fast)
    slow = timed(plain, len)
    show("  fastavro per message", slow)
    print(f"  ratio: {ratio(fast, slow)}")


if __name__ == "__main__":
    main()
