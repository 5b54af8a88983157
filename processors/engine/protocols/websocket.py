"""WebSocket -> websocket.log, as Zeek's WebSocket analyzer and ``base/protocols/websocket``.

Zeek starts the WebSocket analyzer as a child of HTTP when a ``101 Switching Protocols`` reply
upgrades the connection to ``websocket`` (``HTTP::upgrade_analyzers``). Its ``Init`` raises
``websocket_established``, whose handler writes the one websocket.log row from what the
``http_header`` handler gathered of the ``Sec-WebSocket-*`` headers (and host, URI and user
agent from the HTTP record), with weirds for missing or wrong key/accept headers. The
analyzer then reads the frames (RFC 6455) and confirms the protocol on the first whole
message; a frame whose opcode does not fit its place in the message is a violation.

Not done: DPD on the frames' payload (``WebSocket::AnalyzerConfig$use_dpd``), which would start
further analyzers on the unmasked text and binary data.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols.child import ChildAnalyzer, ChildContext
from wirestream.schemas.zeeklog.escape import bytes_text as text

HANDSHAKE_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
UPGRADE_PROTOCOL = b"websocket"  # HTTP::upgrade_analyzers' key for this analyzer
OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
_LIST_SEPARATOR = re.compile(rb" *, *")  # split_string(value, / *, */)
WEIRD_SOURCE = "WebSocket"


def expected_accept(key: bytes) -> str:
    """The Sec-WebSocket-Accept value a server must answer ``key`` with (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + HANDSHAKE_GUID).digest()).decode("ascii")


# ----------------------------------------------------------------------------- the script layer


@dataclass
class WebSocketInfo:
    """c$websocket: what the http_header handler collects (WebSocket::Info)."""

    ts: float
    subprotocol: str | None = None
    client_protocols: list[str] | None = None
    server_extensions: list[str] | None = None
    client_extensions: list[str] | None = None
    client_key: bytes | None = None
    server_accept: bytes | None = None
    weirds: list[str] = field(default_factory=list)  # raised while collecting headers


def _split(value: bytes) -> list[str]:
    return [text(part) for part in _LIST_SEPARATOR.split(value)]


def header(
    info: WebSocketInfo | None,
    ctx: AnalyzerContext,
    ts: float,
    is_orig: bool,
    lname: bytes,
    value: bytes,
) -> WebSocketInfo:
    """The http_header handler for a ``Sec-WebSocket-*`` header (``lname`` lower-cased):
    returns c$websocket, made on the first such header."""  # fmt: skip
    if info is None:
        info = WebSocketInfo(ts=ts)
    kind = lname[len(b"sec-websocket-") :]
    if is_orig:
        if kind == b"protocol":
            info.client_protocols = (info.client_protocols or []) + _split(value)
        elif kind == b"extensions":
            info.client_extensions = (info.client_extensions or []) + _split(value)
        elif kind == b"key":
            if info.client_key is not None:
                _weird(ctx, "websocket_multiple_key_headers")
            info.client_key = value
    elif kind == b"protocol":
        if info.subprotocol is not None:
            _weird(ctx, "websocket_multiple_protocol_headers")
        info.subprotocol = text(value)
    elif kind == b"extensions":
        info.server_extensions = (info.server_extensions or []) + _split(value)
    elif kind == b"accept":
        if info.server_accept is not None:
            _weird(ctx, "websocket_multiple_accept_headers")
        info.server_accept = value
    return info


def _weird(ctx: AnalyzerContext, name: str, addl: str = "") -> None:
    """Reporter::conn_weird(name, c, addl, "WebSocket")."""
    ctx.weird(name, addl, source=WEIRD_SOURCE)  # type: ignore[call-arg]


def established(
    ctx: AnalyzerContext,
    info: WebSocketInfo | None,
    ts: float,
    host: str | None,
    uri: str | None,
    user_agent: str | None,
) -> Record:
    """websocket_established's handlers: the weirds, then the websocket.log row (written at
    ``ts``, the upgrade's network time); ``host``/``uri``/``user_agent`` are c$http's."""
    if info is None:
        _weird(ctx, "websocket_established_unexpected")
        info = WebSocketInfo(ts=ts)
    if info.client_key is None:
        _weird(ctx, "websocket_missing_key_header")
    if info.server_accept is None:
        _weird(ctx, "websocket_missing_accept_header")
    if info.client_key is not None and info.server_accept is not None:
        expected = expected_accept(info.client_key)
        found = text(info.server_accept)
        if found != expected:
            _weird(ctx, "websocket_wrong_accept_header", f"expected={expected}, found={found}")
    record: Record = {
        "ts": ts,
        "uid": ctx.uid,
        **ctx.conn_id.columns(),
        "host": host,
        "uri": uri,
        "user_agent": user_agent,
        "subprotocol": info.subprotocol,
        "client_protocols": info.client_protocols,
        "server_extensions": info.server_extensions,
        "client_extensions": info.client_extensions,
    }
    ctx.emit("websocket", record)
    return record


