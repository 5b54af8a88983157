"""Pipeline throughput and latency, each figure next to its baseline measured in the same run.

Stages (on PCAP, default the sample ``kitchen_boss.pcap``; an in-process processor thread):

* producer: ``PcapProducer.send`` (hash pass + read + partition + batch + transactional publish)
  vs the engine's bare ``read_packets`` over the same file;
* processor: pcap topic -> built-in engine -> Avro on zeek.* (one transaction per stream) vs
  ``run_builtin`` (the ``wirestream analyze`` path) over the same file, no Kafka.

Latency (a ~2 MB capture: the first packets of the replayed trace below): with one processor
already running and warm, from the start of ``send --force`` until the capture's final details
record is visible on the captures topic; several repetitions, p50/min/max.

Throughput (a >= 200 MB trace replayed from the sample by ``bench_engine.build_big_trace``):
``run_builtin`` packets/s (in a child process), then producer -> processor(s) end to end (send start
to every part committed, i.e. analysed and published; details visible reported beside) with 1 and with 2 processors in one consumer group. The processors are
``wirestream process`` SUBPROCESSES (one core each at best: the machine has 2, shared), so their
peak RSS (VmHWM) and CPU seconds are their own. Each part runs under a private topic prefix whose
topics are deleted afterwards.

Usage: ``WIRESTREAM_BOOTSTRAP_SERVERS=127.0.0.1:19092 .venv/bin/python benchmarks/bench_pipeline.py
[PCAP] [--synthetic N] [--size-mb 200] [--reps 5] [--keep DIR] [--skip-big]``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import SAMPLE, build_big_trace, run_child  # noqa: E402

CHILD_ANALYZE = """
import json, resource, sys, time
from wirestream.processors.analyze_cli import run_builtin
from wirestream.processors.bro_processor import engine_options
import wirestream.processors.engine.engine, wirestream.processors.engine.files
import wirestream.processors.engine.protocols  # one-off imports kept out of the rate
import numpy
class Null:
    def log(self, *_a): pass
    def file(self, *_a): pass
