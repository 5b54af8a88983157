"""UDP tunnels as Zeek's packet analyzers handle them: Teredo, GTPv1-U, VXLAN (and AYIYA).

The outer UDP connection is a normal connection whose service becomes the tunnel's name once
the encapsulation is confirmed; each inner packet is decoded again and tracked as its own
connection whose ``tunnel_parents`` holds the outer uid(s). tunnel.log gets a DISCOVER record
when an inner connection first uses a tunnel and a CLOSE record when the outer one ends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .api import IPDatagram, id_columns
from .linklayer import DLT_EN10MB, DLT_RAW

if TYPE_CHECKING:
    from .sessions import Connection

MAX_DEPTH = 4  # Tunnel::max_depth
MAX_CHANGES_PER_CONNECTION = 5  # tunnel_max_changes_per_connection
TEREDO_PORTS = frozenset({3544})
GTP_PORTS = frozenset({2152, 2123})
VXLAN_PORTS = frozenset({4789})
AYIYA_PORTS = frozenset({5072})
GENEVE_PORTS = frozenset({6081})
GRE_UDP_PORTS = frozenset({4754})

# Zeek matches this as a prefix: an IPv6 header whose source or destination is in 2001:0::/32.
_TEREDO_PREFIX = re.compile(
    rb"(?s)[\x60-\x6f].{7}\x20\x01\x00\x00.{28}|[\x60-\x6f].{23}\x20\x01\x00\x00.{12}"
)


@dataclass(frozen=True, slots=True)
class TunnelRef:
    """Zeek's EncapsulatingConn for a UDP tunnel: the outer connection and the tunnel type."""

    tunnel_type: str  # "TEREDO", "GTPv1", "VXLAN", "AYIYA"
    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int

    def id_tuple(self) -> tuple[str, int, str, int]:
        return (self.orig_h, self.orig_p, self.resp_h, self.resp_p)


def teredo_inner_offset(data: bytes) -> int | str | None:
    """Offset of the inner IPv6 header, a weird name for a truncated header, or None."""
    pos, found_origin, found_auth = 0, False, False
    while True:
        rest = len(data) - pos
        if rest < 2:
            return "truncated_Teredo"
        tag = (data[pos] << 8) | data[pos + 1]
        if tag == 0:
            if found_origin:
                return None
            if rest < 8:
                return "truncated_Teredo_origin_indication"
            pos += 8
            found_origin = True
        elif tag == 1:
            if found_origin or found_auth:
                return None
            if rest < 4:
                return "truncated_Teredo_authentication"
            total = 4 + data[pos + 2] + data[pos + 3] + 8 + 1
            if rest < total:
                return "truncated_Teredo_authentication"
            pos += total
            found_auth = True
        elif (tag >> 12) == 6:
            if rest < 40:
                return "truncated_IPv6_in_Teredo"
            return pos
        else:
            return None


def teredo_detect(data: bytes) -> bool:
    """Zeek's Teredo DetectProtocol for UDP ports not registered to any tunnel."""
    n = len(data)
    if n < 40 or (data[0] >> 4 != 6 and (data[0] != 0 or data[1] not in (0, 1))):
        return False
    if _TEREDO_PREFIX.match(data):
        return True
    val = data[1]
    pos = 0
    if val == 1:
        need = 13 + data[2] + data[3]
        if n < need:
            return False
        pos = need
        if n - pos < 40:
            return False
        val = (data[pos] << 8) | data[pos + 1]
    if val == 0:
        pos += 8
        return n - pos >= 40 and data[pos] >> 4 == 6
    return False


def gtp_inner_offset(data: bytes) -> int | None:
    """Offset of the IP packet inside a GTPv1-U G-PDU, or None (not one, or malformed)."""
    if len(data) < 8:
        return None
    flags, msg_type = data[0], data[1]
    if (flags >> 5) != 1 or not flags & 0x10 or msg_type != 255:
        return None
    pos = 8
    if flags & 0x07:
        if len(data) < 12:
            return None
        next_type = data[11]
        pos = 12
        if flags & 0x04:
            while next_type:
                if pos >= len(data):
                    return None
                ext_len = data[pos] * 4
                if ext_len == 0 or pos + ext_len > len(data):
                    return None
                next_type = data[pos + ext_len - 1]
                pos += ext_len
    if len(data) - pos < 20 or data[pos] >> 4 not in (4, 6):
        return None
    return pos


def _ip_total_length(packet: bytes) -> int:
    if packet[0] >> 4 == 4:
        return (packet[2] << 8) | packet[3]
    return 40 + ((packet[4] << 8) | packet[5])


