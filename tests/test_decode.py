"""Link layers and IP header checks: what reaches connection tracking, and which weirds."""

from __future__ import annotations

import struct

import pktbuild as pb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.api import Packet
from wirestream.processors.engine.checksum import (
    datagram_checksum_ok,
    flow_pair_sum,
    flow_transport_ok,
    internet_checksum,
    ones_sum_ok,
)
from wirestream.processors.engine.decode import CollectingWeirds, Decoder
from wirestream.processors.engine.pcapio import read_packets

pytestmark = pytest.mark.timeout(60)

SRC, DST = "10.0.0.1", "10.0.0.2"


def decode(frame: bytes, linktype: int = pb.DLT_EN10MB, wirelen: int | None = None, **kw):
    weirds = CollectingWeirds()
    decoder = Decoder(weirds, **kw)
    dg = decoder.decode(Packet(1.0, frame, linktype, len(frame) if wirelen is None else wirelen))
    return dg, weirds.names, decoder


def udp_ip() -> bytes:
    return pb.ipv4(pb.udp(1234, 53, b"hello", src=SRC, dst=DST), src=SRC, dst=DST)


def test_plain_ethernet_ipv4_udp() -> None:
    dg, weirds, _ = decode(pb.udp4_frame())
    assert weirds == []
    assert (dg.src, dg.dst, dg.proto, dg.ip_len, dg.version, dg.ttl) == (SRC, DST, 17, 33, 4, 64)
    assert dg.payload[8:] == b"hello" and dg.captured_all and dg.vlan is None


def test_ethernet_padding_is_trimmed_by_ip_length() -> None:
    dg, _, _ = decode(pb.udp4_frame(payload=b"x", pad_to=60))
    assert len(dg.payload) == 9 and dg.ip_len == 29


@pytest.mark.parametrize(
    ("build", "linktype", "vlan", "inner"),
    [
        (lambda ip: pb.ether(ip, vlans=(10,)), pb.DLT_EN10MB, 10, None),
        (lambda ip: pb.ether(ip, vlans=(10, 20), outer_tpid=0x88A8), pb.DLT_EN10MB, 10, 20),
        (lambda ip: pb.ether(pb.mpls(ip, [100, 200]), pb.ETH_MPLS), pb.DLT_EN10MB, None, None),
        (lambda ip: pb.ether(pb.mpls(ip, [5]), pb.ETH_MPLS, vlans=(7,)), pb.DLT_EN10MB, 7, None),
        (
            lambda ip: pb.ether(pb.pppoe_session(ip), pb.ETH_PPPOE_SESSION),
            pb.DLT_EN10MB,
            None,
            None,
        ),
        (lambda ip: pb.linux_sll(ip), pb.DLT_LINUX_SLL, None, None),
        (lambda ip: pb.linux_sll2(ip), pb.DLT_LINUX_SLL2, None, None),
        (lambda ip: pb.null_loopback(ip), pb.DLT_NULL, None, None),
        (lambda ip: pb.null_loopback(ip, big_endian=True), pb.DLT_NULL, None, None),
        (lambda ip: ip, pb.DLT_RAW, None, None),
        (lambda ip: b"\0" * 12 + b"\x89\x03" + b"\0" * 2 + pb.ether(ip), pb.DLT_EN10MB, None, None),
        (lambda ip: pb.ether(pb.vntag(ip), 0x8926), pb.DLT_EN10MB, None, None),
        (lambda ip: pb.ieee80211_data(ip), pb.DLT_IEEE802_11, None, None),
        (lambda ip: pb.ieee80211_data(ip, qos=True), pb.DLT_IEEE802_11, None, None),
        (lambda ip: pb.radiotap(pb.ieee80211_data(ip)), pb.DLT_IEEE802_11_RADIO, None, None),
        (lambda ip: pb.nflog(ip), pb.DLT_NFLOG, None, None),
        (lambda ip: ip, 147, None, None),
    ],
    ids=[
        "vlan",
        "qinq",
        "mpls",
        "mpls-in-vlan",
        "pppoe",
        "sll",
        "sll2",
        "null",
        "null-be",
        "raw",
        "fabricpath",
        "vntag",
        "802.11",
        "802.11-qos",
        "radiotap",
        "nflog",
        "unknown-dlt-as-raw-ip",
    ],
)
def test_link_layers(build, linktype: int, vlan, inner) -> None:
    dg, weirds, _ = decode(build(udp_ip()), linktype)
    assert weirds == []
    assert dg is not None and dg.src == SRC and dg.payload[8:] == b"hello"
    assert (dg.vlan, dg.inner_vlan) == (vlan, inner)


