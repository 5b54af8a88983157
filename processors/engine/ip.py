"""IPv6 extension-header chains and IPv4/IPv6 fragment reassembly, the way Zeek does them.

The IPv6 chain walk follows Zeek's ``IPv6_Hdr_Chain``: it stops after a fragment, ESP or
mobility header, takes the final destination from a routing header and the source from a
Mobile IPv6 home-address option, and reports the same weirds. Reassembly follows Zeek's
``FragReassembler``: keyed by (src, dst, id), first-arrived bytes win an overlap
(``fragment_overlap`` / ``fragment_inconsistency``), size checks as Zeek's, no timeout
(Zeek's ``frag_timeout`` defaults to 0 = keep until the datagram completes).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT = 0, 43, 44
PROTO_ESP, PROTO_AH, PROTO_NONE, PROTO_DSTOPTS, PROTO_MOBILITY = 50, 51, 59, 60, 135
IPV6_EXT_HEADERS = frozenset(
    {
        PROTO_HOPOPTS,
        PROTO_ROUTING,
        PROTO_DSTOPTS,
        PROTO_FRAGMENT,
        PROTO_AH,
        PROTO_ESP,
        PROTO_MOBILITY,
    }
)
MIN_ACCEPTABLE_FRAG_SIZE = 64
MAX_ACCEPTABLE_FRAG_SIZE = 64000

# (name, src packed, dst packed): a weird about a pair of hosts, not yet a connection.
FlowWeird = Callable[[str, bytes, bytes], None]

_addr_cache: dict[bytes, str] = {}
ADDR_TEXT_CACHE = _addr_cache  # read-only view for hot paths: .get(packed) or addr_text(packed)


def addr_text(packed: bytes) -> str:
    """Zeek's text form of a packed IPv4/IPv6 address (inet_ntop, as Zeek uses), cached."""
    text = _addr_cache.get(packed)
    if text is None:
        if len(_addr_cache) > 100_000:
            _addr_cache.clear()
        if len(packed) == 4:
            text = socket.inet_ntoa(packed)
        else:
            text = socket.inet_ntop(socket.AF_INET6, packed)
            if text.startswith("::ffff:") and "." in text:
                text = text[7:]  # Zeek keeps IPv4-mapped addresses as plain IPv4
        _addr_cache[packed] = text
    return text


@dataclass(slots=True)
class IPv6Chain:
    """The result of walking an IPv6 header chain."""

    length: int  # bytes of the chain (fixed header + extension headers walked)
    next_proto: int  # the protocol after the last header walked
    last_header: int  # type of the last header walked (44 fragment, 50 ESP, 135 mobility, ...)
    src: bytes  # home address if a Mobile IPv6 option gave one, else the header's source
    dst: bytes  # final destination if a routing header gave one, else the header's destination
    frag_offset: int = 0
    frag_more: bool = False
    frag_id: int = 0
    frag_header_at: int = -1  # offset of the fragment header within the chain, -1 if none


def _ext_length(kind: int, data: bytes, pos: int) -> int:
    if kind == PROTO_FRAGMENT:
        return 8
    if kind == PROTO_AH:
        return 4 * (data[pos + 1] + 2)
    if kind == PROTO_ESP:
        return 8  # SPI + sequence; the rest is encrypted
    return 8 + 8 * data[pos + 1]


