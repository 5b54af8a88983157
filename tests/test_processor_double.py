"""A TEST DOUBLE of the packet analysis engine, for the processor's transport/transaction tests.

Never shipped: it lives in tests/ only. It counts packets per IP address pair and, at the end of
its stream, emits one ``conn``-shaped record per pair (plus an extracted "file" for every UDP
payload starting with ``FILE:``), which is enough to check that the processor publishes every
record of every stream exactly once. Run as a script it serves a processor with this engine.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

from wirestream.processors.engine.api import ExtractedFile, Packet
from wirestream.processors.engine.linklayer import strip_link
from wirestream.producers.partitioning import ip_pair


class PairCountingEngine:
    def __init__(self, sink, delay: float = 0.0) -> None:
        self.sink = sink
        self.delay = delay
        self.pairs: dict[tuple[bytes, bytes], list] = {}

    def process(self, packet: Packet) -> None:
        if self.delay:
            time.sleep(self.delay)
        pair = ip_pair(packet.linktype, packet.data)
        if pair is None:
            return
        key = tuple(sorted(pair))
        slot = self.pairs.setdefault(key, [packet.ts, 0, 0, pair])
        slot[1] += 1
        slot[2] += packet.wirelen
        link = strip_link(packet.data, packet.linktype)
        payload = packet.data[link.offset + 28 :]
        if payload.startswith(b"FILE:"):
            fuid = "F" + hashlib.sha1(packet.data).hexdigest()[:17]
            self.sink.file(ExtractedFile(fuid=fuid, data=payload[5:], filename="../../x.exe"))

    def finish(self) -> None:
        import ipaddress

        for key, (ts, count, size, (src, dst)) in sorted(self.pairs.items()):
            uid = "C" + hashlib.sha1(b"".join(key)).hexdigest()[:17]
            self.sink.log(
                "conn",
                {
                    "ts": ts,
                    "uid": uid,
                    "id.orig_h": str(ipaddress.ip_address(src)),
                    "id.orig_p": 0,
                    "id.resp_h": str(ipaddress.ip_address(dst)),
                    "id.resp_p": 0,
                    "proto": "udp",
                    "orig_pkts": count,
                    "orig_ip_bytes": size,
                },
            )


def factory(delay: float = 0.0):
    return lambda sink: PairCountingEngine(sink, delay)


def main() -> None:
    """Serve a processor with the double: ``python tests/test_processor_double.py INSTANCE``."""
    from wirestream.processors.bro_processor import BroProcessor, serve

    from wirestream.config import load_settings
    from wirestream.logs import setup_logging

    setup_logging("INFO")
    settings = load_settings()
    delay = float(os.environ.get("DOUBLE_DELAY", "0"))
    processor = BroProcessor(
        settings,
        engine_factory=factory(delay),
        engine_name="test-double",
        group_id=os.environ["DOUBLE_GROUP"],
        instance=sys.argv[1],
    )
    serve(processor)


if __name__ == "__main__":
    main()
