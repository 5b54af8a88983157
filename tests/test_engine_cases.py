"""The built-in engine over every shared Zeek reference case, scored by zeek_compare.

Fails when any log falls below the floor recorded in fidelity_floor.json (exact-rows % and
fields %, per log, over all cases); raise the floor there as fidelity improves. Also checks
the one case whose baseline is printed text rather than a log (conn_state on RST traces).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

FLOOR_FILE = Path(__file__).with_name("fidelity_floor.json")
ANALYZE = f"{shlex.quote(sys.executable)} -m wirestream analyze {{pcap}} --out {{out}} {{flags}}"


def _compare_json(output: str) -> dict:
    """The JSON block zeek_compare prints between its per-case lines and its last line."""
    lines = output.splitlines()
    start = lines.index("{")
    end = max(i for i, line in enumerate(lines) if line == "}")
    return json.loads("\n".join(lines[start : end + 1]))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_log_stays_above_its_fidelity_floor(shared: Path) -> None:
    tool = shared / "tools" / "zeek_compare.py"
    cases = shared / "zeek-ref" / "cases"
    if not tool.is_file():
        pytest.skip(f"{tool} not found")
    proc = subprocess.run(
        [sys.executable, str(tool), "--cases", str(cases), "--run", ANALYZE, "--json"],
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = _compare_json(proc.stdout)
    floors = json.loads(FLOOR_FILE.read_text())
    below = []
    for log, floor in floors.items():
        got = result["per_log"].get(log)
        if got is None:
            below.append(f"{log}: no longer scored")
            continue
        rows = 100.0 * got["exact"] / got["base_rows"] if got["base_rows"] else 100.0
        fields = 100.0 * got["field_eq"] / got["field_total"] if got["field_total"] else 100.0
        if rows + 1e-9 < floor["exact_rows_pct"] or fields + 1e-9 < floor["fields_pct"]:
            below.append(
                f"{log}: exact rows {rows:.1f}% (floor {floor['exact_rows_pct']}), "
                f"fields {fields:.1f}% (floor {floor['fields_pct']})"
            )
    assert not below, "below the fidelity floor:\n" + "\n".join(below) + "\n" + proc.stdout[-3000:]


@pytest.mark.parametrize(
    ("trace", "history", "state"),
    [
        ("single-rst.pcap", "R", "OTH"),
        ("syn-then-rst.pcap", "SR", "RSTOS0"),
        ("syn-then-ack-then-rst.pcap", "SaR", "RSTOS0"),
        ("syn-then-stuff-then-rst.pcap", "SaFR", "OTH"),
    ],
)
def test_rst_behaviour_case(shared: Path, trace: str, history: str, state: str) -> None:
    """scripts.base.protocols.conn.conn_state-RST-behavior prints history and conn_state."""
    from engine_kit import ListSink
    from wirestream.processors.engine.engine import Engine
    from wirestream.processors.engine.pcapio import read_packets

    path = (
        shared
        / "zeek-ref"
        / "cases"
        / "scripts.base.protocols.conn.conn_state-RST-behavior"
        / trace
    )
    sink = ListSink()
    engine = Engine(sink, ignore_checksums=True)
    for packet in read_packets(path):
        engine.process(packet)
    engine.finish()
    rows = sink.rows("conn")
    assert [(r["history"], r["conn_state"]) for r in rows] == [(history, state)]