def test_ipv6_with_extension_headers_and_routing_final_destination() -> None:
    final = "2001:db8::99"
    routing = pb.ipv6_ext(pb.PROTO_UDP, bytes([2, 1, 0, 0, 0, 0]) + pb._addr(final))
    seg = pb.udp(1, 2, b"v6", src="2001:db8::1", dst=final)
    hop = pb.ipv6_ext(43, b"")
    frame = pb.ether(pb.ipv6(hop + routing + seg, next_header=0), pb.ETH_IPV6)
    dg, weirds, _ = decode(frame)
    assert weirds == []
    assert (dg.src, dg.dst, dg.proto, dg.version) == ("2001:db8::1", final, 17, 6)
    assert dg.payload == seg and dg.ip_len == 40 + len(hop) + len(routing) + len(seg)
    assert datagram_checksum_ok(dg)


def test_non_ip_frames_are_counted_not_weird() -> None:
    dg, weirds, decoder = decode(pb.ether(b"\0" * 28, pb.ETH_ARP))
    assert dg is None and weirds == [] and decoder.stats.non_ip[pb.ETH_ARP] == 1


@pytest.mark.parametrize(
    ("frame", "wirelen", "weird"),
    [
        (b"\0" * 8, 78, "truncated_ethernet_frame"),
        (pb.ether(b"\x45" + b"\0" * 10), None, "truncated_IP"),
        (pb.ether(b"\x00" * 20 + b"\0" * 8), None, "unknown_ip_version"),
        (pb.ether(pb.ipv4(b"x" * 20, total_length=0)), None, "ip_hdr_len_zero"),
        (pb.udp4_frame(), 30, "truncated_IP_len"),
        (
            pb.ether(pb.ipv4(b"", options=b"\x01" * 8, total_length=24)),
            None,
            "invalid_IP_header_size",
        ),
        (pb.ether(pb.ipv4(b"", checksum=0x1234)), None, "bad_IP_checksum"),
        (pb.ether(b"\0\x0a\x08", 0x8100), None, "truncated_VLAN_header"),
        (pb.ether(b"\x45\0"), None, "truncated_ethernet_frame"),  # 16 bytes: Zeek's bound
        (pb.ether(b"\0" * 40, 0x05DD), None, "undefined_ether_type"),
        (b"\0" * 12 + b"\x89\x03" + b"\0" * 16, None, "truncated_link_header_cfp"),
        (pb.ether(b"\0\0\x01\x40", pb.ETH_MPLS), None, "truncated_link_header"),
        (pb.ether(pb.mpls(b"\x70" + b"\0" * 30, [1]), pb.ETH_MPLS), None, "no_ip_in_mpls_payload"),
        (pb.ether(pb.ipv6(b"", next_header=59), pb.ETH_IPV6), None, "ipv6_no_next"),
    ],
)
def test_ip_layer_weirds(frame: bytes, wirelen, weird: str) -> None:
    dg, weirds, decoder = decode(frame, wirelen=wirelen)
    assert dg is None
    assert weirds == [weird]
    assert decoder.stats.dropped[weird] == 1


def test_ignore_checksums_keeps_bad_ip_checksum_and_zero_length() -> None:
    dg, weirds, _ = decode(pb.ether(pb.ipv4(b"", checksum=0x1234)), ignore_checksums=True)
    assert dg is not None and weirds == []
    seg = pb.udp(1, 2, b"abc")
    dg, weirds, _ = decode(pb.ether(pb.ipv4(seg, total_length=0)), ignore_checksums=True)
    assert weirds == ["ip_hdr_len_zero"] and dg.payload == seg


def test_snaplen_cut_packet_is_marked_not_fully_captured() -> None:
    frame = pb.tcp4_frame(payload=b"x" * 100)
    dg, weirds, _ = decode(frame[:60], wirelen=len(frame))
    assert weirds == [] and not dg.captured_all and dg.ip_len == len(frame) - 14
    assert datagram_checksum_ok(dg)  # not checkable: Zeek skips it


