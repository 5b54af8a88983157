"""Connection identity as Zeek decides it: canonical keys, orig/resp flips, ICMP pairing, timeouts."""

from __future__ import annotations

import re

import pktbuild as pb
import pytest
from engine_kit import ListSink, datagram, only_conn
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.icmp import counterpart
from wirestream.processors.engine.sessions import make_key
from wirestream.processors.engine.uid import UidGenerator, base62


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def engine(sink: ListSink) -> Engine:
    return Engine(sink, seed=3)


def udp(
    engine: Engine, ts: float, src: str, sport: int, dst: str, dport: int, body: bytes = b"x"
) -> None:
    engine.ip(datagram(ts, src, dst, 17, pb.udp(sport, dport, body, src=src, dst=dst)))


def test_key_is_the_same_both_ways_and_one_way_icmp_keeps_direction() -> None:
    assert make_key("10.0.0.1", 1, "10.0.0.2", 2, 6) == make_key("10.0.0.2", 2, "10.0.0.1", 1, 6)
    assert make_key("10.0.0.1", 3, "10.0.0.2", 1, 1, one_way=True) != make_key(
        "10.0.0.2", 3, "10.0.0.1", 1, 1, one_way=True
    )


def test_udp_request_and_reply_make_one_connection(engine: Engine, sink: ListSink) -> None:
    udp(engine, 1.0, "10.0.0.1", 5555, "10.0.0.2", 9999, b"q" * 10)
    udp(engine, 1.5, "10.0.0.2", 9999, "10.0.0.1", 5555, b"r" * 30)
    engine.finish()
    c = only_conn(sink)
    assert (c["id.orig_p"], c["history"], c["conn_state"]) == (5555, "Dd", "SF")
    assert (c["orig_bytes"], c["resp_bytes"], c["duration"]) == (10, 30, 0.5)


def test_udp_from_a_likely_server_port_flips(engine: Engine, sink: ListSink) -> None:
    udp(engine, 1.0, "10.0.0.2", 123, "10.0.0.1", 40000)
    engine.finish()
    c = only_conn(sink)
    assert (c["id.orig_h"], c["id.orig_p"], c["id.resp_p"]) == ("10.0.0.1", 40000, 123)
    assert (c["history"], c["conn_state"]) == ("^d", "SHR")


def test_udp_inactivity_timeout_splits_connections(engine: Engine, sink: ListSink) -> None:
    udp(engine, 1.0, "10.0.0.1", 5555, "10.0.0.2", 9999)
    udp(engine, 62.0, "10.0.0.1", 5555, "10.0.0.2", 9999)
    engine.finish()
    rows = sink.rows("conn")
    assert len(rows) == 2 and rows[0]["uid"] != rows[1]["uid"]
    assert rows[0]["ts"] == 1.0 and rows[1]["ts"] == 62.0


def test_bad_udp_checksum_counts_only_as_history(engine: Engine, sink: ListSink) -> None:
    seg = pb.udp(5555, 53, b"junk", src="10.0.0.1", dst="10.0.0.2", checksum=0x1111)
    engine.ip(datagram(1.0, "10.0.0.1", "10.0.0.2", 17, seg))
    engine.finish()
    c = only_conn(sink)
    assert (c["history"], c["conn_state"], c["orig_pkts"]) == ("C", "OTH", 0)


def test_icmp_echo_request_and_reply_pair(engine: Engine, sink: ListSink) -> None:
    req = pb.icmp(8, 0, b"\x00\x01\x00\x01" + b"p" * 56)
    rep = pb.icmp(0, 0, b"\x00\x01\x00\x01" + b"p" * 56)
    engine.ip(datagram(1.0, "10.0.0.1", "10.0.0.2", 1, req))
    engine.ip(datagram(1.2, "10.0.0.2", "10.0.0.1", 1, rep))
    engine.finish()
    c = only_conn(sink)
    assert (c["proto"], c["id.orig_p"], c["id.resp_p"], c["conn_state"]) == ("icmp", 8, 0, "OTH")
    # Sizes count what follows the 8-byte ICMP header (id and sequence are part of it).
    assert (c["orig_bytes"], c["resp_bytes"], c["orig_pkts"], c["resp_pkts"]) == (56, 56, 1, 1)
    assert c["history"] is None


