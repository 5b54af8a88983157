"""SOCKS 4/4a/5 -> socks.log and a tunnel.log DISCOVER, the proxied stream to the analyzers it
would get, as Zeek's SOCKS analyzer and ``base/protocols/socks`` do it.

Zeek's binpac grammar reads each delivery of a direction as one message (a "datagram" flow
unit), so one TCP segment is one SOCKS message here too. The handshake is tracked per
connection: SOCKS5's method negotiation, the username/password sub-negotiation (RFC 1929),
then request and reply. Once both sides have finished their part, the rest of the stream is
the proxied connection's: a protocol detector (Zeek's PIA child) matches the registered DPD
signatures on it and hands it to the analyzer found, whose service joins the connection's.
A request registers the tunnel (orig_p 0: one tunnel per client and proxy), as Zeek's
``Tunnel::register`` does; the socks.log row is written when the connection goes, if SOCKS
was confirmed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wirestream.processors.engine.api import (
    REGISTRY,
    AnalyzerContext,
    AnalyzerSpec,
    AppAnalyzer,
    Record,
    register,
)
from wirestream.processors.engine.protocols.bytereader import ParseError, Reader
from wirestream.processors.engine.protocols.child import ChildContext
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

NAME = "socks"
PORTS = frozenset({1080})  # SOCKS::ports
DPD_BUFFER_SIZE = 1024  # dpd_buffer_size: what the inner protocol detector keeps per side
DPD_MAX_CHUNKS = 64

V4_STATUS = {
    0x5A: "succeeded",
    0x5B: "general SOCKS server failure",
    0x5C: "request failed because client is not running identd",
    0x5D: "request failed because client's identd could not confirm the user ID string in the request",
}  # fmt: skip
V5_STATUS = {
    0: "succeeded",
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "Network unreachable",
    4: "Host unreachable",
    5: "Connection refused",
    6: "TTL expired",
    7: "Command not supported",
    8: "Address type not supported",
}


@dataclass(frozen=True)
class SocksConfig:
    """What Zeek's SOCKS script lets a site redef; the default is plain ``zeek -r``."""

    capture_password: bool = False  # SOCKS::default_capture_password


CONFIG_KEY = "socks_config"


