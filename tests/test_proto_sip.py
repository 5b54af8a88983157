"""SIP analyzer: binpac-style stream parsing, main.zeek's shared pending record, sip.log vs Zeek."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pktbuild as pb
import pytest
from analyzer_ctx import FakeContext, udp_conn
from engine_kit import ListSink, datagram
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import sip


@dataclass
class SipContext(FakeContext):
    """FakeContext that also keeps the weird's source (script weirds have none)."""

    sourced_weirds: list[tuple[str, str, str | None]] = field(default_factory=list)

    def weird(self, name: str, addl: str = "", ts: float | None = None, source: Any = None) -> None:
        super().weird(name, addl, ts)
        self.sourced_weirds.append((name, addl, source))


def analyzer() -> tuple[sip.SipAnalyzer, SipContext]:
    ctx = SipContext(udp_conn(5060, resp="198.51.100.7"))
    return sip.SipAnalyzer(ctx), ctx


def request(method: str = "INVITE", headers: list[str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} sip:bob@example.org SIP/2.0"]
    lines += (
        headers
        if headers is not None
        else [
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            "From: <sip:alice@example.org>;tag=111",
            "To: <sip:bob@example.org>",
            "Call-ID: abc@192.0.2.1",
            "CSeq: 1 " + method,
            f"Content-Length: {len(body)}",
        ]
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def reply(code: int = 200, reason: str = "OK", headers: list[str] | None = None) -> bytes:
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += (
        headers
        if headers is not None
        else [
            "Via: SIP/2.0/UDP 192.0.2.1:5060;received=203.0.113.9;branch=z9hG4bK1",
            "From: <sip:alice@example.org>;tag=111",
            "To: <sip:bob@example.org>;tag=222",
            "Content-Length: 0",
        ]
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_request_and_final_reply_make_one_record_with_both_sides() -> None:
    a, ctx = analyzer()
    a.data(True, request(), 1.0)
    assert ctx.logs("sip") == []  # nothing is written before the reply
    a.data(False, reply(), 1.5)
    [rec] = ctx.logs("sip")
    assert rec["ts"] == 1.0 and rec["trans_depth"] == 0
    assert (rec["method"], rec["uri"], rec["seq"]) == ("INVITE", "sip:bob@example.org", "1 INVITE")
    assert rec["request_from"] == "<sip:alice@example.org>"  # ;tag= stripped
    assert rec["response_to"] == "<sip:bob@example.org>;tag=222"  # To keeps its tag
    assert rec["request_path"] == ["SIP/2.0/UDP 192.0.2.1:5060"]  # ;branch... stripped
    assert rec["response_path"] == ["SIP/2.0/UDP 192.0.2.1:5060;received=203.0.113.9"]
    assert (rec["status_code"], rec["status_msg"]) == (200, "OK")
    assert (rec["request_body_len"], rec["response_body_len"]) == (0, 0)
    assert ctx.confirmed == ["sip"]
    a.end(2.0)
    assert len(ctx.logs("sip")) == 1  # the final reply removed it from pending


def test_provisional_reply_keeps_the_record_and_paths_accumulate() -> None:
    a, ctx = analyzer()
    a.data(True, request(), 1.0)
    a.data(True, request(), 1.2)  # a retransmission fills the same record
    a.data(False, reply(100, "Trying"), 1.3)
    a.data(False, reply(486, "Busy Here"), 1.4)
    first, second = ctx.logs("sip")
    assert first["status_code"] == 100 and len(first["request_path"]) == 2
    assert second["status_code"] == 486 and len(second["response_path"]) == 2
    assert first["ts"] == second["ts"] == 1.0


def test_request_without_reply_is_written_when_the_connection_ends() -> None:
    a, ctx = analyzer()
    a.data(True, request("ACK"), 1.0)
    a.end(9.0)
    [rec] = ctx.logs("sip")
    assert rec["method"] == "ACK" and rec.get("status_code") is None
    assert rec["response_path"] == [] and rec.get("response_body_len") is None


def test_compact_header_forms() -> None:
    a, ctx = analyzer()
    headers = ["v: SIP/2.0/UDP h1;branch=x", "f: <sip:a@b>; tag=9", "t: <sip:c@d>",
               "i: id-1", "s: hello", "l: 0"]  # fmt: skip
    a.data(True, request("OPTIONS", headers), 1.0)
    a.data(False, reply(200, "OK", ["c: application/sdp", "L: 0", "F: <sip:a@b>;tag=9"]), 1.1)
    [rec] = ctx.logs("sip")
    # Compact names are upper-cased for the script: V, F, T, S, L and C are known; "i" is not.
    assert rec["request_path"] == ["SIP/2.0/UDP h1"] and rec["request_from"] == "<sip:a@b>"
    assert rec["request_to"] == "<sip:c@d>" and rec["subject"] == "hello"
    assert rec.get("call_id") is None
    assert rec["request_body_len"] == 0 and rec["response_body_len"] == 0
    assert rec["content_type"] == "application/sdp" and rec["response_from"] == "<sip:a@b>"


def test_body_length_comes_from_content_length_and_message_may_span_datagrams() -> None:
    a, ctx = analyzer()
    msg = request(body=b"v=0\r\no=x\r\n")
    a.data(True, msg[:30], 1.0)
    a.data(True, msg[30:-4], 1.1)  # body still incomplete: no end of message yet
    a.data(False, reply(), 1.2)
    a.data(True, msg[-4:], 1.3)
    [rec] = ctx.logs("sip")
    assert rec["request_body_len"] == len(b"v=0\r\no=x\r\n") and rec["status_code"] == 200


def test_lowercase_l_does_not_size_the_body_for_the_parser() -> None:
    """binpac compares header names to "Content-Length" and "L" exactly: a lowercase compact
    "l: 5" is logged, but the parser's body length stays what the flow had (0), so the 5 body
    bytes start the next request line, glued to the next datagram."""
    a, ctx = analyzer()
    headers = ["Via: SIP/2.0/UDP h", "l: 5"]
    a.data(True, request("MESSAGE", headers, body=b"hello"), 1.0)
    a.data(False, reply(), 1.1)
    a.data(True, request("BYE"), 1.2)
    first = ctx.logs("sip")[0]
    assert first["method"] == "MESSAGE" and first["request_body_len"] == 5
    assert ("unknown_SIP_method", "helloBYE", "") in ctx.sourced_weirds


def test_folded_header_is_a_violation_and_drops_the_message() -> None:
    a, ctx = analyzer()
    headers = ["Subject: first part", " continued", "Content-Length: 0"]
    a.data(True, request("INVITE", headers), 1.0)
    assert ctx.violations and "header" in ctx.violations[0]
    a.data(True, request("BYE"), 2.0)  # the next datagram starts a new message
    a.data(False, reply(), 2.1)
    [rec] = ctx.logs("sip")
    assert rec["method"] == "BYE" and rec["subject"] == "first part"


def test_junk_before_request_and_unknown_method_weirds() -> None:
    a, ctx = analyzer()
    a.data(True, b"\x00\x00", 1.0)  # buffered: no line end yet
    a.data(True, request("PUBLISH"), 1.1)
    assert ("sip_junk_before_request", "\\x00\\x00", None) in ctx.sourced_weirds
    assert ("unknown_SIP_method", "PUBLISH", "") in ctx.sourced_weirds  # script weird: no source


def test_invalid_content_length_is_a_script_weird_and_unset() -> None:
    a, ctx = analyzer()
    a.data(True, request("INVITE", ["Content-Length: bad"]), 1.0)
    a.data(False, reply(200, "OK", ["Content-Length:  0 "]), 1.1)  # spaces are fine
    [rec] = ctx.logs("sip")
    assert rec.get("request_body_len") is None
    assert ("invalid_SIP_request_body_len", "bad", "") in ctx.sourced_weirds
    assert rec["response_body_len"] == 0


def test_crlf_keepalive_is_ignored_and_reply_without_request_is_written_alone() -> None:
    a, ctx = analyzer()
    a.data(True, b"\r\n", 1.0)
    a.data(False, reply(404, "Not Found"), 1.1)
    [rec] = ctx.logs("sip")
    assert rec.get("method") is None and rec["status_code"] == 404
    assert not ctx.violations


def test_bye_with_2xx_flushes_the_state() -> None:
    a, ctx = analyzer()
    a.data(True, request("BYE"), 1.0)
    a.data(False, reply(200, "OK"), 1.1)
    a.end(5.0)
    assert [r["method"] for r in ctx.logs("sip")] == ["BYE"]


@pytest.mark.parametrize(
    ("value", "count"),
    [("12", 12), (" 12 ", 12), ("+3", 3), ("", None), ("1x", None), ("-1", 2**64 - 1)],
)
def test_zeek_count_cast(value: str, count: int | None) -> None:
    assert sip.zeek_count(value) == count


def test_dpd_signatures() -> None:
    assert sip.sniff(b"OPTIONS sip:x SIP/2.0\r\nVia: y\r\n", b"")
    assert sip.sniff(b"", b"SIP/2.0 200 OK\r\n")
    assert not sip.sniff(b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n")


def test_engine_attaches_sip_on_5060_and_sets_the_service() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    for ts, src, dst, payload in [
        (1.0, "192.0.2.1", "198.51.100.7", request()),
        (1.1, "198.51.100.7", "192.0.2.1", reply()),
    ]:
        engine.ip(datagram(ts, src, dst, 17, pb.udp(5060, 5060, payload, src=src, dst=dst)))
    engine.finish()
    [rec] = sink.rows("sip")
    [conn] = sink.rows("conn")
    assert rec["uid"] == conn["uid"] and conn["service"] == "sip"


@pytest.mark.timeout(300)
def test_sip_log_matches_zeek_reference(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, "scripts.base.protocols.sip.wireshark", {"sip"}, tmp_path)
    sip_log = result["sip.log"]
    assert sip_log["exact"] == sip_log["base_rows"] == 36, sip_log


def test_engine_finds_sip_on_other_ports_by_its_dpd_signature() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    a, b = "192.0.2.1", "198.51.100.7"
    engine.ip(datagram(1.0, a, b, 17, pb.udp(5070, 5080, request(), src=a, dst=b)))
    engine.ip(datagram(1.1, b, a, 17, pb.udp(5080, 5070, reply(), src=b, dst=a)))
    engine.finish()
    [rec] = sink.rows("sip")
    assert rec["id.resp_p"] == 5080 and rec["method"] == "INVITE" and rec["status_code"] == 200
    assert sink.rows("conn")[0]["service"] == "sip"


def test_path_length_limits_from_the_config_raise_script_weirds() -> None:
    ctx = SipContext(udp_conn(5060, resp="198.51.100.7"))
    ctx.shared_state = {  # type: ignore[attr-defined]
        sip.CONFIG_KEY: sip.SipConfig(max_request_path_length=2, max_response_path_length=1)
    }
    a = sip.SipAnalyzer(ctx)
    vias = [f"Via: SIP/2.0/UDP hop{i};branch=b{i}" for i in range(4)]
    a.data(True, request("OPTIONS", [*vias, "Content-Length: 0"]), 1.0)
    a.data(False, reply(200, "OK", [*vias[:2], "Content-Length: 0"]), 1.1)
    [rec] = ctx.logs("sip")
    assert rec["request_path"] == ["SIP/2.0/UDP hop0", "SIP/2.0/UDP hop1"]
    assert rec["response_path"] == ["SIP/2.0/UDP hop0"]
    names = [(name, source) for name, _addl, source in ctx.sourced_weirds]
    assert names.count(("sip_max_request_path_length_exceeded", "")) == 2
    assert names.count(("sip_max_response_path_length_exceeded", "")) == 1


def test_request_signature_takes_newlines_before_the_version() -> None:
    """Signature patterns are multi-line in Zeek: '.*' runs over line ends."""
    assert sip.sniff(b"junk\nmore INVITE sip:x SIP/2.0\r\n", b"")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=6))
def test_any_datagrams_end_in_records_or_violations_never_exceptions(datagrams) -> None:
    a, ctx = analyzer()
    for is_orig, data in [(True, request()), *datagrams, (False, reply())]:
        a.data(is_orig, data, 1.0)
    a.end(2.0)
    assert all(isinstance(r["request_path"], list) for r in ctx.logs("sip"))
