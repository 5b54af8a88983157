"""Cases whose Zeek run depends on the case's own script or command line: run with that exact
command (zeek -> wirestream analyze, via tools/zeek_cases.py), the log is exact.

zeek_compare passes only -C/-f, so these rows count as misses in the standard all-case score;
here nothing is told to the engine but what the case told Zeek (@load lines, redefs, -b, event
handlers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "zeek_cases.py"

CASES = {
    # case -> the log that depends on the case's settings (what in its command sets them)
    "core.tunnels.gtp.inner_teredo": "conn",  # "Tunnel::delay_teredo_confirmation=F"
    "core.history-flip": "conn",  # mac-logging, redef Site::local_nets, -b
    "scripts.policy.protocols.conn.vlan-logging": "conn",  # @load protocols/conn/vlan-logging
    "scripts.base.files.x509.files": "files",  # redef X509::log_x509_in_files_log = T
    "scripts.base.protocols.icmp.icmp6-nd-short-options": "weird",  # ND event handlers
    "scripts.base.protocols.ftp.ftp-auth-tls": "ftp",  # redef FTP::logged_commands += ...
    "scripts.base.protocols.ftp.gridftp": "x509",  # X509::relog_known_certificates_after=0
    "scripts.base.protocols.ftp.ftp-ipv6": "ftp",  # -b: ftp's own load brings ftp_data
    # redef SSL::log_include_server_certificate_subject_issuer=T: subject/issuer columns
    "scripts.base.protocols.rdp.rdp-to-ssl": "ssl",
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("case", "log"), CASES.items())
def test_case_exact_with_its_own_command(shared, case, log):
    result = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            "--cases",
            str(shared / "zeek-ref" / "cases"),
            "--scorer",
            str(shared / "tools" / "zeek_compare.py"),
            "--only",
            case,
            "--logs",
            log,
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr
    assert "command exited" not in result.stderr, result.stderr
    report, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("\n{") + 1 :])
    scored = report["per_log"][f"{log}.log"]
    assert scored["base_rows"] > 0
    assert scored["exact"] == scored["base_rows"], report["cases"]


def test_translate_zeek_command(shared):
    sys.path.insert(0, str(TOOL.parent))
    try:
        import zeek_cases
    finally:
        sys.path.pop(0)
    case_dir = shared / "zeek-ref" / "cases" / "scripts.base.protocols.snmp.v3"
    case = json.loads((case_dir / "case.json").read_text())
    (command,) = zeek_cases.zeek_commands(case)
    args, warnings = zeek_cases.translate(command, case_dir, case)
    assert args == [
        "-b",
        "-r",
        str(case_dir / "snmpv3_get_next.pcap"),
        str(case_dir / "test.zeek"),
    ]  # '>out1' dropped
    assert warnings == [
        "$SCRIPTS/snmp-test.zeek dropped ($SCRIPTS files are not shipped with the cases)"
    ]
    with pytest.raises(ValueError, match="no trace"):
        zeek_cases.translate("zeek -r $TRACES/other.pcap", case_dir, case)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_own_commands_keep_every_log_above_its_floor(shared):
    """Bare mode and script settings never lose what the standard template scores."""
    from test_engine_cases import FLOOR_FILE, _compare_json

    proc = subprocess.run(
        [sys.executable, str(TOOL), "--cases", str(shared / "zeek-ref" / "cases"), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=850,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_log = _compare_json(proc.stdout)["per_log"]
    below = []
    for log, floor in json.loads(FLOOR_FILE.read_text()).items():
        got = per_log[log]
        rows = 100.0 * got["exact"] / got["base_rows"]
        fields = 100.0 * got["field_eq"] / got["field_total"]
        if rows + 1e-9 < floor["exact_rows_pct"] or fields + 1e-9 < floor["fields_pct"]:
            below.append(f"{log}: {rows:.1f}% rows, {fields:.1f}% fields; floor {floor}")
    assert not below, "\n".join(below)
