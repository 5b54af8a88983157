#!/usr/bin/env python3
"""Score the built-in engine on the shared Zeek reference cases, each run with ITS OWN command.

The shared scorer (zeek_compare.py) runs one command template for every case and passes only
-C/-f; the cases' own scripts (redefs, @loads, -b) are left out. This tool gives the scorer a
``--run`` that, per case, replays the case's exact ``zeek`` command lines with ``zeek`` ->
``wirestream analyze --out OUT``, ``$TRACES/...`` -> the case's trace, ``%INPUT`` -> its
test.zeek (``$SCRIPTS/...`` helpers are not shipped: dropped with a warning; shell
redirections dropped). The scorer then prints its usual per-log lines and ``overall:`` line.

  .venv/bin/python tools/zeek_cases.py [--cases DIR] [zeek_compare options: --only, --logs, --json, --keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WIRESTREAM_SHARED", ROOT.parent / "shared"))
log = logging.getLogger("zeek_cases")

_VAR = re.compile(r"^\$(?:\{(\w+)\}|(\w+))(/.*)?$")


def zeek_commands(case: dict) -> list[str]:
    """The case's ``zeek ...`` exec lines, in order."""
    return [c.strip() for c in case.get("exec", []) if c.lstrip().startswith("zeek ")]


def translate(command: str, case_dir: Path, case: dict) -> tuple[list[str], list[str]]:
    """One ``zeek`` command line -> (wirestream analyze arguments after ``--out OUT``, warnings)."""
    argv = shlex.split(command)
    if not argv or argv[0] != "zeek":
        raise ValueError(f"not a zeek command: {command!r}")
    traces = {t["file"] for t in case["traces"]}
    out: list[str] = []
    warnings: list[str] = []
    skip_next = False
    for arg in argv[1:]:
        if skip_next:
            skip_next = False
            continue
        if arg in (">", ">>", "2>", "2>>"):  # redirection with the target as the next word
            skip_next = True
            continue
        if arg.startswith((">", "2>")) or arg == "2>&1":
            continue
        if arg == "%INPUT":
            out.append(str(case_dir / "test.zeek"))
            continue
        m = _VAR.match(arg)
        if m:
            var, rest = m.group(1) or m.group(2), m.group(3) or ""
            if var == "TRACES":
                name = rest.rsplit("/", 1)[-1]
                if name not in traces:
                    raise ValueError(f"{arg}: the case has no trace {name!r}")
                out.append(str(case_dir / name))
            else:
                warnings.append(f"{arg} dropped (${var} files are not shipped with the cases)")
            continue
        out.append(arg)
    return out, warnings


def run_case(out_dir: Path, traces: list[str]) -> int:
    """The scorer's ``--run``: replay the case (found from its trace paths) into ``out_dir``."""
    case_dir = Path(traces[0]).resolve().parent
    case = json.loads((case_dir / "case.json").read_text())
    status = 0
    for command in zeek_commands(case):
        args, warnings = translate(command, case_dir, case)
        for warning in warnings:
            log.warning("%s: %s", case["test"], warning)
        argv = [sys.executable, "-m", "wirestream", "analyze", "--out", str(out_dir), *args]
        proc = subprocess.run(argv, check=False)
        status = status or proc.returncode
    return status


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--run-case"]:
        return run_case(Path(argv[1]), argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=Path, default=SHARED / "zeek-ref" / "cases")
    ap.add_argument("--scorer", type=Path, default=SHARED / "tools" / "zeek_compare.py")
    args, passthrough = ap.parse_known_args(argv)
    run = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} --run-case {{out}} {{pcap}}"
    scorer = [sys.executable, str(args.scorer), "--cases", str(args.cases), "--run", run]
    return subprocess.run([*scorer, *passthrough], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