# ----------------------------------------------------------------------------- frames


class _Direction:
    """One side's frame reader: header bytes buffered, payload consumed as it streams by."""

    __slots__ = ("buf", "payload_left", "fin", "in_message")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.payload_left = 0  # payload bytes of the current frame still to come
        self.fin = False
        self.in_message = False  # a message's first frame was not final: continuations follow


def _header_length(buf: bytearray) -> int | None:
    """The whole frame header's length once its first two bytes are there."""
    if len(buf) < 2:
        return None
    len1 = buf[1] & 0x7F
    extra = 0 if len1 < 126 else (2 if len1 == 126 else 8)
    return 2 + extra + (4 if buf[1] & 0x80 else 0)


class WebSocketAnalyzer:
    """The WebSocket analyzer (binpac flavour) on an upgraded connection."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.sides = {True: _Direction(), False: _Direction()}
        self.had_gap = False
        self.confirmed = False
        self.failed = False
        self.delivery = b""  # the bytes of the delivery being read (a violation's data)

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        if self.had_gap or self.failed:
            return
        self.delivery = data
        side = self.sides[is_orig]
        view = memoryview(data)
        while view:
            if side.payload_left:
                n = min(side.payload_left, len(view))
                side.payload_left -= n
                view = view[n:]
                if not side.payload_left:
                    self._frame_done(side)
                continue
            side.buf += view[:14]  # a header is at most 14 bytes
            view = view[14:]
            length = _header_length(side.buf)
            if length is None or len(side.buf) < length:
                continue
            rest = bytes(side.buf[length:])
            header = bytes(side.buf[:length])
            side.buf.clear()
            if not self._frame_header(side, header):
                return
            view = memoryview(rest + bytes(view))

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.had_gap = True

    def end(self, ts: float) -> None:
        pass  # nothing logged at the end: the row was written at establishment

    def _frame_header(self, side: _Direction, header: bytes) -> bool:
        fin = bool(header[0] & 0x80)
        opcode = header[0] & 0x0F
        first = not side.in_message
        if (first and opcode == OPCODE_CONTINUATION) or (not first and opcode != 0):
            self.failed = True
            self.ctx.violation(  # AnalyzerViolation(e.what(), data, len): with the delivery
                "binpac exception: &enforce violation : WebSocket_FrameHeader:first2",
                self.delivery,
            )
            return False
        len1 = header[1] & 0x7F
        if len1 < 126:
            payload = len1
        else:
            size = 2 if len1 == 126 else 8
            payload = int.from_bytes(header[2 : 2 + size], "big")
        side.fin = fin
        side.in_message = not fin
        side.payload_left = payload
        if not payload:
            self._frame_done(side)
        return True

    def _frame_done(self, side: _Direction) -> None:
        if side.fin and not self.confirmed:  # the message is whole: process_message
            self.confirmed = True
            self.ctx.confirm("websocket")


def upgrade(
    ctx: AnalyzerContext,
    protocol: bytes,
    info: WebSocketInfo | None,
    ts: float,
    http: Any,
) -> ChildAnalyzer | None:
    """HTTP_Upgrade for a ``101`` reply switching to ``protocol``: a WebSocket child of the
    HTTP analyzer on ``ctx`` when ``protocol`` is ``websocket`` (any case) and the WebSocket
    scripts are loaded, after websocket_established's row; None otherwise. ``info`` is
    c$websocket, ``http`` c$http (its host, uri and user_agent)."""
    if protocol.lower() != UPGRADE_PROTOCOL:
        return None
    conn = getattr(ctx, "conn", None)
    if conn is not None and SPEC.name not in conn.engine.analyzers:
        return None  # bare mode without base/protocols/websocket
    host, uri, agent = (getattr(http, name, None) for name in ("host", "uri", "user_agent"))
    established(ctx, info, ts, host, uri, agent)
    child_ctx = ChildContext(ctx, SPEC.name)
    return ChildAnalyzer(WebSocketAnalyzer(child_ctx), child_ctx)


# Registered so that bare mode (@load base/protocols/websocket) can enable it; it attaches only
# through an HTTP upgrade, never by port or content.
SPEC = register(
    AnalyzerSpec(
        name="websocket",
        transports=frozenset({"tcp"}),
        ports=frozenset(),
        factory=WebSocketAnalyzer,
    )
)