def walk_ipv6_chain(
    data: bytes,
    start: int,
    avail: int,
    weird: FlowWeird,
    *,
    first_next: int | None = None,
    src: bytes | None = None,
    dst: bytes | None = None,
) -> IPv6Chain:
    """Walk the chain of the IPv6 header at ``start`` with ``avail`` captured bytes.

    With ``first_next`` the walk continues a reassembled datagram: ``start`` is the first
    byte after the removed fragment header and ``first_next`` the type found there.
    """
    if first_next is None:
        src = data[start + 8 : start + 24]
        dst = data[start + 24 : start + 40]
        chain = IPv6Chain(40, data[start + 6], 41, src, dst)
        pos, left = start + 40, avail - 40
    else:
        assert src is not None and dst is not None
        chain = IPv6Chain(0, first_next, 41, src, dst)
        pos, left = start, avail
    current = chain.last_header
    home: bytes | None = None
    routed = False
    while (
        current not in (PROTO_FRAGMENT, PROTO_ESP, PROTO_MOBILITY)
        and chain.next_proto in IPV6_EXT_HEADERS
    ):
        if left < 2:
            return chain
        kind = chain.next_proto
        length = _ext_length(kind, data, pos)
        if length > left:
            return chain  # truncated header: Zeek stops the chain before it
        next_type = data[pos]
        if kind == PROTO_ROUTING:
            routed = _routing(data, pos, length, chain, routed, weird)
        elif kind == PROTO_DSTOPTS:
            home = _dst_opts(data, pos, length, chain, home, weird)
        elif kind == PROTO_FRAGMENT:
            word = (data[pos + 2] << 8) | data[pos + 3]
            chain.frag_offset = word & 0xFFF8
            chain.frag_more = bool(word & 1)
            chain.frag_id = int.from_bytes(data[pos + 4 : pos + 8], "big")
            chain.frag_header_at = pos - start
        chain.length += length
        chain.next_proto = next_type
        chain.last_header = current = kind
        pos += length
        left -= length
    return chain


def _routing(
    data: bytes, pos: int, length: int, chain: IPv6Chain, routed: bool, weird: FlowWeird
) -> bool:
    if routed:
        weird("multiple_routing_headers", chain.src, chain.dst)
        return True
    last = data[pos + length - 16 : pos + length]
    rtype, hdr_len, segleft = data[pos + 2], data[pos + 1], data[pos + 3]
    if rtype == 0:
        if segleft > 0 and hdr_len >= 2:
            if hdr_len % 2 == 0:
                chain.dst = last
                routed = True
            else:
                weird("odd_routing0_len", chain.src, chain.dst)
        weird("routing0_hdr", chain.src, chain.dst)
    elif rtype == 2:
        if segleft > 0:
            if hdr_len == 2:
                chain.dst = last
                routed = True
            else:
                weird("bad_routing2_len", chain.src, chain.dst)
    else:
        weird("unknown_routing_type", chain.src, chain.dst)
    return routed


def _dst_opts(
    data: bytes, pos: int, length: int, chain: IPv6Chain, home: bytes | None, weird: FlowWeird
) -> bytes | None:
    """Mobile IPv6 home-address option (RFC 6275 6.3): it replaces the source address."""
    p, left = pos + 2, length - 2
    while left > 0:
        kind = data[p]
        if kind == 0:  # Pad1
            p += 1
            left -= 1
            continue
        opt_len = data[p + 1] if left >= 2 else 0
        if kind == 201:
            if opt_len == 16:
                if home is not None:
                    weird("multiple_home_addr_opts", chain.src, chain.dst)
                else:
                    home = data[p + 2 : p + 18]
                    chain.src = home
            else:
                # Zeek's baseline (core.mobile-ipv6-dst-opts) shows no further option weirds
                # for the header after this one: the walk ends here.
                weird("bad_home_addr_len", chain.src, chain.dst)
                break
        if left < 2 or opt_len + 2 > left:
            weird("bad_ipv6_dest_opt_len", chain.src, chain.dst)
            break
        p += opt_len + 2
        left -= opt_len + 2
    return home


@dataclass(slots=True)
class _Pending:
    header: bytes  # the unfragmentable header of the first fragment that arrived
    version: int
    next_proto: int
    first_proto: int  # IPv4 protocol / IPv6 next header used for consistency checks
    header_len: int
    frag_size: int = 0
    blocks: list[tuple[int, int, bytes]] = field(default_factory=list)  # (seq, upper, data)


@dataclass(slots=True)
class Reassembled:
    """A datagram rebuilt from fragments: the unfragmentable header, then the whole payload."""

    header: bytes
    payload: bytes
    next_proto: int


