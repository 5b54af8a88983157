"""The pcap producer: partitioning, batching, end markers, duplicate sends, bad input."""

from __future__ import annotations

import hashlib
import ipaddress
import random
from pathlib import Path

import pktbuild as pb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_pipeline_support import private_settings, read_all
from wirestream.producers import pcap_wire
from wirestream.producers.partitioning import (
    DHCP_PARTITION,
    NON_IP_PARTITION,
    ip_pair,
    partition_for,
)
from wirestream.producers.pcap_producer import PcapProducer, capture_files
from wirestream.producers.pcap_reader import (
    CaptureError,
    CaptureInfo,
    HashingFile,
    header_snaplen,
    read_capture,
)

from wirestream import topics

# --- symmetric partitioning (pure) ----------------------------------------------------------


@pytest.fixture
def pipeline_settings(settings):
    """Settings with a private topic namespace on the real broker."""
    return private_settings(settings)


def _udp(src: str, dst: str, sport: int = 1000, dport: int = 53) -> bytes:
    return pb.udp4_frame(sport, dport, b"x", src=src, dst=dst)


@given(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=4).map(str),
    st.integers(1, 65535),
    st.integers(1, 65535),
    st.integers(1, 64),
)
def test_both_directions_meet_in_one_partition(a: str, b: str, sp: int, dp: int, n: int) -> None:
    there = partition_for(pb.DLT_EN10MB, _udp(a, b, sp, dp), n)
    back = partition_for(pb.DLT_EN10MB, _udp(b, a, dp, sp), n)
    assert there == back
    assert 0 <= there < n


@given(st.ip_addresses(v=6).map(str), st.ip_addresses(v=6).map(str))
def test_ipv6_pairs_are_symmetric(a: str, b: str) -> None:
    def frame(s, d):
        return pb.ether(pb.ipv6(pb.udp(1, 2, b"x", src=s, dst=d), src=s, dst=d), pb.ETH_IPV6)

    assert partition_for(pb.DLT_EN10MB, frame(a, b), 7) == partition_for(
        pb.DLT_EN10MB, frame(b, a), 7
    )


def test_fragments_follow_their_first_fragment() -> None:
    segment = pb.udp(5000, 53, b"q" * 3000, src="10.1.1.1", dst="10.2.2.2")
    frags = pb.fragment_ipv4(
        segment, [1480, 1480, 48], src="10.1.1.1", dst="10.2.2.2", proto=pb.PROTO_UDP
    )
    parts = {partition_for(pb.DLT_EN10MB, pb.ether(f), 5) for f in frags}
    assert len(parts) == 1


def test_a_dhcp_transaction_meets_in_one_partition() -> None:
    """Zeek joins a DHCP transaction across its connections (client broadcast, server unicast):
    every DHCP datagram goes to one partition, whatever its addresses."""
    discover = _udp("0.0.0.0", "255.255.255.255", 68, 67)
    offer = _udp("192.168.22.1", "192.168.22.10", 67, 68)
    relayed = _udp("10.9.9.9", "10.1.1.1", 67, 67)
    for n in (1, 3, 7, 16):
        assert {partition_for(pb.DLT_EN10MB, f, n) for f in (discover, offer, relayed)} == {
            DHCP_PARTITION % n
        }
    others = {
        partition_for(pb.DLT_EN10MB, _udp(f"10.0.{i}.1", "10.0.0.2", 5353, 53), 16)
        for i in range(40)
    }
    assert len(others) > 1  # everything else still spreads by address pair


def test_fragmented_dhcp_stays_with_its_fragments() -> None:
    segment = pb.udp(68, 67, b"d" * 3000, src="10.1.1.1", dst="10.2.2.2")
    frags = pb.fragment_ipv4(
        segment, [1480, 1480, 48], src="10.1.1.1", dst="10.2.2.2", proto=pb.PROTO_UDP
    )
    assert len({partition_for(pb.DLT_EN10MB, pb.ether(f), 5) for f in frags}) == 1


