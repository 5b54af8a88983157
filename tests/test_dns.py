"""DNS analyzer: Zeek's message parsing, RR summaries and query/reply pairing, byte by byte."""

from __future__ import annotations

import struct

import pytest
from analyzer_ctx import FakeContext, udp_conn
from wirestream.processors.engine.api import ConnId
from wirestream.processors.engine.protocols import dns


def name(n: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".") if p) + b"\0"


def msg(
    ident: int,
    *,
    qr: bool = False,
    opcode: int = 0,
    rcode: int = 0,
    aa: bool = False,
    rd: bool = True,
    ra: bool = False,
    z: int = 0,
    questions: list[tuple[str, int]] = (),  # type: ignore[assignment]
    answers: list[tuple[bytes, int, int, bytes]] = (),  # type: ignore[assignment]
    nscount: int = 0,
    arcount: int = 0,
    tail: bytes = b"",
) -> bytes:
    flags = (qr << 15) | (opcode << 11) | (aa << 10) | (rd << 8) | (ra << 7) | (z << 4) | rcode
    out = struct.pack("!6H", ident, flags, len(questions), len(answers), nscount, arcount)
    for qname, qtype in questions:
        out += name(qname) + struct.pack("!HH", qtype, 1)
    for rname, rtype, ttl, rdata in answers:
        out += rname + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
    return out + tail


def rr(owner: str, rtype: int, rdata: bytes, ttl: int = 300) -> tuple[bytes, int, int, bytes]:
    return (name(owner), rtype, ttl, rdata)


def run(ctx: FakeContext, *messages: tuple[bool, bytes, float]) -> list[dict]:
    an = dns.DnsAnalyzer(ctx)
    for is_orig, data, ts in messages:
        an.data(is_orig, data, ts)
    an.end(100.0)
    return ctx.logs("dns")


def test_query_and_reply_pair_into_one_row_with_rtt_flags_answers() -> None:
    ctx = FakeContext(udp_conn())
    q = msg(7, questions=[("WWW.Example.COM", 1)], z=1)
    r = msg(
        7,
        qr=True,
        aa=True,
        ra=True,
        questions=[("www.example.com", 1)],
        answers=[
            rr("www.example.com", 5, name("web.example.com"), 60),
            rr("web.example.com", 1, bytes([192, 0, 2, 7]), 30),
        ],
    )
    (row,) = run(ctx, (True, q, 1.0), (False, r, 1.25))
    assert row["ts"] == 1.0 and row["rtt"] == pytest.approx(0.25)
    assert row["query"] == "www.example.com"  # lower-cased, as Zeek logs it
    assert (row["qclass"], row["qclass_name"], row["qtype"], row["qtype_name"]) == (
        1,
        "C_INTERNET",
        1,
        "A",
    )
    assert (row["rcode"], row["rcode_name"]) == (0, "NOERROR")
    assert (row["AA"], row["TC"], row["RD"], row["RA"], row["Z"]) == (True, False, True, True, 1)
    assert row["answers"] == ["web.example.com", "192.0.2.7"] and row["TTLs"] == [60.0, 30.0]
    assert (row["opcode"], row["opcode_name"], row["rejected"]) == (0, "query", False)
    assert row["proto"] == "udp" and row["trans_id"] == 7 and ctx.confirmed == ["dns", "dns"]


def test_reply_without_query_takes_name_from_answer_and_waits_for_connection_end() -> None:
    ctx = FakeContext(udp_conn())
    an = dns.DnsAnalyzer(ctx)
    r = msg(
        9, qr=True, questions=[("a.example", 1)], answers=[rr("a.example", 1, b"\xc0\x00\x02\x01")]
    )
    an.data(False, r, 5.0)
    assert ctx.logs("dns") == []  # pending until the connection goes away
    an.end(6.0)
    (row,) = ctx.logs("dns")
    assert row["query"] == "a.example" and row["qtype"] is None and row["qclass_name"] is None
    assert row["rtt"] is None and row["rcode_name"] == "NOERROR" and row["answers"] == ["192.0.2.1"]


