"""A small, benign, self-made capture for the demo: DNS lookups and HTTP downloads between made-up hosts.

Everything is generated here, byte for byte and deterministically (same input, same file): the
addresses are documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), the names
are ``example.*``, and the served files (HTML, PNG, JSON, plain text, PDF) are built in code.
TCP connections have proper three-way handshakes and FIN teardowns, so every log Zeek writes
for such traffic (conn, dns, http, files) has something to show.

``python -m wirestream.demo_pcap OUT.pcap`` writes it; the committed copy is
``wirestream/data/demo.pcap``.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

BASE_TS = 1_768_471_200.0  # 2026-01-15 10:00:00 UTC
CLIENT = "192.0.2.10"
CLIENT_MAC = b"\x02\x00\x00\x00\x00\x0a"
GATEWAY_MAC = b"\x02\x00\x00\x00\x00\x01"
RESOLVER = "198.51.100.53"
HOSTS = {
    "www.example.com": "203.0.113.80",
    "static.example.net": "203.0.113.81",
    "api.example.org": "203.0.113.82",
}
MSS = 1400


def _ip(addr: str) -> bytes:
    return bytes(int(p) for p in addr.split("."))


def _frame(src: str, dst: str, transport: dpkt.Packet, proto: int, ident: int) -> bytes:
    ip = dpkt.ip.IP(src=_ip(src), dst=_ip(dst), p=proto, ttl=64, id=ident, data=transport)
    ip.len = 20 + len(bytes(transport))
    to_server = src == CLIENT
    eth = dpkt.ethernet.Ethernet(
        src=CLIENT_MAC if to_server else GATEWAY_MAC,
        dst=GATEWAY_MAC if to_server else CLIENT_MAC,
        type=dpkt.ethernet.ETH_TYPE_IP,
        data=ip,
    )
    return bytes(eth)


# ----------------------------------------------------------------------------- content


def png_image(
    width: int = 16, height: int = 16, rgb: tuple[int, int, int] = (0x2E, 0x86, 0xC1)
) -> bytes:
    """A valid PNG of one colour (8-bit RGB)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack("!I", len(body)) + kind + body + struct.pack("!I", zlib.crc32(kind + body))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def pdf_document(text: str = "wirestream demo guide") -> bytes:
    """A minimal, valid one-page PDF with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Example Shop</title></head>\n"
    b'<body><h1>Welcome</h1><img src="http://static.example.net/logo.png">\n'
    b'<a href="http://static.example.net/docs/guide.pdf">Guide</a></body></html>\n'
)
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
STATUS = json.dumps({"service": "example-api", "status": "ok", "version": 3}).encode()


@dataclass
class _Response:
    path: str
    content_type: str
    body: bytes
    extra_headers: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- traffic


class _Clock:
    def __init__(self) -> None:
        self.t = BASE_TS

    def tick(self, seconds: float) -> float:
        self.t += seconds
        return round(self.t, 6)


def _dns_message(
    ident: int, name: str, qtype: int, answers: list[tuple[str, int, bytes]], rcode: int = 0
) -> bytes:
    """A query (no answers given and rcode 0) or a response."""

    def encode(n: str) -> bytes:
        return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\0"

    is_response = bool(answers) or rcode != 0
    flags = 0x0100 | (0x8180 | rcode if is_response else 0)
    msg = (
        struct.pack("!6H", ident, flags, 1, len(answers), 0, 0)
        + encode(name)
        + struct.pack("!HH", qtype, 1)
    )
    for rname, rtype, rdata in answers:
        msg += encode(rname) + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return msg


def _dns_exchanges(clock: _Clock) -> Iterator[tuple[float, bytes]]:
    ident = 0x1A00
    port = 53001
    lookups: list[tuple[str, int, list[tuple[str, int, bytes]], int]] = [
        ("www.example.com", 1, [("www.example.com", 1, _ip(HOSTS["www.example.com"]))], 0),
        (
            "static.example.net",
            1,
            [
                ("static.example.net", 5, b"\x03cdn\x07example\x03net\x00"),
                ("cdn.example.net", 1, _ip(HOSTS["static.example.net"])),
            ],
            0,
        ),
        ("api.example.org", 1, [("api.example.org", 1, _ip(HOSTS["api.example.org"]))], 0),
        ("missing.example.com", 1, [], 3),
    ]
    for name, qtype, answers, rcode in lookups:
        ident += 1
        port += 1
        query = dpkt.udp.UDP(sport=port, dport=53, data=_dns_message(ident, name, qtype, []))
        query.ulen = 8 + len(query.data)
        yield clock.tick(0.05), _frame(CLIENT, RESOLVER, query, dpkt.ip.IP_PROTO_UDP, ident)
        reply = dpkt.udp.UDP(
            sport=53, dport=port, data=_dns_message(ident, name, qtype, answers, rcode)
        )
        reply.ulen = 8 + len(reply.data)
        yield clock.tick(0.012), _frame(RESOLVER, CLIENT, reply, dpkt.ip.IP_PROTO_UDP, ident)


class _TcpConn:
    """One TCP connection's packets: handshake, data in MSS-sized segments, FIN teardown."""

    def __init__(self, clock: _Clock, server: str, sport: int, dport: int = 80) -> None:
        self.clock, self.server, self.sport, self.dport = clock, server, sport, dport
        self.cseq, self.sseq = 0x10000000 + sport, 0x20000000 + sport
        self.ident = sport
        self.packets: list[tuple[float, bytes]] = []

    def _send(self, from_client: bool, flags: int, data: bytes = b"", gap: float = 0.001) -> None:
        seq, ack = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        if not flags & dpkt.tcp.TH_ACK:
            ack = 0
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        seg = dpkt.tcp.TCP(
            sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, data=data
        )
        src, dst = (CLIENT, self.server) if from_client else (self.server, CLIENT)
        self.ident += 1
        self.packets.append(
            (self.clock.tick(gap), _frame(src, dst, seg, dpkt.ip.IP_PROTO_TCP, self.ident))
        )
        advance = len(data) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        if from_client:
            self.cseq += advance
        else:
            self.sseq += advance

    def open(self) -> None:
        self._send(True, dpkt.tcp.TH_SYN, gap=0.02)
        self._send(False, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, gap=0.015)
        self._send(True, dpkt.tcp.TH_ACK)

    def send(self, from_client: bool, data: bytes) -> None:
        for i in range(0, len(data), MSS):
            self._send(
                from_client, dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, data[i : i + MSS], gap=0.002
            )
        self._send(not from_client, dpkt.tcp.TH_ACK, gap=0.001)

    def close(self) -> None:
        self._send(True, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, gap=0.05)
        self._send(False, dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, gap=0.01)
        self._send(True, dpkt.tcp.TH_ACK)


