"""Where the built-in engine's time goes: decoding, connection tracking, application analyzers.

Runs on packets already in memory (so file reading and log writing are left out), best of
``--rounds``, side by side:

  * dpkt       - dpkt.ethernet.Ethernet on every frame touching IP and TCP/UDP headers (baseline);
  * decode     - the intake's Decoder alone;
  * core       - Engine with no application analyzers registered (decode + connection core:
                 TCP state machine, reassembly, UDP/ICMP, timers, conn.log records);
  * full       - Engine with every registered analyzer (what ``wirestream analyze`` runs).

``--repeat N`` replays the sample N times with shifted time and source ports, so connection
state and timers see N times as many connections. Prints rates and ratios; asserts nothing.

    .venv/bin/python benchmarks/bench_conn_core.py [--repeat 5] [--rounds 3] [TRACE]
"""

from __future__ import annotations

import argparse
import os
import struct
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (
    Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))
    / "samples/pcap/kitchen_boss.pcap"
)


class NullSink:
    def log(self, log: str, record: dict) -> None:
        pass

    def file(self, extracted: object) -> None:
        pass


def replayed(packets: list, repeat: int) -> list:
    """The packets ``repeat`` times; copy k shifted by k hours with source ports + k (TCP/UDP
    checksums are port-sensitive, so copies past the first are checked as bad unless -C)."""
    from wirestream.processors.engine.api import Packet

    span = (packets[-1].ts - packets[0].ts) + 3600.0 if packets else 0.0
    out = list(packets)
    for k in range(1, repeat):
        for p in packets:
            data = p.data
            if (
                p.linktype == 1
                and len(data) >= 38
                and data[12:14] == b"\x08\x00"
                and data[23] in (6, 17)
            ):
                ihl = (data[14] & 0x0F) * 4
                at = 14 + ihl
                sport, dport = struct.unpack_from("!HH", data, at)
                if sport > dport:
                    sport = (sport + k) & 0xFFFF
                else:
                    dport = (dport + k) & 0xFFFF
                data = data[:at] + struct.pack("!HH", sport, dport) + data[at + 4 :]
            out.append(Packet(p.ts + k * span, data, p.linktype, p.wirelen))
    return out


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", nargs="?", default=str(SAMPLE))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    import dpkt
    import numpy  # noqa: F401  (checksum.py imports it lazily: keep the import out of the timing)
    import wirestream.processors.engine.protocols  # noqa: F401
    from wirestream.processors.engine import api
    from wirestream.processors.engine.decode import Decoder
    from wirestream.processors.engine.engine import Engine
    from wirestream.processors.engine.pcapio import read_packets

    packets = replayed(list(read_packets(a.trace)), a.repeat)
    n = len(packets)

    def run_dpkt() -> None:
        for p in packets:
            eth = dpkt.ethernet.Ethernet(p.data)
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                _ = (ip.src, ip.dst, ip.p)
                tr = ip.data
                if isinstance(tr, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                    _ = (tr.sport, tr.dport)

    def run_decode() -> None:
        decode = Decoder().decode
        for p in packets:
            decode(p)

    def run_engine() -> None:
        engine = Engine(NullSink(), ignore_checksums=a.repeat > 1)
        for p in packets:
            engine.process(p)
        engine.finish()

    rates = {"dpkt": n / best(run_dpkt, a.rounds), "decode": n / best(run_decode, a.rounds)}
    saved = dict(api.REGISTRY)
    api.REGISTRY.clear()
    try:
        rates["core"] = n / best(run_engine, a.rounds)
    finally:
        api.REGISTRY.update(saved)
    rates["full"] = n / best(run_engine, a.rounds)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{Path(a.trace).name} x{a.repeat}: {n} packets, load average {load:.1f}")
    for name, rate in rates.items():
        print(f"  {name:7s} {rate:10,.0f} pkt/s   {100 * rate / rates['dpkt']:6.1f}% of dpkt")


if __name__ == "__main__":
    main()
