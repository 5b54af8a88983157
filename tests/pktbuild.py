"""Build test frames and capture files byte by byte (shared by the engine's tests).

Everything here is written with ``struct`` from the wire formats, independently of the engine's
decoders, so a test that builds with this and decodes with the engine checks one against the
other. Checksums are correct unless a test asks for a wrong one (``checksum=``).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8
ETH_MPLS, ETH_PPPOE_SESSION = 0x8847, 0x8864
DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL, DLT_LINUX_SLL2 = 0, 1, 101, 113, 276
DLT_IEEE802_11, DLT_IEEE802_11_RADIO, DLT_NFLOG = 105, 127, 239
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_IPV6_FRAG, PROTO_ICMPV6 = 1, 6, 17, 44, 58

MAC_A = b"\x00\x11\x22\x33\x44\x55"
MAC_B = b"\x66\x77\x88\x99\xaa\xbb"

TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}


def inet_checksum(data: bytes) -> int:
    """RFC 1071 ones'-complement sum, complemented."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = _addr(src), _addr(dst)
    if len(s) == 4:
        return s + d + struct.pack("!BBH", 0, proto, length)
    return s + d + struct.pack("!IxxxB", length, proto)


# --- link layer -------------------------------------------------------------------------------


def ether(
    payload: bytes,
    ethertype: int = ETH_IPV4,
    *,
    src: bytes = MAC_A,
    dst: bytes = MAC_B,
    vlans: Sequence[int] = (),
    outer_tpid: int = ETH_VLAN,
    pad_to: int = 0,
) -> bytes:
    """An Ethernet II frame; ``vlans`` outermost first (the first uses ``outer_tpid``)."""
    header = dst + src
    for i, vid in enumerate(vlans):
        header += struct.pack("!HH", outer_tpid if i == 0 else ETH_VLAN, vid & 0x0FFF)
    frame = header + struct.pack("!H", ethertype) + payload
    if len(frame) < pad_to:
        frame += b"\0" * (pad_to - len(frame))
    return frame


def mpls(payload: bytes, labels: Sequence[int], ttl: int = 64) -> bytes:
    """An MPLS label stack (bottom-of-stack set on the last label) before ``payload``."""
    out = b""
    for i, label in enumerate(labels):
        bos = 1 if i == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bos << 8) | ttl)
    return out + payload


def pppoe_session(payload: bytes, ppp_proto: int = 0x0021, session: int = 1) -> bytes:
    """A PPPoE session header + PPP protocol field (0x0021 IPv4, 0x0057 IPv6)."""
    return struct.pack("!BBHHH", 0x11, 0, session, len(payload) + 2, ppp_proto) + payload


def null_loopback(payload: bytes, family: int = 2, big_endian: bool = False) -> bytes:
    """BSD loopback (DLT_NULL): a 4-byte address family in the capturing host's byte order."""
    return struct.pack(">I" if big_endian else "<I", family) + payload


def linux_sll(payload: bytes, protocol: int = ETH_IPV4) -> bytes:
    """Linux cooked capture v1 (DLT_LINUX_SLL), 16-byte header."""
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\0\0", protocol) + payload


def linux_sll2(payload: bytes, protocol: int = ETH_IPV4) -> bytes:
    """Linux cooked capture v2 (DLT_LINUX_SLL2), 20-byte header."""
    return struct.pack("!HHIHBB8s", protocol, 0, 1, 1, 0, 6, MAC_A + b"\0\0") + payload


def vntag(payload: bytes, ethertype: int = ETH_IPV4) -> bytes:
    """A Cisco VN-Tag (ethertype 0x8926): 4 bytes of tag, then the inner ethertype."""
    return b"\x00\x01\x00\x02" + struct.pack("!H", ethertype) + payload


def ieee80211_data(payload: bytes, ethertype: int = ETH_IPV4, *, qos: bool = False) -> bytes:
    """An 802.11 data frame (to-DS) with an LLC/SNAP header before ``payload``."""
    fc = 0x88 if qos else 0x08
    header = struct.pack("<BBH", fc, 0x01, 0) + MAC_B + MAC_A + b"\x02" * 6 + b"\0\0"
    if qos:
        header += b"\0\0"
    return header + b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", ethertype) + payload


def radiotap(frame: bytes) -> bytes:
    """A minimal radiotap header (no fields present) before an 802.11 frame."""
    return struct.pack("<BBHI", 0, 0, 8, 0) + frame


