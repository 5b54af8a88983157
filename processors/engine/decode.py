"""Packet -> IPDatagram: link layer, IP header checks, fragment reassembly, as Zeek's IP analyzer.

The checks run in Zeek's order with Zeek's weird names (``truncated_IP``, ``truncated_IP_len``,
``invalid_IP_header_size``, ``internally_truncated_header``, ``bad_IP_checksum``, ...), so the
packets that reach connection tracking are the ones Zeek's session manager would see. The
common case (Ethernet, IPv4, no fragment) is a straight line of slicing and ``int.from_bytes``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from wirestream.processors.engine.api import IPDatagram, Packet
from wirestream.processors.engine.checksum import ones_sum_ok
from wirestream.processors.engine.ip import (
    ADDR_TEXT_CACHE,
    PROTO_ESP,
    PROTO_FRAGMENT,
    PROTO_MOBILITY,
    PROTO_NONE,
    FragmentReassembler,
    IPv6Chain,
    addr_text,
    walk_ipv6_chain,
)
from wirestream.processors.engine.linklayer import (
    DLT_EN10MB,
    DLT_RAW,
    LinkResult,
    gre_inner,
    mac_text,
    strip_ethertype,
    strip_link,
)

log = logging.getLogger(__name__)


class WeirdReporter(Protocol):
    """Where intake anomalies go: the connection core's ``weird.WeirdLog`` has this shape.

    The decoder calls both methods with keyword arguments only.
    """

    def net_weird(self, name: str, ts: float, source: str = "", addl: str = "") -> None:
        """An anomaly tied to no hosts (Zeek's ``net_weird``; ``source`` = analyzer name)."""

    def flow_weird(self, name: str, ts: float, src: str, dst: str, addl: str = "") -> None:
        """An anomaly between two hosts, before any connection (Zeek's ``flow_weird``)."""


class CollectingWeirds:
    """A WeirdReporter that keeps everything in a list (tests, the intake's own statistics)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float, str | None, str | None, str]] = []

    def net_weird(self, name: str, ts: float, source: str = "", addl: str = "") -> None:
        self.seen.append((name, ts, None, None, source))

    def flow_weird(self, name: str, ts: float, src: str, dst: str, addl: str = "") -> None:
        self.seen.append((name, ts, src, dst, ""))

    @property
    def names(self) -> list[str]:
        return [w[0] for w in self.seen]


@dataclass
class IntakeStats:
    """What the decoder did with the packets it was given."""

    packets: int = 0
    datagrams: int = 0  # IPDatagrams handed on (a reassembled datagram counts once)
    fragments: int = 0
    reassembled: int = 0
    non_ip: Counter[int] = field(default_factory=Counter)  # ethertype / family -> packets
    dropped: Counter[str] = field(default_factory=Counter)  # weird name -> packets dropped


class Decoder:
    """Turns captured packets into IP datagrams; keeps the fragment reassembly state."""

    def __init__(self, weirds: WeirdReporter | None = None, *, ignore_checksums: bool = False):
        self.weirds: WeirdReporter = weirds if weirds is not None else CollectingWeirds()
        self.ignore_checksums = ignore_checksums
        self.stats = IntakeStats()
        self._ts = 0.0
        self._last: Packet | None = None
        self._last_link: LinkResult | None = None
        self.fragments = FragmentReassembler(self._flow_weird)

    # -- weirds --------------------------------------------------------------------------------

    def _flow_weird(self, name: str, src: bytes, dst: bytes) -> None:
        self.weirds.flow_weird(name=name, ts=self._ts, src=addr_text(src), dst=addr_text(dst))

    def _drop(self, name: str, source: str) -> None:
        """Report a packet weird for a packet that goes no further."""
        self.stats.dropped[name] += 1
        self.weirds.net_weird(name=name, ts=self._ts, source=source)

    def _cut_fragment(self, offset: int) -> bool:
        """A fragment cut by the snaplen: Zeek reports it, drops it unless it is the first."""
        if offset:
            self._drop("incompletely_captured_fragment", "IP")
            return True
        self.weirds.net_weird(name="incompletely_captured_fragment", ts=self._ts, source="IP")
        return False

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, pkt: Packet) -> IPDatagram | None:
        """The IP datagram in ``pkt``, or None (not IP, dropped with a weird, or a fragment
        waiting for the rest of its datagram)."""
        stats = self.stats
        stats.packets += 1
        ts = self._ts = pkt.ts
        self._last = pkt
        data = pkt.data
        # Fast path: untagged Ethernet carrying IPv4.
        if pkt.linktype == DLT_EN10MB and len(data) > 16 and data[12] == 8 and data[13] == 0:
            self._last_link = None
            # An option-less header (0x45) of a whole, unfragmented datagram that passes every
            # check of _ip: the datagram built here, in _ip's and _datagram's steps. Anything
            # else (options, fragments, bad lengths or checksum) takes _ip, which reports it.
            if len(data) >= 34 and data[14] == 0x45 and not (data[20] & 0x3F or data[21]):
                total = (data[16] << 8) | data[17]
                if total >= 20 and pkt.wirelen >= total + 14:
                    # checksum.ones_sum_ok of the header, inlined (the sum mod 0xFFFF is 0)
                    hsum = int.from_bytes(data[14:34], "big")
                    if self.ignore_checksums or (hsum and not hsum % 0xFFFF):
                        avail = len(data) - 14
                        payload = data[34 : 14 + (total if total < avail else avail)]
                        stats.datagrams += 1
                        src_b, dst_b = data[26:30], data[30:34]
                        return IPDatagram(
                            ts,
                            ADDR_TEXT_CACHE.get(src_b) or addr_text(src_b),
                            ADDR_TEXT_CACHE.get(dst_b) or addr_text(dst_b),
                            data[23],
                            payload,
                            total,
                            4,
                            data[22],
                            len(payload) == total - 20,
                        )
            return self._ip(pkt, 14, None)
        link = self._last_link = strip_link(data, pkt.linktype)
        if not link.ip_version:
            return self._not_ip(link)
        return self._ip(pkt, link.offset, link)

    def last_l2_addresses(self) -> tuple[str | None, str | None]:
        """(source, destination) MAC of the packet :meth:`decode` saw last, as Zeek logs them
        (``orig_l2_addr``/``resp_l2_addr`` of policy/protocols/conn/mac-logging); None where the
        link layer has none. Computed on demand so the hot path does not pay for it."""
        if self._last is None:
            return None, None
        link = self._last_link
        if link is None:  # the untagged-Ethernet fast path
            data = self._last.data
            return mac_text(data[6:12]), mac_text(data[0:6])
        return mac_text(link.l2_src), mac_text(link.l2_dst)

    def decode_tunneled(self, outer: IPDatagram) -> IPDatagram | None:
        """The datagram inside an IP-in-IP (protocol 4/41) or GRE (47) datagram, decoded with
        the same checks, weirds and fragment state; None if there is none (weird reported).

        For the connection core's tunnel handling (Zeek's IPTunnel and GRE analyzers), which
        also owns tunnel.log and the encapsulation depth limit.
        """
        payload, ts = outer.payload, outer.ts
        # A snaplen-cut outer packet: the inner one is as long as the outer says, at most.
        wirelen = len(payload) if outer.captured_all else max(len(payload), outer.ip_len)
        if outer.proto in (4, 41):
            inner = Packet(ts, payload, DLT_RAW, wirelen)
            self.stats.packets += 1
            self._ts = ts
            return self._ip(inner, 0, None)
        if outer.proto != 47:
            raise ValueError(f"IP protocol {outer.proto} is not a tunnel")
        self._ts = ts
        found = gre_inner(payload)
        if isinstance(found, str):
            self._drop(found, "GRE")
            return None
        ethertype, offset = found
        self.stats.packets += 1
        link = strip_ethertype(payload, offset, ethertype)
        if not link.ip_version:
            return self._not_ip(link)
        return self._ip(Packet(ts, payload, DLT_RAW, wirelen), link.offset, link)

    def _not_ip(self, link: LinkResult) -> None:
        """Account for a frame whose link layer carries no IP: a weird if it is broken, else a
        count per ethertype (Zeek's non-IP packets are not errors)."""
        if link.weird:
            self._drop(link.weird, link.source)
        else:
            self.stats.non_ip[link.ethertype] += 1

    def _ip(self, pkt: Packet, off: int, link: LinkResult | None) -> IPDatagram | None:
        data = pkt.data
        avail = len(data) - off
        if avail < 20:
            self._drop("truncated_IP", "IP")
            return None
        version = data[off] >> 4
        if version == 4:
            total = (data[off + 2] << 8) | data[off + 3]
            hdr_len = (data[off] & 0x0F) * 4
        elif version == 6:
            if avail < 40:
                self._drop("truncated_IP", "IP")
                return None
            chain = walk_ipv6_chain(data, off, avail, self._flow_weird)
            total = ((data[off + 4] << 8) | data[off + 5]) + 40
            hdr_len = chain.length
        else:
            self._drop("unknown_ip_version", "IP")
            return None
        if total == 0:  # TCP segmentation offload zeroes it; Zeek copes only under -C
            if not self.ignore_checksums:
                self._drop("ip_hdr_len_zero", "IP")
                return None
            self.weirds.net_weird(name="ip_hdr_len_zero", ts=self._ts, source="IP")
            total = avail
        if pkt.wirelen < total + off:
            self._drop("truncated_IP_len", "IP")
            return None
        if hdr_len > total:
            self._drop("invalid_IP_header_size", "IP")
            return None
        if hdr_len > avail:
            self._drop("internally_truncated_header", "IP")
            return None
        if version == 4:
            if hdr_len < 20:
                self._drop("IPv4_min_header_size", "IP")
                return None
            if not self.ignore_checksums and not ones_sum_ok(data[off : off + hdr_len]):
                self._drop("bad_IP_checksum", "IP")
                return None
            src_b = data[off + 12 : off + 16]
            dst_b = data[off + 16 : off + 20]
            proto = data[off + 9]
            ttl = data[off + 8]
            frag_word = (data[off + 6] << 8) | data[off + 7]
            if frag_word & 0x3FFF:  # MF set or an offset: a fragment
                return self._fragment4(
                    pkt, off, avail, total, hdr_len, frag_word, src_b, dst_b, link
                )
        else:
            src_b, dst_b = chain.src, chain.dst
            proto = chain.next_proto
            ttl = data[off + 7]
            if chain.last_header == PROTO_FRAGMENT:
                return self._fragment6(pkt, off, avail, total, chain, link)
            if chain.last_header == PROTO_ESP or chain.last_header == PROTO_MOBILITY:  # noqa: PLR1714
                return None  # Zeek raises esp_packet / mobile_ipv6_message events only
            if proto == PROTO_NONE:
                self._drop("ipv6_no_next", "IP")
                return None
        end = off + (total if total < avail else avail)
        payload = data[off + hdr_len : end]
        return self._datagram(
            pkt.ts, src_b, dst_b, proto, payload, total, hdr_len, version, ttl, link
        )

    def _datagram(
        self,
        ts: float,
        src_b: bytes,
        dst_b: bytes,
        proto: int,
        payload: bytes,
        total: int,
        hdr_len: int,
        version: int,
        ttl: int,
        link: LinkResult | None,
    ) -> IPDatagram:
        self.stats.datagrams += 1
        dg = IPDatagram(
            ts,
            addr_text(src_b),
            addr_text(dst_b),
            proto,
            payload,
            total,
            version,
            ttl,
            len(payload) == total - hdr_len,
        )
        if link is not None and (link.vlan is not None or link.mpls or link.pppoe):
            dg.vlan, dg.inner_vlan = link.vlan, link.inner_vlan
            encap: list[tuple[str, object]] = []
            if link.vlan is not None:
                encap.append(("vlan", link.vlan))
            if link.inner_vlan is not None:
                encap.append(("vlan", link.inner_vlan))
            if link.mpls:
                encap.append(("mpls", None))
            if link.pppoe:
                encap.append(("pppoe", None))
            dg.encap = tuple(encap)
        return dg

    def _fragment4(
        self,
        pkt: Packet,
        off: int,
        avail: int,
        total: int,
        hdr_len: int,
        frag_word: int,
        src_b: bytes,
        dst_b: bytes,
        link: LinkResult | None,
    ) -> IPDatagram | None:
        data = pkt.data
        self.stats.fragments += 1
        offset = (frag_word & 0x1FFF) * 8
        if avail < total:
            if self._cut_fragment(offset):
                return None
            # Zeek analyzes a cut first fragment as if it were whole.
            payload = data[off + hdr_len : off + avail]
            return self._datagram(
                pkt.ts, src_b, dst_b, data[off + 9], payload, total, hdr_len, 4, data[off + 8], link
            )
        done = self.fragments.add(
            src=src_b,
            dst=dst_b,
            ident=(data[off + 4] << 8) | data[off + 5],
            version=4,
            header=data[off : off + hdr_len],
            next_proto=data[off + 9],
            offset=offset,
            more=bool(frag_word & 0x2000),
            df=bool(frag_word & 0x4000),
            data=data[off + hdr_len : off + total],
        )
        if done is None:
            return None
        self.stats.reassembled += 1
        whole = len(done.header) + len(done.payload)
        ttl = done.header[8]
        return self._datagram(
            pkt.ts,
            src_b,
            dst_b,
            done.next_proto,
            done.payload,
            whole,
            len(done.header),
            4,
            ttl,
            link,
        )

    def _fragment6(
        self,
        pkt: Packet,
        off: int,
        avail: int,
        total: int,
        chain: IPv6Chain,
        link: LinkResult | None,
    ) -> IPDatagram | None:
        data = pkt.data
        self.stats.fragments += 1
        if avail < total:
            if self._cut_fragment(chain.frag_offset):
                return None
            payload = data[off + chain.length : off + avail]
            return self._datagram(
                pkt.ts, chain.src, chain.dst, chain.next_proto, payload, total, chain.length, 6,
                data[off + 7], link,
            )  # fmt: skip
        frag_at = off + chain.frag_header_at
        done = self.fragments.add(
            src=chain.src,
            dst=chain.dst,
            ident=chain.frag_id,
            version=6,
            header=data[off:frag_at],
            next_proto=chain.next_proto,
            offset=chain.frag_offset,
            more=chain.frag_more,
            df=False,
            data=data[off + chain.length : off + total],
        )
        if done is None:
            return None
        self.stats.reassembled += 1
        rest = walk_ipv6_chain(
            done.payload,
            0,
            len(done.payload),
            self._flow_weird,
            first_next=done.next_proto,
            src=chain.src,
            dst=chain.dst,
        )
        hdr_len = len(done.header) + rest.length
        whole = len(done.header) + len(done.payload)
        if rest.next_proto == PROTO_NONE:
            self._drop("ipv6_no_next", "IP")
            return None
        return self._datagram(
            pkt.ts, rest.src, rest.dst, rest.next_proto, done.payload[rest.length :], whole,
            hdr_len, 6, done.header[7], link,
        )  # fmt: skip
