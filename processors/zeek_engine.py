"""The external engine: run a real ``zeek`` binary and collect its logs through a Sink.

Used where Zeek is installed (``Settings.zeek_path`` or ``zeek`` on PATH). Zeek runs in a
temporary folder with ``-C``/``-f`` as asked, file hashing and extraction loaded when asked,
logs in TSV or JSON; every log it writes is read back with the project's Zeek log reader and
handed record by record to the sink, extracted files as :class:`ExtractedFile`.

UNVERIFIED: Zeek cannot be installed where this was written, so only the command construction
and log collection are tested (with a fake ``zeek`` script); nothing here was run against real
Zeek.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wirestream.processors.engine.api import ExtractedFile

log = logging.getLogger(__name__)

# Zeek scripts loaded on top of the default ones for the options we offer.
HASH_SCRIPT = "policy/frameworks/files/hash-all-files"
EXTRACT_SCRIPT = "policy/frameworks/files/extract-all-files"
VLAN_SCRIPT = "policy/protocols/conn/vlan-logging"
JSON_SCRIPT = "policy/tuning/json-logs"
MAX_EXTRACTED_BYTES = 100 * 1024 * 1024


class ZeekError(RuntimeError):
    """Zeek is missing, failed, or wrote something we cannot read."""


def find_zeek(configured: str = "") -> str | None:
    """The zeek executable to use: the configured path if it is executable, else ``zeek`` on PATH."""
    if configured:
        path = Path(configured).expanduser()
        if path.is_dir():
            path = path / "bin" / "zeek" if (path / "bin" / "zeek").exists() else path / "zeek"
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which("zeek")


def zeek_command(zeek: str, traces: list[str], options: Any, *, json_logs: bool) -> list[str]:
    """The argv for one Zeek run (reading stdin when the trace is ``-``)."""
    argv = [zeek]
    if options.bare:
        argv.append("-b")
    if options.ignore_checksums:
        argv.append("-C")
    if options.capture_filter:
        argv += ["-f", options.capture_filter]
    for trace in traces:
        argv += ["-r", trace if trace == "-" else str(Path(trace).resolve())]
    if json_logs:
        argv.append(JSON_SCRIPT)
    if options.hashes:
        argv.append(HASH_SCRIPT)
    if options.extract:
        argv.append(EXTRACT_SCRIPT)
    if "vlan-logging" in options.policies:
        argv.append(VLAN_SCRIPT)
    if options.local_nets:
        argv.append(f"Site::local_nets += {{ {', '.join(options.local_nets)} }}")
    argv += list(getattr(options, "zeek_scripts", ()))  # the user's own scripts and redefs
    return argv


def collect_logs(workdir: Path, sink: Any) -> dict[str, int]:
    """Feed every ``*.log`` Zeek wrote in ``workdir`` to ``sink`` (rows per log returned)."""
    from wirestream.schemas.zeek_types import zeek_log_schemas
    from wirestream.schemas.zeeklog import read_zeek_records

    schemas = zeek_log_schemas()  # JSON logs carry no #types: Zeek's own columns give them
    rows: dict[str, int] = {}
    for path in sorted(workdir.glob("*.log")):
        name = path.stem
        if name in ("reporter", "loaded_scripts", "stderr", "stdout"):
            continue
        count = 0
        for record in read_zeek_records(path, schema=schemas.get(name)):
            sink.log(name, record)
            count += 1
        rows[name] = count
    return rows


def collect_extracted(workdir: Path, sink: Any) -> int:
    """Hand Zeek's ``extract_files/*`` to the sink (bounded size; names are Zeek's own)."""
    folder = workdir / "extract_files"
    if not folder.is_dir():
        return 0
    count = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        size = path.stat().st_size
        with open(path, "rb") as fh:
            data = fh.read(MAX_EXTRACTED_BYTES)
        fuid = path.name.rsplit("-", 1)[-1]
        sink.file(
            ExtractedFile(
                fuid=fuid,
                data=data,
                truncated=size > MAX_EXTRACTED_BYTES,
                meta={"extracted": path.name, "engine": "zeek"},
            )
        )
        count += 1
    return count


def run_zeek(
    zeek: str,
    traces: list[str],
    sink: Any,
    options: Any,
    *,
    json_logs: bool = False,
    timeout: float | None = None,
) -> Any:
    """Run Zeek over ``traces`` in a temp folder and send its logs to ``sink``."""
    from wirestream.processors.analyze_cli import AnalyzeResult

    argv = zeek_command(zeek, traces, options, json_logs=json_logs)
    stdin = sys.stdin.buffer if "-" in traces else subprocess.DEVNULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wirestream-zeek-") as tmp:
        workdir = Path(tmp)
        log.info("running %s in %s", " ".join(argv), workdir)
        try:
            proc = subprocess.run(
                argv, cwd=workdir, stdin=stdin, capture_output=True, timeout=timeout, check=False
            )
        except OSError as exc:
            raise ZeekError(f"cannot run {zeek}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ZeekError(f"zeek did not finish within {timeout}s") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise ZeekError(
                f"zeek exited with status {proc.returncode}: {err[-1] if err else 'no message'}"
            )
        rows = collect_logs(workdir, sink)
        collect_extracted(workdir, sink)
    result = AnalyzeResult(engine="zeek", seconds=time.perf_counter() - started)
    result.rows = rows
    return result