def configure(engine: Any, config: SocksConfig) -> None:
    """Use ``config`` for the SOCKS sessions ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


def status_text(version: int, code: int) -> str:
    """SOCKS::v4_status / v5_status, with their ``unknown-N`` default."""
    table = V5_STATUS if version == 5 else V4_STATUS
    return table.get(code, f"unknown-{code}")


class SocksParseError(ParseError):
    """A message shorter than its grammar (binpac's out-of-bound exception)."""


@dataclass(frozen=True)
class SocksAddress:
    """SOCKS::Address: an address, a name, or (SOCKS4a) both."""

    host: str | None = None
    name: str | None = None


class _Reader(Reader):
    """SOCKS messages are big-endian; strings end with a NUL."""

    __slots__ = ()

    def until_nul(self) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise SocksParseError("string without its terminating NUL")
        out = self.data[self.pos : end]
        self.pos = end + 1
        return out


def read_v5_address(r: _Reader) -> tuple[int, SocksAddress | None]:
    """SOCKS5_Address: (address type, address or None for an unknown type)."""
    kind = r.u8()
    if kind == 1:
        return kind, SocksAddress(host=str(ipaddress.IPv4Address(r.take(4))))
    if kind == 3:
        return kind, SocksAddress(name=text(r.take(r.u8())))
    if kind == 4:
        return kind, SocksAddress(host=str(ipaddress.IPv6Address(r.take(16))))
    return kind, None


@dataclass
class SocksInfo:
    """One socks.log row in the making (SOCKS::Info)."""

    ts: float
    version: int
    user: str | None = None
    password: str | None = None
    status: str | None = None
    request: SocksAddress | None = None
    request_p: int | None = None
    bound: SocksAddress | None = None
    bound_p: int | None = None


class InnerDetector:
    """Zeek's PIA_TCP child of SOCKS: the proxied stream's first bytes matched against the
    registered DPD signatures; the analyzer found gets the stream from its start."""

    def __init__(self, ctx: AnalyzerContext, registry: Mapping[str, AnalyzerSpec]) -> None:
        self.ctx = ctx
        self.candidates = [
            s for s in registry.values() if s.sniff is not None and "tcp" in s.transports and s.name != NAME
        ]  # fmt: skip
        self.chunks: list[tuple[bool, bytes]] = []
        self.sizes = {True: 0, False: 0}
        self.child: AppAnalyzer | None = None
        self.child_ctx: ChildContext | None = None

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        if self.child is not None:
            self._call("data", is_orig, data, ts)
            return
        if not self.candidates:
            return
        self.chunks.append((is_orig, data))
        self.sizes[is_orig] += len(data)
        orig = b"".join(d for o, d in self.chunks if o)[:DPD_BUFFER_SIZE]
        resp = b"".join(d for o, d in self.chunks if not o)[:DPD_BUFFER_SIZE]
        for spec in self.candidates:
            if spec.sniff is not None and spec.sniff(orig, resp):
                self._attach(spec, ts)
                return
        if min(self.sizes.values()) >= DPD_BUFFER_SIZE or len(self.chunks) > DPD_MAX_CHUNKS:
            self.candidates, self.chunks = [], []

    def _attach(self, spec: AnalyzerSpec, ts: float) -> None:
        self.child_ctx = ChildContext(self.ctx, spec.name)
        self.child = spec.factory(self.child_ctx)
        chunks, self.chunks, self.candidates = self.chunks, [], []
        for is_orig, data in chunks:
            self._call("data", is_orig, data, ts)

    def _call(self, method: str, *args: Any) -> None:
        """A call into the inner analyzer; one that fails is removed (as the engine does with
        the analyzers it attaches), the SOCKS analyzer goes on."""
        if self.child is None or self.child_ctx is None or self.child_ctx.removed:
            return
        try:
            getattr(self.child, method)(*args)
        except Exception as exc:  # a broken inner analyzer must not take SOCKS with it
            log.warning("%s analyzer inside SOCKS failed on %s: %s", method, self.ctx.uid, exc)
            self.child_ctx.removed = True

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        if self.child is not None:
            self._call("gap", is_orig, length, ts)
        else:
            self.candidates, self.chunks = [], []  # DPD stops once content is missing

    def end(self, ts: float) -> None:
        if self.child is None:
            return
        try:  # a removed analyzer still flushes what it holds, as the engine's do
            self.child.end(ts)
        except Exception as exc:
            log.warning("end of the analyzer inside SOCKS failed on %s: %s", self.ctx.uid, exc)


class SocksAnalyzer:
    """One TCP connection's SOCKS analyzer (Zeek's SOCKS_Analyzer, its binpac grammar and
    ``base/protocols/socks/main.zeek``)."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.done = {True: False, False: False}  # EndpointDone per side
        self.in_auth_sub = False
        self.past_auth = False
        self.auth_method = 255
        self.skip = False
        self.confirmed = False
        self.info: SocksInfo | None = None
        self.inner: InnerDetector | None = None
        state = getattr(ctx, "shared_state", None) or {}
        self.config: SocksConfig = state.get(CONFIG_KEY) or SocksConfig()

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.done[True] and self.done[False]:
            if self.inner is None:
                engine = getattr(getattr(self.ctx, "conn", None), "engine", None)
                registry = getattr(engine, "analyzers", None) or REGISTRY
                self.inner = InnerDetector(self.ctx, registry)
            self.inner.data(is_orig, data, ts)
            return
        if self.skip:
            return
        try:
            self._message(is_orig, data)
        except ParseError as exc:  # SocksParseError, or running past the message
            self.ctx.violation(f"Binpac exception: {exc}")

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        if self.inner is not None:
            self.inner.gap(is_orig, length, ts)

    def end(self, ts: float) -> None:
        self.ts = ts
        if self.inner is not None:
            self.inner.end(ts)
        if self.info is not None and self._socks_in_service():  # finalize_socks
            self.ctx.emit("socks", self.record(self.info))

    def _socks_in_service(self) -> bool:
        conn = getattr(self.ctx, "conn", None)
        services = getattr(conn, "services", None)
        if services is None:
            return self.confirmed
        return NAME in services

    # -- the grammar (socks-protocol.pac) ----------------------------------------------------
    def _message(self, is_orig: bool, data: bytes) -> None:
        r = _Reader(data)
        if self.in_auth_sub:
            self._auth_message(is_orig, r)
            return
        version = r.u8()
        if version == 4:
            if is_orig:
                self._v4_request(r)
            else:
                self._v4_reply(r)
        elif version == 5:
            if not self.past_auth:
                self._v5_negotiation(is_orig, r)
            elif is_orig:
                self._v5_request(r)
            else:
                self._v5_reply(r)
        else:
            self.ctx.violation(f"unsupported/unknown SOCKS version {version}")

    def _v4_request(self, r: _Reader) -> None:
        command = r.u8()
        port = r.u16()
        addr = r.take(4)
        user = r.until_nul()
        v4a = int.from_bytes(addr, "big") <= 0xFF
        name = text(r.until_nul()) if v4a else None
        sa = SocksAddress(host=str(ipaddress.IPv4Address(addr)), name=name)
        self._ev_request(4, command, sa, port, text(user))
        self.done[True] = True

    def _v4_reply(self, r: _Reader) -> None:
        # Zeek's grammar reads the version byte before every message, so a SOCKS4 reply it
        # parses is 0x04 followed by the 8 bytes of RFC's reply (VN, CD, port, address); the
        # usual VN 0 reply is an unknown version to it (a violation), and so it is here.
        r.u8()  # zero
        status = r.u8()
        port = r.u16()
        addr = str(ipaddress.IPv4Address(r.take(4)))
        self._ev_reply(4, status, SocksAddress(host=addr), port)
        self._confirm()
        self.done[False] = True

    def _v5_negotiation(self, is_orig: bool, r: _Reader) -> None:
        if is_orig:
            count = r.u8()
            r.take(count)
            return
        method = r.u8()
        self.in_auth_sub = method not in (0, 0xFF)
        self.past_auth = True
        self.auth_method = method

    def _auth_message(self, is_orig: bool, r: _Reader) -> None:
        if self.auth_method != 2:
            if is_orig:
                self.ctx.weird("socks5_unsupported_authentication_method", str(self.auth_method))
            else:
                self.in_auth_sub = False
            return
        version = r.u8()
        if version != 1:
            self.ctx.weird(
                "socks5_unsupported_authentication",
                f"method {self.auth_method}, version {version}",
            )
            if not is_orig:
                self.in_auth_sub = False
            return
        if is_orig:
            user = r.take(r.u8())
            password = r.take(r.u8())
            self._ev_userpass_request(text(user), text(password))
        else:
            code = r.u8()
            self.in_auth_sub = False
            self._ev_userpass_reply(code)

    def _v5_request(self, r: _Reader) -> None:
        command = r.u8()
        reserved = r.u8()
        kind, sa = read_v5_address(r)
        if sa is None:
            self.ctx.violation(f"invalid SOCKSv5 addr type: {kind}")
            return
        port = r.u16()
        if reserved != 0:
            self.ctx.violation(f"invalid value in reserved field: {reserved}")
            self.skip = True
            return
        if command == 0 or command > 3:
            self.ctx.violation(f"undefined value in command field: {command}")
            self.skip = True
            return
        self._ev_request(5, command, sa, port, "")
        self.done[True] = True

    def _v5_reply(self, r: _Reader) -> None:
        reply = r.u8()
        r.u8()  # reserved
        kind, sa = read_v5_address(r)
        if sa is None:
            self.ctx.violation(f"invalid SOCKSv5 addr type: {kind}")
            return
        port = r.u16()
        self._ev_reply(5, reply, sa, port)
        self._confirm()
        self.done[False] = True

    def _confirm(self) -> None:
        self.confirmed = True
        self.ctx.confirm(NAME)

    # -- script layer (main.zeek) -------------------------------------------------------------
    def _session(self, version: int) -> SocksInfo:
        if self.info is None:
            self.info = SocksInfo(self.ts, version)
        return self.info

    def _ev_request(
        self, version: int, command: int, sa: SocksAddress, port: int, user: str
    ) -> None:
        info = self._session(version)
        info.request, info.request_p = sa, port
        cid = self.ctx.conn_id
        register_tunnel = getattr(self.ctx, "register_tunnel", None)
        if register_tunnel is None:
            raise TypeError("SOCKS needs AnalyzerContext.register_tunnel for tunnel.log")
        register_tunnel((cid.orig_h, 0, cid.resp_h, cid.resp_p), "SOCKS")

    def _ev_reply(self, version: int, code: int, sa: SocksAddress, port: int) -> None:
        info = self._session(version)
        if version in (4, 5):
            info.status = status_text(version, code)
        info.bound, info.bound_p = sa, port

    def _ev_userpass_request(self, user: str, password: str) -> None:
        info = self._session(5)
        info.user = user
        if self.config.capture_password:
            info.password = password

    def _ev_userpass_reply(self, code: int) -> None:
        self._session(5).status = status_text(5, code)

    def record(self, info: SocksInfo) -> Record:
        req, bound = info.request, info.bound
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "version": info.version,
            "user": info.user,
            "password": info.password,
            "status": info.status,
            "request.host": req.host if req else None,
            "request.name": req.name if req else None,
            "request_p": info.request_p,
            "bound.host": bound.host if bound else None,
            "bound.name": bound.name if bound else None,
            "bound_p": info.bound_p,
        }


_V4_CLIENT = re.compile(rb"\x04[\x01\x02].{0,32}\x00", re.S)
_V4_SERVER = re.compile(rb"\x00[\x5a\x5b\x5c\x5d]")
# Zeek 9's v5 signatures: the methods offered / chosen (0x04 unassigned, 0xff "no acceptable").
_V5_CLIENT = re.compile(rb"\x05.[\x00-\x03\x05-\x09]", re.S)
_V5_SERVER = re.compile(rb"\x05[\x00-\x03\x05-\x09\xff]")


def sniff_socks(orig: bytes, resp: bytes) -> bool:
    """Zeek's SOCKS DPD signatures (dpd.sig): v4 client and server either way round, v5."""
    # Each pair needs its sides' first bytes to be 04/00 (either way round) or 05/05: most
    # connections are ruled out here without a regex.
    firsts = orig[:1] + resp[:1]
    if firsts not in (b"\x04\x00", b"\x00\x04", b"\x05\x05"):
        return False
    v4 = bool(_V4_CLIENT.match(orig) and _V4_SERVER.match(resp))
    v4_reverse = bool(_V4_CLIENT.match(resp) and _V4_SERVER.match(orig))
    v5 = bool(_V5_CLIENT.match(orig) and _V5_SERVER.match(resp))
    return v4 or v4_reverse or v5


SPEC = register(
    AnalyzerSpec(
        name=NAME,
        transports=frozenset({"tcp"}),
        ports=PORTS,
        factory=SocksAnalyzer,
        sniff=sniff_socks,
    )
)