def _request(host: str, path: str, keep_alive: bool) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "User-Agent: wirestream-demo/1.0",
        "Accept: */*",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(resp: _Response) -> bytes:
    lines = [
        "HTTP/1.1 200 OK",
        "Server: example-httpd",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(resp.body)}",
        *resp.extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + resp.body


def _http_sessions(clock: _Clock) -> Iterator[tuple[float, bytes]]:
    sessions = [
        (
            "www.example.com",
            [
                _Response("/", "text/html; charset=utf-8", HTML),
                _Response("/robots.txt", "text/plain", ROBOTS),
            ],
        ),
        (
            "static.example.net",
            [
                _Response("/logo.png", "image/png", png_image()),
                _Response(
                    "/docs/guide.pdf",
                    "application/pdf",
                    pdf_document(),
                    ['Content-Disposition: attachment; filename="guide.pdf"'],
                ),
            ],
        ),
        ("api.example.org", [_Response("/v3/status", "application/json", STATUS)]),
    ]
    sport = 49152
    for host, responses in sessions:
        sport += 1
        conn = _TcpConn(clock, HOSTS[host], sport)
        conn.open()
        for i, resp in enumerate(responses):
            conn.send(True, _request(host, resp.path, keep_alive=i < len(responses) - 1))
            conn.send(False, _response(resp))
        conn.close()
        yield from conn.packets


def demo_packets() -> list[tuple[float, bytes]]:
    """Every (timestamp, Ethernet frame) of the demo capture, in time order."""
    clock = _Clock()
    packets = list(_dns_exchanges(clock))
    packets += list(_http_sessions(clock))
    return sorted(packets, key=lambda p: p[0])


def build_demo_pcap(path: str | Path) -> Path:
    """Write the demo capture (classic pcap, Ethernet) to ``path`` and return it."""
    path = Path(path)
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, snaplen=65535, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in demo_packets():
            writer.writepkt(frame, ts=ts)
    return path


if __name__ == "__main__":  # pragma: no cover - a convenience for regenerating the data file
    print(build_demo_pcap(sys.argv[1] if len(sys.argv) > 1 else "demo.pcap"))
