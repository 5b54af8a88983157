"""pcap/pcapng reading: formats, byte orders, clocks, and corrupt input."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pktbuild import DLT_EN10MB, DLT_RAW, pcap_bytes, pcapng_bytes, udp4_frame
from wirestream.processors.engine.pcapio import (
    CaptureError,
    CaptureStats,
    pcap_file_header,
    pcap_record,
    read_packets,
    split_zeek_time,
)

pytestmark = pytest.mark.timeout(60)

FRAME = udp4_frame()


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_orders_and_precisions(big_endian: bool, nanosecond: bool) -> None:
    data = pcap_bytes(
        [(1700000000.123456, FRAME), (1700000001.5, FRAME[:30])],
        big_endian=big_endian,
        nanosecond=nanosecond,
    )
    packets = list(read_packets(io.BytesIO(data)))
    assert [p.ts for p in packets] == [1700000000.123456, 1700000001.5]
    assert packets[0].data == FRAME and packets[0].linktype == DLT_EN10MB
    assert packets[1].data == FRAME[:30]


def test_nanosecond_truncated_to_microseconds_like_libpcap() -> None:
    raw = pcap_bytes([(0.0, FRAME)], nanosecond=True)
    # Patch the fraction to 123456789 ns: Zeek (libpcap, usec precision) sees .123456.
    patched = raw[:28] + struct.pack("<I", 123456789) + raw[32:]
    (packet,) = read_packets(io.BytesIO(patched))
    assert packet.ts == 0.123456


def test_snaplen_cut_keeps_wire_length() -> None:
    data = pcap_bytes([(1.0, FRAME)], snaplen=20)
    (packet,) = read_packets(io.BytesIO(data))
    assert len(packet.data) == 20 and packet.wirelen == len(FRAME)


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_interfaces_with_own_linktype_and_resolution(big_endian: bool) -> None:
    raw_ip = FRAME[14:]
    data = pcapng_bytes(
        [(DLT_EN10MB, None), (DLT_RAW, 9), (DLT_EN10MB, 0x80 | 20)],
        [(0, 10.25, FRAME), (1, 20.000001999, raw_ip), (2, 30.5, FRAME)],
        big_endian=big_endian,
    )
    stats = CaptureStats()
    packets = list(read_packets(io.BytesIO(data), stats))
    assert [(p.linktype, p.ts) for p in packets] == [(1, 10.25), (101, 20.000001), (1, 30.5)]
    assert packets[1].data == raw_ip
    assert stats.format == "pcapng" and stats.linktypes == {1: 2, 101: 1}


def test_pcapng_simple_packet_blocks() -> None:
    data = pcapng_bytes([(DLT_EN10MB, None)], [(0, 0.0, FRAME)], simple=True)
    (packet,) = read_packets(io.BytesIO(data))
    assert packet.data == FRAME and packet.ts == 0.0


def test_pcapng_several_sections_reset_byte_order() -> None:
    first = pcapng_bytes([(DLT_EN10MB, None)], [(0, 1.0, FRAME)])
    second = pcapng_bytes([(DLT_RAW, None)], [(0, 2.0, FRAME[14:])], big_endian=True)
    packets = list(read_packets(io.BytesIO(first + second)))
    assert [(p.linktype, p.ts) for p in packets] == [(1, 1.0), (101, 2.0)]


def test_truncated_pcap_yields_good_packets_then_error() -> None:
    data = pcap_bytes([(1.0, FRAME), (2.0, FRAME)])[:-5]
    got = []
    with pytest.raises(CaptureError, match="truncated capture.*after 1 packets"):
        for packet in read_packets(io.BytesIO(data)):
            got.append(packet)
    assert len(got) == 1


def test_corrupt_record_length_is_rejected_without_reading_it() -> None:
    data = bytearray(pcap_bytes([(1.0, FRAME), (2.0, FRAME)]))
    second = 24 + 16 + len(FRAME)
    data[second + 8 : second + 12] = struct.pack("<I", 0x7FFFFFFF)
    with pytest.raises(CaptureError, match="exceeds the maximum"):
        list(read_packets(io.BytesIO(bytes(data))))


def test_corrupt_pcapng_block_length() -> None:
    data = bytearray(pcapng_bytes([(DLT_EN10MB, None)], [(0, 1.0, FRAME)]))
    data[-4:] = b"\xff\xff\xff\x7f"  # trailing length disagrees with the leading one
    with pytest.raises(CaptureError, match="corrupt pcapng block"):
        list(read_packets(io.BytesIO(bytes(data))))


def test_packet_names_unknown_interface() -> None:
    data = pcapng_bytes([(DLT_EN10MB, None)], [(0, 1.0, FRAME)])
    patched = bytearray(data)
    epb = data.index(struct.pack("<I", 6))
    patched[epb + 8 : epb + 12] = struct.pack("<I", 3)
    with pytest.raises(CaptureError, match="interface 3"):
        list(read_packets(io.BytesIO(bytes(patched))))


@pytest.mark.parametrize("blob", [b"", b"hello world, not a capture", b"\xd4\xc3\xb2\xa1\x02"])
def test_not_a_capture(blob: bytes) -> None:
    with pytest.raises(CaptureError):
        list(read_packets(io.BytesIO(blob)))


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        list(read_packets(tmp_path / "nope.pcap"))


def test_shared_pcapng_multi_interface_matches_zeek_durations(shared) -> None:
    path = shared / "zeek-ref/cases/core.pcapng-pktsrc/pcapng-multi-interface.pcapng"
    ts = [p.ts for p in read_packets(path)]
    # conn.log baseline durations: 0.013961 and 0.014563 (microsecond-truncated clocks).
    assert round(ts[1] - ts[0], 6) == 0.013961
    assert round(ts[3] - ts[2], 6) == 0.014563


def test_every_shared_trace_reads_like_dpkt(shared) -> None:
    dpkt = pytest.importorskip("dpkt")
    traces = sorted((shared / "zeek-ref/cases").glob("*/*.pcap")) + sorted(
        (shared / "samples/pcap").glob("*.pcap")
    )
    assert traces
    for path in traces:
        ours = [(round(p.ts, 6), p.data) for p in read_packets(path)]
        with open(path, "rb") as fh:
            theirs = [(round(ts, 6), bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]
        assert ours == theirs, path.name


def test_kuznetzov_modified_pcap_records() -> None:
    header = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, DLT_EN10MB)
    record = struct.pack("<IIII", 5, 250000, len(FRAME), len(FRAME)) + b"\0" * 8 + FRAME
    packets = list(read_packets(io.BytesIO(header + record + record)))
    assert [(p.ts, p.data) for p in packets] == [(5.25, FRAME), (5.25, FRAME)]


def test_huge_header_snaplen_does_not_lift_the_record_bound() -> None:
    data = bytearray(pcap_bytes([(1.0, FRAME)], snaplen=0xFFFFFFFF))
    data[24 + 8 : 24 + 12] = struct.pack("<I", 50_000_000)
    with pytest.raises(CaptureError, match="exceeds the maximum"):
        list(read_packets(io.BytesIO(bytes(data))))


_GOOD = [
    pcap_bytes([(1.0, FRAME), (2.0, FRAME)]),
    pcap_bytes([(1.0, FRAME)], big_endian=True, nanosecond=True),
    pcapng_bytes([(DLT_EN10MB, None), (DLT_RAW, 9)], [(0, 1.0, FRAME), (1, 2.0, FRAME[14:])]),
    pcapng_bytes([(DLT_EN10MB, 6)], [(0, 1.0, FRAME)], big_endian=True, simple=True),
]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupt_captures_raise_capture_error_only(data) -> None:
    blob = bytearray(data.draw(st.sampled_from(_GOOD)))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    blob = blob[: data.draw(st.integers(0, len(blob)))]
    try:
        for packet in read_packets(io.BytesIO(bytes(blob))):
            assert len(packet.data) <= 262_144
    except CaptureError:
        pass


@pytest.mark.parametrize("big_endian", [False, True])
def test_capture_format_by_magic(big_endian: bool) -> None:
    from wirestream.processors.engine.pcapio import capture_format

    assert capture_format(pcap_bytes([(1.0, FRAME)], big_endian=big_endian)[:4]) == "pcap"
    assert capture_format(pcapng_bytes([(DLT_EN10MB, None)], [(0, 1.0, FRAME)])[:4]) == "pcapng"
    assert capture_format(b"GET / HTTP/1.1") is None
    assert capture_format(b"\xd4\xc3") is None


def test_check_capture_file_refuses_non_captures(tmp_path) -> None:
    from wirestream.processors.engine.pcapio import check_capture_file

    good = tmp_path / "good.pcap"
    good.write_bytes(pcap_bytes([(1.0, FRAME)]))
    assert check_capture_file(good) == "pcap"
    cases = {
        "text.pcap": (b"hello world\n", "unknown file format"),
        "empty.pcap": (b"", "empty file"),
        "short.pcap": (b"\xd4\xc3", "truncated capture"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CaptureError, match=message):
            check_capture_file(tmp_path / name)
    with pytest.raises(CaptureError, match="cannot open"):
        check_capture_file(tmp_path / "missing.pcap")


def test_written_records_read_back_to_the_same_zeek_time() -> None:
    """pcap_record splits a time the way _pcap reads it back (nearest microsecond, carried)."""
    times = [0.0, 1.5, 5.9999996, 1_700_000_000.123456, 1_379_288_668.999_999_7, 2.000_000_4]
    data = pcap_file_header(DLT_EN10MB) + b"".join(pcap_record(t, FRAME, 99) for t in times)
    packets = list(read_packets(io.BytesIO(data)))
    assert [p.ts for p in packets] == [
        0.0,
        1.5,
        6.0,
        1_700_000_000.123456,
        1_379_288_669.0,
        2.0,
    ]
    assert {(p.wirelen, p.linktype) for p in packets} == {(99, DLT_EN10MB)}
    assert [split_zeek_time(t) for t in times] == [
        (0, 0),
        (1, 500_000),
        (6, 0),
        (1_700_000_000, 123_456),
        (1_379_288_669, 0),
        (2, 0),
    ]
