"""The pcap topic's message format, shared by the producer (writes) and the processor (reads).

Each message is one of two kinds, told apart by the ``ws.kind`` header:

* ``packets``: a packet-aligned batch of one capture's packets for one partition. The value is
  the packets back to back, each ``<d I I H`` (ts seconds as Zeek's double, wire length, captured
  length, link type) followed by the captured bytes. Headers carry the send id, the batch's
  sequence number within its (send, partition) stream, the capture md5 and the sensor.
* ``end``: the end-of-capture marker closing one (send, partition) stream. Its value is the JSON
  :class:`EndMarker`; a processor that has seen it has all that partition's packets of the capture.

A *send* is one publication of a capture (a capture sent again with ``--force`` is a new send),
identified by a random ``send_id``; the capture itself is identified by its content md5.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

from wirestream.processors.engine.api import Packet

KIND, SEND, SEQ, CAPTURE, SENSOR = "ws.kind", "ws.send", "ws.seq", "ws.capture", "ws.sensor"
PACKETS, END = b"packets", b"end"
PACKET_HEADER = struct.Struct("<dIIH")


class WireError(ValueError):
    """A pcap-topic message that does not follow this format."""


@dataclass
class EndMarker:
    """Closes one (send, partition) stream; repeats the capture's description for the processor."""

    send_id: str
    md5: str
    name: str
    sensor: str
    partition: int
    partitions: int  # how many partitions the capture was spread over (= markers to expect)
    batches: int  # batches of this stream (the processor checks it saw them all)
    packets: int  # packets of this stream
    capture: dict = field(default_factory=dict)  # CaptureInfo fields of the whole file
    # The reader's error if the file ended badly (the packets before it were sent).
    error: str | None = None
    sent_at: float | None = None  # epoch seconds the send was committed

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> EndMarker:
        try:
            data = json.loads(value)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError) as exc:
            raise WireError(f"bad end marker: {exc}") from exc


def encode_packets(packets: Sequence[Packet]) -> bytes:
    parts: list[bytes] = []
    for p in packets:
        parts.append(PACKET_HEADER.pack(p.ts, p.wirelen, len(p.data), p.linktype))
        parts.append(p.data)
    return b"".join(parts)


def packet_size(p: Packet) -> int:
    """Bytes one packet takes in a batch."""
    return PACKET_HEADER.size + len(p.data)


def decode_packets(value: bytes) -> Iterator[Packet]:
    view = memoryview(value)
    pos, end = 0, len(value)
    while pos < end:
        if pos + PACKET_HEADER.size > end:
            raise WireError(f"truncated packet header at {pos} of {end}")
        ts, wirelen, caplen, linktype = PACKET_HEADER.unpack_from(view, pos)
        pos += PACKET_HEADER.size
        if pos + caplen > end:
            raise WireError(f"truncated packet data at {pos} of {end}")
        yield Packet(
            ts=ts, data=bytes(view[pos : pos + caplen]), linktype=linktype, wirelen=wirelen
        )
        pos += caplen


def batch_headers(send_id: str, seq: int, md5: str, sensor: str) -> list[tuple[str, bytes]]:
    return [
        (KIND, PACKETS),
        (SEND, send_id.encode()),
        (SEQ, str(seq).encode()),
        (CAPTURE, md5.encode()),
        (SENSOR, sensor.encode()),
    ]


def end_headers(send_id: str) -> list[tuple[str, bytes]]:
    return [(KIND, END), (SEND, send_id.encode())]


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, bytes]:
    return {k: v for k, v in (headers or [])}