def nflog(payload: bytes, family: int = 2) -> bytes:
    """Linux NFLOG: header, a prefix TLV, then the NFULA_PAYLOAD TLV (little-endian TLVs)."""
    prefix = b"test\0"
    tlv1 = struct.pack("<HH", 4 + len(prefix), 10) + prefix + b"\0" * ((-len(prefix)) % 4)
    tlv2 = struct.pack("<HH", 4 + len(payload), 9) + payload
    return struct.pack("!BBH", family, 0, 0) + tlv1 + tlv2


# --- IP ---------------------------------------------------------------------------------------


def ipv4(
    payload: bytes,
    *,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    proto: int = PROTO_UDP,
    ttl: int = 64,
    ident: int = 1,
    df: bool = False,
    mf: bool = False,
    frag_offset: int = 0,
    options: bytes = b"",
    total_length: int | None = None,
    checksum: int | None = None,
) -> bytes:
    """An IPv4 header + payload; ``frag_offset`` in bytes (must be a multiple of 8)."""
    assert len(options) % 4 == 0 and frag_offset % 8 == 0
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_length is None else total_length
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, flags, ttl, proto, 0, _addr(src), _addr(dst)
    )
    header += options
    csum = inet_checksum(header) if checksum is None else checksum
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ipv6(
    payload: bytes,
    *,
    src: str = "2001:db8::1",
    dst: str = "2001:db8::2",
    next_header: int = PROTO_UDP,
    hop_limit: int = 64,
    payload_length: int | None = None,
) -> bytes:
    """An IPv6 header + payload (extension headers go at the start of ``payload``)."""
    length = len(payload) if payload_length is None else payload_length
    return (
        struct.pack("!IHBB16s16s", 6 << 28, length, next_header, hop_limit, _addr(src), _addr(dst))
        + payload
    )