def test_icmp_unreachable_is_one_way_with_code_as_responder_port(
    engine: Engine, sink: ListSink
) -> None:
    assert counterpart(1, 3, 1) == (1, True)
    assert counterpart(58, 135, 0) == (136, False)
    msg = pb.icmp(3, 1, b"\x00" * 4 + b"\x45" + b"\x00" * 27)
    engine.ip(datagram(1.0, "10.0.0.9", "10.0.0.1", 1, msg))
    engine.ip(datagram(1.1, "10.0.0.1", "10.0.0.9", 1, msg))
    engine.finish()
    rows = sink.rows("conn")
    assert len(rows) == 2
    assert {(r["id.orig_h"], r["id.orig_p"], r["id.resp_p"]) for r in rows} == {
        ("10.0.0.9", 3, 1),
        ("10.0.0.1", 3, 1),
    }


def test_uids_look_like_zeeks_and_repeat_with_a_seed() -> None:
    assert base62(0) == "0" and base62(61) == "z" and base62(62) == "10"
    a, b = UidGenerator(5), UidGenerator(5)
    uids = [a.conn_uid() for _ in range(3)]
    assert uids == [b.conn_uid() for _ in range(3)]
    assert all(re.fullmatch(r"C[0-9A-Za-z]{10,17}", u) for u in uids)
    assert a.file_uid().startswith("F")
    with pytest.raises(ValueError):
        base62(-1)


def test_live_state_is_bounded_by_timeouts(engine: Engine, sink: ListSink) -> None:
    for i in range(200):
        udp(engine, 1.0 + i, "10.0.0.1", 10000 + i, "10.0.0.2", 9999)
    # Every UDP connection ends 60 s after its last packet, so about 60 stay live at any time.
    assert len(engine.connections) <= 61
    assert engine.stats.max_live <= 61
    engine.finish()
    assert len(sink.rows("conn")) == 200


def test_other_ip_protocols_become_unknown_transport_connections(
    engine: Engine, sink: ListSink
) -> None:
    engine.ip(datagram(1.0, "10.0.0.1", "10.0.0.2", 89, b"o" * 40))  # OSPF
    engine.ip(datagram(2.0, "10.0.0.2", "10.0.0.1", 89, b"o" * 40))
    engine.ip(datagram(2.0, "10.0.0.2", "10.0.0.1", 2, b"i" * 8))  # IGMP: events only in Zeek
    engine.finish()
    c = only_conn(sink)
    assert (c["proto"], c["id.orig_p"], c["id.resp_p"], c["ip_proto"]) == (
        "unknown_transport",
        0,
        0,
        89,
    )
    assert (c["conn_state"], c["history"], c["orig_pkts"], c["resp_pkts"]) == ("OTH", None, 1, 1)


def test_weird_suppression_follows_zeeks_rules() -> None:
    from wirestream.processors.engine.weird import WeirdLog

    out: list = []
    w = WeirdLog(out.append)
    cid = ("10.0.0.1", 1, "10.0.0.2", 2)
    w.conn_weird("data_before_established", 1.0, "C1", cid)
    w.conn_weird("data_before_established", 2.0, "C1", cid)  # same conn within 10 min: dropped
    w.conn_weird("data_before_established", 700.0, "C1", cid)  # after 10 min: logged again
    w.conn_weird("spontaneous_FIN", 1.0, "C1", cid)  # ignored by default
    w.conn_weird("bad_TCP_checksum", 1.0, "C1", cid)
    w.conn_weird("bad_TCP_checksum", 1.0, "C2", ("10.0.0.1", 5, "10.0.0.3", 6))  # once per orig
    w.net_weird("truncated_IP", 3.0, "IP")
    assert [(r["name"], r["ts"]) for r in out] == [
        ("data_before_established", 1.0),
        ("data_before_established", 700.0),
        ("bad_TCP_checksum", 1.0),
        ("truncated_IP", 3.0),
    ]
    assert out[-1]["uid"] is None and out[-1]["id.orig_h"] is None and out[-1]["source"] == "IP"
    assert out[0]["peer"] == "zeek" and out[0]["notice"] is False