def test_link_layers_decapsulate_to_the_same_pair() -> None:
    ip = pb.ipv4(
        pb.udp(1, 2, b"x", src="192.0.2.1", dst="198.51.100.7"), src="192.0.2.1", dst="198.51.100.7"
    )
    want = (ipaddress.ip_address("192.0.2.1").packed, ipaddress.ip_address("198.51.100.7").packed)
    framings = [
        (pb.DLT_EN10MB, pb.ether(ip)),
        (pb.DLT_EN10MB, pb.ether(ip, vlans=[10, 20], outer_tpid=pb.ETH_QINQ)),
        (pb.DLT_EN10MB, pb.ether(pb.mpls(ip, [100, 200]), pb.ETH_MPLS)),
        (pb.DLT_EN10MB, pb.ether(pb.pppoe_session(ip), pb.ETH_PPPOE_SESSION)),
        (pb.DLT_RAW, ip),
        (pb.DLT_NULL, pb.null_loopback(ip)),
        (pb.DLT_LINUX_SLL, pb.linux_sll(ip)),
        (pb.DLT_LINUX_SLL2, pb.linux_sll2(ip)),
    ]
    for linktype, frame in framings:
        assert ip_pair(linktype, frame) == want, linktype


def test_non_ip_goes_to_the_fixed_partition() -> None:
    arp = pb.ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\0" * 20, pb.ETH_ARP)
    assert partition_for(pb.DLT_EN10MB, arp, 8) == NON_IP_PARTITION
    assert partition_for(pb.DLT_EN10MB, b"\x01", 8) == NON_IP_PARTITION


