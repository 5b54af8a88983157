"""Every log Zeek wrote in the reference data reads and writes back byte for byte.

The baselines were post-processed by Zeek's test harness; the test undoes exactly that (see
``unmask``) and passes the writer options each test script set (see ``options_for``).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from wirestream.schemas.zeeklog import JsonOptions
from wirestream.schemas.zeeklog.roundtrip import rewrite_zeek_log

MASKED_TIME = b"XXXXXXXXXX.XXXXXX"
SENTINEL_TIME = b"1234567890.123456"


def unmask(data: bytes) -> bytes:
    """Undo btest's canonifier: drop its banner line, give masked times a value, and put back the
    tab the canonifier turned into a space in ``#open``/``#close`` lines."""
    if data.startswith(b"### BTest"):
        data = data.split(b"\n", 1)[1]
    data = data.replace(MASKED_TIME, SENTINEL_TIME)
    return data.replace(b"#open XXXX", b"#open\tXXXX").replace(b"#close XXXX", b"#close\tXXXX")


def options_for(path: Path) -> dict:
    """The LogAscii options the test script ran Zeek with (named by the baseline file)."""
    name = path.name
    script = path.parent.parent / "test.zeek"
    opts: dict = {}
    if script.exists() and re.search(r"enable_utf_8\s*=\s*F", script.read_text()):
        opts["utf8"] = False
    if name.endswith(".pua"):
        opts["json_options"] = JsonOptions(string_policy="pua")
    elif name in ("ssh.log.tsv", "ssh-tsv.log"):
        opts["json_options"] = JsonOptions(string_policy="tsv")
    elif "iso8601" in name or "iso-timestamps" in str(path):
        opts["json_options"] = JsonOptions(timestamps="iso8601")
    elif name.endswith(".ts_millis"):
        opts["json_options"] = JsonOptions(timestamps="millis")
    elif name.endswith(".ts_millis_unsigned"):
        opts["json_options"] = JsonOptions(timestamps="millis_unsigned")
    return opts


def baseline_logs(shared: Path) -> list[Path]:
    ref = shared / "zeek-ref"
    files = sorted(ref.glob("cases/*/baseline/*")) + sorted(
        ref.glob("format_examples/*/baseline/*")
    )
    # "output" and ".stdout" files are Zeek's stdout (print statements), not logs.
    return [f for f in files if f.is_file() and f.name not in ("output", ".stdout")]


def test_every_reference_log_round_trips_byte_for_byte(shared):
    files = baseline_logs(shared)
    assert len(files) >= 100
    failures = []
    for path in files:
        data = unmask(path.read_bytes())
        try:
            out = rewrite_zeek_log(data, **options_for(path))
        except Exception as exc:  # reported with the file name below
            failures.append(f"{path}: {exc!r}")
            continue
        if out != data:
            failures.append(str(path))
    share = 1 - len(failures) / len(files)
    print(f"byte-identical: {len(files) - len(failures)}/{len(files)} = {share:.1%}")
    assert not failures, failures


def test_rewrite_detects_a_changed_byte():
    data = (
        b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tt\n"
        b"#open\t2020-01-01-00-00-00\n#fields\td\n#types\tdouble\n1.50\n#close\t2020-01-01-00-00-01\n"
    )
    # Zeek never writes "1.50" (it prints 1.5): the rewrite must differ, so the check can fail.
    assert rewrite_zeek_log(data) != data
    assert rewrite_zeek_log(data.replace(b"1.50", b"1.5")) == data.replace(b"1.50", b"1.5")


SAMPLE_OLD_WRITER = {
    # Logs from older Zeek/Bro versions, whose writers printed differently from Zeek 9.1:
    "conn_date_issue.log": "tab instead of space after #separator",
    "dhcp.log": "2014 writer printed intervals like 4.294967e+09",
    "dhcp.log.gz": "2014 writer printed intervals like 4.294967e+09",
    "dhcp_002.log": "2014 writer printed intervals like 4.294967e+09",
    "dhcp_002.log.gz": "2014 writer printed intervals like 4.294967e+09",
    "ssl.log": "old writer left backslashes unescaped",
    "http.log.corrupt.gz": "truncated on purpose",
}


def test_samples_from_current_writers_round_trip(shared):
    """TSV samples round-trip except where an older writer printed differently (listed)."""
    root = shared / "samples" / "zeek-logs"
    checked = 0
    for path in sorted(root.glob("tsv-*/*")):
        if path.name in SAMPLE_OLD_WRITER:
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert rewrite_zeek_log(data) == data, path
        checked += 1
    assert checked >= 15
