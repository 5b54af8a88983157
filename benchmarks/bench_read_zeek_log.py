"""Benchmark: read_zeek_log vs zat's LogToDataFrame on a >= 1M-row conn.log, in the same run.

Builds the log from the tsv-2014 sample (rows repeated with shifted times and fresh uids), then
reads it once per contender in its own subprocess (so each peak RSS is its own) and prints rows/s,
the speed ratio and peak memory side by side. Run: ``.venv/bin/python benchmarks/bench_read_zeek_log.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("WIRESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLE = SHARED / "samples/zeek-logs/tsv-2014/conn.log"


def build_log(target: Path, rows: int) -> int:
    """Repeat the sample's data rows, shifting ``ts`` and renaming ``uid`` so no row repeats."""
    lines = SAMPLE.read_text().splitlines()
    header = [line for line in lines if line.startswith("#") and not line.startswith("#close")]
    close = [line for line in lines if line.startswith("#close")]
    data = [line.split("\t") for line in lines if not line.startswith("#")]
    written = 0
    with target.open("w") as out:
        out.write("\n".join(header) + "\n")
        copy = 0
        while written < rows:
            shift = copy * 3600.0
            for fields in data:
                fields = list(fields)
                fields[0] = f"{float(fields[0]) + shift:.6f}"
                fields[1] = f"C{copy:07d}{written % 100000:06d}x"
                out.write("\t".join(fields) + "\n")
                written += 1
            copy += 1
        out.write("\n".join(close) + "\n")
    return written


def run_one(reader: str, path: Path) -> dict:
    """Read ``path`` with one reader (in this process) and report time, rows and peak RSS."""
    if reader == "wirestream":
        from wirestream.schemas.zeeklog.dataframe import read_zeek_log

        start, cpu = time.perf_counter(), time.process_time()
        frame = read_zeek_log(path)
    else:
        from zat.log_to_dataframe import LogToDataFrame

        start, cpu = time.perf_counter(), time.process_time()
        frame = LogToDataFrame().create_dataframe(str(path))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "reader": reader,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows": len(frame),
        "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the generated conn.log"
    )
    parser.add_argument("--repeat", type=int, default=2, help="reads per reader (best time counts)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, Path(args.path))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conn.log"
        rows = build_log(path, args.rows)
        size_mib = path.stat().st_size / 2**20
        print(f"conn.log: {rows:,} rows, {size_mib:.0f} MiB")
        results: dict[str, dict] = {}
        for _ in range(args.repeat):
            for reader in ("zat", "wirestream"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--run", reader, "--path", str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                best = results.get(reader)
                if best is None or result["seconds"] < best["seconds"]:
                    results[reader] = result
        print(f"{'reader':<12}{'seconds':>10}{'cpu s':>8}{'rows/s':>14}{'peak MiB':>11}")
        for reader in ("zat", "wirestream"):
            r = results[reader]
            print(
                f"{reader:<12}{r['seconds']:>10.2f}{r['cpu_seconds']:>8.2f}"
                f"{r['rows'] / r['seconds']:>14,.0f}{r['peak_mib']:>11.0f}"
            )
        ratio = results["zat"]["seconds"] / results["wirestream"]["seconds"]
        cpu_ratio = results["zat"]["cpu_seconds"] / results["wirestream"]["cpu_seconds"]
        print(f"speed ratio wirestream/zat: {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu")


if __name__ == "__main__":
    main()
