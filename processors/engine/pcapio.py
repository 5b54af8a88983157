"""Streaming pcap and pcapng readers for the engine: one :class:`Packet` at a time.

Timestamps are what Zeek sees: Zeek opens traces through libpcap at microsecond precision, so
nanosecond pcap and fine-grained pcapng ``if_tsresol`` are truncated to microseconds exactly as
libpcap does, then turned into a double (sec + usec / 1e6). Every length is checked before it is
read, so a corrupt file cannot make the reader allocate gigabytes; on corrupt or truncated input
the reader yields every good packet first, then raises :class:`CaptureError` saying where.
"""

from __future__ import annotations

import contextlib
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from wirestream.processors.engine.api import Packet

# libpcap refuses records above its maximum snapshot length (256 KiB); so do we.
MAX_SNAPLEN = 262_144
MAX_BLOCK = 16 * 1024 * 1024  # pcapng blocks: options can be long, but not this long

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_KUZNETZOV = 0xA1B2CD34  # patched Linux libpcap: 8 more bytes per record header
PCAP_MAGICS = (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_KUZNETZOV)
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
BLOCK_IDB, BLOCK_PB, BLOCK_SPB, BLOCK_EPB = 1, 2, 3, 6
OPT_END, OPT_IF_TSRESOL, OPT_IF_TSOFFSET = 0, 9, 14


class CaptureError(ValueError):
    """The input is not a readable capture, or stops being one part-way (offset says where)."""


@dataclass
class Interface:
    """A pcapng interface (or the single pcap 'interface'): its link type and clock."""

    linktype: int
    snaplen: int
    units_per_sec: int = 1_000_000  # timestamp ticks per second (if_tsresol)
    offset_sec: int = 0  # if_tsoffset


@dataclass
class CaptureStats:
    """What the reader saw so far (filled while streaming)."""

    format: str = ""
    packets: int = 0
    bytes_read: int = 0
    linktypes: dict[int, int] = field(default_factory=dict)  # linktype -> packet count


def to_zeek_time(sec: int, ticks: int, units_per_sec: int) -> float:
    """Seconds + sub-second ticks as libpcap's microsecond timeval, as a double (Zeek's time)."""
    if units_per_sec == 1_000_000:
        usec = ticks
    elif units_per_sec > 1_000_000 and units_per_sec % 1_000_000 == 0:
        usec = ticks // (units_per_sec // 1_000_000)
    elif units_per_sec < 1_000_000 and 1_000_000 % units_per_sec == 0:
        usec = ticks * (1_000_000 // units_per_sec)
    else:
        usec = ticks * 1_000_000 // units_per_sec
    return sec + usec / 1e6


def split_zeek_time(ts: float) -> tuple[int, int]:
    """(seconds, microseconds) of a Zeek time for a microsecond pcap record: the inverse of
    reading one (``sec + usec / 1e6``), to the nearest microsecond, carrying into the seconds
    (5.9999996 is (6, 0), never a 1,000,000 usec field nor a clamp to 999,999)."""
    sec = int(ts)
    usec = round((ts - sec) * 1e6)
    if usec >= 1_000_000:
        return sec + 1, usec - 1_000_000
    return sec, usec


def pcap_file_header(linktype: int, snaplen: int = MAX_SNAPLEN) -> bytes:
    """The 24-byte header of a little-endian microsecond pcap file (what our writers produce)."""
    return struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts: float, data: bytes, wirelen: int) -> bytes:
    """One record of such a file: header (time split by :func:`split_zeek_time`) + bytes."""
    sec, usec = split_zeek_time(ts)
    return struct.pack("<IIII", sec, usec, len(data), wirelen) + data


def open_source(source: str | Path | BinaryIO) -> tuple[BinaryIO, bool]:
    """A binary stream for a path, ``-`` (stdin) or an open stream; True if we must close it."""
    if isinstance(source, (str, Path)):
        if str(source) == "-":
            return sys.stdin.buffer, False
        try:
            return open(source, "rb", buffering=1 << 20), True  # noqa: SIM115
        except OSError as exc:
            raise CaptureError(f"{source}: cannot open: {exc.strerror}") from exc
    return source, False


