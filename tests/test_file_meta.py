"""File metadata (pure), chunk assembly (pure) and the faust file-analysis agent (real broker)."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import ssdeep
from test_pipeline_support import private_settings, stop_worker
from wirestream.processors.file_analysis import Assembler, chunk_messages
from wirestream.processors.file_meta import file_metadata, safe_name, shannon_entropy

from wirestream import topics

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def test_hashes_and_size_are_those_of_the_content() -> None:
    data = b"The quick brown fox jumps over the lazy dog"
    meta = file_metadata(data)
    assert meta["md5"] == "9e107d9d372bb6826bd81d3542a419d6"
    assert meta["sha1"] == "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["file_size"] == len(data)
    assert meta["ssdeep"] == ssdeep.hash(data)


def test_entropy_in_bits_per_byte() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"a" * 1000) == 0.0
    assert shannon_entropy(b"ab" * 500) == pytest.approx(1.0)
    assert shannon_entropy(bytes(range(256)) * 3) == pytest.approx(8.0)
    skew = b"a" * 3 + b"b"
    assert shannon_entropy(skew) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    )


def test_libmagic_type_from_the_first_bytes() -> None:
    png = file_metadata(PNG_1x1)
    assert png["mime_type"] == "image/png" and png["file_type"].startswith("PNG image data, 1 x 1")
    exe = file_metadata(b"MZ" + b"\0" * 58 + b"\x40\0\0\0" + b"\0" * 64)
    assert exe["mime_type"] in ("application/x-dosexec", "application/octet-stream")
    assert file_metadata(b"")["mime_type"] == "application/x-empty"


def test_hostile_names_are_made_safe() -> None:
    assert safe_name("../../etc/passwd", "F1") == "passwd"
    assert safe_name("C:\\Windows\\evil.exe", "F1") == "evil.exe"
    assert safe_name("a;rm -rf $HOME`.sh", "F1") == "a_rm -rf _HOME_.sh"
    assert safe_name("..", "F1") == "F1"
    assert safe_name(None, "F2") == "F2"
    assert len(safe_name("x" * 1000, "F")) == 255


def _headers(h):
    return dict(h)


def test_assembler_reassembles_out_of_order_chunks_and_resolves_refs() -> None:
    data = os.urandom(5000)
    sha = hashlib.sha256(data).hexdigest()
    messages = list(chunk_messages(data, sha, "F1", "cap", stored=False, chunk=1024))
    assert len(messages) == 5
    assembler = Assembler()
    outs = [assembler.add(sha, v, _headers(h)) for _k, v, h in reversed(messages)]
    assert outs[:-1] == [None] * 4
    assert outs[-1] == {"fuid": "F1", "capture": "cap", **file_metadata(data)}
    ((_k, v, h),) = chunk_messages(data, sha, "F2", "cap2", stored=True, chunk=1024)
    assert v == b""
    assert assembler.add(sha, v, _headers(h)) == {
        "fuid": "F2",
        "capture": "cap2",
        **file_metadata(data),
    }
    # a ref to content never seen yields nothing rather than a guess
    ((_k, v, h),) = chunk_messages(b"x", "00" * 32, "F3", "cap", stored=True, chunk=1024)
    assert assembler.add("00" * 32, v, _headers(h)) is None


def test_assembler_refuses_oversized_content(monkeypatch) -> None:
    from wirestream.processors import file_analysis

    monkeypatch.setattr(file_analysis, "MAX_FILE_BYTES", 2048)
    data = b"z" * 4096
    sha = hashlib.sha256(data).hexdigest()
    assembler = Assembler()
    outs = [
        assembler.add(sha, v, _headers(h))
        for _k, v, h in chunk_messages(data, sha, "F", "c", stored=False, chunk=1024)
    ]
    assert outs == [None] * 4 and not assembler.partial


@pytest.mark.broker
@pytest.mark.timeout(180)
def test_faust_agent_emits_metadata_by_fuid_for_committed_chunks_only(
    settings, tmp_path: Path
) -> None:
    from wirestream.processors.capture_store import read_compacted

    from wirestream.kafka import make_producer

    s = private_settings(settings)
    producer = make_producer(s, **{"transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    chunks_topic = topics.system_topic(topics.FILE_CHUNKS_TOPIC, s)

    def publish(data: bytes, fuid: str, stored: bool, commit: bool = True) -> None:
        producer.begin_transaction()
        for k, v, h in chunk_messages(
            data, hashlib.sha256(data).hexdigest(), fuid, "cap", stored=stored, chunk=1000
        ):
            producer.produce(chunks_topic, key=k, value=v, headers=h)
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    a, b = os.urandom(3500), PNG_1x1
    publish(a, "Fa", stored=False)
    publish(a, "Fa2", stored=True)
    publish(b, "Fb", stored=False)
    publish(b"aborted content", "Fz", stored=False, commit=False)

    env = {
        **os.environ,
        "WIRESTREAM_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "WIRESTREAM_TOPIC_PREFIX": s.topic_prefix,
        "WIRESTREAM_HOME": str(tmp_path),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "files"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    meta_topic = topics.system_topic(topics.FILE_META_TOPIC, s)
    try:
        deadline = time.monotonic() + 120
        found: dict[bytes, bytes] = {}
        while len(found) < 3 and time.monotonic() < deadline:
            found = dict(read_compacted(s, meta_topic))
            time.sleep(1)
    finally:
        stop_worker(worker)
    import json

    records = {k.decode(): json.loads(v) for k, v in found.items()}
    assert set(records) == {"Fa", "Fa2", "Fb"}
    assert records["Fa"] == {"fuid": "Fa", "capture": "cap", **file_metadata(a)}
    assert records["Fa2"]["sha256"] == records["Fa"]["sha256"]
    assert records["Fb"]["mime_type"] == "image/png"


def test_capture_records_stay_within_one_kafka_message():
    """A capture with thousands of extracted files still gets a details record that fits."""
    from wirestream.processors import capture_details as cd

    files = [
        {"fuid": f"F{i:08d}", "sha256": "ab" * 32, "ssdeep": "3:" + "x" * 60, "file_type": "data"}
        for i in range(20_000)
    ]
    parts = [
        cd.CapturePart(
            send_id="s",
            md5="m",
            name="big.pcap",
            sensor="t",
            partition=p,
            partitions=2,
            capture={},
            files=files[p::2],
            errors=[f"e{i}" for i in range(150)],
        )
        for p in range(2)
    ]
    for part in parts:
        raw = part.to_bytes()
        assert len(raw) <= cd.MAX_RECORD_BYTES
        back = cd.CapturePart.from_bytes(raw)
        assert len(back.files) + back.files_omitted == 10_000 and back.files_omitted > 0
        assert len(back.errors) == cd.MAX_ERRORS + 1
    details = cd.merge_parts([cd.CapturePart.from_bytes(p.to_bytes()) for p in parts])
    raw = details.to_bytes()
    assert len(raw) <= cd.MAX_RECORD_BYTES
    back = cd.CaptureDetails.from_bytes(raw)
    assert len(back.files) + back.files_omitted == 20_000
    small = cd.CaptureDetails(
        md5="m", name="n", sensor="s", send_id="x", status="ok", files=files[:3]
    )
    assert cd.CaptureDetails.from_bytes(small.to_bytes()).files == files[:3]
