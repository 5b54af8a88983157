"""Connections as Zeek keeps them: one per canonical 5-tuple, with Zeek's originator/responder
decision, flips (history ``^``), history letters, packet/byte counters, timers driven by packet
time, and the application analyzers attached to it.

The transport specifics (TCP state machine, UDP/ICMP sizes) live in tcp.py, udp.py, icmp.py;
this module owns what every connection shares and the table that holds them.
"""

from __future__ import annotations

import heapq
import logging
import socket
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .analyzer_log import analyzer_failed
from .api import AnalyzerSpec, AppAnalyzer, ConnId, analyzers_for

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

TRANSPORT_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
HIST_ANALYZER_LIMIT_REACHED = 0x400
DPD_BUFFER_SIZE = 1024  # Zeek's dpd_buffer_size: bytes per connection kept for content sniffing
DPD_MAX_PACKETS = 100
DPD_IGNORE_VIOLATIONS_AFTER = 10 * 1024  # DPD::ignore_violations_after
# Zeek analyzers that drop stream data while the TCP connection is "partial" (no SYN seen).
SKIP_WHEN_PARTIAL = frozenset(
    {
        "http",
        "ssl",
        "ssh",
        "imap",
        "pop3",
        "mysql",
        "rdp",
        "rfb",
        "sip",
        "socks",
        "xmpp",
        "krb",
        "bittorrent",
        "smtp",
    }
)
DNS_SESSION_TIMEOUT = 10.0  # Zeek's dns_session_timeout: UDP DNS connections end this soon

# Zeek's likely_server_ports with its default scripts loaded: every port an analyzer registers
# as a server port (Analyzer::register_for_ports / PacketAnalyzer::register_for_ports); client
# ports (DHCP 68) and DNS-over-QUIC (784, 853) are registered as non-server ports.
LIKELY_SERVER_PORTS: dict[str, frozenset[int]] = {
    "tcp": frozenset(
        {
            21,
            22,
            25,
            53,
            79,
            80,
            81,
            88,
            135,
            139,
            143,
            389,
            443,
            445,
            465,
            502,
            514,
            563,
            585,
            587,
            614,
            631,
            636,
            989,
            990,
            992,
            993,
            995,
            1080,
            1434,
            1883,
            2811,
            3128,
            3268,
            3306,
            3389,
            5222,
            5223,
            5269,
            5432,
            6379,
            6666,
            6667,
            6668,
            6669,
            8000,
            8080,
            8888,
            20000,
        }
    ),
    "udp": frozenset(
        {
            53,
            67,
            88,
            123,
            137,
            161,
            162,
            389,
            443,
            514,
            1812,
            2123,
            2152,
            3389,
            3544,
            4011,
            4754,
            4789,
            5060,
            5072,
            5353,
            5355,
            6081,
            20000,
        }
    ),
    "icmp": frozenset(),
}


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"
_heappush = heapq.heappush


class Timer:
    __slots__ = ("when", "callback", "cancelled", "do_expire")

    def __init__(self, when: float, callback: Callable[[float], None], do_expire: bool) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.do_expire = do_expire  # also fires when the trace ends (Zeek's TimerMgr::Expire)


