"""RDP analyzer: X.224 negotiation, MCS/GCC blocks, the TLS handoff to SSL, rdp.log vs Zeek."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from analyzer_ctx import FakeContext, tcp_conn
from engine_kit import ListSink, TcpTalk
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import rdp


@dataclass
class RdpContext(FakeContext):
    """FakeContext that also takes the weird source script-level weirds pass."""

    sourced_weirds: list[tuple[str, str, Any]] = field(default_factory=list)

    def weird(self, name: str, addl: str = "", ts: float | None = None, source: Any = None) -> None:
        super().weird(name, addl, ts)
        self.sourced_weirds.append((name, addl, source))


def analyzer() -> tuple[rdp.RdpAnalyzer, RdpContext]:
    ctx = RdpContext(tcp_conn(3389))
    return rdp.RdpAnalyzer(ctx), ctx


# -- wire builders (MS-RDPBCGR, written from the spec's layouts) --------------------------------


def tpkt(cotp: bytes) -> bytes:
    return struct.pack("!BBH", 3, 0, 4 + len(cotp)) + cotp


def connect_request(cookie: bytes | None = b"alice", neg: int | None = 3) -> bytes:
    body = b"\x00\x00\x00\x00\x00"
    if cookie is not None:
        body += b"Cookie: mstshash=" + cookie + b"\r\n"
    if neg is not None:
        body += struct.pack("<BBHI", 1, 0, 8, neg)
    return tpkt(bytes([len(body) + 1, 0xE0]) + body)


def connect_confirm(selected: int | None = None, failure: int | None = None) -> bytes:
    body = b"\x00\x00\x12\x34\x00"
    if selected is not None:
        body += struct.pack("<BBHI", 2, 0, 8, selected)
    elif failure is not None:
        body += struct.pack("<BBHI", 3, 0, 8, failure)
    return tpkt(bytes([len(body) + 1, 0xD0]) + body)


def block(block_type: int, body: bytes) -> bytes:
    return struct.pack("<HH", block_type, len(body) + 4) + body


def utf16(text: str, size: int) -> bytes:
    return text.encode("utf-16-le").ljust(size, b"\0")


def client_core(layout: int = 1033, build: int = 7601, flags: int = 0, high: int = 0x18) -> bytes:
    return block(
        0xC001,
        struct.pack("<HHHHHHII", 4, 8, 1280, 1024, 0xCA01, 0xAA03, layout, build)
        + utf16("WORKSTATION", 32)
        + struct.pack("<III", 4, 0, 12)
        + b"\0" * 64
        + struct.pack("<HHIHHH", 0xCA01, 1, 0, high, 7, flags)
        + utf16("00000-000-0000000-00000", 64),
    )


def client_network(names: list[bytes]) -> bytes:
    body = struct.pack("<I", len(names))
    for name in names:
        body += name.ljust(8, b"\0") + struct.pack("<I", 0x80800000)
    return block(0xC003, body)


def dt_data(application_type: int, payload: bytes) -> bytes:
    return tpkt(b"\x02\xf0\x80" + b"\x7f" + bytes([application_type]) + payload)


def connect_initial(blocks: bytes, key: bytes = b"Duca") -> bytes:
    params = b"\x30\x18" + b"\x02\x01\x22" * 8  # a DomainParameters SEQUENCE
    mcs = (
        b"\x82\x01\xb2"  # the Connect-Initial length, read as an ASN.1 "integer"
        + b"\x04\x01\x01\x04\x01\x01\x01\x01\xff"  # domain selectors, upward flag
        + params * 3
        + b"\x04\x82\x01\x4b"  # userData OCTET STRING header
        + b"\x00\x05\x00\x14\x7c\x00\x01"  # GCC key object
        + b"\x81\x42"  # connect PDU length
        + b"\x00\x08\x00\x10\x00\x01\xc0\x00"  # create request up to the H.221 key
        + key
        + b"\x81\x34"
    )
    return dt_data(0x65, mcs + blocks)


def proprietary_cert(permanent: bool = True) -> bytes:
    modulus = b"\x11" * 72
    blob = b"RSA1" + struct.pack("<III", len(modulus), 512, 65537) + modulus
    sig = b"\x22" * 72
    version = 1 | (0 if permanent else 0x80000000)
    return (
        struct.pack("<IIIHH", version, 1, 1, 6, len(blob))
        + blob
        + struct.pack("<HH", 8, len(sig))
        + sig
    )


def server_security(method: int = 2, level: int = 2, cert: bytes | None = None) -> bytes:
    cert = proprietary_cert() if cert is None else cert
    return block(0x0C02, struct.pack("<IIII", method, level, 32, len(cert)) + b"\x33" * 32 + cert)


def connect_response(blocks: bytes, result: int = 0) -> bytes:
    mcs = (
        b"\x82\x01\x51"
        + b"\x0a\x01\x00"  # result
        + b"\x02\x01\x00"  # called connect id
        + b"\x30\x1b"
        + b"\x02\x01\x22" * 9  # domain parameters
        + b"\x04\x82\x01\x2b"
        + b"\x00\x05\x00\x14\x7c\x00\x01"
        + b"\x2a"
        + b"\x14\x76\x0a\x01\x01"
        + bytes([result])
        + b"\x00\x01\xc0"
        + b"McDn"
        + b"\x81\x22"
    )
    return dt_data(0x66, mcs + blocks)


def server_core(with_protocols: bool = True) -> bytes:
    body = struct.pack("<HH", 4, 8) + (struct.pack("<I", 0) if with_protocols else b"")
    return block(0x0C01, body)


# -- tests ------------------------------------------------------------------------------------


def test_native_rdp_session_fills_every_column() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(b"alice", neg=0), 1.0)
    a.data(False, connect_confirm(selected=0), 1.1)
    blocks = client_core() + block(0xC002, b"\x1b\0\0\0\0\0\0\0")
    blocks += client_network([b"rdpdr", b"cliprdr", b"rdpsnd"])
    a.data(True, connect_initial(blocks), 1.2)
    a.data(False, connect_response(server_core() + server_security()), 1.3)
    assert ctx.violations == []
    assert ctx.confirmed == ["rdp"]
    a.end(5.0)
    [rec] = ctx.logs("rdp")
    assert rec["ts"] == 1.0 and rec["cookie"] == "alice"
    assert rec["result"] == "Success"  # the GCC response's result
    assert rec["security_protocol"] == "RDP"
    assert rec["client_channels"] == ["rdpdr", "cliprdr", "rdpsnd"]
    assert rec["keyboard_layout"] == "English - United States"
    assert rec["client_build"] == "RDP 7.1"
    assert rec["client_name"] == "WORKSTATION"
    assert rec["client_dig_product_id"] == "00000-000-0000000-00000"
    assert (rec["desktop_width"], rec["desktop_height"]) == (1280, 1024)
    assert rec["requested_color_depth"] == "24bit"
    assert (rec["cert_type"], rec["cert_count"], rec["cert_permanent"]) == ("RSA", 1, True)
    assert (rec["encryption_method"], rec["encryption_level"]) == ("128bit", "Client compatible")


def test_native_encryption_stops_reading_the_stream() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(), 1.0)
    a.data(False, connect_response(server_security(method=1, level=3)), 1.1)
    assert a.encrypted and a.encryption_method == 0
    a.data(True, b"\xff" * 40, 1.2)  # native RDP encryption: not parsed, no violation
    assert ctx.violations == [] and a.ssl is None
    a.end(2.0)
    [rec] = ctx.logs("rdp")
    assert rec["result"] == "Success"  # set by the GCC response before the encryption began
    assert rec["security_protocol"] == "RDP" and rec["encryption_method"] == "40bit"


def test_tls_negotiation_hands_the_stream_to_an_ssl_child() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(b"bob", neg=3), 1.0)
    a.data(False, connect_confirm(selected=1), 1.1)
    assert a.encrypted and a.encryption_method == 1
    hello = bytes.fromhex("16030100") + b"\x00\x05" + b"\x01\x00\x00\x01\x00"
    a.data(True, hello, 1.2)
    assert a.ssl is not None and a.ssl_ctx is not None
    a.end(2.0)
    [rec] = ctx.logs("rdp")
    assert (rec["result"], rec["security_protocol"]) == ("encrypted", "SSL")
    assert rec["cookie"] == "bob"


def test_negotiation_failure_result_and_unknown_numbers_use_the_defaults() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(cookie=None, neg=None), 1.0)
    a.data(False, connect_confirm(failure=5), 1.1)
    a.data(True, connect_initial(client_core(layout=0x7F0409, build=1, flags=2)), 1.2)
    a.end(2.0)
    [rec] = ctx.logs("rdp")
    assert rec["cookie"] == ""  # a request without cookie still sets it (to "")
    assert rec["result"] == "HYBRID_REQUIRED_BY_SERVER"
    assert rec["keyboard_layout"] == "English - United States (Best Guess for 8324105)"
    assert rec["client_build"] == "client_build-1"
    assert rec["requested_color_depth"] == "32bit"  # want_32bpp_session wins
    assert rdp.lookup("RESULTS", 9) == "result-9"
    assert rdp.keyboard_layout_name(0x7777) == "keyboard-30583"


def test_bad_negotiation_length_is_a_violation_and_logs_at_once() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(), 1.0)
    bad = tpkt(bytes([14, 0xD0]) + b"\x00\x00\x12\x34\x00" + struct.pack("<BBHI", 2, 0, 9, 1))
    a.data(False, bad, 1.1)
    assert len(ctx.violations) == 1 and "RDP_Negotiation_Response:length" in ctx.violations[0]
    [rec] = ctx.logs("rdp")  # written by the violation handler
    assert rec["cookie"] == "alice" and rec["result"] is None
    a.end(2.0)
    assert len(ctx.logs("rdp")) == 1  # done: not written twice


def test_tpkt_split_across_deliveries_and_wrong_h221_key() -> None:
    a, ctx = analyzer()
    frame = connect_request()
    a.data(True, frame[:7], 1.0)
    assert ctx.logs("rdp") == [] and a.info is None
    a.data(True, frame[7:], 1.1)
    assert a.info is not None and a.info.cookie == "alice"
    a.data(True, connect_initial(client_core(), key=b"Xxxx"), 1.2)
    assert ctx.violations and "Duca" in ctx.violations[0]


def test_many_channels_weird_and_nothing_logged_without_rdp_data() -> None:
    a, ctx = analyzer()
    a.data(True, connect_initial(client_network([b"c%d" % i for i in range(32)])), 1.0)
    assert ctx.sourced_weirds == [("RDP_channels_requested_exceeds_max", "32", "")]
    a.end(2.0)
    assert ctx.logs("rdp") == []  # no cookie, keyboard layout or result: no row


def test_server_core_without_requested_protocols_and_x509_certificates() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(), 1.0)
    cert = struct.pack("<III", 0x80000002, 1, 3) + b"\x30\x01\x00"  # unparsable DER
    a.data(False, connect_response(server_core(False) + server_security(cert=cert)), 1.1)
    assert ctx.violations == []
    a.end(2.0)
    [rec] = ctx.logs("rdp")
    assert (rec["cert_type"], rec["cert_count"], rec["cert_permanent"]) == ("X.509", 1, False)
    assert ctx.logs("x509") == []  # the certificate's file is counted, its DER does not parse


def test_dpd_signatures_need_both_sides() -> None:
    assert rdp.sniff_rdp(connect_request(), connect_confirm(selected=0))
    assert not rdp.sniff_rdp(connect_request(), b"HTTP/1.1 200 OK\r\n")
    assert not rdp.sniff_rdp(b"GET / HTTP/1.1\r\n", connect_confirm(selected=0))


def test_engine_attaches_on_port_3389_and_ssl_confirms_the_service() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    talk = TcpTalk(engine, b=("10.0.0.2", 3389))
    talk.handshake()
    talk.send(True, "AP", connect_request(b"carol"))
    talk.send(False, "AP", connect_confirm(selected=2))
    engine.finish()
    [rec] = sink.rows("rdp")
    assert (rec["cookie"], rec["result"], rec["security_protocol"]) == (
        "carol",
        "encrypted",
        "HYBRID",
    )
    [conn] = sink.rows("conn")
    assert conn["service"] is None or "rdp" not in conn["service"]  # no confirmation yet


def test_check_interval_writes_the_row_on_packet_time_while_the_connection_lasts() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    talk = TcpTalk(engine, b=("10.0.0.2", 3389))
    talk.handshake()
    talk.send(True, "AP", connect_request(b"dave"))
    talk.send(False, "A", dt=9.0)  # before start + 10 s: no check yet
    assert sink.rows("rdp") == []
    talk.send(False, "A", dt=2.0)  # the check fires on this packet, 11 s > 10 s: written
    assert len(sink.rows("rdp")) == 1
    engine.finish()
    assert len(sink.rows("rdp")) == 1


def test_check_exactly_at_the_interval_reschedules() -> None:
    a, ctx = analyzer()
    timers: list[tuple[float, Any]] = []
    a._add_timer = lambda when, callback: timers.append((when, callback))
    a.data(True, connect_request(), 100.0)
    [(when, check)] = timers
    assert when == 110.0
    check(110.0)  # network_time - ts == 10 s is not more than the interval
    assert ctx.logs("rdp") == [] and timers[-1][0] == 120.0
    timers[-1][1](120.0)
    assert len(ctx.logs("rdp")) == 1


@pytest.mark.timeout(300)
def test_rdp_to_ssl_case_matches_zeek(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, "scripts.base.protocols.rdp.rdp-to-ssl", {"rdp"}, tmp_path)
    rdp_log = result["rdp.log"]
    assert rdp_log["exact"] == rdp_log["base_rows"] == 2, rdp_log


def _session_bytes() -> list[tuple[bool, bytes]]:
    blocks = client_core() + client_network([b"rdpdr", b"cliprdr"])
    return [
        (True, connect_request()),
        (False, connect_confirm(selected=0)),
        (True, connect_initial(blocks)),
        (False, connect_response(server_core() + server_security())),
    ]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_flipped_or_cut_sessions_end_in_rows_or_violations_never_exceptions(data) -> None:
    a, ctx = analyzer()
    for is_orig, chunk in _session_bytes():
        chunk = bytearray(chunk)
        for _ in range(data.draw(st.integers(0, 3))):
            i = data.draw(st.integers(0, len(chunk) - 1))
            chunk[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(chunk)))
        a.data(is_orig, bytes(chunk[:cut]), 1.0)
    a.end(2.0)
    assert len(ctx.logs("rdp")) <= 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=6))
def test_arbitrary_bytes_never_raise(chunks: list[tuple[bool, bytes]]) -> None:
    a, ctx = analyzer()
    for is_orig, chunk in chunks:
        a.data(is_orig, b"\x03\x00" + chunk, 1.0)
    a.end(2.0)


def test_unknown_confirm_response_type_reads_as_binpacs_case_error() -> None:
    a, ctx = analyzer()
    a.data(True, connect_request(), 1.0)
    odd = tpkt(bytes([14, 0xD0]) + b"\x00\x00\x12\x34\x00" + struct.pack("<BBHI", 49, 0, 8, 1))
    a.data(False, odd, 1.1)
    assert ctx.violations == [
        "Binpac exception: binpac exception: invalid index for case: Connect_Confirm_Record: 49"
    ]
