"""The built-in engine: packets in, Zeek's logs out.

``Engine.process`` takes captured frames (the intake decodes them), ``Engine.ip`` takes IP
datagrams directly (tests, tunnels), ``Engine.finish`` flushes what is still open in Zeek's
end-of-trace order. Memory stays bounded by live state: connections end through Zeek's own
timers (inactivity, close and reset delays, SYN attempts), all driven by packet time.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from typing import Any

from .api import IPDatagram, Packet, Sink
from .checksum import datagram_checksum_ok, flow_pair_sum, flow_transport_ok
from .conn_log import LocalNets, conn_record
from .decode import Decoder
from .files import FileManager
from .icmp import IcmpSession, counterpart, nd_weirds
from .sessions import (
    LIKELY_SERVER_PORTS,
    Connection,
    ConnKey,
    TimerQueue,
    addr_key,
    key_order,
    make_key,
)
from .tcp import TcpHeader, TcpSession
from .tunnels import MAX_CHANGES_PER_CONNECTION, MAX_DEPTH, TunnelRef, Tunnels
from .udp import UdpSession
from .uid import UidGenerator
from .weird import WeirdLog

log = logging.getLogger(__name__)

# Zeek's defaults (init-bare.zeek); a TCP connection starts on the UDP value until established.
TCP_INACTIVITY_TIMEOUT = 300.0
UDP_INACTIVITY_TIMEOUT = 60.0
ICMP_INACTIVITY_TIMEOUT = 60.0

_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBH")  # ports, seq, ack, data offset, flags, window
UNKNOWN_IP_INACTIVITY_TIMEOUT = 60.0
_BROADCAST = "255.255.255.255"


class UnknownIpSession:
    """Zeek's UnknownIPSessionAdapter: no sizes, no history, only packet counts."""

    __slots__ = ()

    def flip(self) -> None:
        """Nothing direction-specific to swap."""

    def sizes(self) -> tuple[int, int]:
        return 0, 0


class EngineStats:
    __slots__ = ("packets", "datagrams", "connections", "max_live")

    def __init__(self) -> None:
        self.packets = self.datagrams = self.connections = self.max_live = 0