class TimerQueue:
    """Zeek's timer manager: callbacks fire when packet time passes their time."""

    def __init__(self) -> None:
        # (when, sequence, timer), a heap: heap[0][0] is the next due time (the engine peeks
        # at it per packet to skip advance() when nothing is due).
        self.heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def add(self, when: float, callback: Callable[[float], None], do_expire: bool = False) -> Timer:
        self._seq = seq = self._seq + 1
        timer = Timer(when, callback, do_expire)
        _heappush(self.heap, (when, seq, timer))
        return timer

    def advance(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if not timer.cancelled:
                timer.callback(now)

    def expire_all(self, now: float) -> None:
        """End of input: fire the timers marked do_expire, in time order, at ``now``."""
        heap = self.heap
        while heap:
            timer = heapq.heappop(heap)[2]
            if timer.do_expire and not timer.cancelled:
                timer.callback(now)

    def __len__(self) -> int:
        return len(self.heap)


@lru_cache(maxsize=1 << 16)
def addr_key(addr: str) -> bytes:
    """16-byte form of an address (IPv4 mapped into IPv6), the order Zeek's keys sort by."""
    if ":" in addr:
        return socket.inet_pton(socket.AF_INET6, addr)
    return _V4_MAPPED + socket.inet_aton(addr)


ConnKey = tuple  # (addr1, port1, addr2, port2, proto): canonical, the same both ways


def make_key(
    src: str, sport: int, dst: str, dport: int, proto: int, one_way: bool = False
) -> ConnKey:
    """The canonical 5-tuple (one-way ICMP messages keep their direction)."""
    a, b = addr_key(src), addr_key(dst)
    if one_way or a < b or (a == b and sport < dport):  # (a, sport) < (b, dport)
        return (a, sport, b, dport, proto)
    return (b, dport, a, sport, proto)


def key_order(key: ConnKey) -> tuple:
    """Zeek's session key byte order: addresses, then ports in network order, then protocol."""
    return (key[0], key[2], key[1].to_bytes(2, "big"), key[3].to_bytes(2, "big"), key[4])


class AnalyzerSlot:
    """The AnalyzerContext one attached analyzer sees (violations detach just this one)."""

    def __init__(self, conn: Connection, spec: AnalyzerSpec) -> None:
        self._conn = conn
        self.spec = spec
        self.analyzer: AppAnalyzer | None = None
        self.active = True

    @property
    def uid(self) -> str:
        return self._conn.uid

    @property
    def conn_id(self) -> ConnId:
        return self._conn.conn_id()

    def emit(self, log: str, record: dict[str, Any]) -> None:
        self._conn.engine.sink.log(log, record)

    def confirm(self, service: str) -> None:
        self._conn.confirm(service)

    def violation(self, reason: str, data: bytes | None = None) -> None:
        """Zeek's DPD (base/frameworks/analyzer/dpd.zeek): a violation within the connection's
        first DPD::ignore_violations_after bytes removes the analyzer and takes its confirmed
        service off the connection; later violations are ignored."""
        conn = self._conn
        log.debug("%s: %s violation: %s", conn.uid, self.spec.name, reason)
        orig_size, resp_size = conn.adapter.sizes()
        if orig_size + resp_size > DPD_IGNORE_VIOLATIONS_AFTER:
            return
        self.active = False
        analyzer_failed(conn, self.spec.name, reason, data)  # analyzer.log; service comes off

    def weird(
        self, name: str, addl: str = "", ts: float | None = None, source: str | None = None
    ) -> None:
        """``source`` defaults to this analyzer's name; a support analyzer (CONTENTLINE) names
        itself, and a script-level weird (Reporter::conn_weird) has none ("")."""
        src = self.spec.name.upper() if source is None else source
        self._conn.weird(name, addl, source=src, ts=ts)

    def limit_reached_weird(self, name: str, addl: str = "") -> None:
        """An analyzer hit one of its limits: a weird plus history ``X`` (Zeek's LimitReachedWeird)."""
        self._conn.weird(name, addl, source=self.spec.name.upper())
        self._conn.check_history(HIST_ANALYZER_LIMIT_REACHED, "X")

    def register_tunnel(self, cid: tuple[str, int, str, int], tunnel_type: str) -> None:
        """Script-level tunnels (SOCKS, HTTP CONNECT): a tunnel.log DISCOVER for ``cid``."""
        engine = self._conn.engine
        engine.tunnels.register_cid(tuple(cid), tunnel_type, engine.now)

    def flip_roles(self) -> None:
        """Analyzers that learn the real direction from content (DNS, NTP) may flip, as in Zeek."""
        self._conn.flip_roles()

    def expect_connection(
        self, orig_h: str | None, resp_h: str, resp_p: int, analyzer: str, timeout: float
    ) -> None:
        """Zeek's Analyzer::schedule_analyzer: a connection ``orig_h`` (None: any) ->
        ``resp_h:resp_p`` starting within ``timeout`` seconds gets ``analyzer`` (a registered
        name) instead of the port-based analyzers."""
        engine = self._conn.engine
        engine.scheduled.schedule(
            orig_h, resp_h, resp_p, self._conn.transport, analyzer, engine.now + timeout, engine.now
        )

    @property
    def shared_state(self) -> dict[str, Any]:
        """Per-engine state analyzers share across connections (Zeek's script-level globals)."""
        return self._conn.engine.analyzer_state

    @property
    def files(self) -> Any:
        return self._conn.engine.files

    @property
    def conn(self) -> Connection:
        return self._conn


class Connection:
    """One connection: identity, history, counters, timers, attached analyzers."""

    __slots__ = (
        "engine",
        "key",
        "uid",
        "resp_p",
        "ip_proto",
        "transport",
        "start_time",
        "last_time",
        "history",
        "hist_seen",
        "adapter",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
        "missed_bytes",
        "services",
        "tunnel_parents",
        "encap_stack",
        "tunnel_changes",
        "vlan",
        "l2",
        "inner_vlan",
        "did_weird",
        "started",
        "flipped_late",
        "in_table",
        "inactivity_timeout",
        "_inactivity_timer",
        "slots",
        "_sniff",
        "_sniff_chunks",
        "_sniff_bytes",
        "_sniff_prefix",
        "orig_h",
        "orig_p",
        "resp_h",
        "_conn_id",
    )

    def __init__(
        self,
        engine: Engine,
        key: ConnKey,
        uid: str,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        ip_proto: int,
        t: float,
    ) -> None:
        self.engine = engine
        self.key = key
        self.uid = uid
        self.orig_h, self.orig_p, self.resp_h, self.resp_p = src, sport, dst, dport
        self._conn_id: ConnId | None = None  # made on first use, again after a flip
        self.ip_proto = ip_proto
        self.transport = TRANSPORT_NAMES.get(ip_proto, "unknown_transport")
        self.start_time = t
        self.last_time = t
        self.history = ""
        self.hist_seen = 0
        self.adapter: Any = None
        self.orig_pkts = self.orig_ip_bytes = self.resp_pkts = self.resp_ip_bytes = 0
        self.missed_bytes = 0
        self.services: list[str] = []
        self.tunnel_parents: list[str] = []
        self.encap_stack: tuple = ()
        self.tunnel_changes = 0
        self.vlan: int | None = None
        self.l2: tuple[bytes, bytes] | None = None  # (orig MAC, resp MAC) of the first frame
        self.inner_vlan: int | None = None
        self.did_weird = False
        self.started = False  # set once new_connection has "happened" (Zeek's c$conn exists)
        self.flipped_late = False
        self.in_table = True
        self.inactivity_timeout = 0.0
        self._inactivity_timer: Timer | None = None
        self.slots: list[AnalyzerSlot] = []
        self._sniff: list[AnalyzerSpec] = []
        self._sniff_chunks: list[tuple[bool, bytes]] = []
        self._sniff_bytes = [0, 0]
        self._sniff_prefix = [b"", b""]  # each side's first DPD_BUFFER_SIZE bytes so far

    # -- identity ---------------------------------------------------------------------------
    def conn_id(self) -> ConnId:
        cid = self._conn_id
        if cid is None:  # ConnId is frozen: one per orientation serves every caller
            cid = self._conn_id = ConnId(
                self.orig_h, self.orig_p, self.resp_h, self.resp_p, self.transport
            )
        return cid

    def id_tuple(self) -> tuple[str, int, str, int]:
        return (self.orig_h, self.orig_p, self.resp_h, self.resp_p)

    def flip_roles(self) -> None:
        """Swap originator and responder (Zeek's Connection::FlipRoles), noting ``^``."""
        self.orig_h, self.resp_h = self.resp_h, self.orig_h
        self.orig_p, self.resp_p = self.resp_p, self.orig_p
        self._conn_id = None
        self.orig_pkts, self.resp_pkts = self.resp_pkts, self.orig_pkts
        self.orig_ip_bytes, self.resp_ip_bytes = self.resp_ip_bytes, self.orig_ip_bytes
        if self.l2 is not None:
            self.l2 = (self.l2[1], self.l2[0])
        if self.adapter is not None:
            self.adapter.flip()
        if self.started:
            self.flipped_late = True
        self.add_history("^")

    # -- history ----------------------------------------------------------------------------
    def add_history(self, code: str) -> None:
        self.history += code

    def check_history(self, mask: int, code: str) -> bool:
        """Add ``code`` the first time ``mask`` is seen; True if it had been seen before."""
        if not self.hist_seen & mask:
            self.hist_seen |= mask
            self.history += code
            return False
        return True

    # -- anomalies, services ----------------------------------------------------------------
    def weird(self, name: str, addl: str = "", source: str = "", ts: float | None = None) -> None:
        self.did_weird = True
        engine = self.engine
        engine.weirds.conn_weird(
            name, engine.now if ts is None else ts, self.uid, self.id_tuple(), addl, source
        )

    def confirm(self, service: str) -> None:
        if service not in self.services:
            self.services.append(service)
            for observer in self.engine.observers:  # analyzer_confirmation_info handlers
                observer.analyzer_confirmed(self, service)

    # -- timers -----------------------------------------------------------------------------
    def set_inactivity_timeout(self, timeout: float) -> None:
        if timeout == self.inactivity_timeout:
            return
        if self._inactivity_timer is not None:
            self._inactivity_timer.cancelled = True
            self._inactivity_timer = None
        if timeout:
            self._inactivity_timer = self.engine.timers.add(
                self.last_time + timeout, self._inactivity
            )
        self.inactivity_timeout = timeout

    def _inactivity(self, t: float) -> None:
        if not self.in_table:
            return
        if self.last_time + self.inactivity_timeout <= t:
            self.remove()
            return
        self._inactivity_timer = self.engine.timers.add(
            self.last_time + self.inactivity_timeout, self._inactivity
        )

    def remove(self) -> None:
        """End the connection now (timeouts, close delays): flush analyzers, write conn.log."""
        self.engine.remove_connection(self)

    def cancel_timers(self) -> None:
        if self._inactivity_timer is not None:
            self._inactivity_timer.cancelled = True
        self._inactivity_timer = None
        cancel = getattr(self.adapter, "_cancel_timers", None)
        if cancel is not None:
            cancel()

    # -- counters ---------------------------------------------------------------------------
    def count_packet(self, is_orig: bool, ip_len: int) -> None:
        if is_orig:
            self.orig_pkts += 1
            self.orig_ip_bytes += ip_len
        else:
            self.resp_pkts += 1
            self.resp_ip_bytes += ip_len

    # -- application analyzers ----------------------------------------------------------------
    def attach_analyzers(self) -> None:
        """Scheduled (expected-connection) or port-based analyzers at once; otherwise remember
        which ones may sniff the content."""
        engine = self.engine
        scheduled = engine.scheduled.lookup(
            self.orig_h, self.resp_h, self.resp_p, self.transport, engine.now
        )
        registry = engine.analyzers  # REGISTRY, or in bare mode the loaded scripts' ones
        if scheduled:  # expected connections get just the scheduled analyzers, as in Zeek
            specs = [registry[n] for n in scheduled if n in registry]
        else:
            specs = list(analyzers_for(self.transport, self.resp_p, registry))
        for spec in specs:
            if self.transport in spec.transports:
                self._attach(spec)
        # Zeek's PIA matches the DPD signatures next to the port-based analyzers (HTTP on
        # port 22 is found although SSH was attached by port and fails).
        attached = {slot.spec.name for slot in self.slots}
        self._sniff = [
            s
            for s in registry.values()
            if s.sniff is not None and self.transport in s.transports and s.name not in attached
        ]

    def _attach(self, spec: AnalyzerSpec) -> AnalyzerSlot | None:
        slot = AnalyzerSlot(self, spec)
        try:
            slot.analyzer = spec.factory(slot)
        except Exception:
            log.exception("analyzer %s failed to start on %s", spec.name, self.uid)
            return None
        self.slots.append(slot)
        if spec.name == "dns" and self.transport == "udp":
            self.engine.timers.add(self.engine.now + DNS_SESSION_TIMEOUT, self._dns_expire, True)
        return slot

    def _dns_expire(self, t: float) -> None:
        """Zeek's DNS_Analyzer::ExpireTimer: UDP DNS ends after dns_session_timeout idle."""
        if not self.in_table:
            return
        if t - self.last_time >= DNS_SESSION_TIMEOUT - 1.0 or self.engine.finishing:
            self.remove()
        else:
            self.engine.timers.add(t + DNS_SESSION_TIMEOUT, self._dns_expire, True)

    def _call(self, slot: AnalyzerSlot, method: str, *args: Any) -> None:
        try:
            getattr(slot.analyzer, method)(*args)
        except Exception as exc:  # a broken analyzer must not stop the engine
            log.warning(
                "%s analyzer failed on %s: %s", slot.spec.name, self.uid, exc, exc_info=True
            )
            slot.active = False

    def deliver_stream(self, is_orig: bool, data: bytes) -> None:
        """In-order payload (TCP after reassembly, or one UDP/ICMP datagram)."""
        ts = self.engine.now
        partial = self.transport == "tcp" and self.adapter.is_partial
        for slot in self.slots:
            if slot.active and not (partial and slot.spec.name in SKIP_WHEN_PARTIAL):
                try:  # _call(slot, "data", ...), inlined on the per-segment path
                    slot.analyzer.data(is_orig, data, ts)
                except Exception as exc:  # a broken analyzer must not stop the engine
                    log.warning(
                        "%s analyzer failed on %s: %s", slot.spec.name, self.uid, exc, exc_info=True
                    )
                    slot.active = False
        if self._sniff:
            self._sniff_more(is_orig, data)

    def deliver_gap(self, is_orig: bool, length: int) -> None:
        ts = self.engine.now
        for slot in self.slots:
            if slot.active:
                try:  # _call(slot, "gap", ...), inlined as in deliver_stream
                    slot.analyzer.gap(is_orig, length, ts)
                except Exception as exc:  # a broken analyzer must not stop the engine
                    log.warning(
                        "%s analyzer failed on %s: %s", slot.spec.name, self.uid, exc, exc_info=True
                    )
                    slot.active = False
        if self._sniff:
            self._sniff = []  # Zeek's DPD stops buffering once content is missing

    def _sniff_more(self, is_orig: bool, data: bytes) -> None:
        side = 0 if is_orig else 1
        sniff_bytes = self._sniff_bytes
        had = sniff_bytes[side]
        if had >= DPD_BUFFER_SIZE:
            return
        self._sniff_chunks.append((is_orig, data))
        sniff_bytes[side] = had + len(data)
        # The side's chunks joined and cut to DPD_BUFFER_SIZE, kept up to date chunk by chunk
        # (the side had fewer bytes than that before this one).
        prefix = self._sniff_prefix
        joined = prefix[side] + data  # bytes, whatever buffer type data is
        prefix[side] = joined if len(joined) <= DPD_BUFFER_SIZE else joined[:DPD_BUFFER_SIZE]
        orig, resp = prefix
        # (a hit replaces self._sniff instead of changing it, and returns: no copy needed)
        for spec in self._sniff:
            try:
                hit = spec.sniff(orig, resp)  # type: ignore[misc]
            except Exception:
                log.warning("%s sniffer failed on %s", spec.name, self.uid, exc_info=True)
                hit = False
            if hit:
                chunks = self._sniff_chunks
                self._sniff, self._sniff_chunks = [], []
                slot = self._attach(spec)
                if slot is not None:
                    ts = self.engine.now
                    for o, d in chunks:
                        if slot.active:
                            self._call(slot, "data", o, d, ts)
                return
        if min(self._sniff_bytes) >= DPD_BUFFER_SIZE or len(self._sniff_chunks) > DPD_MAX_PACKETS:
            self._sniff, self._sniff_chunks = [], []

    def end_analyzers(self, ts: float) -> None:
        for slot in self.slots:
            if slot.analyzer is not None:
                self._call(slot, "end", ts)
        self.slots = []
        self._sniff, self._sniff_chunks = [], []