def test_checksums_like_zeek() -> None:
    assert internet_checksum(b"\x45\x00\x00\x1c") == pb.inet_checksum(b"\x45\x00\x00\x1c")
    assert ones_sum_ok(pb.ipv4(b"")[:20]) and not ones_sum_ok(b"\0" * 20)
    good = decode(pb.tcp4_frame(payload=b"data"))[0]
    assert datagram_checksum_ok(good)
    bad_tcp = pb.ether(pb.ipv4(pb.tcp(1, 2, b"d", checksum=7), proto=6))
    assert not datagram_checksum_ok(decode(bad_tcp)[0])
    assert datagram_checksum_ok(decode(bad_tcp)[0], ignore_checksums=True)
    no_udp_sum = pb.ether(pb.ipv4(pb.udp(1, 2, b"d", checksum=0), proto=17))
    assert datagram_checksum_ok(decode(no_udp_sum)[0])  # IPv4: zero means "no checksum"
    v6_zero = pb.ether(pb.ipv6(pb.udp(1, 2, b"d", checksum=0)), pb.ETH_IPV6)
    assert not datagram_checksum_ok(decode(v6_zero)[0])  # IPv6: mandatory
    icmp_ok = pb.ether(pb.ipv4(pb.icmp(8, 0, b"\0\1\0\1ping"), proto=1))
    assert datagram_checksum_ok(decode(icmp_ok)[0])
    icmp6_ok = pb.ether(pb.ipv6(pb.icmp6(128, 0, b"\0\1\0\1"), next_header=58), pb.ETH_IPV6)
    assert datagram_checksum_ok(decode(icmp6_ok)[0])


@settings(max_examples=150, deadline=None)
@given(
    payload=st.binary(max_size=2100),  # both word-sum paths (big-int below 768 B, numpy above)
    v6=st.booleans(),
    checksum=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    ends=st.sampled_from([("10.1.2.3", "192.168.7.9"), ("0.0.0.0", "255.255.255.255")]),
)
def test_flow_checksum_matches_datagram_checksum(payload, v6, checksum, ends) -> None:
    """The engine's per-connection TCP check gives datagram_checksum_ok's verdict."""
    src, dst = ("2001:db8::" + ends[0][-1], "fe80::1:" + ends[1][-1]) if v6 else ends
    segment = pb.tcp(1234, 80, payload, flags="A", src=src, dst=dst, checksum=checksum)
    ip = (
        pb.ipv6(segment, src=src, dst=dst, next_header=6)
        if v6
        else pb.ipv4(segment, src=src, dst=dst, proto=6)
    )
    dg = decode(pb.ether(ip, pb.ETH_IPV6 if v6 else pb.ETH_IPV4))[0]
    for a, b in ((dg.src, dg.dst), (dg.dst, dg.src)):  # either direction of the flow
        pair = flow_pair_sum(a, b, dg.version)
        assert flow_transport_ok(pair, 6, dg.payload) == datagram_checksum_ok(dg)


def test_shared_mobile_ipv6_weirds_match_zeek(shared) -> None:
    path = shared / "zeek-ref/cases/core.mobile-ipv6-dst-opts/ipv6-mobility-dst-opts.pcap"
    weirds = CollectingWeirds()
    decoder = Decoder(weirds, ignore_checksums=True)
    for packet in read_packets(path):
        decoder.decode(packet)
    ff, home, dst = (
        "2001:4f8:4:7:2e0:81ff:fe52:ffff",
        "2001:78:1:32::1",
        "2001:4f8:4:7:2e0:81ff:fe52:9a6b",
    )
    assert [(w[0], w[2], w[3]) for w in weirds.seen] == [
        ("bad_ipv6_dest_opt_len", ff, dst),
        ("multiple_home_addr_opts", home, dst),
        ("invalid_IP_header_size", None, None),
        ("bad_home_addr_len", ff, dst),
    ]
    assert weirds.seen[2][4] == "IP"


