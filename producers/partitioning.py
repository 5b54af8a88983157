"""Which pcap-topic partition a packet goes to: a symmetric hash of its IP address pair.

Processors in one consumer group analyse one capture in parallel, one partition each, so all
packets of a connection must meet in one partition: both directions (the hash is symmetric) and
every IP fragment (only addresses are hashed, never ports, which later fragments lack). Packets
without an IP header (ARP, STP ...) all go to one fixed partition. Link layers are stripped by
the engine's own decapsulation, so producer and engine agree on what a frame's IP header is.

DHCP is the exception to "a connection is enough": Zeek joins a DHCP transaction's messages
across connections (the client's broadcast DISCOVER/REQUEST and the server's OFFER/ACK have
different address pairs) into one dhcp.log row, and a Zeek cluster sends them all to its manager
for that. Here every unfragmented IPv4 UDP datagram to or from port 67/68 goes to one fixed
partition, so one engine sees the whole transaction. (A fragmented DHCP datagram, which real
DHCP never needs, stays with its address pair so its fragments meet.)
"""

from __future__ import annotations

import zlib

from wirestream.processors.engine.linklayer import strip_link

NON_IP_PARTITION = 0
DHCP_PARTITION = 0  # every DHCP transaction in one engine, as Zeek's manager joins them
DHCP_PORTS = frozenset({67, 68})


def ip_pair(linktype: int, frame: bytes) -> tuple[bytes, bytes] | None:
    """(source, destination) IP address bytes of a captured frame, or None if it carries no IP."""
    located = _ip_header(linktype, frame)
    return None if located is None else _addresses(frame, *located)


def _addresses(frame: bytes, version: int, off: int) -> tuple[bytes, bytes]:
    """(source, destination) address bytes of the IP header of ``version`` at ``off``."""
    if version == 4:
        return frame[off + 12 : off + 16], frame[off + 16 : off + 20]
    return frame[off + 8 : off + 24], frame[off + 24 : off + 40]


def _ip_header(linktype: int, frame: bytes) -> tuple[int, int] | None:
    """(IP version, offset of its header) when the frame holds a whole fixed IP header."""
    link = strip_link(frame, linktype)
    off = link.offset
    if link.ip_version == 4 and len(frame) >= off + 20:
        return 4, off
    if link.ip_version == 6 and len(frame) >= off + 40:
        return 6, off
    return None


def is_dhcp(frame: bytes, off: int) -> bool:
    """An unfragmented IPv4 UDP datagram from or to port 67/68 (the IPv4 header at ``off``)."""
    if frame[off + 9] != 17 or int.from_bytes(frame[off + 6 : off + 8], "big") & 0x3FFF:
        return False  # not UDP, or a fragment (MF set or an offset)
    udp = off + (frame[off] & 0x0F) * 4
    if len(frame) < udp + 4:
        return False
    sport = int.from_bytes(frame[udp : udp + 2], "big")
    dport = int.from_bytes(frame[udp + 2 : udp + 4], "big")
    return sport in DHCP_PORTS or dport in DHCP_PORTS


def symmetric_hash(a: bytes, b: bytes) -> int:
    """A hash of an unordered address pair: ``symmetric_hash(a, b) == symmetric_hash(b, a)``."""
    low, high = (a, b) if a <= b else (b, a)
    return zlib.crc32(low + b"|" + high)


def partition_for(linktype: int, frame: bytes, partitions: int) -> int:
    """The pcap-topic partition of one frame among ``partitions``."""
    located = _ip_header(linktype, frame)
    if located is None:
        return NON_IP_PARTITION
    version, off = located
    if version == 4 and is_dhcp(frame, off):
        return DHCP_PARTITION % partitions
    return symmetric_hash(*_addresses(frame, version, off)) % partitions
