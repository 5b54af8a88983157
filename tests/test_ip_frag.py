"""IPv4/IPv6 fragment reassembly with Zeek's overlap and size rules."""

from __future__ import annotations

import random

import pktbuild as pb
import pytest
from wirestream.processors.engine.api import Packet
from wirestream.processors.engine.checksum import datagram_checksum_ok
from wirestream.processors.engine.decode import CollectingWeirds, Decoder
from wirestream.processors.engine.pcapio import read_packets

pytestmark = pytest.mark.timeout(60)

V6A, V6B = "2001:db8::1", "2001:db8::2"


def feed(frames: list[bytes]) -> tuple[list, list[str], Decoder]:
    weirds = CollectingWeirds()
    decoder = Decoder(weirds)
    out = [decoder.decode(Packet(float(i), f, pb.DLT_EN10MB, len(f))) for i, f in enumerate(frames)]
    return [d for d in out if d is not None], weirds.names, decoder


def udp_payload(size: int) -> bytes:
    return pb.udp(5000, 53, bytes(random.Random(size).randrange(256) for _ in range(size)))


@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
def test_ipv4_reassembly_any_order(order: str) -> None:
    seg = udp_payload(3000)
    frags = [pb.ether(f) for f in pb.fragment_ipv4(seg, [1480, 1480, 48], proto=17, ident=77)]
    if order == "reversed":
        frags.reverse()
    elif order == "shuffled":
        frags = [frags[1], frags[2], frags[0]]
    dgs, weirds, decoder = feed(frags)
    assert weirds == []
    (dg,) = dgs
    assert dg.payload == seg and dg.ip_len == 20 + len(seg) and dg.proto == 17
    assert dg.ts == 2.0  # the packet that completed the datagram
    assert datagram_checksum_ok(dg)
    assert decoder.stats.fragments == 3 and decoder.stats.reassembled == 1
    assert len(decoder.fragments) == 0


def test_ipv6_reassembly_and_extension_header_after_fragment() -> None:
    inner = pb.udp(5000, 53, b"q" * 2000, src=V6A, dst=V6B)
    unfragmentable_rest = pb.ipv6_ext(pb.PROTO_UDP, b"")  # dst options travel inside the fragments
    frags = [
        pb.ether(f, pb.ETH_IPV6)
        for f in pb.fragment_ipv6(
            unfragmentable_rest + inner, [1200, 816], next_header=60, src=V6A, dst=V6B
        )
    ]
    dgs, weirds, _ = feed(frags)
    assert weirds == []
    (dg,) = dgs
    assert dg.proto == 17 and dg.payload == inner and dg.version == 6
    assert dg.ip_len == 40 + len(unfragmentable_rest) + len(inner)
    assert datagram_checksum_ok(dg)


def test_overlap_same_bytes_is_fragment_overlap_and_first_bytes_win() -> None:
    seg = udp_payload(200)
    a = pb.ether(pb.ipv4(seg[:128], mf=True, proto=17))
    dup = pb.ether(pb.ipv4(seg[64:128], mf=True, frag_offset=64, proto=17))
    changed = bytearray(seg[64:128])
    changed[0] ^= 0xFF
    evil = pb.ether(pb.ipv4(bytes(changed), mf=True, frag_offset=64, proto=17))
    last = pb.ether(pb.ipv4(seg[128:], frag_offset=128, proto=17))
    dgs, weirds, _ = feed([a, dup, evil, last])
    assert weirds == ["fragment_overlap", "fragment_inconsistency"]
    assert dgs[0].payload == seg


def test_size_weirds() -> None:
    seg = udp_payload(100)
    small = pb.ether(pb.ipv4(seg[:16], mf=True, proto=17))  # 36 bytes < 64 with more to come
    rest = pb.ether(pb.ipv4(seg[16:], frag_offset=16, proto=17))
    _, weirds, _ = feed([small, rest])
    assert weirds == ["excessively_small_fragment"]
    end_a = pb.ether(pb.ipv4(seg[64:], frag_offset=64, proto=17, ident=9))
    end_b = pb.ether(pb.ipv4(seg[64:96], frag_offset=64, proto=17, ident=9))
    _, weirds, _ = feed([end_a, end_b])
    assert weirds == ["fragment_size_inconsistency", "fragment_overlap"]
    huge = pb.ether(pb.ipv4(b"x" * 16, frag_offset=64000, proto=17))
    _, weirds, _ = feed([huge])
    assert weirds == ["excessively_large_fragment"]


def test_df_and_protocol_inconsistency() -> None:
    seg = udp_payload(200)
    a = pb.ether(pb.ipv4(seg[:104], mf=True, df=True, proto=17))
    b = pb.ether(pb.ipv4(seg[104:], frag_offset=104, proto=6))
    dgs, weirds, _ = feed([a, b])
    assert weirds == ["fragment_with_DF", "fragment_protocol_inconsistency"]
    assert dgs[0].proto == 17  # the first fragment's protocol decides


def test_incomplete_datagram_never_delivered_and_cut_fragment_weird() -> None:
    seg = udp_payload(300)
    first = pb.ether(pb.ipv4(seg[:160], mf=True, proto=17))
    dgs, weirds, decoder = feed([first])
    assert dgs == [] and len(decoder.fragments) == 1
    cut = first[:100]
    weirds_c = CollectingWeirds()
    d = Decoder(weirds_c)
    dg = d.decode(Packet(0.0, cut, 1, len(first)))
    # Zeek analyzes a snaplen-cut first fragment as it is.
    assert weirds_c.names == ["incompletely_captured_fragment"] and dg is not None
    later = pb.ether(pb.ipv4(seg[160:], frag_offset=160, proto=17))
    assert d.decode(Packet(0.0, later[:60], 1, len(later))) is None


def test_shared_ipv6_fragmented_dns_matches_zeek_output(shared) -> None:
    path = shared / "zeek-ref/cases/core.ipv6-frag/ipv6-fragmented-dns.pcap"
    decoder = Decoder(CollectingWeirds())
    dgs = [d for p in read_packets(path) if (d := decoder.decode(p)) is not None]
    # Zeek's printed udp lengths: 81, 331, 82, 82, 3238 (the last one reassembled).
    assert [int.from_bytes(d.payload[4:6], "big") for d in dgs] == [81, 331, 82, 82, 3238]
    assert [d.ip_len - 40 for d in dgs] == [81, 331, 82, 82, 3238]
    assert all(datagram_checksum_ok(d) for d in dgs)


def test_shared_gtp_outer_fragments_reassemble(shared) -> None:
    path = (
        shared
        / "zeek-ref/cases/core.tunnels.gtp.outer_ip_frag/gtp1_gn_normal_incl_fragmentation.pcap"
    )
    decoder = Decoder(CollectingWeirds(), ignore_checksums=True)
    dgs = [d for p in read_packets(path) if (d := decoder.decode(p)) is not None]
    assert decoder.stats.reassembled > 0
    for d in dgs:  # every reassembled GTP datagram is whole: UDP length == IP payload length
        assert int.from_bytes(d.payload[4:6], "big") == len(d.payload)