def test_shared_truncated_header_weird(shared) -> None:
    weirds = CollectingWeirds()
    decoder = Decoder(weirds)
    for packet in read_packets(shared / "zeek-ref/cases/core.raw-truncation/trunc-hdr.pcap"):
        assert decoder.decode(packet) is None
    assert [(w[0], w[4]) for w in weirds.seen] == [("truncated_ethernet_frame", "ETHERNET")]


def test_every_shared_trace_decodes(shared) -> None:
    traces = sorted((shared / "zeek-ref/cases").glob("*/*.pcap*"))
    assert len(traces) > 50
    for path in traces:
        decoder = Decoder(CollectingWeirds(), ignore_checksums=True)
        for packet in read_packets(path):
            decoder.decode(packet)
        assert decoder.stats.packets > 0
        # -C traces: nothing that is IP should be dropped except the mobile/truncation cases.
        if "mobility" not in path.name and "trunc" not in path.name:
            assert not decoder.stats.dropped, (path.name, decoder.stats.dropped)


def test_80211_management_frames_and_truncation() -> None:
    beacon = bytes([0x80, 0]) + b"\0" * 40
    dg, weirds, decoder = decode(beacon, pb.DLT_IEEE802_11)
    assert dg is None and weirds == []
    dg, weirds, _ = decode(b"\x08\x01" + b"\0" * 10, pb.DLT_IEEE802_11)
    assert weirds == ["truncated_802_11_header"]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=5000))
def test_checksum_matches_reference_sum_at_any_size(data: bytes) -> None:
    # Small and large inputs take different code paths (int.from_bytes vs numpy word sums).
    assert internet_checksum(data) == pb.inet_checksum(data)
    stamped = data + internet_checksum(data + b"\0" * (len(data) % 2)).to_bytes(2, "big")
    if len(data) % 2 == 0 and any(stamped):
        assert ones_sum_ok(stamped)


LINKTYPES = [0, 1, 9, 12, 101, 105, 113, 127, 147, 228, 229, 239, 276]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(LINKTYPES), st.integers(0, 400))
def test_decoder_never_raises_on_garbage(frame: bytes, linktype: int, extra: int) -> None:
    decoder = Decoder(CollectingWeirds())
    decoder.decode(Packet(0.0, frame, linktype, len(frame) + extra))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decoder_never_raises_on_mutated_real_frames(data) -> None:
    base = data.draw(
        st.sampled_from(
            [
                pb.tcp4_frame(payload=b"GET / HTTP/1.1\r\n\r\n", vlans=(5, 6)),
                pb.ether(
                    pb.ipv6(
                        pb.ipv6_ext(17, b"\xc9\x10" + b"\1" * 16) + pb.udp(1, 2, b"x"),
                        next_header=60,
                    ),
                    pb.ETH_IPV6,
                ),
                pb.ether(pb.fragment_ipv4(pb.udp(1, 2, b"y" * 100), [48, 60], proto=17)[0]),
                pb.ether(
                    pb.fragment_ipv6(pb.udp(1, 2, b"z" * 100), [48, 60], next_header=17)[1],
                    pb.ETH_IPV6,
                ),
                pb.ether(pb.mpls(pb.pppoe_session(b""), [1]), pb.ETH_MPLS),
            ]
        )
    )
    frame = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    decoder = Decoder(CollectingWeirds())
    for _ in range(2):  # twice: fragments meet their own duplicate
        decoder.decode(Packet(0.0, bytes(frame[:cut]), pb.DLT_EN10MB, len(frame)))


def test_datagrams_agree_with_dpkt_on_shared_traces(shared) -> None:
    """Every plain Ethernet IPv4/IPv6 packet: same addresses, protocol and trimmed payload."""
    dpkt = pytest.importorskip("dpkt")
    import socket

    checked = 0
    traces = sorted((shared / "zeek-ref/cases").glob("*/*.pcap")) + [
        shared / "samples/pcap/kitchen_boss.pcap"
    ]
    for path in traces:
        decoder = Decoder(CollectingWeirds(), ignore_checksums=True)
        for packet in read_packets(path):
            dg = decoder.decode(packet)
            try:
                eth = dpkt.ethernet.Ethernet(packet.data)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if (
                isinstance(ip, dpkt.ip.IP)
                and not (ip._flags_offset & 0x3FFF)
                and len(packet.data) > 34
            ):
                family, payload, proto = socket.AF_INET, bytes(ip.data), ip.p
            elif isinstance(ip, dpkt.ip6.IP6) and not ip.extension_hdrs:
                family, payload, proto = socket.AF_INET6, bytes(ip.data), ip.nxt
            else:
                continue
            if type(eth.data) is not type(ip) or eth.type not in (0x0800, 0x86DD):
                continue
            assert dg is not None, (path.name, packet.ts)
            assert dg.src == socket.inet_ntop(family, ip.src), path.name
            assert dg.dst == socket.inet_ntop(family, ip.dst), path.name
            assert dg.proto == proto and dg.payload == payload, (path.name, packet.ts)
            checked += 1
    assert checked > 8000