class FragmentReassembler:
    """Pending fragmented datagrams, keyed like Zeek's (src, dst, id)."""

    def __init__(self, weird: FlowWeird, max_pending: int = 100_000) -> None:
        self.weird = weird
        self.max_pending = max_pending
        self.pending: dict[tuple[bytes, bytes, int], _Pending] = {}
        self.evicted = 0

    def add(
        self,
        *,
        src: bytes,
        dst: bytes,
        ident: int,
        version: int,
        header: bytes,
        next_proto: int,
        offset: int,
        more: bool,
        df: bool,
        data: bytes,
    ) -> Reassembled | None:
        """Add one fragment (``header`` = its IP header(s) up to the fragment data, for IPv6
        without the fragment header); returns the whole datagram once complete."""
        key = (src, dst, ident)
        frag = self.pending.get(key)
        weird = self.weird
        if frag is None:
            if len(self.pending) >= self.max_pending:
                # A memory bound Zeek does not have: drop the oldest unfinished datagram.
                self.pending.pop(next(iter(self.pending)))
                self.evicted += 1
                if self.evicted == 1:
                    log.warning(
                        "more than %d unfinished fragmented datagrams; evicting the oldest",
                        self.max_pending,
                    )
            frag = _Pending(header, version, next_proto, next_proto, len(header))
            self.pending[key] = frag
        elif version == 4:
            if next_proto != frag.first_proto or len(header) != frag.header_len:
                weird("fragment_protocol_inconsistency", src, dst)
        elif next_proto != frag.next_proto or len(header) != frag.header_len:
            weird("fragment_protocol_inconsistency", src, dst)
        if df:
            weird("fragment_with_DF", src, dst)
        length = len(data)
        upper = offset + length
        if offset == 0:
            frag.next_proto = next_proto
        if not more:
            if frag.frag_size == 0:
                frag.frag_size = upper
            elif upper != frag.frag_size:
                weird("fragment_size_inconsistency", src, dst)
                frag.frag_size = max(frag.frag_size, upper)
        elif length + len(header) + (8 if version == 6 else 0) < MIN_ACCEPTABLE_FRAG_SIZE:
            weird("excessively_small_fragment", src, dst)
        if upper > MAX_ACCEPTABLE_FRAG_SIZE:
            weird("excessively_large_fragment", src, dst)
        if frag.frag_size and upper > frag.frag_size:
            weird("fragment_size_inconsistency", src, dst)
            frag.frag_size = upper
        self._insert(frag, offset, data, src, dst)
        done = self._complete(frag, src, dst)
        if done is not None:
            del self.pending[key]
        return done

    def _insert(self, frag: _Pending, seq: int, data: bytes, src: bytes, dst: bytes) -> None:
        """Store the parts of ``data`` not yet covered; older bytes win overlaps (Zeek's rule)."""
        upper = seq + len(data)
        pieces = [(seq, upper)]
        for bseq, bupper, bdata in frag.blocks:
            lo, hi = max(seq, bseq), min(upper, bupper)
            if lo < hi:
                same = data[lo - seq : hi - seq] == bdata[lo - bseq : hi - bseq]
                self.weird("fragment_overlap" if same else "fragment_inconsistency", src, dst)
                cut = []
                for pseq, pupper in pieces:
                    if pupper <= bseq or pseq >= bupper:
                        cut.append((pseq, pupper))
                        continue
                    if pseq < bseq:
                        cut.append((pseq, bseq))
                    if pupper > bupper:
                        cut.append((bupper, pupper))
                pieces = cut
        for pseq, pupper in pieces:
            if pupper > pseq:
                frag.blocks.append((pseq, pupper, data[pseq - seq : pupper - seq]))
        frag.blocks.sort(key=lambda b: b[0])

    def _complete(self, frag: _Pending, src: bytes, dst: bytes) -> Reassembled | None:
        blocks = frag.blocks
        if not blocks or blocks[0][0] > 0 or not frag.frag_size:
            return None
        reach = 0
        index = 0
        while index < len(blocks) and blocks[index][0] == reach:
            reach = blocks[index][1]
            index += 1
        if index < len(blocks):  # a hole
            if reach >= frag.frag_size:
                self.weird("fragment_size_inconsistency", src, dst)
                frag.frag_size = reach
            else:
                return None
        elif reach > frag.frag_size:
            self.weird("fragment_size_inconsistency", src, dst)
            frag.frag_size = reach
        elif reach < frag.frag_size:
            return None
        payload = b"".join(b[2] for b in blocks[:index])[: frag.frag_size]
        return Reassembled(frag.header, payload, frag.next_proto)

    def __len__(self) -> int:
        return len(self.pending)
