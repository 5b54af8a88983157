"""SNMP analyzer: BER parsing as Zeek's binpac grammar, main.zeek's per-connection record."""

from __future__ import annotations

import pktbuild as pb
import pytest
from analyzer_ctx import FakeContext, udp_conn
from der_build import integer, oid
from engine_kit import ListSink, datagram
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import snmp


def tlv(tag: int, content: bytes, *, long_form: bool = False) -> bytes:
    if len(content) < 0x80 and not long_form:
        return bytes([tag, len(content)]) + content
    size = len(content).to_bytes(2, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def binding(name: str, value: bytes = b"\x05\x00") -> bytes:
    return tlv(0x30, oid(name) + value)


def pdu(tag: int, *bindings: bytes, request_id: int = 7) -> bytes:
    return tlv(tag, integer(request_id) + integer(0) + integer(0) + tlv(0x30, b"".join(bindings)))


def v1(pdu_bytes: bytes, community: bytes = b"public", version: int = 0) -> bytes:
    return tlv(0x30, integer(version) + octets(community) + pdu_bytes)


def v3(scoped: bytes, user: bytes = b"alice", flags: bytes = b"\x04", model: int = 3) -> bytes:
    usm = tlv(0x30, octets(b"engine") + integer(1) + integer(2) + octets(user) + octets(b"")
              + octets(b""))  # fmt: skip
    global_data = tlv(0x30, integer(99) + integer(65000) + octets(flags) + integer(model))
    return tlv(0x30, integer(3) + global_data + octets(usm) + scoped)


def scoped(pdu_bytes: bytes) -> bytes:
    return tlv(0x30, octets(b"engine") + octets(b"") + pdu_bytes)


def analyzer() -> tuple[snmp.SnmpAnalyzer, FakeContext]:
    ctx = FakeContext(udp_conn(161, resp="192.0.2.161"))
    return snmp.SnmpAnalyzer(ctx), ctx


def test_v1_get_and_response_fill_the_record_written_at_the_end() -> None:
    a, ctx = analyzer()
    a.data(True, v1(pdu(0xA0, binding(snmp.SYS_DESCR), binding(snmp.SYS_UPTIME))), 10.0)
    assert ctx.confirmed == []  # only a responder's message confirms
    reply = pdu(
        0xA2,
        binding(snmp.SYS_DESCR, octets(b"router v1")),
        binding(snmp.SYS_UPTIME, tlv(0x43, (360000).to_bytes(3, "big"))),
    )
    a.data(False, v1(reply), 10.5)
    assert ctx.confirmed == ["snmp"] and ctx.logs("snmp") == []
    a.end(20.0)
    [rec] = ctx.logs("snmp")
    assert (rec["ts"], rec["duration"], rec["version"], rec["community"]) == (
        10.0, 0.5, "1", "public",
    )  # fmt: skip
    assert (rec["get_requests"], rec["get_responses"], rec["set_requests"]) == (2, 2, 0)
    assert rec["display_string"] == "router v1"
    assert rec["up_since"] == pytest.approx(10.5 - 3600.0)


def test_v2c_bulk_set_next_and_trap_counts() -> None:
    a, ctx = analyzer()
    bulk = tlv(0xA5, integer(1) + integer(0) + integer(10) + tlv(0x30, binding("1.3.6.1.2.1")))
    a.data(True, v1(bulk, version=1), 1.0)
    a.data(True, v1(pdu(0xA1, binding("1.3.6.1.2.1.1"), binding("1.3.6.1.2.1.2")), version=1), 1.1)
    a.data(True, v1(pdu(0xA3, binding("1.3.6.1.2.1.1.5.0", octets(b"n"))), version=1), 1.2)
    trap = tlv(0xA4, oid("1.3.6.1.4.1.9") + tlv(0x40, bytes([10, 0, 0, 1])) + integer(6)
               + integer(1) + tlv(0x43, b"\x10") + tlv(0x30, b""))  # fmt: skip
    a.data(True, v1(trap, community=b"other", version=1), 1.3)
    a.end(2.0)
    [rec] = ctx.logs("snmp")
    assert rec["version"] == "2c" and rec["community"] == "public"  # the first one stays
    assert (rec["get_bulk_requests"], rec["get_requests"], rec["set_requests"]) == (1, 2, 1)
    assert not ctx.violations


def test_v3_user_name_is_the_community_once_it_is_not_empty() -> None:
    a, ctx = analyzer()
    a.data(True, v3(scoped(pdu(0xA0, binding("1.3.6.1.2.1.1.6.0"))), user=b""), 1.0)
    a.data(False, v3(scoped(pdu(0xA8, binding("1.3.6.1.6.3.15.1.1.0")))), 1.1)  # report
    a.end(2.0)
    [rec] = ctx.logs("snmp")
    assert rec["version"] == "3" and rec["community"] == "alice"
    assert rec["get_requests"] == 1 and rec["get_responses"] == 0


def test_v3_encrypted_pdu_is_reported_before_the_user_name_is_read() -> None:
    a, ctx = analyzer()
    a.data(True, v3(octets(b"\x8f" * 20), flags=b"\x07"), 1.0)
    a.end(2.0)
    [rec] = ctx.logs("snmp")
    assert rec.get("community") is None and rec["get_requests"] == 0


def test_v3_flags_of_wrong_size_are_a_violation_but_parsing_goes_on() -> None:
    a, ctx = analyzer()
    a.data(True, v3(scoped(pdu(0xA0, binding("1.3.6.1"))), flags=b"\x04\x00"), 1.0)
    a.end(2.0)
    assert ctx.violations == ["Invalid v3 HeaderData msgFlags"]
    assert ctx.logs("snmp")[0]["get_requests"] == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (tlv(0x31, integer(0)), "Got ASN.1 tag 49, expect 48"),
        (tlv(0x30, tlv(0x02, b"\x00" * 10)), "integer width overflow: 10"),
        (tlv(0x30, integer(0) + octets(b"public") + tlv(0xA0, integer(1))), "need"),
    ],
)
def test_malformed_messages_are_violations_without_a_record(data: bytes, reason: str) -> None:
    a, ctx = analyzer()
    a.data(True, data, 1.0)
    a.end(2.0)
    assert len(ctx.violations) == 1 and reason in ctx.violations[0]
    assert ctx.logs("snmp") == []


