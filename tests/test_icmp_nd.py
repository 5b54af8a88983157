"""ICMPv6 Neighbor Discovery weirds: raised only when a script handles the message's event."""

from __future__ import annotations

import pktbuild as pb
from engine_kit import ListSink, datagram
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.icmp import nd_weirds

RA = "icmp_router_advertisement"
NS = "icmp_neighbor_solicitation"


def test_short_router_advertisement_is_a_flowless_weird_with_offset_and_length():
    (w,) = nd_weirds(134, b"\0" * 4, frozenset({RA}))
    assert (w.name, w.addl, w.conn_scoped) == ("icmp6_ra_bad_opt_offset", "8 (length 4)", False)


def test_no_handler_no_parsing_no_weird():
    assert nd_weirds(134, b"\0" * 4, frozenset({NS})) == []
    assert nd_weirds(128, b"", frozenset({RA})) == []  # echo request: not ND


def test_option_walk_weirds():
    target = b"\x20\x01" + b"\0" * 14
    ok = target + bytes([1, 1]) + b"\xaa" * 6  # source link-layer address option, 8 bytes
    assert nd_weirds(135, ok, frozenset({NS})) == []
    zero = target + bytes([1, 0]) + b"\0" * 6
    assert [w.name for w in nd_weirds(135, zero, frozenset({NS}))] == [
        "zero_length_ICMPv6_ND_option"
    ]
    odd = ok + b"\x01"  # one byte left: no room for type and length
    assert [w.name for w in nd_weirds(135, odd, frozenset({NS}))] == ["truncated_ICMPv6_ND_options"]


def _advert(handled: frozenset[str]) -> list[dict]:
    sink = ListSink()
    engine = Engine(sink, handled_events=handled)
    src, dst = "fe80::1", "ff02::1"
    message = pb.icmp6(134, 0, b"\x40\0\x07\x08" + b"\0" * 4, src=src, dst=dst)  # timers cut
    engine.ip(datagram(1.0, src, dst, pb.PROTO_ICMPV6, message, version=6))
    engine.finish()
    return sink.rows("weird")


def test_engine_logs_the_weird_only_with_the_handler():
    assert _advert(frozenset()) == []
    (row,) = _advert(frozenset({RA}))
    assert row["name"] == "icmp6_ra_bad_opt_offset" and row["addl"] == "8 (length 4)"
    assert row["source"] == "ICMP" and row["uid"] is None and row["id.orig_h"] is None
