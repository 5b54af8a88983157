"""Live capture from a network interface, as rotated pcap files handed to the pcap producer.

Linux only, via an ``AF_PACKET`` raw socket (needs root or CAP_NET_RAW; no libpcap, no BPF).
Packets are written to a pcap file in a spool folder; every ``rotate_seconds`` (or
``rotate_bytes``) the file is closed and sent like any capture file, so each chunk gets its own
identity and details record. Limitation: a connection that spans two chunks is analysed as two
partial connections (as Zeek would over two separate files), not as one live connection.
Timestamps are taken in user space when the packet is read (not the kernel's receive time).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from wirestream.processors.engine.pcapio import pcap_file_header, pcap_record

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6  # struct tpacket_stats {u32 tp_packets; u32 tp_drops;}, reset on read
SO_RCVBUFFORCE = 33
# The kernel queues packets here while Python writes the previous ones; busy links (or the
# loopback, which carries Kafka's own traffic) overflow the ~200 KiB default within milliseconds.
RECEIVE_BUFFER = 64 * 1024 * 1024
DLT_EN10MB = 1
MAX_FRAME = 262_144


class LiveCaptureError(RuntimeError):
    """The interface cannot be captured from here (platform, permission, unknown interface)."""


def open_interface(interface: str) -> socket.socket:
    if not hasattr(socket, "AF_PACKET"):
        raise LiveCaptureError(
            "live capture needs Linux AF_PACKET sockets; not available on this platform"
        )
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        _grow_receive_buffer(sock)
        sock.bind((interface, 0))
    except PermissionError as exc:
        raise LiveCaptureError(
            f"capturing on {interface} needs root or CAP_NET_RAW: {exc}"
        ) from exc
    except OSError as exc:
        raise LiveCaptureError(f"cannot capture on {interface}: {exc}") from exc
    sock.settimeout(0.2)
    return sock


def _grow_receive_buffer(sock: socket.socket) -> None:
    """Ask for RECEIVE_BUFFER bytes: forced when privileged, else up to the system's rmem_max."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def kernel_drops(sock: socket.socket) -> int:
    """Packets the kernel dropped for this socket since the last call (its buffer was full)."""
    try:
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    except OSError:
        return 0
    return int.from_bytes(raw[4:8], "little")


def capture_chunks(
    interface: str,
    spool: Path,
    *,
    stop: Callable[[], bool],
    rotate_seconds: float = 60.0,
    rotate_bytes: int = 256 * 1024 * 1024,
    snaplen: int = 65_535,
) -> Iterator[Path]:
    """Captures until ``stop()``; yields each closed chunk file (the last one when stopped)."""
    sock = open_interface(interface)
    spool.mkdir(parents=True, exist_ok=True)
    loopback = interface == "lo"
    try:
        while not stop():
            started = time.time()
            path = spool / f"live-{interface}-{started:.6f}.pcap"
            size = 0
            packets = 0
            with path.open("wb") as f:
                f.write(pcap_file_header(DLT_EN10MB, snaplen))
                while not stop() and time.time() - started < rotate_seconds and size < rotate_bytes:
                    try:
                        data, address = sock.recvfrom(MAX_FRAME)
                    except TimeoutError:
                        continue
                    # On loopback every packet is seen leaving and arriving: keep it once.
                    if loopback and address[2] == PACKET_OUTGOING:
                        continue
                    captured = data[:snaplen]
                    record = pcap_record(time.time(), captured, len(data))
                    f.write(record)
                    size += len(record)
                    packets += 1
            drops = kernel_drops(sock)
            if drops:
                log.warning(
                    "live %s: chunk %s lost %d packets in the kernel", interface, path.name, drops
                )
            log.info("live %s: chunk %s with %d packets", interface, path.name, packets)
            if packets:
                yield path
            else:
                path.unlink()
    finally:
        sock.close()


def send_live(
    settings,
    interface: str,
    *,
    stop: Callable[[], bool],
    sensor: str | None = None,
    rotate_seconds: float = 60.0,
    keep_chunks: bool = False,
) -> int:
    """Captures on ``interface`` and sends every chunk; returns how many chunks were sent."""
    from wirestream.producers.pcap_producer import PcapProducer

    producer = PcapProducer(settings)
    spool = settings.home / "live" / interface
    sent = 0
    try:
        for chunk in capture_chunks(interface, spool, stop=stop, rotate_seconds=rotate_seconds):
            result = producer.send(chunk, sensor=sensor or f"{settings.sensor}:{interface}")
            log.info("%s: %s (%d packets)", chunk.name, result.status, result.packets)
            sent += result.status == "sent"
            if result.status == "sent" and not keep_chunks:
                chunk.unlink()
    finally:
        producer.close()
    return sent