def ipv6_ext(next_header: int, body: bytes) -> bytes:
    """A generic IPv6 extension header (hop-by-hop, routing, destination options); pads to 8."""
    total = 2 + len(body)
    pad = (-total) % 8
    body += b"\x01" + bytes([pad - 2]) + b"\0" * (pad - 2) if pad >= 2 else b"\0" * pad
    return struct.pack("!BB", next_header, (2 + len(body)) // 8 - 1) + body


def ipv6_frag(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    """An IPv6 fragment extension header; ``offset`` in bytes (multiple of 8)."""
    return struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)


def fragment_ipv4(payload: bytes, sizes: Iterable[int], **ip_args: object) -> list[bytes]:
    """Split a transport ``payload`` into IPv4 fragments of the given sizes (multiples of 8 but the last)."""
    out, offset = [], 0
    sizes = list(sizes)
    for i, size in enumerate(sizes):
        chunk = payload[offset : offset + size]
        more = i + 1 < len(sizes)
        out.append(ipv4(chunk, mf=more, frag_offset=offset, **ip_args))  # type: ignore[arg-type]
        offset += size
    return out


def fragment_ipv6(
    payload: bytes, sizes: Iterable[int], *, next_header: int, ident: int = 7, **ip_args: object
) -> list[bytes]:
    """Split a transport ``payload`` into IPv6 fragments of the given sizes."""
    out, offset = [], 0
    sizes = list(sizes)
    for i, size in enumerate(sizes):
        chunk = payload[offset : offset + size]
        more = i + 1 < len(sizes)
        frag = ipv6_frag(next_header, offset, more, ident)
        out.append(ipv6(frag + chunk, next_header=PROTO_IPV6_FRAG, **ip_args))  # type: ignore[arg-type]
        offset += size
    return out


# --- transport --------------------------------------------------------------------------------


def tcp(
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    flags: str = "S",
    seq: int = 1000,
    ack: int = 0,
    window: int = 65535,
    options: bytes = b"",
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    checksum: int | None = None,
) -> bytes:
    """A TCP segment; ``src``/``dst`` must match the IP header for the checksum to be right."""
    assert len(options) % 4 == 0
    bits = sum(TCP_FLAGS[c] for c in flags)
    offset = (5 + len(options) // 4) << 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset, bits, window, 0, 0) + options
    segment = header + payload
    csum = (
        inet_checksum(_pseudo_header(src, dst, PROTO_TCP, len(segment)) + segment)
        if checksum is None
        else checksum
    )
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def udp(
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    checksum: int | None = None,
) -> bytes:
    """A UDP datagram; ``src``/``dst`` must match the IP header for the checksum to be right."""
    length = 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    if checksum is None:
        csum = inet_checksum(_pseudo_header(src, dst, PROTO_UDP, length) + datagram) or 0xFFFF
    else:
        csum = checksum
    return datagram[:6] + struct.pack("!H", csum) + datagram[8:]


def icmp(icmp_type: int, code: int, body: bytes = b"", *, checksum: int | None = None) -> bytes:
    """An ICMPv4 message (``body`` is what follows the 4-byte type/code/checksum)."""
    message = struct.pack("!BBH", icmp_type, code, 0) + body
    csum = inet_checksum(message) if checksum is None else checksum
    return message[:2] + struct.pack("!H", csum) + message[4:]


def icmp6(
    icmp_type: int,
    code: int,
    body: bytes = b"",
    *,
    src: str = "2001:db8::1",
    dst: str = "2001:db8::2",
) -> bytes:
    """An ICMPv6 message with the pseudo-header checksum."""
    message = struct.pack("!BBH", icmp_type, code, 0) + body
    csum = inet_checksum(_pseudo_header(src, dst, PROTO_ICMPV6, len(message)) + message)
    return message[:2] + struct.pack("!H", csum) + message[4:]


# --- convenience: whole frames ----------------------------------------------------------------


def udp4_frame(
    sport: int = 1234,
    dport: int = 53,
    payload: bytes = b"hello",
    *,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    **ether_args: object,
) -> bytes:
    """Ethernet + IPv4 + UDP with correct checksums."""
    segment = udp(sport, dport, payload, src=src, dst=dst)
    return ether(ipv4(segment, src=src, dst=dst, proto=PROTO_UDP), **ether_args)  # type: ignore[arg-type]


def tcp4_frame(
    sport: int = 40000,
    dport: int = 80,
    payload: bytes = b"",
    *,
    flags: str = "S",
    seq: int = 1000,
    ack: int = 0,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    **ether_args: object,
) -> bytes:
    """Ethernet + IPv4 + TCP with correct checksums."""
    segment = tcp(sport, dport, payload, flags=flags, seq=seq, ack=ack, src=src, dst=dst)
    return ether(ipv4(segment, src=src, dst=dst, proto=PROTO_TCP), **ether_args)  # type: ignore[arg-type]


# --- capture files ----------------------------------------------------------------------------


def pcap_bytes(
    packets: Iterable[tuple[float, bytes]],
    *,
    linktype: int = DLT_EN10MB,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
    wirelen: dict[int, int] | None = None,
) -> bytes:
    """A classic pcap file; frames longer than ``snaplen`` are cut (wire length kept)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    scale = 1_000_000_000 if nanosecond else 1_000_000
    for i, (ts, frame) in enumerate(packets):
        sec = int(ts)
        frac = round((ts - sec) * scale)
        captured = frame[:snaplen]
        orig = (wirelen or {}).get(i, len(frame))
        out.append(struct.pack(order + "IIII", sec, frac, len(captured), orig) + captured)
    return b"".join(out)


def write_pcap(path: Path, packets: Iterable[tuple[float, bytes]], **kwargs: object) -> Path:
    path.write_bytes(pcap_bytes(packets, **kwargs))  # type: ignore[arg-type]
    return path


def _pcapng_block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _pcapng_option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def pcapng_bytes(
    interfaces: Sequence[tuple[int, int | None]],
    packets: Iterable[tuple[int, float, bytes]],
    *,
    big_endian: bool = False,
    simple: bool = False,
    snaplen: int = 0,
) -> bytes:
    """A pcapng file: one SHB, IDBs for ``(linktype, if_tsresol byte or None)``, then EPBs
    ``(interface, ts, frame)`` (or SPBs for interface 0 when ``simple``)."""
    o = ">" if big_endian else "<"
    shb = _pcapng_block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    blocks = [shb]
    resolutions = []
    for linktype, tsresol in interfaces:
        options = b""
        if tsresol is not None:
            options += _pcapng_option(o, 9, bytes([tsresol]))
            options += _pcapng_option(o, 0, b"")
        blocks.append(_pcapng_block(o, 1, struct.pack(o + "HHI", linktype, 0, snaplen) + options))
        if tsresol is None:
            resolutions.append(1_000_000)
        elif tsresol & 0x80:
            resolutions.append(2 ** (tsresol & 0x7F))
        else:
            resolutions.append(10**tsresol)
    for iface, ts, frame in packets:
        if simple:
            blocks.append(_pcapng_block(o, 3, struct.pack(o + "I", len(frame)) + frame))
            continue
        units = round(ts * resolutions[iface])
        body = struct.pack(
            o + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)
        )
        blocks.append(_pcapng_block(o, 6, body + frame))
    return b"".join(blocks)


def write_pcapng(
    path: Path,
    interfaces: Sequence[tuple[int, int | None]],
    packets: Iterable[tuple[int, float, bytes]],
    **kwargs: object,
) -> Path:
    path.write_bytes(pcapng_bytes(interfaces, packets, **kwargs))  # type: ignore[arg-type]
    return path
