"""Pipeline throughput, each stage next to its baseline measured in the same run.

* producer: ``PcapProducer.send`` (hash pass + read + partition + batch + transactional publish)
  vs the engine's bare ``read_packets`` over the same file;
* processor: pcap topic -> built-in engine -> Avro on zeek.* (one transaction per stream) vs
  ``run_builtin`` (the ``wirestream analyze`` path) over the same file, no Kafka.

Usage: ``WIRESTREAM_BOOTSTRAP_SERVERS=127.0.0.1:19092 .venv/bin/python benchmarks/bench_pipeline.py
[PCAP] [--synthetic N]``. Needs a live broker; uses a private topic prefix.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


class _Null:
    def log(self, *_a) -> None: ...

    def file(self, *_a) -> None: ...


def _synthetic(n: int, path: Path) -> Path:
    import random

    import pktbuild as pb

    rng = random.Random(5)
    hosts = [f"10.{i // 250}.{i % 250}.1" for i in range(500)]
    frames = []
    for i in range(n):
        a, b = rng.sample(hosts, 2)
        frames.append(
            (
                1_700_000_000 + i * 0.001,
                pb.udp4_frame(1024 + i % 50000, 53, rng.randbytes(200), src=a, dst=b),
            )
        )
    return pb.write_pcap(path, frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "pcap",
        nargs="?",
        default=str(ROOT.parent / "shared" / "samples" / "pcap" / "kitchen_boss.pcap"),
    )
    ap.add_argument("--synthetic", type=int, default=0, help="Use N generated UDP packets instead.")
    args = ap.parse_args()

    from test_pipeline_support import private_settings
    from wirestream.processors.analyze_cli import run_builtin
    from wirestream.processors.bro_processor import BroProcessor, engine_options
    from wirestream.processors.capture_store import wait_for_details
    from wirestream.processors.engine.pcapio import read_packets
    from wirestream.producers.pcap_producer import PcapProducer

    from wirestream.config import load_settings
    from wirestream.kafka import resolve_bootstrap

    path = Path(args.pcap)
    if args.synthetic:
        path = _synthetic(args.synthetic, Path(tempfile.mkdtemp()) / "synthetic.pcap")
    size = path.stat().st_size
    settings = private_settings(resolve_bootstrap(load_settings()))

    t = time.perf_counter()
    packets = sum(1 for _ in read_packets(path))
    read_s = time.perf_counter() - t

    producer = PcapProducer(settings)
    t = time.perf_counter()
    sent = producer.send(path)
    send_s = time.perf_counter() - t
    producer.close()

    t = time.perf_counter()
    run_builtin([str(path)], _Null(), engine_options())
    analyze_s = time.perf_counter() - t

    processor = BroProcessor(settings, engine="builtin", group_id=uuid.uuid4().hex)
    first: list[float] = []
    handle = processor._handle

    def timed_handle(msg) -> None:  # noqa: ANN001 - times from the first message (no group join)
        if not first:
            first.append(time.perf_counter())
        handle(msg)

    processor._handle = timed_handle  # type: ignore[method-assign]

    def finished() -> bool:
        return processor.streams_done >= sent.partitions

    t = time.perf_counter()
    import threading

    thread = threading.Thread(target=processor.run, daemon=True)
    thread.start()
    while not finished():
        time.sleep(0.05)
    process_s = time.perf_counter() - first[0]
    join_s = first[0] - t
    done = wait_for_details(settings, {sent.md5: sent.send_id}, timeout=120)
    processor.stop()
    thread.join(30)
    d = done[sent.md5]
    records = sum(e["records"] for e in d.logs.values())

    print(
        f"capture {path.name}: {packets} packets, {size / 1e6:.1f} MB, {records} log records, "
        f"status {d.status}; processor group join {join_s:.2f} s (not counted below)"
    )
    print(f"{'stage':28} {'seconds':>8} {'pkt/s':>10} {'MB/s':>7} {'vs baseline':>12}")
    print(
        f"{'read_packets (baseline)':28} {read_s:8.3f} {packets / read_s:10,.0f} {size / 1e6 / read_s:7.1f} {'1.00':>12}"
    )
    print(
        f"{'producer send':28} {send_s:8.3f} {packets / send_s:10,.0f} {size / 1e6 / send_s:7.1f} {read_s / send_s:12.2f}"
    )
    print(
        f"{'analyze run_builtin (base)':28} {analyze_s:8.3f} {packets / analyze_s:10,.0f} {size / 1e6 / analyze_s:7.1f} {'1.00':>12}"
    )
    print(
        f"{'processor (Kafka, txns)':28} {process_s:8.3f} {packets / process_s:10,.0f} {size / 1e6 / process_s:7.1f} {analyze_s / process_s:12.2f}"
    )


if __name__ == "__main__":
    main()
