"""Cases whose Zeek run set script options: with the same settings as flags, conn.log is exact.

zeek_compare passes only -C/-f/-b, so these rows count as misses in the all-case score; this
test proves the engine reproduces them once told what the case's script told Zeek.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIRESTREAM = str(Path(sys.executable).with_name("wirestream"))

CASES = {
    # case -> flags equal to the settings in the case's own zeek command / test.zeek
    "core.tunnels.gtp.inner_teredo": "--no-delay-teredo-confirmation",  # Tunnel::delay_teredo_confirmation=F
    "core.history-flip": "--policy mac-logging --local-nets 125.190.109.0/24",
    "scripts.policy.protocols.conn.vlan-logging": "--policy vlan-logging",
}


@pytest.mark.parametrize(("case", "extra"), CASES.items())
def test_case_exact_with_its_zeek_settings(shared, case, extra, tmp_path):
    run = f"{WIRESTREAM} analyze {{pcap}} --out {{out}} {{flags}} {extra}"
    result = subprocess.run(
        [
            sys.executable,
            str(shared / "tools" / "zeek_compare.py"),
            "--cases",
            str(shared / "zeek-ref" / "cases"),
            "--only",
            case,
            "--logs",
            "conn",
            "--run",
            run,
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("\n{") + 1 :])
    conn = report["per_log"]["conn.log"]
    assert conn["base_rows"] > 0
    assert conn["exact"] == conn["base_rows"], report["cases"]