def capture_format(head: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` by a file's first four bytes (either byte order); else None."""
    if len(head) < 4:
        return None
    if struct.unpack("<I", head[:4])[0] == PCAPNG_SHB:
        return "pcapng"
    if (
        struct.unpack("<I", head[:4])[0] in PCAP_MAGICS
        or struct.unpack(">I", head[:4])[0] in PCAP_MAGICS
    ):
        return "pcap"
    return None


def _known_format(head: bytes, name: str) -> str:
    """The capture format of ``head``; CaptureError saying what the file is not, otherwise."""
    if not head:
        raise CaptureError(f"{name}: empty file, not a packet capture")
    found = capture_format(head)
    if found is None:
        raise CaptureError(
            f"{name}: unknown file format (magic {head[:4].hex()}); expected pcap or pcapng"
        )
    return found


def check_capture_file(path: str | Path) -> str:
    """The format of the capture at ``path``, read from its magic number alone, so a command can
    refuse a file that is not a capture before it creates any output; CaptureError otherwise."""
    if str(path) == "-":
        raise ValueError("stdin cannot be checked without consuming it")
    stream, _ = open_source(Path(path))
    with stream:
        head = stream.read(4)
    if 0 < len(head) < 4:
        raise CaptureError(f"{path}: truncated capture: the file header needs 4 bytes")
    return _known_format(head, str(path))


def read_packets(
    source: str | Path | BinaryIO, stats: CaptureStats | None = None
) -> Iterator[Packet]:
    """Every packet of a pcap or pcapng capture, in file order (format from the magic number)."""
    stream, owned = open_source(source)
    stats = stats if stats is not None else CaptureStats()
    name = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")
    try:
        head = _read_exact(stream, 4, stats, name, "file header")
        stats.format = _known_format(head, name)
        if stats.format == "pcapng":
            yield from _pcapng(stream, head, stats, name)
        else:
            yield from _pcap(stream, head, stats, name)
    finally:
        if owned:
            with contextlib.suppress(OSError):
                stream.close()


def _read_exact(stream: BinaryIO, n: int, stats: CaptureStats, name: str, what: str) -> bytes:
    """``n`` bytes, b'' at a clean end of file, CaptureError on a short read."""
    data = stream.read(n)
    if len(data) != n and data:
        raise CaptureError(
            f"{name}: truncated capture at byte {stats.bytes_read}: {what} needs {n} bytes, "
            f"only {len(data)} left"
        )
    stats.bytes_read += len(data)
    return data


_CHUNK = 1 << 18  # bytes asked of the stream at a time by the pcap record loop


def _pcap(stream: BinaryIO, magic: bytes, stats: CaptureStats, name: str) -> Iterator[Packet]:
    order = "<" if struct.unpack("<I", magic)[0] in PCAP_MAGICS else ">"
    kind = struct.unpack(order + "I", magic)[0]
    units = 1_000_000_000 if kind == PCAP_MAGIC_NS else 1_000_000
    header_len = 24 if kind == PCAP_MAGIC_KUZNETZOV else 16
    rest = _read_exact(stream, 20, stats, name, "pcap file header")
    if not rest:
        raise CaptureError(f"{name}: truncated pcap file header")
    _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack(order + "HHiIII", rest)
    # Upper 16 bits of the link-type field carry FCS info (pcap spec); the DLT is the low 16.
    linktype &= 0xFFFF
    # libpcap's bound, whatever the (possibly corrupt) header's snaplen says.
    limit = MAX_SNAPLEN
    unpack_record = struct.Struct(order + "IIII").unpack_from
    # Records are cut out of chunks of whatever the stream has ready (read1: a live pipe's
    # packets are not held back until a chunk fills), not read with two calls each.
    read1 = getattr(stream, "read1", stream.read)
    buf = b""
    pos = size = 0
    ns = units != 1_000_000
    first_count = stats.packets
    try:
        while True:
            if size - pos < header_len:
                buf = _refill(read1, buf[pos:], header_len)
                pos, size = 0, len(buf)
                if size < header_len:
                    if size:
                        raise CaptureError(
                            f"{name}: truncated capture at byte {stats.bytes_read}: record header "
                            f"needs {header_len} bytes, only {size} left (after {stats.packets} "
                            "packets)"
                        )
                    return
            sec, frac, caplen, wirelen = unpack_record(buf, pos)
            if caplen > limit:
                raise CaptureError(
                    f"{name}: corrupt record at byte {stats.bytes_read}: captured length "
                    f"{caplen} exceeds the maximum {limit} (after {stats.packets} packets)"
                )
            start = pos + header_len
            pos = start + caplen
            if pos > size:
                buf = _refill(read1, buf[start - header_len :], header_len + caplen)
                size, start = len(buf), header_len
                pos = start + caplen
                if pos > size:
                    raise CaptureError(
                        f"{name}: truncated capture at byte {stats.bytes_read}: packet needs "
                        f"{caplen} bytes, only {size - header_len} left (after {stats.packets} "
                        "packets)"
                    )
            stats.bytes_read += header_len + caplen
            stats.packets += 1
            if ns:
                frac //= 1000
            yield Packet(
                sec + frac / 1e6, buf[start:pos], linktype, wirelen if wirelen > caplen else caplen
            )
    finally:  # one link type per pcap file: its count once, however the reading ends
        if stats.packets > first_count:
            counts = stats.linktypes
            counts[linktype] = counts.get(linktype, 0) + stats.packets - first_count


def _refill(read1: Any, rest: bytes, need: int) -> bytes:
    """``rest`` and what the stream has next, at least ``need`` bytes unless it ends first."""
    parts = [rest]
    have = len(rest)
    while have < need:
        more = read1(max(need - have, _CHUNK))
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def _options(body: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options (code, value) until opt_endofopt or the end of the body."""
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, pos)
        pos += 4
        if code == OPT_END:
            return
        yield code, body[pos : pos + length]
        pos += length + ((-length) % 4)


def _interface(body: bytes, order: str) -> Interface:
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
    iface = Interface(linktype=linktype, snaplen=snaplen)
    for code, value in _options(body[8:], order):
        if code == OPT_IF_TSRESOL and value:
            res = value[0]
            iface.units_per_sec = 2 ** (res & 0x7F) if res & 0x80 else 10**res
        elif code == OPT_IF_TSOFFSET and len(value) == 8:
            iface.offset_sec = struct.unpack(order + "q", value)[0]
    return iface


def _pcapng(stream: BinaryIO, first: bytes, stats: CaptureStats, name: str) -> Iterator[Packet]:
    order = "<"
    interfaces: list[Interface] = []
    block_type_raw = first
    counts = stats.linktypes
    while True:
        start = stats.bytes_read - len(block_type_raw)
        length_raw = _read_exact(stream, 4, stats, name, "block length")
        if not length_raw:
            raise CaptureError(f"{name}: truncated pcapng block at byte {start}")
        if struct.unpack("<I", block_type_raw)[0] == PCAPNG_SHB:
            # A new section: its byte-order magic decides the order of everything after it.
            bom = _read_exact(stream, 4, stats, name, "section header")
            if len(bom) != 4:
                raise CaptureError(f"{name}: truncated section header at byte {start}")
            if struct.unpack("<I", bom)[0] == PCAPNG_BOM:
                order = "<"
            elif struct.unpack(">I", bom)[0] == PCAPNG_BOM:
                order = ">"
            else:
                raise CaptureError(
                    f"{name}: bad pcapng byte-order magic {bom.hex()} at byte {start}"
                )
            interfaces = []
            length = struct.unpack(order + "I", length_raw)[0]
            body_len = length - 16
            prefix = bom
        else:
            length = struct.unpack(order + "I", length_raw)[0]
            body_len = length - 12
            prefix = b""
        block_type = struct.unpack(order + "I", block_type_raw)[0]
        if length % 4 or body_len < 0 or length > MAX_BLOCK:
            raise CaptureError(
                f"{name}: corrupt pcapng block at byte {start}: length {length} "
                f"(after {stats.packets} packets)"
            )
        body = _read_exact(stream, body_len + 4, stats, name, f"block of {length} bytes")
        if len(body) != body_len + 4:
            raise CaptureError(
                f"{name}: truncated capture at byte {start}: block of {length} bytes cut short "
                f"(after {stats.packets} packets)"
            )
        if struct.unpack(order + "I", body[-4:])[0] != length:
            raise CaptureError(
                f"{name}: corrupt pcapng block at byte {start}: trailing length does not match "
                f"(after {stats.packets} packets)"
            )
        body = prefix + body[:-4]
        packet = _block_packet(block_type, body, order, interfaces, name, start)
        if packet is not None:
            stats.packets += 1
            counts[packet.linktype] = counts.get(packet.linktype, 0) + 1
            yield packet
        block_type_raw = stream.read(4)
        if len(block_type_raw) != 4:
            if block_type_raw:
                raise CaptureError(f"{name}: truncated pcapng block at byte {stats.bytes_read}")
            return
        stats.bytes_read += 4


def _block_packet(
    block_type: int, body: bytes, order: str, interfaces: list[Interface], name: str, start: int
) -> Packet | None:
    """The packet in one pcapng block, or None for blocks that carry none (IDB updates state)."""
    if block_type == BLOCK_IDB:
        if len(body) < 8:
            raise CaptureError(f"{name}: short interface block at byte {start}")
        interfaces.append(_interface(body, order))
        return None
    if block_type in (BLOCK_EPB, BLOCK_PB):
        if len(body) < 20:
            raise CaptureError(f"{name}: short packet block at byte {start}")
        if block_type == BLOCK_EPB:
            iface_id, hi, lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
        else:
            iface_id, _drops, hi, lo, caplen, wirelen = struct.unpack_from(
                order + "HHIIII", body, 0
            )
        if iface_id >= len(interfaces):
            raise CaptureError(
                f"{name}: packet block at byte {start} names interface {iface_id}, "
                f"but only {len(interfaces)} are defined"
            )
        if caplen > len(body) - 20:
            raise CaptureError(
                f"{name}: corrupt packet block at byte {start}: captured length {caplen} exceeds block"
            )
        iface = interfaces[iface_id]
        ticks = (hi << 32) | lo
        sec, frac = divmod(ticks, iface.units_per_sec)
        ts = to_zeek_time(sec + iface.offset_sec, frac, iface.units_per_sec)
        return Packet(ts, body[20 : 20 + caplen], iface.linktype, max(wirelen, caplen))
    if block_type == BLOCK_SPB:
        if not interfaces:
            raise CaptureError(f"{name}: simple packet block at byte {start} before any interface")
        iface = interfaces[0]
        (wirelen,) = struct.unpack_from(order + "I", body, 0)
        caplen = min(wirelen, len(body) - 4)
        if iface.snaplen:
            caplen = min(caplen, iface.snaplen)
        # Simple packet blocks carry no timestamp; libpcap reports 0.
        return Packet(0.0, body[4 : 4 + caplen], iface.linktype, wirelen)
    return None  # name resolution, statistics, custom, decryption secrets...: no packets
