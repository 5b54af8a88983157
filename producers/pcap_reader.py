"""Producer-side capture intake: the engine's streaming reader plus identity and header facts.

Packets come from the engine's reader (``processors.engine.pcapio``), so the producer sees exactly
the packets and timestamps the engine would see reading the file itself. This module adds what the
producer needs besides: the content md5 computed over exactly the bytes read (while streaming),
the header's snapshot length (refusing absurd ones before anything is read on their account), and
the capture's time range.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from wirestream.processors.engine.api import Packet
from wirestream.processors.engine.pcapio import (
    BLOCK_IDB,
    PCAP_MAGICS,
    PCAPNG_BOM,
    CaptureError,
    CaptureStats,
    capture_format,
    read_packets,
)

# libpcap's largest snapshot length is 256 KiB; a header claiming more than 1 MiB is corrupt or
# hostile (it would let one record make the reader allocate that much).
ABSURD_SNAPLEN = 1 << 20
HEAD_BYTES = 4096

__all__ = ["ABSURD_SNAPLEN", "CaptureError", "CaptureInfo", "HashingFile", "read_capture"]


@dataclass
class CaptureInfo:
    """What the capture turned out to be, filled in while it is read."""

    format: str = ""  # "pcap" or "pcapng"
    linktype: int = -1  # of the first packet (pcapng interfaces may differ; packets carry theirs)
    snaplen: int | None = None
    packets: int = 0
    bytes_read: int = 0
    first_ts: float | None = None
    last_ts: float | None = None


class HashingFile:
    """Wraps a binary file: every byte read also goes into the md5; keeps the first bytes."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.md5 = hashlib.md5()
        self.count = 0
        # The first bytes, read ahead so headers can be checked before the reader trusts them.
        self.head = raw.read(HEAD_BYTES)
        self._pending = memoryview(self.head)
        self.name = getattr(raw, "name", "<stream>")

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            take = len(self._pending) if size < 0 else min(size, len(self._pending))
            data = bytes(self._pending[:take])
            self._pending = self._pending[take:]
            if size < 0 or take < size:
                data += self.raw.read(-1 if size < 0 else size - take)
        else:
            data = self.raw.read(size)
        self.md5.update(data)
        self.count += len(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Hash the rest of the file (bytes after an error still belong to the identity)."""
        while self.read(chunk):
            pass


def header_snaplen(head: bytes) -> int | None:
    """The snapshot length a pcap header (or a pcapng file's first interface) declares."""
    kind = capture_format(head)
    if kind is None or len(head) < 24:
        return None
    if kind == "pcap":
        order = "<" if struct.unpack("<I", head[:4])[0] in PCAP_MAGICS else ">"
        return struct.unpack_from(order + "I", head, 16)[0]
    order = "<" if struct.unpack_from("<I", head, 8)[0] == PCAPNG_BOM else ">"
    pos = 0
    while pos + 16 <= len(head):
        btype, blen = struct.unpack_from(order + "II", head, pos)
        if btype == BLOCK_IDB:
            return struct.unpack_from(order + "I", head, pos + 12)[0]
        if blen < 12:
            return None
        pos += blen
    return None


def read_capture(f: HashingFile, info: CaptureInfo) -> Iterator[Packet]:
    """Packets of the capture in ``f``; CaptureError (after the good packets) on bad input."""
    stats = CaptureStats()
    info.snaplen = header_snaplen(f.head)
    if info.snaplen is not None and info.snaplen > ABSURD_SNAPLEN:
        raise CaptureError(
            f"{f.name}: absurd snapshot length {info.snaplen} in the capture header "
            f"(more than {ABSURD_SNAPLEN}); refusing the file"
        )
    try:
        for packet in read_packets(f, stats):  # type: ignore[arg-type]
            if info.packets == 0:
                info.linktype = packet.linktype
            info.packets += 1
            ts = packet.ts
            info.first_ts = ts if info.first_ts is None or ts < info.first_ts else info.first_ts
            info.last_ts = ts if info.last_ts is None or ts > info.last_ts else info.last_ts
            yield packet
    finally:
        info.format = stats.format
        info.bytes_read = stats.bytes_read