class Engine:
    """Zeek-compatible connection tracking feeding a :class:`Sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        ignore_checksums: bool = False,
        local_nets: Iterable[str] | None = None,
        seed: int | None = None,
        files: Any = None,
        conn_vlan_columns: bool = False,
        conn_l2_columns: bool = False,
        delay_teredo_confirmation: bool = True,
        weird_log: bool = True,
        analyzers: Iterable[str] | None = None,
        handled_events: Iterable[str] = (),
        likely_server_ports: dict[str, frozenset[int]] | None = None,
        tcp_inactivity_timeout: float = TCP_INACTIVITY_TIMEOUT,
        udp_inactivity_timeout: float = UDP_INACTIVITY_TIMEOUT,
        icmp_inactivity_timeout: float = ICMP_INACTIVITY_TIMEOUT,
    ) -> None:
        from . import protocols  # noqa: F401  (registers the application analyzers)
        from .api import REGISTRY
        from .expected import ScheduledAnalyzers

        self.sink = sink
        # The application analyzers that may attach: all, or (Zeek's bare mode) those whose
        # scripts are loaded. Events with script handlers: some analysis runs only for them.
        self.analyzers = (
            REGISTRY
            if analyzers is None
            else {n: s for n, s in REGISTRY.items() if n in set(analyzers)}
        )
        self.handled_events = frozenset(handled_events)
        self.ignore_checksums = ignore_checksums
        self.local_nets = LocalNets(local_nets)
        self.uids = UidGenerator(seed)
        self.files = (
            files
            if files is not None
            else FileManager(sink.log, sink.file, uids=self.uids, local_nets=self.local_nets)
        )
        self.conn_vlan_columns = conn_vlan_columns
        self.conn_l2_columns = conn_l2_columns  # Zeek's policy/protocols/conn/mac-logging
        self._frame_l2: tuple[bytes, bytes] | None = None
        self.likely_server_ports = likely_server_ports or LIKELY_SERVER_PORTS
        self.tcp_inactivity_timeout = tcp_inactivity_timeout
        self.udp_inactivity_timeout = udp_inactivity_timeout
        self.icmp_inactivity_timeout = icmp_inactivity_timeout
        self.weirds = WeirdLog(lambda rec: sink.log("weird", rec), enabled=weird_log)
        self.decoder = Decoder(self.weirds, ignore_checksums=ignore_checksums)
        self.tunnels = Tunnels(
            lambda rec: sink.log("tunnel", rec),
            self._reinject,
            flow_weird=self._flow_weird,
            gre=lambda gre_dg: self._ip_in_ip(gre_dg, "GRE"),
            delay_teredo_confirmation=delay_teredo_confirmation,
        )
        self.timers = TimerQueue()
        # Analyzers promised to future connections (FTP data channels), and the state protocol
        # analyzers share across connections (Zeek's script globals such as ftp_data_expected).
        self.scheduled = ScheduledAnalyzers()
        self.analyzer_state: dict[str, Any] = {}
        self.connections: dict[ConnKey, Connection] = {}
        self.now = 0.0
        self.stats = EngineStats()
        self._finished = False
        self.finishing = False
        # Script-level handlers of connection events (policy scripts such as known-services):
        # analyzer_confirmed(conn, service) and connection_removed(conn).
        self.observers: list[Any] = []

    # -- input ------------------------------------------------------------------------------
    def process(self, packet: Packet) -> None:
        """One captured frame: advance network time, decode, track."""
        self.stats.packets += 1
        ts = packet.ts
        if ts > self.now:
            self.now = ts
        heap = self.timers.heap  # _advance, inlined on the per-packet path
        if heap and heap[0][0] <= self.now:
            self.timers.advance(self.now)
        if self.conn_l2_columns:  # Ethernet source/destination, for orig_l2_addr/resp_l2_addr
            data = packet.data
            ethernet = packet.linktype == 1 and len(data) >= 14
            self._frame_l2 = (data[6:12], data[0:6]) if ethernet else None
        dg = self.decoder.decode(packet)
        if dg is not None:
            if dg.proto == 6:  # _datagram's TCP case, without the call
                self.stats.datagrams += 1
                self._tcp(dg)
            else:
                self._datagram(dg)

    def ip(self, datagram: IPDatagram) -> None:
        """One IP datagram (already decapsulated and reassembled)."""
        self._advance(datagram.ts)
        self._frame_l2 = None
        self._datagram(datagram)

    def _advance(self, ts: float) -> None:
        if ts > self.now:
            self.now = ts
        self.timers.advance(self.now)

    def _datagram(self, dg: IPDatagram) -> None:
        self.stats.datagrams += 1
        proto = dg.proto
        if proto == 6:
            self._tcp(dg)
        elif proto == 17:
            self._udp(dg)
        elif proto in (1, 58):
            self._icmp(dg)
        elif proto in (4, 41):
            self._ip_in_ip(dg, "IP")
        elif proto == 47:
            self._ip_in_ip(dg, "GRE")
        elif proto != 2:  # IGMP only raises events in Zeek
            self._unknown_transport(dg)

    @staticmethod
    def _wire_payload_len(dg: IPDatagram) -> int:
        """Transport bytes the IP header announces (the payload may have been cut by snaplen)."""
        if dg.captured_all:
            return len(dg.payload)
        return max(dg.ip_len - (20 if dg.version == 4 else 40), len(dg.payload))

    def _truncated(self, dg: IPDatagram, need: int) -> bool:
        if len(dg.payload) >= need:
            return False
        wire = self._wire_payload_len(dg)
        name = "truncated_header" if wire and wire < need else "internally_truncated_header"
        self.weirds.flow_weird(name, dg.ts, dg.src, dg.dst)
        return True

    # -- connections ------------------------------------------------------------------------
    def _new_connection(
        self, key: ConnKey, dg: IPDatagram, sport: int, dport: int, flip: bool
    ) -> Connection:
        conn = Connection(
            self, key, self.uids.conn_uid(), dg.src, sport, dg.dst, dport, dg.proto, dg.ts
        )
        conn.vlan, conn.inner_vlan = dg.vlan, dg.inner_vlan
        conn.l2 = self._frame_l2
        if dg.proto == 6:
            conn.adapter = TcpSession(conn)
            conn.set_inactivity_timeout(self.udp_inactivity_timeout)
        elif dg.proto == 17:
            conn.adapter = UdpSession(conn)
            conn.set_inactivity_timeout(self.udp_inactivity_timeout)
        elif dg.proto in (1, 58):
            conn.adapter = IcmpSession(conn)
            conn.set_inactivity_timeout(self.icmp_inactivity_timeout)
        else:
            conn.adapter = UnknownIpSession()
            conn.set_inactivity_timeout(UNKNOWN_IP_INACTIVITY_TIMEOUT)
        if flip and conn.resp_h != _BROADCAST:
            conn.flip_roles()
        stack = _tunnel_stack(dg)
        if stack:
            conn.encap_stack = stack
            conn.tunnel_parents.append(stack[-1].uid)
            self.tunnels.register(stack, dg.ts)
        conn.started = True
        conn.attach_analyzers()
        self.connections[key] = conn
        self.stats.connections += 1
        if len(self.connections) > self.stats.max_live:
            self.stats.max_live = len(self.connections)
        return conn

    def remove_connection(self, conn: Connection) -> None:
        """End ``conn``: analyzers flush, conn.log is written, state is dropped."""
        if not conn.in_table:
            return
        conn.cancel_timers()
        conn.end_analyzers(self.now)
        for observer in self.observers:
            observer.connection_removed(conn)
        self.tunnels.connection_removed(conn, self.now)
        self.sink.log("conn", conn_record(conn, self.local_nets))
        conn.in_table = False
        if self.connections.get(conn.key) is conn:
            del self.connections[conn.key]

    def _check_encapsulation(self, conn: Connection, dg: IPDatagram) -> None:
        """Zeek's Connection::CheckEncapsulation: a new outer tunnel adds a tunnel parent."""
        if not dg.encap and not conn.encap_stack:
            return
        stack = _tunnel_stack(dg)
        if stack == conn.encap_stack:
            return
        conn.encap_stack = stack
        if conn.tunnel_changes >= MAX_CHANGES_PER_CONNECTION:
            conn.weird(
                "tunnel_max_changes_per_connection_exceeded", str(MAX_CHANGES_PER_CONNECTION)
            )
            conn.check_history(0x400, "X")
            return
        conn.tunnel_changes += 1
        if stack:
            if stack[-1].uid not in conn.tunnel_parents:
                conn.tunnel_parents.append(stack[-1].uid)
            self.tunnels.register(stack, dg.ts)

    def _reinject(
        self, outer: Connection, ref: TunnelRef, data: bytes, linktype: int, outer_dg: IPDatagram
    ) -> None:
        """A packet found inside a tunnel: decode it and track it with its encapsulation."""
        # A snaplen-cut outer packet cuts the inner one by as much (Zeek's build_inner_packet).
        missing = max(self._wire_payload_len(outer_dg) - len(outer_dg.payload), 0)
        inner = self.decoder.decode(Packet(outer_dg.ts, data, linktype, len(data) + missing))
        self._frame_l2 = None  # Zeek gives tunnelled packets no link-layer addresses
        if inner is None:
            return
        inner.encap = (*outer_dg.encap, ("tunnel", ref), *inner.encap)
        self._datagram(inner)

    def _tcp_flip(self, flags: int, sport: int, dport: int) -> bool:
        """Zeek's TCP WantConnection: a SYN-less or SYN-ACK start from a likely server port flips."""
        if flags & 0x02 and not flags & 0x10:
            return False  # a plain SYN: its sender is the originator
        if not self._likely("tcp", sport):
            return False
        if self._likely("tcp", dport):
            # Both plausible: flip only if not a SYN-ACK (stealth scans) and toward the lower port.
            return not flags & 0x02 and sport < dport
        return True

    def _ip_in_ip(self, dg: IPDatagram, tunnel_type: str) -> None:
        """IP-in-IP, IPv6-in-IP and GRE (also GRE over UDP): the intake decapsulates, the inner
        packet is tracked with the tunnel (one uid per address pair, Zeek's IPTunnel) as parent."""
        if len(_tunnel_stack(dg)) >= MAX_DEPTH:
            self.weirds.flow_weird("exceeded_tunnel_max_depth", dg.ts, dg.src, dg.dst)
            return
        inner = self.decoder.decode_tunneled(dg)
        self._frame_l2 = None
        if inner is None:
            return
        ref = self.tunnels.ip_tunnel(dg.src, dg.dst, tunnel_type, self.uids.conn_uid)
        inner.encap = (*dg.encap, ("tunnel", ref), *inner.encap)
        self._datagram(inner)

    def _flow_weird(
        self, name: str, ts: float, src: str, dst: str, addl: str = "", source: str = ""
    ) -> None:
        self.weirds.flow_weird(name, ts, src, dst, addl, source)

    def _likely(self, transport: str, port: int) -> bool:
        return port in self.likely_server_ports.get(transport, ())

    # -- TCP --------------------------------------------------------------------------------
    def _tcp(self, dg: IPDatagram) -> None:
        payload = dg.payload
        if len(payload) < 20 and self._truncated(dg, 20):
            return
        sport, dport, seq, ack, off, flags, win = _TCP.unpack_from(payload)
        src = dg.src
        a, b = addr_key(src), addr_key(dg.dst)  # make_key(src, sport, dg.dst, dport, 6), inlined
        key = (
            (a, sport, b, dport, 6)
            if a < b or (a == b and sport < dport)
            else (b, dport, a, sport, 6)
        )
        conn = self.connections.get(key)
        if conn is not None:
            # reuse needs a SYN
            if flags & 0x02 and conn.adapter.is_reuse(dg.ts, TcpHeader(payload)):
                self.remove_connection(conn)
                conn = None
            elif dg.encap or conn.encap_stack:
                self._check_encapsulation(conn, dg)
        if conn is None:
            flip = self._tcp_flip(flags, sport, dport)
            conn = self._new_connection(key, dg, sport, dport, flip)
        is_orig = src == conn.orig_h and sport == conn.orig_p
        hdr_len = (off >> 4) * 4
        if hdr_len < 20:
            conn.weird("bad_TCP_header_len", source="TCP")
            return
        wire_len = len(payload) if dg.captured_all else self._wire_payload_len(dg)
        if hdr_len > wire_len or hdr_len > len(payload):
            conn.weird("truncated_header", source="TCP")
            return
        session = conn.adapter
        # datagram_checksum_ok's TCP case (a full segment of >= 20 bytes here), with the
        # addresses' share of the pseudo-header summed once per connection.
        if not self.ignore_checksums and dg.captured_all:
            pair_sum = session.pair_sum
            if pair_sum is None:
                pair_sum = session.pair_sum = flow_pair_sum(src, dg.dst, dg.version)
            if not flow_transport_ok(pair_sum, 6, payload):
                conn.weird("bad_TCP_checksum", source="TCP")
                session.checksum_error(is_orig)
                return
        if session.process(
            is_orig, flags, seq, ack, win, payload[hdr_len:], wire_len - hdr_len, dg.ts
        ):
            conn.orig_pkts += 1  # Connection.count_packet, inlined
            conn.orig_ip_bytes += dg.ip_len
        else:
            conn.resp_pkts += 1
            conn.resp_ip_bytes += dg.ip_len

    # -- UDP --------------------------------------------------------------------------------
    def _udp(self, dg: IPDatagram) -> None:
        if self._truncated(dg, 8):
            return
        payload = dg.payload
        sport, dport, ulen, _sum = _UDP.unpack_from(payload)
        key = make_key(dg.src, sport, dg.dst, dport, 17)
        conn = self.connections.get(key)
        if conn is None:
            flip = self._likely("udp", sport) and not self._likely("udp", dport)
            conn = self._new_connection(key, dg, sport, dport, flip)
        else:
            self._check_encapsulation(conn, dg)
        is_orig = dg.src == conn.orig_h and sport == conn.orig_p
        session: UdpSession = conn.adapter
        if not datagram_checksum_ok(dg, self.ignore_checksums):
            session.bad_checksum(is_orig)
            return
        wire_len = self._wire_payload_len(dg)
        if ulen != wire_len:
            conn.weird("UDP_datagram_length_mismatch", f"{ulen} != {wire_len}", source="UDP")
        conn.last_time = dg.ts
        session.datagram(is_orig, ulen - 8)
        data = payload[8 : min(wire_len, len(payload))]
        self.tunnels.udp(conn, is_orig, data, len(_tunnel_stack(dg)), dg)
        conn.deliver_stream(is_orig, data)
        # Zeek counts the packet after the analyzers saw it, with the direction it arrived with
        # even if an analyzer flipped the roles meanwhile (ConnSize's counters flip, not is_orig).
        conn.count_packet(is_orig, dg.ip_len)

    # -- ICMP -------------------------------------------------------------------------------
    def _icmp(self, dg: IPDatagram) -> None:
        if self._truncated(dg, 8):
            return
        payload = dg.payload
        icmp_type, icmp_code = payload[0], payload[1]
        resp_port, one_way = counterpart(dg.proto, icmp_type, icmp_code)
        key = make_key(dg.src, icmp_type, dg.dst, resp_port, dg.proto, one_way)
        conn = self.connections.get(key)
        if conn is None:
            conn = self._new_connection(key, dg, icmp_type, resp_port, False)
        else:
            self._check_encapsulation(conn, dg)
        is_orig = dg.src == conn.orig_h and icmp_type == conn.orig_p
        if not datagram_checksum_ok(dg, self.ignore_checksums):
            conn.weird("bad_ICMP_checksum", source="ICMP")
            return
        conn.last_time = dg.ts
        wire_len = self._wire_payload_len(dg)
        conn.adapter.message(is_orig, wire_len - 8)
        if self.handled_events and dg.proto == 58:
            for weird in nd_weirds(icmp_type, payload[8:wire_len], self.handled_events):
                if weird.conn_scoped:
                    conn.weird(weird.name, weird.addl, source="ICMP")
                else:
                    self.weirds.net_weird(weird.name, dg.ts, source="ICMP", addl=weird.addl)
        if len(payload) >= wire_len:
            conn.count_packet(is_orig, dg.ip_len)

    # -- other IP protocols ---------------------------------------------------------------
    def _unknown_transport(self, dg: IPDatagram) -> None:
        """Zeek 7+'s UnknownIPTransport: one connection per address pair and protocol, ports 0."""
        key = make_key(dg.src, 0, dg.dst, 0, dg.proto)
        conn = self.connections.get(key)
        if conn is None:
            conn = self._new_connection(key, dg, 0, 0, False)
        else:
            self._check_encapsulation(conn, dg)
        is_orig = dg.src == conn.orig_h
        conn.last_time = dg.ts
        conn.count_packet(is_orig, dg.ip_len)

    # -- end of input -----------------------------------------------------------------------
    def finish(self) -> None:
        """End of trace, in Zeek's order: timers that fire at termination (SYN attempts, DNS
        expiry) first, then every remaining connection sorted by its key."""
        if self._finished:
            return
        self._finished = True
        self.finishing = True
        self.timers.expire_all(self.now)
        for conn in sorted(self.connections.values(), key=lambda c: key_order(c.key)):
            self.remove_connection(conn)
        self.connections.clear()
        finish_files = getattr(self.files, "finish", None)
        if callable(finish_files):
            finish_files()


def _tunnel_stack(dg: IPDatagram) -> tuple[TunnelRef, ...]:
    if not dg.encap:
        return ()
    return tuple(v for k, v in dg.encap if k == "tunnel")