def test_pairs_spread_over_partitions() -> None:
    rng = random.Random(7)
    hits = {
        partition_for(
            pb.DLT_EN10MB, _udp(f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", "10.9.9.9"), 3
        )
        for _ in range(200)
    }
    assert hits == {0, 1, 2}


# --- intake (pure) ----------------------------------------------------------------------------


def _read(path: Path) -> tuple[list, CaptureInfo, HashingFile]:
    info = CaptureInfo()
    with path.open("rb") as raw:
        f = HashingFile(raw)
        packets = list(read_capture(f, info))
        f.drain()
    return packets, info, f


def test_md5_is_computed_while_streaming(tmp_path: Path) -> None:
    path = pb.write_pcap(
        tmp_path / "a.pcap", [(1.0 + i, _udp("10.0.0.1", "10.0.0.2")) for i in range(50)]
    )
    packets, info, f = _read(path)
    assert len(packets) == info.packets == 50
    assert f.md5.hexdigest() == hashlib.md5(path.read_bytes()).hexdigest()
    assert (info.first_ts, info.last_ts, info.linktype, info.snaplen) == (1.0, 50.0, 1, 65535)


def test_header_snaplen_of_every_capture_form() -> None:
    """Every pcap magic (the Kuznetzov 0xA1B2CD34 variant too, either byte order) and pcapng."""
    import struct

    frame = [(1.0, _udp("10.0.0.1", "10.0.0.2"))]
    kuznetzov = struct.pack(">IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 4242, 1)
    assert header_snaplen(kuznetzov) == 4242
    assert header_snaplen(struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 777, 1)) == 777
    assert header_snaplen(pb.pcap_bytes(frame, snaplen=1500)) == 1500
    assert header_snaplen(pb.pcap_bytes(frame, snaplen=96, nanosecond=True, big_endian=True)) == 96
    ng = pb.pcapng_bytes([(1, None)], [(0, 1.0, frame[0][1])], big_endian=True, snaplen=9000)
    assert header_snaplen(ng) == 9000
    assert header_snaplen(b"not a capture at all, just text") is None


def test_absurd_snaplen_is_refused(tmp_path: Path) -> None:
    path = pb.write_pcap(
        tmp_path / "a.pcap", [(1.0, _udp("10.0.0.1", "10.0.0.2"))], snaplen=0x7FFFFFFF
    )
    with pytest.raises(CaptureError, match="absurd snapshot length"):
        _read(path)


def test_fuzzed_captures_never_crash_the_intake(tmp_path: Path) -> None:
    """1,000 mutated captures (bit flips, cuts, splices) through the producer-side parsing: every
    one ends cleanly or with a CaptureError, and reads stay bounded."""
    rng = random.Random(1234)
    frames = [
        (1000.0 + i / 10, _udp(f"10.0.0.{i % 7}", "10.0.1.1", 1000 + i, 53)) for i in range(30)
    ]
    seeds = [
        pb.pcap_bytes(frames),
        pb.pcap_bytes(frames, nanosecond=True, big_endian=True),
        pb.pcapng_bytes([(pb.DLT_EN10MB, None), (pb.DLT_RAW, 9)], [(0, t, f) for t, f in frames]),
    ]
    outcomes = {"ok": 0, "error": 0}
    path = tmp_path / "fuzz.pcap"
    for _ in range(1000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            pos = rng.randrange(len(data)) if data else 0
            if op < 0.5 and data:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos:]
            elif op < 0.85:
                data[pos:pos] = rng.randbytes(rng.randint(1, 16))
            elif len(data) >= pos + 4:
                data[pos : pos + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x0c\0\0\0"])
        path.write_bytes(bytes(data))
        try:
            packets, _info, f = _read(path)
            for p in packets:
                partition_for(p.linktype, p.data, 3)
            assert f.count == len(data)
            outcomes["ok"] += 1
        except CaptureError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 50, outcomes


def test_capture_files_searches_directories(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    a = pb.write_pcap(tmp_path / "d" / "a.pcap", [])
    (tmp_path / "d" / "notes.txt").write_text("x")
    b = tmp_path / "b.bin"
    b.write_bytes(b"")
    assert capture_files([tmp_path / "d", b]) == [a, b]


# --- against the broker -----------------------------------------------------------------------


def _pcap_messages(settings, group: str | None = None):
    """Every committed pcap-topic message as (partition, headers, value)."""
    topic = topics.system_topic(topics.PCAP_TOPIC, settings)
    return [
        (m.partition(), pcap_wire.header_map(m.headers()), m.value())
        for m in read_all(settings, topic)
    ]


def _mixed_capture(path: Path, n: int = 600) -> tuple[Path, list[tuple[float, bytes]]]:
    rng = random.Random(99)
    hosts = [f"10.{i}.{i * 3 % 256}.{i * 7 % 256}" for i in range(1, 25)]
    frames = []
    for i in range(n):
        a, b = rng.sample(hosts, 2)
        frames.append(
            (
                1_600_000_000 + i * 0.01,
                pb.udp4_frame(
                    rng.randrange(1024, 65535),
                    53,
                    rng.randbytes(rng.randrange(0, 900)),
                    src=a,
                    dst=b,
                ),
            )
        )
    frames.append((1_600_000_100.0, pb.ether(b"\0" * 28, pb.ETH_ARP)))
    return pb.write_pcap(path, frames), frames


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_send_batches_partitions_and_marks_the_end(tmp_path: Path, pipeline_settings) -> None:
    path, frames = _mixed_capture(tmp_path / "mixed.pcap")
    producer = PcapProducer(pipeline_settings, batch_bytes=8192)
    result = producer.send(path, sensor="s1")
    producer.close()
    assert result.status == "sent" and result.packets == len(frames)
    assert result.md5 == hashlib.md5(path.read_bytes()).hexdigest()

    messages = _pcap_messages(pipeline_settings)
    seen: dict[int, list] = {}
    markers = {}
    for partition, headers, value in messages:
        assert headers[pcap_wire.SEND].decode() == result.send_id
        if headers[pcap_wire.KIND] == pcap_wire.END:
            markers[partition] = pcap_wire.EndMarker.from_bytes(value)
            continue
        assert partition not in markers, "a batch after its partition's end marker"
        assert int(headers[pcap_wire.SEQ]) == len(seen.setdefault(partition, [])) and True
        assert len(value) <= 8192
        assert headers[pcap_wire.CAPTURE].decode() == result.md5
        seen[partition].append(list(pcap_wire.decode_packets(value)))
    assert sorted(markers) == [0, 1, 2]
    total = 0
    for partition, marker in markers.items():
        batches = seen.get(partition, [])
        assert marker.batches == len(batches) and marker.md5 == result.md5 and marker.sensor == "s1"
        packets = [p for batch in batches for p in batch]
        assert marker.packets == len(packets)
        total += len(packets)
        # each packet in the partition its symmetric hash names, file order kept
        assert all(partition_for(p.linktype, p.data, 3) == partition for p in packets)
        assert [p.ts for p in packets] == sorted(p.ts for p in packets)
    assert total == len(frames)
    got = sorted((p.ts, p.data) for batches in seen.values() for b in batches for p in b)
    assert got == sorted(frames)


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_duplicate_send_is_recognised(tmp_path: Path, pipeline_settings) -> None:
    path, _ = _mixed_capture(tmp_path / "dup.pcap", 50)
    copy = tmp_path / "renamed.pcap"
    copy.write_bytes(path.read_bytes())
    producer = PcapProducer(pipeline_settings)
    first = producer.send(path)
    again = producer.send(copy)
    forced = producer.send(copy, force=True)
    producer.close()
    assert first.status == "sent"
    assert again.status == "duplicate" and again.send_id == first.send_id
    assert forced.status == "sent" and forced.send_id != first.send_id
    sends = {h[pcap_wire.SEND].decode() for _, h, _ in _pcap_messages(pipeline_settings)}
    assert sends == {first.send_id, forced.send_id}


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_bad_inputs_fail_clearly_and_others_go_on(tmp_path: Path, pipeline_settings) -> None:
    from wirestream.processors.capture_store import read_captures
    from wirestream.producers.pcap_producer import send_captures

    good, _ = _mixed_capture(tmp_path / "good.pcap", 40)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "text.pcap"
    text.write_text("this is not a capture at all\n" * 10)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-30])
    huge = pb.write_pcap(
        tmp_path / "huge.pcap", [(1.0, _udp("10.0.0.1", "10.0.0.2"))], snaplen=1 << 30
    )
    results = {
        Path(r.path).name: r
        for r in send_captures(pipeline_settings, [empty, text, cut, huge, good])
    }
    assert results["good.pcap"].status == "sent" and results["good.pcap"].error is None
    assert results["empty.pcap"].status == "failed" and "empty" in results["empty.pcap"].error
    assert (
        results["text.pcap"].status == "failed"
        and "unknown file format" in results["text.pcap"].error
    )
    assert results["huge.pcap"].status == "failed" and "absurd" in results["huge.pcap"].error
    # a truncated capture still sends its good packets, and says what went wrong
    assert results["cut.pcap"].status == "sent" and results["cut.pcap"].packets == 40
    assert "truncated" in results["cut.pcap"].error
    details = read_captures(pipeline_settings)
    assert details[results["empty.pcap"].md5].status == "failed"
    assert details[results["empty.pcap"].md5].errors
    assert details[results["good.pcap"].md5].status == "sent"


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_watched_folder_sends_new_captures_once(tmp_path: Path, pipeline_settings) -> None:
    import threading
    import time

    from wirestream.processors.capture_store import read_captures
    from wirestream.producers.pcap_producer import watch_folder

    folder = tmp_path / "drop"
    folder.mkdir()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch_folder,
        args=(pipeline_settings, folder),
        kwargs={"interval": 0.3, "stop": stop.is_set},
    )
    thread.start()
    try:
        path, _ = _mixed_capture(tmp_path / "x.pcap", 30)
        target = folder / "new.pcap"
        target.write_bytes(path.read_bytes())
        md5 = hashlib.md5(path.read_bytes()).hexdigest()
        deadline = time.monotonic() + 60
        while md5 not in read_captures(pipeline_settings) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1.5)  # several more scans: the file must not be sent again
    finally:
        stop.set()
        thread.join(30)
    assert read_captures(pipeline_settings)[md5].name == "new.pcap"
    sends = {h[pcap_wire.SEND] for _, h, _ in _pcap_messages(pipeline_settings)}
    assert len(sends) == 1