class TunnelState:
    """Per outer connection: whether a tunnel analyzer gave up, Teredo's two-sided validity."""

    __slots__ = ("violated", "valid_orig", "valid_resp")

    def __init__(self) -> None:
        self.violated: set[str] = set()
        self.valid_orig = False
        self.valid_resp = False


class Tunnels:
    """Decapsulates UDP tunnels and keeps tunnel.log."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        reinject: Callable[[Connection, TunnelRef, bytes, int, Any], None],
        flow_weird: Callable[..., None] | None = None,
        gre: Callable[[Any], None] | None = None,
        *,
        delay_teredo_confirmation: bool = True,
    ) -> None:
        self._emit = emit
        self._reinject = reinject
        self._flow_weird = flow_weird or (lambda *args: None)
        self._gre = gre or (lambda dg: None)
        self.delay_teredo_confirmation = delay_teredo_confirmation
        self.active: dict[tuple[str, int, str, int], dict[str, Any]] = {}
        self._state: dict[str, TunnelState] = {}
        self._ip_tunnels: dict[tuple[str, str], TunnelRef] = {}

    def ip_tunnel(
        self, src: str, dst: str, tunnel_type: str, new_uid: Callable[[], str]
    ) -> TunnelRef:
        """Zeek's IPTunnelAnalyzer: one EncapsulatingConn (own uid) per address pair."""
        pair = (src, dst) if src < dst else (dst, src)
        ref = self._ip_tunnels.get(pair)
        if ref is None:
            ref = self._ip_tunnels[pair] = TunnelRef(tunnel_type, new_uid(), src, 0, dst, 0)
        return ref

    # -- decapsulation ------------------------------------------------------------------------
    def udp(self, conn: Connection, is_orig: bool, data: bytes, depth: int, dg: Any) -> None:
        """A good UDP datagram's payload: hand any tunnelled packet back to the engine."""
        port = conn.resp_p
        if port in TEREDO_PORTS:
            kind = "TEREDO"
        elif port in GTP_PORTS:
            kind = "GTPv1"
        elif port in VXLAN_PORTS:
            kind = "VXLAN"
        elif port in AYIYA_PORTS:
            kind = "AYIYA"
        elif port in GENEVE_PORTS:
            kind = "GENEVE"
        elif port in GRE_UDP_PORTS:
            kind = "GRE"
        elif teredo_detect(data):
            kind = "TEREDO"
        elif len(data) >= 3 and data[1] == 0x52 and data[2] == 0x11:  # Zeek's AYIYA detection
            kind = "AYIYA"
        else:
            return
        state = self._state.get(conn.uid)
        if state is None:
            state = self._state[conn.uid] = TunnelState()
        if kind in state.violated:
            return
        if depth >= MAX_DEPTH:
            conn.check_history(0x400, "X")
            self._packet_weird(dg, "exceeded_tunnel_max_depth", kind.upper())
            return
        ref = TunnelRef(kind, conn.uid, *conn.id_tuple())
        if kind == "TEREDO":
            self._teredo(conn, state, is_orig, data, ref, dg)
        elif kind == "AYIYA":
            self._ayiya(conn, state, data, ref, dg)
        elif kind == "GENEVE":
            self._geneve(conn, state, data, ref, dg)
        elif kind == "GRE":
            # GRE keeps Zeek's IP-tunnel identity (the outer address pair), not the UDP flow.
            self._gre(
                IPDatagram(
                    dg.ts, dg.src, dg.dst, 47, data, len(data), dg.version, dg.ttl,
                    dg.captured_all, dg.encap, dg.vlan, dg.inner_vlan,
                )
            )  # fmt: skip
        elif kind == "GTPv1":
            off = gtp_inner_offset(data)
            if off is None:
                return
            if _ip_total_length(data[off:]) != len(data) - off:
                state.violated.add(kind)  # Zeek: "GTPv1 payload length" violation
                return
            conn.confirm("gtpv1")
            self._reinject(conn, ref, data[off:], DLT_RAW, dg)
        else:
            if len(data) < 8:
                state.violated.add(kind)
                return
            if not data[0] & 0x08:
                state.violated.add(kind)
                return
            conn.confirm("vxlan")
            if len(data) == 8:
                self._packet_weird(dg, "vxlan_empty_packet", "VXLAN")
                return
            self._reinject(conn, ref, data[8:], DLT_EN10MB, dg)

    def _geneve(
        self, conn: Connection, state: TunnelState, data: bytes, ref: TunnelRef, dg: Any
    ) -> None:
        """Zeek's Geneve analyzer: options skipped, the protocol type picks Ethernet or IP."""
        if len(data) < 8:
            state.violated.add("GENEVE")
            return
        if data[0] >> 6:
            self._packet_weird(dg, "geneve_invalid_version", "GENEVE", str(data[0] >> 6))
            return
        hdr = 8 + (data[0] & 0x3F) * 4
        if hdr > len(data):
            state.violated.add("GENEVE")
            return
        conn.confirm("geneve")
        if len(data) == hdr:
            self._packet_weird(dg, "geneve_empty_packet", "GENEVE")
            return
        proto = (data[2] << 8) | data[3]
        if proto == 0x6558:
            self._reinject(conn, ref, data[hdr:], DLT_EN10MB, dg)
        elif proto in (0x0800, 0x86DD):
            self._reinject(conn, ref, data[hdr:], DLT_RAW, dg)

    def _ayiya(
        self, conn: Connection, state: TunnelState, data: bytes, ref: TunnelRef, dg: Any
    ) -> None:
        """Zeek's AYIYA analyzer: forwarded packets (opcode 1) carry IPv4 or IPv6."""
        if len(data) < 8:
            state.violated.add("AYIYA")
            return
        hdr = 8 + (1 << (data[0] >> 4)) + (data[1] >> 4) * 4
        if hdr > len(data):
            state.violated.add("AYIYA")
            return
        if data[2] & 0x0F != 1:
            return
        conn.confirm("ayiya")
        if len(data) == hdr:
            self._packet_weird(dg, "ayiya_empty_packet", "AYIYA")
            return
        if data[3] in (4, 41):
            self._reinject(conn, ref, data[hdr:], DLT_RAW, dg)

    def _teredo(
        self,
        conn: Connection,
        state: TunnelState,
        is_orig: bool,
        data: bytes,
        ref: TunnelRef,
        dg: Any,
    ) -> None:
        off = teredo_inner_offset(data)
        if not isinstance(off, int):
            if isinstance(off, str):
                self._packet_weird(dg, off, "TEREDO")
            state.violated.add("TEREDO")
            return
        inner = data[off:]
        payload_len = (inner[4] << 8) | inner[5]
        bubble = inner[6] == 59 and payload_len == 0
        if 40 + payload_len != len(inner):
            if bubble and 40 + payload_len < len(inner):
                conn.weird("Teredo_bubble_with_payload", source="TEREDO")
            else:
                state.violated.add("TEREDO")  # Zeek: "Teredo payload length" violation
                return
        if is_orig:
            state.valid_orig = True
        else:
            state.valid_resp = True
        if not self.delay_teredo_confirmation or (state.valid_orig and state.valid_resp):
            conn.confirm("teredo")
        if bubble:
            return  # a bubble: no inner connection, no weird
        self._reinject(conn, ref, inner, DLT_RAW, dg)

    def _packet_weird(self, dg: Any, name: str, source: str, addl: str = "") -> None:
        """Zeek's packet-analyzer weirds: about the outer IP flow, with the analyzer as source."""
        self._flow_weird(name, dg.ts, dg.src, dg.dst, addl, source)

    # -- tunnel.log ---------------------------------------------------------------------------
    def register(self, stack: tuple[TunnelRef, ...], ts: float) -> None:
        for ref in stack:
            cid = ref.id_tuple()
            if cid in self.active:
                continue
            record = {
                "ts": ts,
                "uid": ref.uid,
                **id_columns(cid),
                "tunnel_type": f"Tunnel::{ref.tunnel_type}",
                "action": "Tunnel::DISCOVER",
            }
            self.active[cid] = record
            self._emit(dict(record))

    def register_cid(self, cid: tuple[str, int, str, int], tunnel_type: str, ts: float) -> None:
        """Zeek's Tunnel::register from scripts (SOCKS, HTTP CONNECT): no uid, one DISCOVER."""
        if cid in self.active:
            return
        record = {
            "ts": ts,
            "uid": None,
            **id_columns(cid),
            "tunnel_type": f"Tunnel::{tunnel_type}",
            "action": "Tunnel::DISCOVER",
        }
        self.active[cid] = record
        self._emit(dict(record))

    def connection_removed(self, conn: Connection, ts: float) -> None:
        self._state.pop(conn.uid, None)
        record = self.active.get(conn.id_tuple())
        if record is not None and record["uid"] in (conn.uid, None):
            del self.active[conn.id_tuple()]
            self._emit({**record, "ts": ts, "action": "Tunnel::CLOSE"})

    def finish(self, ts: float) -> None:
        self._state.clear()
