"""WebSocket: the HTTP 101 upgrade, websocket.log and its weirds, frame reading, vs Zeek."""

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
from wirestream.processors.engine.protocols import http, websocket

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's example answer to KEY


@dataclass
class WsContext(FakeContext):
    """FakeContext that keeps each weird's source."""

    sourced: list[tuple[str, str, Any]] = field(default_factory=list)

    def weird(self, name: str, addl: str = "", ts: float | None = None, source: Any = None) -> None:
        super().weird(name, addl, ts)
        self.sourced.append((name, addl, source))


def upgrade_request(extra: str = "") -> bytes:
    return (
        "GET /chat?x=1 HTTP/1.1\r\nHost: ws.example\r\nUser-Agent: tester\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Key: {KEY.decode()}\r\n"
        "Sec-WebSocket-Protocol: chat, superchat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate,x-webkit\r\n"
        f"{extra}\r\n"
    ).encode()


def upgrade_reply(accept: str = ACCEPT, extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: chat\r\n{extra}\r\n"
    ).encode()


def frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bytes | None = None) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n | (0x80 if mask else 0))
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126 | (0x80 if mask else 0), n)
    else:
        head = struct.pack("!BBQ", first, 127 | (0x80 if mask else 0), n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def run(*steps: tuple[bool, bytes]) -> tuple[http.HttpAnalyzer, WsContext]:
    ctx = WsContext(tcp_conn(80))
    a = http.HttpAnalyzer(ctx)
    for i, (is_orig, data) in enumerate(steps):
        a.data(is_orig, data, 1.0 + i)
    return a, ctx


def test_upgrade_logs_the_handshake_and_confirms_on_a_whole_message() -> None:
    a, ctx = run((True, upgrade_request()), (False, upgrade_reply()))
    [row] = ctx.logs("websocket")
    assert row["ts"] == 2.0  # written at the upgrade (websocket_established)
    assert (row["host"], row["uri"], row["user_agent"]) == ("ws.example", "/chat?x=1", "tester")
    assert row["subprotocol"] == "chat"
    assert row["client_protocols"] == ["chat", "superchat"]
    assert row["client_extensions"] == ["permessage-deflate", "x-webkit"]
    assert row["server_extensions"] is None
    assert ctx.sourced == [] and "websocket" not in ctx.confirmed
    a.data(True, frame(b"hel", fin=False, mask=b"\x01\x02\x03\x04"), 3.0)
    assert "websocket" not in ctx.confirmed  # the message is not whole yet
    a.data(True, frame(b"lo", opcode=0, mask=b"\x01\x02\x03\x04"), 3.1)
    assert ctx.confirmed.count("websocket") == 1
    a.end(4.0)
    assert len(ctx.logs("http")) == 1 and ctx.violations == []


def test_frames_split_anywhere_and_long_lengths_are_read() -> None:
    a, ctx = run((True, upgrade_request()), (False, upgrade_reply()))
    data = frame(b"x" * 300, opcode=2) + frame(b"y" * 70000, opcode=2)
    for i in range(0, len(data), 7):
        a.data(False, data[i : i + 7], 3.0)
    assert a.upgrade_child is not None
    ws = a.upgrade_child.analyzer
    assert ctx.confirmed.count("websocket") == 1
    assert ws.sides[False].payload_left == 0 and not ws.sides[False].buf


def test_continuation_without_a_message_is_a_violation_that_removes_only_the_child() -> None:
    a, ctx = run((True, upgrade_request()), (False, upgrade_reply()))
    a.data(False, frame(b"oops", opcode=0), 3.0)
    assert ctx.violations == []  # a child's violation does not remove HTTP
    assert a.upgrade_child is not None and a.upgrade_child.ctx.removed
    a.data(False, frame(b"fine"), 3.1)  # no longer fed
    assert "websocket" not in ctx.confirmed


def test_new_opcode_inside_a_fragmented_message_is_a_violation() -> None:
    a, _ = run((True, upgrade_request()), (False, upgrade_reply()))
    a.data(True, frame(b"a", fin=False) + frame(b"b", opcode=1), 3.0)
    assert a.upgrade_child is not None and a.upgrade_child.ctx.removed


def test_wrong_accept_and_duplicate_headers_are_weirds_from_the_script() -> None:
    req = upgrade_request(f"Sec-WebSocket-Key: {KEY.decode()}\r\n")
    _, ctx = run((True, req), (False, upgrade_reply("bm90IGl0", "Sec-WebSocket-Protocol: x\r\n")))
    assert ctx.sourced == [
        ("websocket_multiple_key_headers", "", "WebSocket"),
        ("websocket_multiple_protocol_headers", "", "WebSocket"),
        ("websocket_wrong_accept_header", f"expected={ACCEPT}, found=bm90IGl0", "WebSocket"),
    ]
    [row] = ctx.logs("websocket")
    assert row["subprotocol"] == "x"  # the last header wins


def test_upgrade_without_websocket_headers_and_state_cleared_by_a_new_request() -> None:
    plain = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    reply = b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    first = b"GET /a HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: abc\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    _, ctx = run((True, first), (False, ok), (True, plain), (False, reply))
    names = [w[0] for w in ctx.sourced]
    assert names == [
        "websocket_established_unexpected",  # the earlier request's key was dropped
        "websocket_missing_key_header",
        "websocket_missing_accept_header",
    ]
    [row] = ctx.logs("websocket")
    assert row["subprotocol"] is None and row["host"] == "h"


def test_other_upgrades_start_no_websocket_analyzer() -> None:
    reply = b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    a, ctx = run((True, upgrade_request()), (False, reply))
    assert a.upgraded and a.upgrade_child is None and ctx.logs("websocket") == []


def test_engine_service_and_bare_mode_gate() -> None:
    def talk(sink: ListSink, engine: Engine) -> None:
        t = TcpTalk(engine, b=("10.0.0.2", 80))
        t.handshake()
        t.send(True, "AP", upgrade_request())
        t.send(False, "AP", upgrade_reply())
        t.send(True, "AP", frame(b"hi", mask=b"abcd"))
        engine.finish()

    sink = ListSink()
    talk(sink, Engine(sink, seed=1))
    assert len(sink.rows("websocket")) == 1
    [conn] = sink.rows("conn")
    assert conn["service"] == "http,websocket"

    bare = ListSink()
    talk(bare, Engine(bare, seed=1, analyzers=["http"]))
    assert bare.rows("websocket") == []  # base/protocols/websocket not loaded


@pytest.mark.timeout(300)
def test_101_switching_protocols_case_matches_zeek(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    case = "scripts.base.protocols.http.101-switching-protocols"
    result = compare_case(shared, case, {"websocket", "http"}, tmp_path)
    for log in ("websocket.log", "http.log"):
        assert result[log]["exact"] == result[log]["base_rows"] == 1, result[log]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=120)), max_size=8))
def test_arbitrary_frames_end_in_confirmations_or_violations_never_exceptions(
    chunks: list[tuple[bool, bytes]],
) -> None:
    ctx = WsContext(tcp_conn(80))
    ws = websocket.WebSocketAnalyzer(ctx)
    for is_orig, chunk in chunks:
        ws.data(is_orig, chunk, 1.0)
    ws.end(2.0)
    assert len(ctx.violations) <= 1  # the first violation stops the reading


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=5), st.data())
def test_valid_frames_read_the_same_whatever_the_chunking(payloads: list[bytes], data) -> None:
    stream = b"".join(frame(p, opcode=2) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    ctx = WsContext(tcp_conn(80))
    ws = websocket.WebSocketAnalyzer(ctx)
    prev = 0
    for cut in [*cuts, len(stream)]:
        ws.data(True, stream[prev:cut], 1.0)
        prev = cut
    assert ctx.violations == [] and ctx.confirmed == ["websocket"]
    assert ws.sides[True].payload_left == 0 and not ws.sides[True].buf