def test_duplicate_reply_is_its_own_row_and_retransmitted_query_stays_pending() -> None:
    ctx = FakeContext(udp_conn())
    q = msg(3, questions=[("x.example", 16)])
    r = msg(3, qr=True, questions=[("x.example", 16)], answers=[rr("x.example", 16, b"\x02hi")])
    rows = run(ctx, (True, q, 1.0), (True, q, 6.0), (False, r, 6.1), (False, r, 6.2))
    first, *rest = rows
    assert first["rtt"] == pytest.approx(5.1) and first["answers"] == ["TXT 2 hi"]
    # the retransmission paired with the second reply (FIFO per transaction id)
    assert len(rest) == 1 and rest[0]["ts"] == 6.0 and rest[0]["rtt"] == pytest.approx(0.2)


def test_unanswered_query_is_logged_at_the_end() -> None:
    ctx = FakeContext(udp_conn())
    (row,) = run(ctx, (True, msg(11, questions=[("lost.example", 28)]), 2.0))
    assert row["qtype_name"] == "AAAA" and row["rcode"] is None and row["answers"] is None


def test_multicast_messages_are_never_paired() -> None:
    ctx = FakeContext(ConnId("192.0.2.9", 5353, "224.0.0.251", 5353, "udp"))
    an = dns.DnsAnalyzer(ctx)
    an.data(True, msg(0, rd=False, questions=[("printer.local", 1)]), 1.0)
    an.data(
        True,
        msg(0, qr=True, aa=True, answers=[rr("other.local", 1, b"\xc0\x00\x02\x09", 120)]),
        1.1,
    )
    rows = ctx.logs("dns")
    assert [r["query"] for r in rows] == ["printer.local", "other.local"]  # logged as they come
    assert rows[1]["answers"] == ["192.0.2.9"] and rows[1]["TTLs"] == [120.0] and rows[1]["AA"]
    assert ctx.flips == 0


def test_reply_seen_first_from_originator_flips_roles() -> None:
    ctx = FakeContext(ConnId("198.51.100.53", 53, "192.0.2.1", 53, "udp"))
    (row,) = run(
        ctx, (True, msg(5, qr=True, answers=[rr("f.example", 1, b"\x01\x02\x03\x04")]), 1.0)
    )
    assert ctx.flips == 1
    assert (row["id.orig_h"], row["id.resp_h"]) == ("192.0.2.1", "198.51.100.53")


