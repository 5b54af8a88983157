"""The Bro processor's transport and transactions, with a test-double engine on the real broker.

The double (tests/test_processor_double.py) stands in for the packet analysis engine so these
tests check only what the processor owns: every (capture, partition) stream published exactly
once, atomically with its consumed offsets, surviving kill -9, split across a consumer group.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pktbuild as pb
import pytest
from test_pipeline_support import private_settings, read_all
from test_processor_double import PairCountingEngine, factory
from wirestream.processors.bro_processor import BroProcessor
from wirestream.processors.capture_store import read_captures, read_parts, wait_for_details
from wirestream.producers.partitioning import partition_for
from wirestream.producers.pcap_producer import PcapProducer
from wirestream.producers.pcap_reader import CaptureInfo, HashingFile, read_capture
from wirestream.schemas import codec
from wirestream.schemas.headers import header_values

from wirestream import topics
from wirestream.kafka import make_admin

pytestmark = [pytest.mark.broker]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pipeline_settings(settings):
    """Settings with a private topic namespace on the real broker."""
    return private_settings(settings)


def _capture(path: Path, seed: int, n: int = 400, files: int = 0) -> Path:
    rng = random.Random(seed)
    hosts = [f"10.{seed % 200}.{i}.{(i * 13) % 256}" for i in range(1, 30)]
    frames = []
    for i in range(n):
        a, b = rng.sample(hosts, 2)
        payload = rng.randbytes(rng.randrange(0, 400))
        if i < files:
            payload = b"FILE:" + (b"%d-content " % (i % 2)) * 200
        frames.append(
            (1_500_000_000 + seed + i * 0.01, pb.udp4_frame(40000 + i, 53, payload, src=a, dst=b))
        )
    return pb.write_pcap(path, frames)


class _ListSink:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []
        self.files: list = []

    def log(self, log_name: str, record: dict) -> None:
        self.records.append((log_name, record))

    def file(self, extracted) -> None:
        self.files.append(extracted)


def expected_conn(path: Path, partitions: int = 3) -> collections.Counter:
    """What the double yields per partition stream, as the processor should publish it."""
    streams: dict[int, PairCountingEngine] = {}
    sinks: dict[int, _ListSink] = {}
    with path.open("rb") as raw:
        for p in read_capture(HashingFile(raw), CaptureInfo()):
            part = partition_for(p.linktype, p.data, partitions)
            if part not in streams:
                sinks[part] = _ListSink()
                streams[part] = PairCountingEngine(sinks[part])
            streams[part].process(p)
    for engine in streams.values():
        engine.finish()
    return collections.Counter(
        (r["uid"], r["orig_pkts"], r["orig_ip_bytes"]) for s in sinks.values() for _, r in s.records
    )


def read_log(
    settings, log_name: str, settle: float | None = None
) -> list[tuple[int, bytes, int, dict, dict]]:
    """Committed records of one log topic: (partition, key, timestamp ms, headers, record)."""
    from wirestream.schemas.store import SchemaStore

    topic = topics.log_topic(log_name, settings)
    store = SchemaStore(settings)
    return [
        (
            m.partition(),
            m.key(),
            m.timestamp()[1],
            header_values(m.headers()),
            codec.decode(m.value(), store),
        )
        for m in read_all(settings, topic, settle=settle)
    ]


def _published(settings) -> collections.Counter:
    return collections.Counter(
        (r["uid"], r["orig_pkts"], r["orig_ip_bytes"]) for *_, r in read_log(settings, "conn")
    )


@pytest.mark.timeout(180)
def test_processor_publishes_every_stream_once(tmp_path: Path, pipeline_settings) -> None:
    s = pipeline_settings
    a, b = _capture(tmp_path / "a.pcap", 1, files=4), _capture(tmp_path / "b.pcap", 2)
    producer = PcapProducer(s, batch_bytes=4096)
    sent = {
        r.md5: r.send_id for r in (producer.send(a, sensor="lab"), producer.send(b, sensor="lab"))
    }
    producer.close()
    processor = BroProcessor(
        s, engine_factory=factory(), engine_name="double", group_id=uuid.uuid4().hex
    )
    processor.run(max_idle=6)
    details = wait_for_details(s, sent, timeout=30)
    assert _published(s) == expected_conn(a) + expected_conn(b)

    rows = read_log(s, "conn")
    for _partition, key, ts_ms, headers, record in rows:
        assert key == record["uid"].encode()
        assert ts_ms == int(record["ts"] * 1000)
        assert headers["log"] == "conn" and headers["sensor"] == "lab"
        assert headers["capture"] in sent
    for md5, d in details.items():
        assert d.status == "ok" and d.errors == [] and d.partitions == 3 and d.engine == "double"
        conn = d.logs["conn"]
        mine = [r for r in rows if r[3]["capture"] == md5]
        assert conn["records"] == len(mine)
        for partition, _k, _t, _h, _r in mine:
            first, last = conn["offsets"][str(partition)]
            assert first <= last
    files = details[_md5(a)].files
    assert len(files) == 4
    assert len({f["sha256"] for f in files}) == 2  # two distinct contents, each stored once
    assert all(f["filename"] == "x.exe" and f["mime_type"] == "text/plain" for f in files)
    assert _chunk_kinds(s) == collections.Counter({"chunk": 2, "ref": 2})


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes()).hexdigest()


def _chunk_kinds(settings) -> collections.Counter:
    topic = topics.system_topic(topics.FILE_CHUNKS_TOPIC, settings)
    return collections.Counter(
        dict(m.headers())["ws.kind"].decode() for m in read_all(settings, topic)
    )


def _spawn(settings, group: str, instance: str, delay: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "WIRESTREAM_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "WIRESTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "DOUBLE_GROUP": group,
        "DOUBLE_DELAY": str(delay),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "test_processor_double.py"), instance],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.mark.timeout(240)
def test_kill_9_mid_capture_then_restart_loses_and_duplicates_nothing(
    tmp_path: Path, pipeline_settings
) -> None:
    s = pipeline_settings
    caps = [_capture(tmp_path / f"k{i}.pcap", 10 + i, n=500) for i in range(3)]
    producer = PcapProducer(s, batch_bytes=4096)
    sent = {r.md5: r.send_id for r in (producer.send(c) for c in caps)}
    producer.close()
    group = uuid.uuid4().hex
    first = _spawn(s, group, "victim", delay=0.003)
    try:
        _wait(lambda: len(read_parts(s)) >= 2, 120, "two committed streams")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    parts = read_parts(s)
    assert 2 <= len(parts) < 9, "the kill did not land mid-way"
    # nothing of an unfinished stream is visible: exactly the committed parts' records
    visible = read_log(s, "conn", settle=3.0)  # a transaction the kill left open stays hidden
    assert len(visible) == sum(p.logs.get("conn", {}).get("records", 0) for p in parts.values())

    second = _spawn(s, group, "victim", delay=0.0)  # same instance: fences the dead one
    try:
        details = wait_for_details(s, sent, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, "SIGTERM did not stop the processor cleanly"
    assert all(d.status == "ok" for d in details.values())
    assert _published(s) == sum((expected_conn(c) for c in caps), collections.Counter())
    assert len(read_parts(s)) == 9


@pytest.mark.timeout(240)
def test_two_processors_in_a_group_split_the_partitions(tmp_path: Path, pipeline_settings) -> None:
    s = pipeline_settings
    group = uuid.uuid4().hex
    procs = [_spawn(s, group, f"p{i}", delay=0.0) for i in range(2)]
    try:
        admin = make_admin(s)

        def balanced() -> bool:
            desc = admin.describe_consumer_groups([group])[group].result(10)
            sizes = [len(m.assignment.topic_partitions) for m in desc.members]
            return len(sizes) == 2 and all(sizes) and str(desc.state).endswith("STABLE")

        _wait(balanced, 90, "two members sharing the partitions")
        cap = _capture(tmp_path / "g.pcap", 77, n=600)
        producer = PcapProducer(s)
        result = producer.send(cap)
        producer.close()
        details = wait_for_details(s, {result.md5: result.send_id}, timeout=90)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    assert details[result.md5].status == "ok"
    by_processor = {p.processor for p in read_parts(s).values()}
    assert by_processor == {"p0", "p1"}
    assert _published(s) == expected_conn(cap)


@pytest.mark.timeout(120)
def test_truncated_capture_is_analysed_up_to_the_damage_and_marked_failed(
    tmp_path: Path, pipeline_settings
) -> None:
    s = pipeline_settings
    good = _capture(tmp_path / "whole.pcap", 5, n=100)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-20])
    producer = PcapProducer(s)
    r = producer.send(cut)
    producer.close()
    BroProcessor(s, engine_factory=factory(), engine_name="double", group_id=uuid.uuid4().hex).run(
        max_idle=5
    )
    d = wait_for_details(s, {r.md5: r.send_id}, timeout=30)[r.md5]
    assert d.status == "failed" and any("truncated" in e for e in d.errors)
    assert d.logs["conn"]["records"] > 0
    assert read_captures(s)[r.md5].capture["packets"] == 99


@pytest.mark.timeout(120)
def test_malformed_pcap_topic_messages_do_not_stop_the_processor(
    tmp_path: Path, pipeline_settings
) -> None:
    from wirestream.producers import pcap_wire

    from wirestream.kafka import make_producer

    s = pipeline_settings
    topic = topics.system_topic(topics.PCAP_TOPIC, s)
    junk = make_producer(s)
    junk.produce(topic, value=b"no headers at all", partition=0)
    junk.produce(topic, value=b"{not json", partition=1, headers=pcap_wire.end_headers("feedface"))
    junk.produce(
        topic,
        value=b"\x00\x01",
        partition=2,
        headers=[
            (pcap_wire.KIND, pcap_wire.PACKETS),
            (pcap_wire.SEND, b"x"),
            (pcap_wire.SEQ, b"zz"),
        ],
    )
    assert junk.flush(30) == 0
    cap = _capture(tmp_path / "after.pcap", 31, n=120)
    producer = PcapProducer(s)
    r = producer.send(cap)
    producer.close()
    BroProcessor(s, engine_factory=factory(), engine_name="double", group_id=uuid.uuid4().hex).run(
        max_idle=5
    )
    assert wait_for_details(s, {r.md5: r.send_id}, timeout=30)[r.md5].status == "ok"
    assert _published(s) == expected_conn(cap)
