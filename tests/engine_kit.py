"""Feeding hand-built datagrams to the engine in tests: a list sink and a conversation builder."""

from __future__ import annotations

from typing import Any

import pktbuild as pb
from wirestream.processors.engine.api import IPDatagram
from wirestream.processors.engine.engine import Engine


class ListSink:
    """Keeps every record per log name."""

    def __init__(self) -> None:
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.files: list[Any] = []

    def log(self, log: str, record: dict[str, Any]) -> None:
        self.logs.setdefault(log, []).append(record)

    def file(self, extracted: Any) -> None:
        self.files.append(extracted)

    def rows(self, log: str) -> list[dict[str, Any]]:
        return self.logs.get(log, [])


def datagram(
    ts: float, src: str, dst: str, proto: int, payload: bytes, version: int = 4
) -> IPDatagram:
    header = 20 if version == 4 else 40
    return IPDatagram(ts, src, dst, proto, payload, header + len(payload), version, 64)


class TcpTalk:
    """A TCP conversation between a client A and a server B with tracked sequence numbers."""

    def __init__(
        self,
        engine: Engine,
        a: tuple[str, int] = ("10.0.0.1", 40000),
        b: tuple[str, int] = ("10.0.0.2", 80),
        *,
        a_isn: int = 1000,
        b_isn: int = 5000,
    ) -> None:
        self.engine = engine
        self.a, self.b = a, b
        self.seq = {True: a_isn, False: b_isn}  # next seq per side (True = A)
        self.t = 1000.0

    def send(
        self,
        from_a: bool,
        flags: str,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        advance: bool = True,
        dt: float = 0.1,
        window: int = 65535,
        checksum: int | None = None,
    ) -> None:
        src, dst = (self.a, self.b) if from_a else (self.b, self.a)
        s = self.seq[from_a] if seq is None else seq
        k = self.seq[not from_a] if ack is None else ack
        seg = pb.tcp(
            src[1], dst[1], payload, flags=flags, seq=s & 0xFFFFFFFF, ack=k & 0xFFFFFFFF,
            src=src[0], dst=dst[0], window=window, checksum=checksum,
        )  # fmt: skip
        self.t += dt
        self.engine.ip(datagram(self.t, src[0], dst[0], 6, seg))
        if advance and seq is None:
            used = len(payload) + ("S" in flags) + ("F" in flags)
            self.seq[from_a] = s + used

    def handshake(self) -> None:
        self.send(True, "S", ack=0)
        self.send(False, "SA")
        self.send(True, "A")


def only_conn(sink: ListSink) -> dict[str, Any]:
    rows = sink.rows("conn")
    assert len(rows) == 1, rows
    return rows[0]