@pytest.mark.parametrize(
    ("rtype", "rdata", "expected"),
    [
        (28, bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
        (2, name("ns1.example"), "ns1.example"),
        (12, name("host.example"), "host.example"),
        (15, b"\x00\x0a" + name("mx.example"), "mx.example"),
        (6, name("ns.example") + name("admin.example") + bytes(20), "ns.example"),
        (33, b"\x00\x01\x00\x02\x01\xbb" + name("svc.example"), "svc.example"),
        (16, b"\x05hello\x03foo", "TXT 5 hello TXT 3 foo"),
        (99, b"\x04v=sp", "SPF 4 v=sp"),
        (
            46,
            struct.pack("!HBBIIIH", 1, 8, 2, 300, 0, 0, 1) + name("example") + b"sig",
            "RRSIG 1 example",
        ),
        (46, struct.pack("!HBBIIIH", 2, 8, 0, 300, 0, 0, 1) + b"\0" + b"sig", "RRSIG 2 <Root>"),
        (48, b"\x01\x01\x03\x08keykey", "DNSKEY 8"),
        (43, b"\x00\x01\x08\x02" + b"d" * 32, "DS 8 2"),
        (44, b"\x01\x01\xab\xcd", "SSHFP: abcd"),
        (47, name("next.example") + b"\x00\x01\x40", "NSEC q.example next.example"),
        (50, b"\x01\x00\x00\x0a\x00\x00" + b"\x00", "NSEC3"),
        (
            35,
            b"\x00\x0a\x00\x14\x01U\x07E2U+sip\x00" + name("sip.example"),
            "NAPTR 10 20 U E2U+sip sip.example",
        ),
        (29, bytes([0, 0x12, 0x16, 0x13]) + bytes(12), "LOC:  18 22 19"),
        (999, b"\x01\x02", "<unknown type=999>"),
    ],
)
def test_answer_summaries_match_zeeks_script_formatting(
    rtype: int, rdata: bytes, expected: str
) -> None:
    m = dns.parse_message(msg(1, qr=True, answers=[rr("q.example", rtype, rdata)]))
    assert m is not None and m.confirmed
    assert m.answers[0].reply == expected


@pytest.mark.parametrize("rtype", [13, 41, 257, 64])  # HINFO, OPT, CAA, SVCB: no script handler
def test_types_zeek_scripts_do_not_log(rtype: int) -> None:
    rdata = {
        13: b"\x01a\x01b",
        41: b"",
        257: b"\x00\x05issueca",
        64: b"\x00\x01\x00",
    }[rtype]
    m = dns.parse_message(msg(1, qr=True, answers=[rr("q.example", rtype, rdata)]))
    assert m is not None and m.answers[0].reply is None


def test_malformed_txt_is_logged_with_what_was_read_then_parsing_stops() -> None:
    bad = rr("t.example", 16, b"\x02ok\x09short")
    m = dns.parse_message(msg(1, qr=True, answers=[bad, rr("t.example", 1, b"\x01\x01\x01\x01")]))
    assert m is not None and not m.confirmed
    assert [a.reply for a in m.answers] == ["TXT 2 ok"] and (
        "DNS_TXT_char_str_past_rdlen",
        "",
    ) in m.weirds


def test_wks_sets_reply_fields_without_an_answer() -> None:
    ctx = FakeContext(udp_conn())
    q = msg(2, questions=[("w.example", 11)])
    r = msg(2, qr=True, aa=True, answers=[rr("w.example", 11, b"\x01\x02\x03\x04\x06")])
    (row,) = run(ctx, (True, q, 1.0), (False, r, 1.5))
    assert row["AA"] and row["rtt"] == pytest.approx(0.5) and row["answers"] is None


def test_compression_pointers_and_forward_pointers() -> None:
    body = msg(1, qr=True, questions=[("Mail.Example.org", 1)])
    pointer = b"\xc0\x0c"  # to the question name at offset 12
    data = (
        body[:6]
        + struct.pack("!H", 1)
        + body[8:]
        + pointer
        + struct.pack("!HHIH", 1, 1, 60, 4)
        + b"\x0a\x00\x00\x01"
    )
    m = dns.parse_message(data)
    assert m is not None and m.answers[0].name == "mail.example.org"
    forward = msg(1, qr=True, answers=[(b"\xc0\x40", 1, 60, b"\x0a\x00\x00\x01")])
    m = dns.parse_message(forward)
    assert (
        m is not None and not m.confirmed and ("DNS_label_forward_compress_offset", "") in m.weirds
    )


def test_zero_answer_reply_marks_rejected_and_rcode_without_question_too() -> None:
    ctx = FakeContext(udp_conn())
    q = msg(4, questions=[("nx.example", 1)])
    r = msg(4, qr=True, rcode=3, questions=[("nx.example", 1)])
    (row,) = run(ctx, (True, q, 1.0), (False, r, 1.1))
    assert row["rejected"] and row["rcode_name"] == "NXDOMAIN"
    ctx = FakeContext(udp_conn())
    (row,) = run(ctx, (True, q, 1.0), (False, msg(4, qr=True, rcode=5), 1.1))
    assert row["rejected"] and row["rcode_name"] == "REFUSED"


def test_tcp_length_framing_across_segments() -> None:
    ctx = FakeContext(ConnId("192.0.2.1", 40000, "198.51.100.53", 53, "tcp"))
    an = dns.DnsAnalyzer(ctx)
    q = msg(21, questions=[("tcp.example", 252)])
    r = msg(
        21,
        qr=True,
        questions=[("tcp.example", 252)],
        answers=[rr("tcp.example", 1, b"\x01\x01\x01\x01")],
    )
    framed_q, framed_r = struct.pack("!H", len(q)) + q, struct.pack("!H", len(r)) + r
    an.data(True, framed_q[:1], 1.0)
    an.data(True, framed_q[1:9], 1.0)
    an.data(True, framed_q[9:], 1.0)
    an.data(False, framed_r, 1.5)
    (row,) = ctx.logs("dns")
    assert row["proto"] == "tcp" and row["qtype_name"] == "AXFR" and row["answers"] == ["1.1.1.1"]


def test_tcp_only_on_port_53() -> None:
    ctx = FakeContext(ConnId("192.0.2.1", 40000, "198.51.100.53", 5353, "tcp"))
    q = msg(1, questions=[("x.local", 1)])
    assert run(ctx, (True, struct.pack("!H", len(q)) + q, 1.0)) == [] and ctx.weirds == []


def test_netbios_names_opcodes_and_nbstat() -> None:
    ctx = FakeContext(ConnId("192.0.2.1", 137, "192.0.2.255", 137, "udp"))
    encoded = "".join(chr(65 + (b >> 4)) + chr(65 + (b & 15)) for b in b"WORKSTATION1   \x00")
    q = msg(0x8001, opcode=5, questions=[(encoded, 33)])
    (row,) = run(ctx, (True, q, 1.0))
    assert row["query"] == "WORKSTATION1" and row["qtype_name"] == "NBSTAT"
    assert row["opcode_name"] == "netbios-registration"
    assert dns.decode_netbios_name("not-32-bytes") == ""


def test_malformed_input_reports_and_stops() -> None:
    ctx = FakeContext(udp_conn())
    run(ctx, (True, b"\x00\x01\x02", 1.0))
    assert ctx.weirds == [("DNS_truncated_len_lt_hdr_len", "")] and ctx.logs("dns") == []
    ctx = FakeContext(udp_conn())
    too_many = struct.pack("!6H", 1, 0, 26, 0, 0, 0)
    run(ctx, (True, too_many, 1.0), (True, msg(2, questions=[("late.example", 1)]), 2.0))
    assert ctx.violations == ["DNS_Conn_count_too_large"]
    assert [r["query"] for r in ctx.logs("dns")] == [
        None
    ]  # the bad message's row; later ones ignored


def test_unknown_opcode_is_a_weird_and_not_logged() -> None:
    ctx = FakeContext(udp_conn())
    rows = run(ctx, (True, msg(1, opcode=2, questions=[("s.example", 1)]), 1.0))
    assert rows == [] and ctx.weirds == [("DNS_unknown_opcode", "2")]


def test_names_of_codes() -> None:
    assert dns.qtype_name(65) == "HTTPS" and dns.qtype_name(4242) == "query-4242"
    assert dns.rcode_name(8) == "NXRRSet" and dns.rcode_name(99) == "rcode-99"
    assert dns.qclass_name(3) == "C_CHAOS" and dns.qclass_name(7) == "qclass-7"
    assert dns.opcode_name(6, False) == "dso" and dns.opcode_name(9, True) == "netbios-opcode-9"


DNS_CASES = [
    "core.ipv6-frag",
    "scripts.base.protocols.dns.duplicate-reponses",
    "scripts.base.protocols.dns.flip",
    "scripts.base.protocols.dns.mdns-no-assoc",
    "scripts.base.protocols.dns.zero-responses",
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", DNS_CASES)
def test_dns_log_matches_zeek_reference(shared, tmp_path, case: str) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, case, {"dns"}, tmp_path)["dns.log"]
    assert result["exact"] == result["base_rows"], result