def test_ip_in_ip_and_gre_inner_connections_get_a_tunnel_parent(
    engine: Engine, sink: ListSink
) -> None:
    inner = pb.ipv4(
        pb.udp(5555, 9999, b"hi", src="192.168.9.1", dst="192.168.9.2"),
        src="192.168.9.1",
        dst="192.168.9.2",
        proto=17,
    )
    engine.ip(datagram(1.0, "10.0.0.1", "10.0.0.2", 4, inner))
    gre = b"\x00\x00\x08\x00" + inner
    engine.ip(datagram(2.0, "10.0.0.3", "10.0.0.4", 47, gre))
    engine.finish()
    c = only_conn(sink)
    assert (c["id.orig_h"], c["id.resp_p"]) == ("192.168.9.1", 9999)
    assert len(c["tunnel_parents"]) == 2
    tunnels = sink.rows("tunnel")
    assert [(t["tunnel_type"], t["action"], t["id.orig_p"]) for t in tunnels] == [
        ("Tunnel::IP", "Tunnel::DISCOVER", 0),
        ("Tunnel::GRE", "Tunnel::DISCOVER", 0),
    ]
    assert {t["uid"] for t in tunnels} == set(c["tunnel_parents"])


@pytest.mark.timeout(120)
def test_malformed_transport_headers_never_crash_the_engine() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        proto=st.sampled_from([6, 17, 1, 58, 47, 4, 41, 89]),
        payload=st.binary(max_size=80),
        sport_first=st.booleans(),
    )
    def run(proto: int, payload: bytes, sport_first: bool) -> None:
        sink = ListSink()
        engine = Engine(sink)
        src, dst = ("10.0.0.1", "10.0.0.2") if sport_first else ("10.0.0.2", "10.0.0.1")
        engine.ip(datagram(1.0, src, dst, proto, payload))
        engine.ip(datagram(2.0, dst, src, proto, payload[::-1]))
        engine.finish()
        for row in sink.rows("conn"):
            assert row["conn_state"]

    run()


def test_udp_tunnels_teredo_vxlan_ayiya(engine: Engine, sink: ListSink) -> None:
    inner6 = pb.ipv6(
        pb.udp(1, 2, b"x", src="2001:0:1::1", dst="2001:db8::2"),
        src="2001:0:1::1",
        dst="2001:db8::2",
        next_header=17,
    )
    udp(engine, 1.0, "10.0.0.1", 40000, "10.0.0.2", 3544, inner6)
    udp(engine, 1.1, "10.0.0.2", 3544, "10.0.0.1", 40000, inner6)
    ayiya = bytes([0x41, 0x52, 0x11, 41]) + b"\0" * 4 + b"i" * 16 + b"s" * 20 + inner6
    udp(engine, 2.0, "10.0.0.5", 40001, "10.0.0.6", 5072, ayiya)
    inner4 = pb.ipv4(
        pb.udp(7, 8, b"y", src="192.168.1.1", dst="192.168.1.2"),
        src="192.168.1.1",
        dst="192.168.1.2",
    )
    vxlan = b"\x08\0\0\0\0\0\x2a\0" + pb.ether(inner4)
    udp(engine, 3.0, "10.0.0.7", 40002, "10.0.0.8", 4789, vxlan)
    engine.finish()
    by_resp = {r["id.resp_p"]: r for r in sink.rows("conn")}
    assert by_resp[3544]["service"] == "teredo"  # valid Teredo seen from both sides
    assert by_resp[5072]["service"] == "ayiya"
    assert by_resp[4789]["service"] == "vxlan"
    assert len(by_resp[2]["tunnel_parents"]) == 2  # the inner IPv6 flow over Teredo and AYIYA
    assert by_resp[8]["tunnel_parents"] == [by_resp[4789]["uid"]]
    assert sorted(
        t["tunnel_type"] for t in sink.rows("tunnel") if t["action"] == "Tunnel::CLOSE"
    ) == [
        "Tunnel::AYIYA",
        "Tunnel::TEREDO",
        "Tunnel::VXLAN",
    ]