def _tunneled(outer_payload: bytes, proto: int) -> tuple:
    outer = pb.ether(pb.ipv4(outer_payload, src="192.0.2.1", dst="192.0.2.2", proto=proto))
    weirds = CollectingWeirds()
    decoder = Decoder(weirds)
    dg = decoder.decode(Packet(1.0, outer, 1, len(outer)))
    assert dg is not None and dg.proto == proto
    return decoder.decode_tunneled(dg), weirds.names


def gre(payload: bytes, proto: int, flags: int = 0, words: int = 0) -> bytes:
    return struct.pack("!HH", flags, proto) + b"\0\0\0\1" * words + payload


@pytest.mark.parametrize(
    "outer",
    [
        (udp_ip(), 4),
        (pb.ipv6(pb.udp(1234, 53, b"hello", src="2001:db8::1", dst="2001:db8::2")), 41),
        (gre(udp_ip(), 0x0800), 47),
        (gre(udp_ip(), 0x0800, flags=0xB000, words=3), 47),  # checksum + key + sequence
        (gre(pb.ether(udp_ip(), vlans=(9,)), 0x6558), 47),  # transparent Ethernet bridging
        (gre(pb.ether(udp_ip()), 0x88BE), 47),  # ERSPAN type I (no sequence bit)
        (gre(b"\0" * 8 + pb.ether(udp_ip()), 0x88BE, flags=0x1000, words=1), 47),  # ERSPAN II
        (gre(b"\xff\x03\x00\x21" + udp_ip(), 0x880B, flags=0x2001, words=1), 47),  # PPTP
    ],
    ids=["ipip", "6in4", "gre", "gre-ckey-seq", "gre-teb-vlan", "erspan1", "erspan2", "pptp"],
)
def test_tunnel_decapsulation(outer) -> None:
    inner, weirds = _tunneled(*outer)
    assert weirds == []
    assert inner is not None and inner.proto == 17
    assert inner.payload.endswith(b"hello") and inner.payload[2:4] == b"\x00\x35"


@pytest.mark.parametrize(
    ("payload", "weird"),
    [
        (b"\0\0", "truncated_GRE"),
        (gre(udp_ip(), 0x0800, flags=0x0002), "unknown_gre_version"),
        (gre(udp_ip(), 0x0800, flags=0x4000), "gre_routing"),
        (gre(udp_ip(), 0x0800, flags=0x0008), "unknown_gre_flags"),
        (gre(udp_ip(), 0x0800, flags=0x0001), "egre_protocol_type"),
        (gre(b"\xff\x03\xc0\x21", 0x880B, flags=0x2001, words=1), "non_ip_packet_in_encap"),
    ],
)
def test_gre_weirds(payload: bytes, weird: str) -> None:
    inner, weirds = _tunneled(payload, 47)
    assert inner is None and weirds == [weird]


def test_last_l2_addresses_for_mac_logging() -> None:
    decoder = Decoder(CollectingWeirds())
    assert decoder.last_l2_addresses() == (None, None)
    decoder.decode(Packet(0.0, pb.udp4_frame(), 1, 47))
    assert decoder.last_l2_addresses() == ("00:11:22:33:44:55", "66:77:88:99:aa:bb")
    decoder.decode(Packet(0.0, pb.udp4_frame(vlans=(3,)), 1, 51))
    assert decoder.last_l2_addresses() == ("00:11:22:33:44:55", "66:77:88:99:aa:bb")
    decoder.decode(Packet(0.0, pb.ipv4(pb.udp(1, 2)), pb.DLT_RAW, 28))
    assert decoder.last_l2_addresses() == (None, None)