def test_unknown_version_confirms_from_the_responder_but_logs_nothing() -> None:
    a, ctx = analyzer()
    a.data(False, tlv(0x30, integer(2) + b"whatever"), 1.0)
    a.end(2.0)
    assert ctx.confirmed == ["snmp"] and ctx.logs("snmp") == []


def test_long_form_lengths() -> None:
    a, ctx = analyzer()
    message = tlv(0x30, integer(0) + octets(b"public") + pdu(0xA0, binding("1.3.6.1")),
                  long_form=True)  # fmt: skip
    a.data(True, message, 1.0)
    a.end(2.0)
    assert ctx.logs("snmp")[0]["get_requests"] == 1


def test_oid_and_integer_conversions() -> None:
    weirds: list[tuple[str, str]] = []

    def weird(name: str, addl: str) -> None:
        weirds.append((name, addl))

    assert snmp.oid_text(oid("1.3.6.1.4.1.2021.10")[2:], weird) == "1.3.6.1.4.1.2021.10"
    assert snmp.oid_text(b"\x2b\x86", weird) == ""  # ends inside a sub-identifier
    assert snmp.oid_text(b"\x2b" + b"\x81" * 10 + b"\x01", weird) == ""
    assert snmp.binary_to_int64(b"\x00" * 9, weird) == 0
    assert snmp.binary_to_int64(b"\xff", weird) == 255  # no sign extension
    assert weirds == [
        ("asn_oid_subidentifier_too_long", "11"),
        ("asn_binary_to_int64_shift_too_large", "9"),
    ]


def test_engine_attaches_on_161_and_writes_at_connection_end() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    src, dst = "10.0.0.1", "10.0.0.161"
    request = v1(pdu(0xA0, binding(snmp.SYS_DESCR)))
    response = v1(pdu(0xA2, binding(snmp.SYS_DESCR, octets(b"box"))))
    engine.ip(datagram(1.0, src, dst, 17, pb.udp(40000, 161, request, src=src, dst=dst)))
    engine.ip(datagram(1.2, dst, src, 17, pb.udp(161, 40000, response, src=dst, dst=src)))
    engine.finish()
    [rec] = sink.rows("snmp")
    [conn] = sink.rows("conn")
    assert conn["service"] == "snmp" and rec["uid"] == conn["uid"]
    assert rec["display_string"] == "box" and rec["duration"] == pytest.approx(0.2)


@pytest.mark.timeout(300)
def test_snmp_log_matches_zeek_reference(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, "scripts.base.protocols.snmp.v3", {"snmp"}, tmp_path)
    snmp_log = result["snmp.log"]
    assert snmp_log["exact"] == snmp_log["base_rows"] == 1, snmp_log


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.booleans())
def test_any_bytes_give_events_or_a_violation_never_an_exception(
    data: bytes, is_orig: bool
) -> None:
    a, ctx = analyzer()
    a.data(is_orig, v1(pdu(0xA0, binding("1.3.6.1"))) + data, 1.0)
    a.data(is_orig, data, 1.1)
    a.end(2.0)
    assert len(ctx.logs("snmp")) <= 1
