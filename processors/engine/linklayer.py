"""Link-layer decapsulation: from a captured frame to the start of its IP header.

Follows Zeek's packet analyzers (Ethernet, VLAN/QinQ, VNTAG, MPLS, PPPoE, Linux SLL/SLL2,
Null/Loop, raw IP, PPP serial, Cisco FabricPath, 802.11 + radiotap, NFLOG): which headers are
skipped, which VLAN ids are recorded, and the weird each one reports when the frame is too
short. Like Zeek's root analyzer, an unknown link type is read as raw IP. Frames that carry no IP (ARP, LLC,
...) are reported as such, not as errors: Zeek silently ignores them too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

DLT_NULL = 0
DLT_EN10MB = 1
DLT_PPP = 9
DLT_RAW_OPENBSD = 12  # DLT_RAW on some BSDs
DLT_RAW_BSDOS = 14
DLT_PPP_SERIAL = 50
DLT_RAW = 101
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LINUX_SLL2 = 276
DLT_IEEE802_11 = 105
DLT_IEEE802_11_RADIO = 127
DLT_NFLOG = 239

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN_TYPES = frozenset({0x8100, 0x88A8, 0x9100})
ETH_MPLS_TYPES = frozenset({0x8847, 0x8848})
ETH_PPPOE_SESSION = 0x8864
ETH_VNTAG = 0x8926
NFULA_PAYLOAD = 9
AF_INET, AF_INET6 = 2, 10
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
PPP_MPLS = 0x0281  # MPLS unicast over PPP (both PPP analyzers forward it)
NULL_IPV4 = 2
NULL_IPV6 = frozenset({24, 28, 30})  # AF_INET6 on NetBSD/OpenBSD, FreeBSD, Darwin

IPV4, IPV6 = 4, 6


@dataclass(slots=True)
class LinkResult:
    """Where the IP header starts, or why there is none.

    ``ip_version`` is 4 or 6 when an IP header follows at ``offset``; 0 when the frame is not IP
    (``weird`` names an anomaly to report, with ``source`` the analyzer that saw it).
    """

    ip_version: int
    offset: int
    vlan: int | None = None
    inner_vlan: int | None = None
    mpls: bool = False
    pppoe: bool = False
    l2_src: bytes | None = None
    l2_dst: bytes | None = None
    weird: str = ""
    source: str = ""
    ethertype: int = -1  # the protocol that was not IP, for the non-IP report


def mac_text(mac: bytes | None) -> str | None:
    """Zeek's text form of a MAC address (orig_l2_addr): lowercase, colon separated."""
    return None if mac is None else ":".join(f"{b:02x}" for b in mac)


def _not_ip(weird: str = "", source: str = "", ethertype: int = -1) -> LinkResult:
    return LinkResult(0, 0, weird=weird, source=source, ethertype=ethertype)


def _from_ip_version(data: bytes, offset: int, res: LinkResult) -> LinkResult:
    """Raw IP: the version nibble decides (Zeek's IP analyzer, unknown_ip_version otherwise)."""
    if offset >= len(data):
        return _not_ip("truncated_IP", "IP")
    version = data[offset] >> 4
    if version not in (IPV4, IPV6):
        return _not_ip("unknown_ip_version", "IP")
    res.ip_version = version
    res.offset = offset
    return res