t = time.perf_counter()
r = run_builtin([sys.argv[1]], Null(), engine_options())
secs = time.perf_counter() - t
print(json.dumps({"seconds": secs, "packets": r.packets, "bytes": r.bytes_read,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


class _Null:
    def log(self, *_a) -> None: ...

    def file(self, *_a) -> None: ...


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


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


def pcap_prefix(source: Path, target: Path, max_bytes: int) -> Path:
    """The whole packets of a classic little-endian pcap that fit in ``max_bytes``."""
    with source.open("rb") as src, target.open("wb") as out:
        header = src.read(24)
        if struct.unpack_from("<I", header)[0] != 0xA1B2C3D4:
            raise ValueError(f"{source}: not a little-endian microsecond pcap")
        out.write(header)
        written = 24
        while True:
            rec = src.read(16)
            if len(rec) < 16:
                break
            caplen = struct.unpack_from("<I", rec, 8)[0]
            if written + 16 + caplen > max_bytes:
                break
            out.write(rec + src.read(caplen))
            written += 16 + caplen
    return target


# --- broker helpers -------------------------------------------------------------------------------


def private_settings() -> Any:
    from test_pipeline_support import private_settings as fresh

    from wirestream.config import load_settings
    from wirestream.kafka import resolve_bootstrap

    return fresh(resolve_bootstrap(load_settings()))


def drop_topics(settings: Any) -> None:
    """Deletes every topic under the run's private prefix (200 MB captures are not kept)."""
    from wirestream.kafka import make_admin

    admin = make_admin(settings)
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    for fut in admin.delete_topics(names, operation_timeout=30).values():
        try:
            fut.result(30)
        except Exception as exc:  # noqa: BLE001 - cleanup only; say so and go on
            print(f"  (could not delete a topic: {exc})")


def group_members(settings: Any, group: str) -> int:
    from wirestream.kafka import make_admin

    admin = make_admin(settings)  # held: a collected client never completes its futures
    try:
        desc = admin.describe_consumer_groups([group])[group].result(15)
    except Exception:  # noqa: BLE001 - a group not created yet has no members
        return 0
    return len(desc.members)


class ProcessorDied(RuntimeError):
    pass


class DetailsWatch:
    """Follows the captures and capture-parts topics with long-lived readers, so "visible" is
    seen within ~50 ms (``wait_for_details`` opens a new consumer per poll, which would blur the
    latency). ``alive`` is checked while waiting: a dead processor fails the wait at once."""

    def __init__(self, settings: Any, alive: Any) -> None:
        from wirestream.processors.capture_store import CompactedTopicReader

        from wirestream import topics

        self.alive = alive
        self.reader = CompactedTopicReader(
            settings, topics.system_topic(topics.CAPTURES_TOPIC, settings)
        )
        self.parts = CompactedTopicReader(
            settings, topics.system_topic(topics.CAPTURE_PARTS_TOPIC, settings)
        )
        self.seen_parts: dict[str, set[int]] = {}

    def _check(self, deadline: float, what: str) -> None:
        if not self.alive():
            raise ProcessorDied(f"a processor exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} in time")

    def wait_parts(self, send_id: str, partitions: int, timeout: float) -> None:
        """Until every (send, partition) stream's part is committed: the analysis is done."""
        from wirestream.processors.capture_details import CapturePart

        deadline = time.monotonic() + timeout
        while len(self.seen_parts.get(send_id, ())) < partitions:
            self._check(deadline, f"parts of send {send_id}")
            for _key, value in self.parts.refresh(settle=0.5):
                part = CapturePart.from_bytes(value)
                self.seen_parts.setdefault(part.send_id, set()).add(part.partition)
            time.sleep(0.05)

    def wait(self, md5: str, send_id: str, timeout: float) -> Any:
        from wirestream.processors.capture_details import CaptureDetails

        deadline = time.monotonic() + timeout
        while True:
            self._check(deadline, f"final details of {md5}")
            for key, value in self.reader.refresh(settle=0.5):
                if key.decode() == md5:
                    d = CaptureDetails.from_bytes(value)
                    if d.done and d.send_id == send_id:
                        return d
            time.sleep(0.05)

    def close(self) -> None:
        self.reader.close()
        self.parts.close()


class Processors:
    """``n`` ``wirestream process`` subprocesses in one consumer group under ``settings``' prefix."""

    def __init__(self, settings: Any, n: int, logdir: Path) -> None:
        self.settings = settings
        self.group = f"{settings.topic_prefix}bench-{uuid.uuid4().hex[:6]}"
        env = dict(
            os.environ,
            WIRESTREAM_TOPIC_PREFIX=settings.topic_prefix,
            WIRESTREAM_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        )
        exe = Path(sys.executable).parent / "wirestream"
        self.procs = [
            subprocess.Popen(
                [str(exe), "process", "--engine", "builtin", "--group", self.group],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(logdir / f"{self.group}-{i}.log").open("w"),
            )
            for i in range(n)
        ]
        deadline = time.monotonic() + 90
        while group_members(settings, self.group) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise SystemExit(f"processors did not join {self.group}; logs in {logdir}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def peak_rss_mb(self) -> list[float]:
        out = []
        for p in self.procs:
            if p.poll() is not None:
                out.append(float("nan"))  # exited: its peak is gone with it
                continue
            status = Path(f"/proc/{p.pid}/status").read_text()
            kb = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
            )
            out.append(kb / 1024)
        return out

    def cpu_seconds(self) -> list[float]:
        import psutil

        out = []
        for p in self.procs:
            if p.poll() is not None:
                out.append(float("nan"))
                continue
            t = psutil.Process(p.pid).cpu_times()
            out.append(t.user + t.system)
        return out

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


def send_and_wait(
    producer: Any,
    watch: DetailsWatch,
    path: Path,
    timeout: float,
    on_analysed: Any = None,
) -> dict:
    """Times one forced send from its start until every part is committed (analysis done) and
    until its final details are visible; a details failure is reported, not hidden."""
    t0 = time.perf_counter()
    sent = producer.send(path, force=True)
    t_sent = time.perf_counter()
    if sent.status != "sent":
        raise SystemExit(f"send of {path} {sent.status}: {sent.error}")
    out: dict[str, Any] = {"packets": sent.packets, "send_s": t_sent - t0}
    watch.wait_parts(sent.send_id, sent.partitions, timeout)
    out["parts_s"] = time.perf_counter() - t0
    if on_analysed is not None:  # before the details wait (a processor may die in it)
        out.update(on_analysed())
    try:
        details = watch.wait(sent.md5, sent.send_id, timeout)
    except (ProcessorDied, TimeoutError) as exc:
        out.update(total_s=float("nan"), status=f"NO DETAILS ({exc})", records=-1)
        return out
    out.update(
        total_s=time.perf_counter() - t0,
        status=details.status,
        records=sum(e["records"] for e in details.logs.values()),
    )
    return out


# --- the three parts -------------------------------------------------------------------------------


def stage_throughput(path: Path) -> None:
    """Producer and processor stages on one capture, each beside its bare baseline."""
    from wirestream.processors.analyze_cli import run_builtin
    from wirestream.processors.bro_processor import BroProcessor, engine_options
    from wirestream.processors.capture_store import wait_for_details
    from wirestream.processors.engine.pcapio import read_packets
    from wirestream.producers.pcap_producer import PcapProducer

    size = path.stat().st_size
    settings = private_settings()

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
    drop_topics(settings)

    print(
        f"\n== stages: {path.name}: {packets} packets, {size / 1e6:.1f} MB, {records} log records, "
        f"status {d.status}; processor group join {join_s:.2f} s (not counted below); load {_load()}"
    )
    print(f"{'stage':28} {'seconds':>8} {'pkt/s':>10} {'MB/s':>7} {'vs baseline':>12}")
    for label, secs, base in (
        ("read_packets (baseline)", read_s, read_s),
        ("producer send", send_s, read_s),
        ("analyze run_builtin (base)", analyze_s, analyze_s),
        ("processor (Kafka, txns)", process_s, analyze_s),
    ):
        print(
            f"{label:28} {secs:8.3f} {packets / secs:10,.0f} {size / 1e6 / secs:7.1f} {base / secs:12.2f}"
        )


def latency(path: Path, reps: int, logdir: Path) -> None:
    """Capture-to-details latency with one warm processor subprocess."""
    from wirestream.producers.pcap_producer import PcapProducer

    settings = private_settings()
    procs = Processors(settings, 1, logdir)
    producer = PcapProducer(settings)
    watch = DetailsWatch(settings, procs.alive)
    try:
        warm = send_and_wait(producer, watch, path, timeout=300)  # group join, imports, topics
        runs = [send_and_wait(producer, watch, path, timeout=300) for _ in range(reps)]
        rss = procs.peak_rss_mb()
    finally:
        watch.close()
        producer.close()
        procs.stop()
        drop_topics(settings)
    totals = sorted(r["total_s"] for r in runs)
    sends = sorted(r["send_s"] for r in runs)
    print(
        f"\n== latency: {path.name} ({path.stat().st_size / 1e6:.2f} MB, {runs[0]['packets']} packets, "
        f"{runs[0]['records']} log records, status {runs[0]['status']}); 1 warm processor "
        f"subprocess; {reps} forced sends after a warm-up of {warm['total_s']:.2f} s; load {_load()}"
    )
    print(f"{'':30} {'p50':>7} {'min':>7} {'max':>7}")
    for label, xs in (("send start -> details visible", totals), ("  of which send()", sends)):
        print(f"{label:30} {statistics.median(xs):7.2f} {xs[0]:7.2f} {xs[-1]:7.2f}  s")
    print(f"processor peak RSS {rss[0]:.0f} MB")


def throughput(path: Path, counts: tuple[int, ...], warmup: Path, logdir: Path) -> None:
    """``run_builtin`` vs producer -> processor(s) end to end on a big capture."""
    from wirestream.producers.pcap_producer import PcapProducer

    size = path.stat().st_size
    print(f"\n== throughput: {path.name} ({size / 1e6:.1f} MB); load before {_load()}")
    base = run_child(CHILD_ANALYZE, path)
    base_pps = base["packets"] / base["seconds"]
    rows = [
        (
            "analyze run_builtin (child)",
            base["seconds"],
            base["packets"],
            f"{base['maxrss_kb'] / 1024:.0f}",
            "-",
            "-",
            _load(),
        )
    ]
    for n in counts:
        settings = private_settings()
        procs = Processors(settings, n, logdir)
        producer = PcapProducer(settings)
        watch = DetailsWatch(settings, procs.alive)
        try:
            send_and_wait(producer, watch, warmup, timeout=300)
            cpu0 = sum(procs.cpu_seconds())

            def snapshot(procs: Processors = procs, cpu0: float = cpu0) -> dict:
                return {"cpu": sum(procs.cpu_seconds()) - cpu0, "rss": procs.peak_rss_mb()}

            r = send_and_wait(producer, watch, path, timeout=1800, on_analysed=snapshot)
            cpu, rss = r["cpu"], r["rss"]
        finally:
            watch.close()
            producer.close()
            procs.stop()
            drop_topics(settings)
        if r["packets"] != base["packets"]:
            print(f"  note: sent {r['packets']} packets, analyze read {base['packets']}")
        rows.append(
            (
                f"send -> {n} processor{'s' if n > 1 else ''} (subproc)",
                r["parts_s"],
                r["packets"],
                "+".join(f"{x:.0f}" for x in rss),
                f"{r['send_s']:.1f}",
                f"{cpu:.0f}",
                _load(),
            )
        )
        print(
            f"  {n} processor(s): analysis committed (all parts) {r['parts_s']:.1f} s after send "
            f"start; details visible {r['total_s']:.1f} s, status {r['status']}, "
            f"{r['records']:,} log records"
        )
    print(
        f"{'path':34} {'seconds':>8} {'pkt/s':>9} {'MB/s':>6} {'vs analyze':>10} "
        f"{'peak RSS MB':>12} {'send s':>7} {'proc CPU s':>10}  load after"
    )
    for label, secs, packets, rss, send_s, cpu, load in rows:
        pps = packets / secs
        print(
            f"{label:34} {secs:8.1f} {pps:9,.0f} {size / 1e6 / secs:6.1f} {pps / base_pps:10.2f} "
            f"{rss:>12} {send_s:>7} {cpu:>10}  {load}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("pcap", nargs="?", default=str(SAMPLE), help="capture for the stage figures")
    ap.add_argument("--synthetic", type=int, default=0, help="Use N generated UDP packets instead.")
    ap.add_argument("--size-mb", type=int, default=200, help="size of the replayed trace (MB)")
    ap.add_argument("--latency-mb", type=float, default=2.0, help="size of the latency capture")
    ap.add_argument("--reps", type=int, default=5, help="latency repetitions")
    ap.add_argument("--keep", type=Path, help="folder to keep (and reuse) the replayed trace in")
    ap.add_argument("--skip-big", action="store_true", help="stages and latency only")
    ap.add_argument("--skip-stages", action="store_true", help="latency and throughput only")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not args.skip_stages:
            path = Path(args.pcap)
            if args.synthetic:
                path = _synthetic(args.synthetic, folder / "synthetic.pcap")
            stage_throughput(path)

        big = folder / f"replayed-{args.size_mb}mb.pcap"
        if not big.is_file():
            t = time.perf_counter()
            written = build_big_trace(SAMPLE, big, args.size_mb)
            print(f"\nbuilt {big.name}: {written / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s")
        small = pcap_prefix(big, folder / "latency.pcap", int(args.latency_mb * 1e6))
        latency(small, args.reps, Path(tmp))
        if not args.skip_big:
            throughput(big, (1, 2), small, Path(tmp))


if __name__ == "__main__":
    main()