def test_analyzers_can_register_script_level_tunnels(engine: Engine, sink: ListSink) -> None:
    from wirestream.processors.engine.sessions import AnalyzerSlot

    udp(engine, 1.0, "10.0.0.1", 5555, "10.0.0.2", 9999)
    conn = next(iter(engine.connections.values()))
    slot = AnalyzerSlot(conn, None)  # type: ignore[arg-type]
    slot.register_tunnel(("10.0.0.1", 0, "60.1.1.1", 8124), "SOCKS")
    slot.register_tunnel(("10.0.0.1", 0, "60.1.1.1", 8124), "SOCKS")  # once per tunnel
    engine.finish()
    (t,) = sink.rows("tunnel")
    assert (t["uid"], t["id.resp_p"], t["tunnel_type"], t["action"]) == (
        None,
        8124,
        "Tunnel::SOCKS",
        "Tunnel::DISCOVER",
    )


def test_gtp_inner_teredo_case_without_teredo_confirmation_delay(shared) -> None:  # noqa: ANN001
    """core.tunnels.gtp.inner_teredo runs Zeek with Tunnel::delay_teredo_confirmation=F."""
    from wirestream.processors.engine.pcapio import read_packets

    case = shared / "zeek-ref/cases/core.tunnels.gtp.inner_teredo"
    sink = ListSink()
    engine = Engine(sink, delay_teredo_confirmation=False)
    for packet in read_packets(case / "gtp8_teredo.pcap"):
        engine.process(packet)
    engine.finish()
    ours = sorted(
        (r["id.orig_h"], r["id.resp_h"], r["service"] or "-", len(r["tunnel_parents"] or ()))
        for r in sink.rows("conn")
    )
    base = []
    for line in (case / "baseline/conn.log").read_text().splitlines():
        if line.startswith(("#", "###")):
            continue
        f = line.split("\t")
        base.append((f[2], f[4], f[7], 0 if f[20] == "-" else len(f[20].split(","))))
    assert ours == sorted(base)


def test_gre_variants_and_geneve_decapsulate(engine: Engine, sink: ListSink) -> None:
    erspan2 = (
        b"\x10\x00\x88\xbe" + b"\0" * 4 + b"\0" * 8
    )  # sequence bit: an 8-byte ERSPAN II header
    inner4 = pb.ipv4(
        pb.udp(7, 8, b"y", src="192.168.1.1", dst="192.168.1.2"),
        src="192.168.1.1",
        dst="192.168.1.2",
    )
    geneve = b"\x00\x00\x65\x58\x00\x00\x01\x00" + pb.ether(inner4)
    udp(engine, 1.0, "10.0.0.7", 40002, "10.0.0.8", 6081, geneve)
    udp(engine, 2.0, "10.0.0.9", 40003, "10.0.0.10", 4754, b"\x00\x00\x08\x00" + inner4)
    engine.ip(datagram(3.0, "10.0.1.1", "10.0.1.2", 47, erspan2 + pb.ether(inner4)))
    engine.ip(
        datagram(4.0, "10.0.1.1", "10.0.1.2", 47, b"\x40\x00\x08\x00" + b"\0" * 30)
    )  # routing
    engine.finish()
    by_resp = {r["id.resp_p"]: r for r in sink.rows("conn")}
    assert by_resp[6081]["service"] == "geneve"
    assert (
        len(by_resp[8]["tunnel_parents"]) == 3
    )  # Geneve's UDP uid, GRE's and ERSPAN's tunnel uids
    types = {t["tunnel_type"] for t in sink.rows("tunnel")}
    assert types == {"Tunnel::GENEVE", "Tunnel::GRE"}
    assert "gre_routing" in [w["name"] for w in sink.rows("weird")]


def test_tunnel_packet_weirds_name_the_flow_and_the_analyzer(
    engine: Engine, sink: ListSink
) -> None:
    udp(engine, 1.0, "20.0.0.1", 50901, "20.0.0.2", 6081, b"\x00\x00\x65\x58\x00\x00\x01\x00")
    engine.finish()
    (w,) = sink.rows("weird")
    assert (w["name"], w["uid"], w["id.orig_p"], w["id.resp_p"], w["source"]) == (
        "geneve_empty_packet",
        None,
        0,
        0,
        "GENEVE",
    )