def strip_link(data: bytes, linktype: int) -> LinkResult:
    """Decapsulate one frame of the given DLT down to its IP header."""
    if linktype == DLT_EN10MB:
        return _ethernet(data, 0, LinkResult(0, 0))
    if linktype in (DLT_RAW, DLT_RAW_OPENBSD, DLT_RAW_BSDOS, DLT_IPV4, DLT_IPV6):
        return _from_ip_version(data, 0, LinkResult(0, 0))
    if linktype == DLT_LINUX_SLL:
        if len(data) <= 16:
            return _not_ip("truncated_Linux_SLL_header", "LINUX_SLL")
        res = LinkResult(0, 0)
        if data[4:6] == b"\x00\x06":
            res.l2_src = data[6:12]
        return _by_ethertype(data, 16, (data[14] << 8) | data[15], res)
    if linktype == DLT_LINUX_SLL2:
        if len(data) <= 20:
            return _not_ip("truncated_Linux_SLL2_header", "LINUX_SLL2")
        res = LinkResult(0, 0)
        if data[11] == 6:
            res.l2_src = data[12:18]
        return _by_ethertype(data, 20, (data[0] << 8) | data[1], res)
    if linktype in (DLT_NULL, DLT_LOOP):
        if len(data) <= 4:
            return _not_ip("null_analyzer_failed", "NULL")
        # DLT_NULL is in the capturing host's byte order, DLT_LOOP in network order: accept both.
        family = int.from_bytes(data[0:4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[0:4], "big")
        if family == NULL_IPV4 or family in NULL_IPV6:
            return _from_ip_version(data, 4, LinkResult(0, 0))
        return _not_ip(ethertype=family)
    if linktype == DLT_PPP:
        # Zeek's PPP analyzer (tcpdump's LINKTYPE_PPP): HDLC-like framing when the frame starts
        # ff 03, otherwise the PPP protocol field comes first.
        if len(data) <= 2:
            return _not_ip("truncated_ppp_header", "PPP")
        if data[0] == 0xFF and data[1] == 0x03:
            if len(data) <= 4:
                return _not_ip("truncated_ppp_hdlc_header", "PPP")
            return _by_ppp(data, 4, (data[2] << 8) | data[3], LinkResult(0, 0))
        return _by_ppp(data, 2, (data[0] << 8) | data[1], LinkResult(0, 0))
    if linktype == DLT_PPP_SERIAL:
        if len(data) <= 4:
            return _not_ip("truncated_link_header", "PPP_SERIAL")
        proto = (data[2] << 8) | data[3]
        return _by_ppp(data, 4, proto, LinkResult(0, 0))
    if linktype == DLT_IEEE802_11:
        return _ieee802_11(data, 0)
    if linktype == DLT_IEEE802_11_RADIO:
        if len(data) < 4:
            return _not_ip("truncated_radiotap_header", "IEEE802_11_RADIO")
        rt_len = data[2] | (data[3] << 8)
        if rt_len >= len(data):
            return _not_ip("truncated_radiotap_header", "IEEE802_11_RADIO")
        return _ieee802_11(data, rt_len)
    if linktype == DLT_NFLOG:
        return _nflog(data)
    # Zeek's root analyzer: "if we don't know the link type, we assume raw IP".
    return _from_ip_version(data, 0, LinkResult(0, 0))


def _ieee802_11(data: bytes, offset: int) -> LinkResult:
    """802.11 data frames with LLC/SNAP (Zeek's IEEE802_11 analyzer; A-MSDU not supported)."""
    n = len(data) - offset
    hdr = 24
    if hdr >= n:
        return _not_ip("truncated_802_11_header", "IEEE802_11")
    fc, flags = data[offset], data[offset + 1]
    if not (fc >> 2) & 0x02 or (fc >> 4) & 0x04:
        return _not_ip(ethertype=-2)  # management/control frame, or a data subtype without data
    if flags & 0x03 == 0x03:
        hdr += 6
        if hdr >= n:
            return _not_ip("truncated_802_11_header", "IEEE802_11")
    if (fc >> 4) & 0x08:  # QoS
        if data[offset + hdr] & 0x80:
            log.debug("802.11 A-MSDU frame skipped (not supported)")
            return _not_ip(ethertype=-3)
        if flags & 0x40:
            return _not_ip(ethertype=-4)  # protected: encrypted payload
        hdr += 2
        if hdr >= n:
            return _not_ip("truncated_802_11_header", "IEEE802_11")
    res = LinkResult(0, 0)
    a1, a2, a3 = offset + 4, offset + 10, offset + 16
    src, dst = {0: (a2, a1), 1: (a2, a3), 2: (a3, a1), 3: (offset + 24, a3)}[flags & 0x03]
    res.l2_src, res.l2_dst = data[src : src + 6], data[dst : dst + 6]
    llc = offset + hdr
    if len(data) - llc < 8:
        return _not_ip("truncated_802_11_llc_header", "IEEE802_11")
    if data[llc : llc + 6] != b"\xaa\xaa\x03\x00\x00\x00":
        return _not_ip(ethertype=-5)  # LLC without an ethertype
    return _by_ethertype(data, llc + 8, (data[llc + 6] << 8) | data[llc + 7], res)


def _nflog(data: bytes) -> LinkResult:
    """Linux NFLOG: a 4-byte header, then TLVs (host byte order); the packet is NFULA_PAYLOAD."""
    if len(data) < 4:
        return _not_ip("truncated_nflog_header", "NFLOG")
    family = data[0]
    pos = 4
    while pos + 4 <= len(data):
        tlv_len = data[pos] | (data[pos + 1] << 8)
        tlv_type = data[pos + 2] | (data[pos + 3] << 8)
        if tlv_len < 4:
            return _not_ip("nflog_bad_tlv_length", "NFLOG")
        if tlv_type == NFULA_PAYLOAD:
            if family not in (AF_INET, AF_INET6):
                return _not_ip(ethertype=family)
            return _from_ip_version(data, pos + 4, LinkResult(0, 0))
        pos += tlv_len + ((-tlv_len) % 4)
    return _not_ip(ethertype=-6)  # no payload TLV


def _ethernet(data: bytes, offset: int, res: LinkResult) -> LinkResult:
    n = len(data) - offset
    if n <= 16:  # Zeek's own bound (not 14)
        return _not_ip("truncated_ethernet_frame", "ETHERNET")
    if data[offset + 12] == 0x89 and data[offset + 13] == 0x03:
        # Cisco FabricPath: a 16-byte outer header before the classic Ethernet frame.
        if n <= 30:
            return _not_ip("truncated_link_header_cfp", "ETHERNET")
        offset += 16
    res.l2_dst = data[offset : offset + 6]
    res.l2_src = data[offset + 6 : offset + 12]
    ethertype = (data[offset + 12] << 8) | data[offset + 13]
    if ethertype <= 1500:
        # 802.3 length field: LLC/SNAP/raw IPX. Zeek's default scripts decode none of them.
        return _not_ip(ethertype=ethertype)
    if ethertype < 1536:
        return _not_ip("undefined_ether_type", "ETHERNET")
    return _by_ethertype(data, offset + 14, ethertype, res)


def _by_ethertype(data: bytes, offset: int, ethertype: int, res: LinkResult) -> LinkResult:
    while True:
        if ethertype in (ETH_IPV4, ETH_IPV6):
            res.ip_version = IPV4 if ethertype == ETH_IPV4 else IPV6
            res.offset = offset
            return res
        if ethertype in ETH_VLAN_TYPES:
            if len(data) - offset <= 4:
                return _not_ip("truncated_VLAN_header", "VLAN")
            vid = ((data[offset] << 8) | data[offset + 1]) & 0x0FFF
            if res.vlan is None:
                res.vlan = vid
            elif res.inner_vlan is None:
                res.inner_vlan = vid
            ethertype = (data[offset + 2] << 8) | data[offset + 3]
            offset += 4
            continue
        if ethertype in ETH_MPLS_TYPES:
            return _mpls(data, offset, res)
        if ethertype == ETH_VNTAG:
            if len(data) - offset <= 6:
                return _not_ip("truncated_vntag_header", "VNTAG")
            ethertype = (data[offset + 4] << 8) | data[offset + 5]
            offset += 6
            continue
        if ethertype == ETH_PPPOE_SESSION:
            if len(data) - offset <= 8:
                return _not_ip("truncated_pppoe_header", "PPPOE")
            res.pppoe = True
            proto = (data[offset + 6] << 8) | data[offset + 7]
            return _by_ppp(data, offset + 8, proto, res)
        return _not_ip(ethertype=ethertype)


def _by_ppp(data: bytes, offset: int, proto: int, res: LinkResult) -> LinkResult:
    if proto == PPP_IPV4:
        res.ip_version, res.offset = IPV4, offset
        return res
    if proto == PPP_IPV6:
        res.ip_version, res.offset = IPV6, offset
        return res
    if proto == PPP_MPLS:
        return _mpls(data, offset, res)
    return _not_ip(ethertype=proto)


def _mpls(data: bytes, offset: int, res: LinkResult) -> LinkResult:
    """Skip the label stack; RFC 3032 does not say what follows, so Zeek guesses IP by nibble."""
    res.mpls = True
    while True:
        if len(data) - offset <= 4:  # Zeek's bounds: more than a label, more than an IPv4 header
            return _not_ip("truncated_link_header", "MPLS")
        bottom = data[offset + 2] & 0x01
        offset += 4
        if bottom:
            break
    if len(data) - offset <= 20:
        return _not_ip("no_ip_in_mpls_payload", "MPLS")
    version = data[offset] >> 4
    if version == IPV4:
        res.ip_version, res.offset = IPV4, offset
        return res
    if version == IPV6:
        res.ip_version, res.offset = IPV6, offset
        return res
    return _not_ip("no_ip_in_mpls_payload", "MPLS")


ETH_TRANSPARENT_BRIDGING = 0x6558
ETH_ERSPAN_2 = 0x88BE
ETH_ERSPAN_3 = 0x22EB
GRE_PPTP = 0x880B


def gre_inner(payload: bytes) -> tuple[int, int] | str:
    """The (ethertype, offset) of what a GRE header carries, or the weird Zeek reports.

    Follows Zeek's GRE analyzer: versions 0 and 1 (PPTP's enhanced GRE carrying PPP), optional
    checksum/key/sequence/ack words, ERSPAN type I (no sequence bit) as plain Ethernet.
    The caller decodes the inner part with :func:`strip_ethertype`; tunnel bookkeeping
    (tunnel.log) is the connection core's.
    """
    if len(payload) < 4:
        return "truncated_GRE"
    flags = (payload[0] << 8) | payload[1]
    proto = (payload[2] << 8) | payload[3]
    version = flags & 0x0007
    length = 4 + sum(4 for bit in (0x8000, 0x2000, 0x1000, 0x0080) if flags & bit)
    if version not in (0, 1):
        return "unknown_gre_version"
    pptp = 4 if version == 1 else 0
    if version == 1 and proto != GRE_PPTP:
        return "egre_protocol_type"
    if version == 0 and proto == ETH_ERSPAN_2 and not flags & 0x1000:
        proto = ETH_TRANSPARENT_BRIDGING  # ERSPAN type I: Ethernet right after GRE
    if flags & 0x4000:
        return "gre_routing"
    if flags & 0x0078:
        return "unknown_gre_flags"
    if len(payload) < length + pptp:
        return "truncated_GRE"
    if version == 1:
        ppp = (payload[length + 2] << 8) | payload[length + 3]
        if ppp not in (PPP_IPV4, PPP_IPV6):
            return "non_ip_packet_in_encap"
        proto = ETH_IPV4 if ppp == PPP_IPV4 else ETH_IPV6
    return proto, length + pptp


def strip_ethertype(data: bytes, offset: int, ethertype: int) -> LinkResult:
    """Decapsulate a tunnel's inner packet identified by an ethertype (GRE's protocol field)."""
    if ethertype == ETH_TRANSPARENT_BRIDGING:
        return _ethernet(data, offset, LinkResult(0, 0))
    if ethertype == ETH_ERSPAN_2:
        if len(data) - offset < 8:
            return _not_ip("truncated_ERSPAN", "ERSPAN")
        return _ethernet(data, offset + 8, LinkResult(0, 0))
    if ethertype == ETH_ERSPAN_3:
        if len(data) - offset < 12:
            return _not_ip("truncated_ERSPAN", "ERSPAN")
        extra = 8 if data[offset + 11] & 0x01 else 0  # optional platform-specific subheader
        return _ethernet(data, offset + 12 + extra, LinkResult(0, 0))
    return _by_ethertype(data, offset, ethertype, LinkResult(0, 0))
