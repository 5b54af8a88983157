"""Capture filters through libpcap's compiler (skipped, saying why, without libpcap)."""

from __future__ import annotations

import pktbuild as pb
import pytest
from wirestream.processors.engine.api import Packet
from wirestream.processors.engine.bpf import BpfError, CaptureFilter, libpcap, packet_filter_record
from wirestream.processors.engine.pcapio import read_packets

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", autouse=True)
def _need_libpcap() -> None:
    try:
        libpcap()
    except BpfError as exc:
        pytest.skip(str(exc))


def packet(frame: bytes, linktype: int = pb.DLT_EN10MB) -> Packet:
    return Packet(0.0, frame, linktype, len(frame))


def test_port_and_host_filters() -> None:
    dns = packet(pb.udp4_frame(1234, 53))
    web = packet(pb.tcp4_frame(40000, 80, dst="192.0.2.7"))
    f = CaptureFilter("udp port 53")
    assert f.matches(dns) and not f.matches(web)
    g = CaptureFilter("host 192.0.2.7 and tcp")
    assert g.matches(web) and not g.matches(dns)
    assert (f.passed, f.dropped) == (1, 1)


def test_vlan_keyword_and_other_link_types() -> None:
    tagged = packet(pb.udp4_frame(vlans=(42,)))
    assert CaptureFilter("vlan 42 and udp").matches(tagged)
    assert not CaptureFilter("udp").matches(tagged)  # BPF semantics: needs the vlan keyword
    raw = packet(pb.ipv4(pb.udp(1, 53, b"x"), proto=17), pb.DLT_RAW)
    sll = packet(pb.linux_sll(pb.ipv4(pb.tcp(1, 80), proto=6)), pb.DLT_LINUX_SLL)
    f = CaptureFilter("port 53")
    assert f.matches(raw) and not f.matches(sll)


def test_bad_expression_is_a_clear_error() -> None:
    with pytest.raises(BpfError, match="bad capture filter 'port nonsense'"):
        CaptureFilter("port nonsense")


def test_packet_filter_record_matches_zeek_columns() -> None:
    rec = packet_filter_record(1.0, "port 50000")
    assert rec == {
        "ts": 1.0,
        "node": "zeek",
        "filter": "port 50000",
        "init": True,
        "success": True,
        "failure_reason": None,
    }


def test_shared_wikipedia_port_50000(shared) -> None:
    path = shared / "zeek-ref/cases/core.pcap.read-trace-with-filter/wikipedia.pcap"
    f = CaptureFilter("port 50000")
    kept = [p for p in read_packets(path) if f.matches(p)]
    assert len(kept) == 10  # the one connection Zeek's conn.log shows: 6 + 4 packets
