"""Which pcap-topic partition a packet goes to: a symmetric hash of its IP address pair.

Processors in one consumer group analyse one capture in parallel, one partition each, so all
packets of a connection must meet in one partition: both directions (the hash is symmetric) and
every IP fragment (only addresses are hashed, never ports, which later fragments lack). Packets
without an IP header (ARP, STP ...) all go to one fixed partition. Link layers are stripped by
the engine's own decapsulation, so producer and engine agree on what a frame's IP header is.
"""

from __future__ import annotations

import zlib

from wirestream.processors.engine.linklayer import strip_link

NON_IP_PARTITION = 0


def ip_pair(linktype: int, frame: bytes) -> tuple[bytes, bytes] | None:
    """(source, destination) IP address bytes of a captured frame, or None if it carries no IP."""
    link = strip_link(frame, linktype)
    off = link.offset
    if link.ip_version == 4 and len(frame) >= off + 20:
        return frame[off + 12 : off + 16], frame[off + 16 : off + 20]
    if link.ip_version == 6 and len(frame) >= off + 40:
        return frame[off + 8 : off + 24], frame[off + 24 : off + 40]
    return None


def symmetric_hash(a: bytes, b: bytes) -> int:
    """A hash of an unordered address pair: ``symmetric_hash(a, b) == symmetric_hash(b, a)``."""
    low, high = (a, b) if a <= b else (b, a)
    return zlib.crc32(low + b"|" + high)


def partition_for(linktype: int, frame: bytes, partitions: int) -> int:
    """The pcap-topic partition of one frame among ``partitions``."""
    pair = ip_pair(linktype, frame)
    if pair is None:
        return NON_IP_PARTITION
    return symmetric_hash(*pair) % partitions
