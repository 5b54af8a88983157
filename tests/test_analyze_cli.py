"""``wirestream analyze``: traces in, Zeek log folder out; and the external zeek runner."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pktbuild as pb
import pytest
from click.testing import CliRunner
from wirestream.processors.analyze_cli import AnalyzeOptions, LogFolderSink
from wirestream.processors.engine.bpf import BpfError, libpcap
from wirestream.processors.zeek_engine import find_zeek, run_zeek, zeek_command
from wirestream.schemas.zeeklog import read_zeek_records

from wirestream.cli import cli

pytestmark = pytest.mark.timeout(120)

A, B = "10.1.1.1", "10.2.2.2"


def dns_exchange(t0: float, sport: int = 5353) -> list[tuple[float, bytes]]:
    query = pb.udp4_frame(
        sport, 53, b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", src=A, dst=B
    )
    answer = pb.udp4_frame(
        53, sport, b"\x12\x34\x81\x80\x00\x00\x00\x00\x00\x00\x00\x00", src=B, dst=A
    )
    return [(t0, query), (t0 + 0.25, answer)]


def tcp_handshake(t0: float) -> list[tuple[float, bytes]]:
    return [
        (t0, pb.tcp4_frame(40000, 8080, flags="S", seq=100, src=A, dst=B)),
        (t0 + 0.1, pb.tcp4_frame(8080, 40000, flags="SA", seq=500, ack=101, src=B, dst=A)),
        (t0 + 0.2, pb.tcp4_frame(40000, 8080, flags="A", seq=101, ack=501, src=A, dst=B)),
    ]


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["analyze", *args], catch_exceptions=False)


def rows(path: Path) -> list[dict]:
    return list(read_zeek_records(path))


def baseline_rows(path: Path) -> list[dict[str, str]]:
    """Raw text rows of a BTest baseline (its masked timestamps are not valid Zeek values)."""
    fields: list[str] = []
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
        elif line and not line.startswith("#"):
            out.append(dict(zip(fields, line.split("\t"), strict=True)))
    return out


def test_analyze_writes_zeek_logs(tmp_path: Path) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1000.0) + tcp_handshake(1001.0))
    out = tmp_path / "logs"
    result = run(str(trace), "--out", str(out), "--engine", "builtin", "--seed", "1")
    assert result.exit_code == 0, result.output
    conns = rows(out / "conn.log")
    assert sorted((c["proto"], c["id.resp_p"]) for c in conns) == [("tcp", 8080), ("udp", 53)]
    udp = next(c for c in conns if c["proto"] == "udp")
    assert udp["id.orig_h"] == A and udp["orig_pkts"] == 1 and udp["resp_pkts"] == 1
    assert udp["duration"] == pytest.approx(0.25)
    (pf,) = rows(out / "packet_filter.log")
    assert pf["filter"] == "ip or not ip" and pf["success"] is True
    text = (out / "conn.log").read_text()
    assert text.startswith("#separator \\x09\n") and "#close\t" in text
    assert "intake: link types {1: 5}; 5 IP datagrams, 0 fragments" in result.output


def test_json_and_bare(tmp_path: Path) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(5.0))
    out = tmp_path / "j"
    result = run(
        str(trace), "base/protocols/conn", "--out", str(out), "--json", "-b", "--engine", "builtin"
    )
    assert result.exit_code == 0, result.output
    lines = (out / "conn.log").read_text().splitlines()
    assert json.loads(lines[0])["id.resp_p"] == 53
    assert not (out / "packet_filter.log").exists()  # bare mode does not load the framework
    # Only conn was loaded: no DNS analyzer (so no dns.log, no service), as zeek -b.
    assert json.loads(lines[0]).get("service") is None
    assert not (out / "dns.log").exists()
    bare = tmp_path / "nothing"
    assert run(str(trace), "-r", str(trace), "--out", str(bare), "-b").exit_code == 0
    assert not (bare / "conn.log").exists()  # zeek -b alone loads no conn.log either


def test_several_traces_merge_by_time(tmp_path: Path) -> None:
    # The handshake is split over two files; only a time-ordered merge sees S, SA, A in order.
    hs = tcp_handshake(10.0)
    one = pb.write_pcap(tmp_path / "1.pcap", [hs[0], hs[2]])
    two = pb.write_pcap(tmp_path / "2.pcap", [hs[1]])
    out = tmp_path / "m"
    assert run(str(one), str(two), "--out", str(out), "--engine", "builtin").exit_code == 0
    (conn,) = rows(out / "conn.log")
    assert conn["history"] == "ShA" and conn["conn_state"] == "S1"


def test_capture_filter(tmp_path: Path) -> None:
    try:
        libpcap()
    except BpfError as exc:
        pytest.skip(str(exc))
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1.0) + tcp_handshake(2.0))
    out = tmp_path / "f"
    assert run(str(trace), "--out", str(out), "-f", "tcp", "--engine", "builtin").exit_code == 0
    assert [c["proto"] for c in rows(out / "conn.log")] == ["tcp"]
    assert rows(out / "packet_filter.log")[0]["filter"] == "tcp"
    bad = run(
        str(trace), "--out", str(tmp_path / "g"), "-f", "port nonsense", "--engine", "builtin"
    )
    assert bad.exit_code != 0 and "bad capture filter" in bad.output


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "none.pcap"), "--out", str(tmp_path / "o"))
    assert missing.exit_code != 0 and "no such capture file" in missing.output
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    result = run(str(junk), "--out", str(tmp_path / "o2"), "--engine", "builtin")
    assert result.exit_code != 0 and "unknown file format" in result.output
    assert not (tmp_path / "o2").exists()  # refused before any output was made


def test_truncated_trace_keeps_logs_of_what_came_before(tmp_path: Path) -> None:
    data = pb.pcap_bytes(dns_exchange(1.0) + tcp_handshake(2.0))[:-10]
    trace = tmp_path / "cut.pcap"
    trace.write_bytes(data)
    out = tmp_path / "o"
    result = run(str(trace), "--out", str(out), "--engine", "builtin")
    assert result.exit_code != 0 and "truncated capture" in result.output
    assert {c["proto"] for c in rows(out / "conn.log")} == {"udp", "tcp"}


def test_shared_cases_through_the_cli(shared, tmp_path: Path) -> None:
    cases = shared / "zeek-ref/cases"
    for case, flags in [("core.pppoe", []), ("core.q-in-q", []), ("core.pcapng-pktsrc", ["-C"])]:
        (trace,) = [p for p in (cases / case).iterdir() if p.suffix in (".pcap", ".pcapng")]
        out = tmp_path / case
        assert run(str(trace), "--out", str(out), "--engine", "builtin", *flags).exit_code == 0
        ours = {
            (r["id.orig_h"], r["id.orig_p"], r["id.resp_h"], r["id.resp_p"])
            for r in rows(out / "conn.log")
        }
        base = {
            (r["id.orig_h"], int(r["id.orig_p"]), r["id.resp_h"], int(r["id.resp_p"]))
            for r in baseline_rows(cases / case / "baseline/conn.log")
        }
        assert ours == base, case


# -- the external engine, with a fake zeek (real Zeek is not installable here) -----------------

FAKE_ZEEK = """#!{python}
import json, os, sys
open("argv.json", "w").write(json.dumps(sys.argv[1:]))
with open(os.environ["FAKE_ZEEK_RECORD"], "w") as fh:
    json.dump(sys.argv[1:], fh)
if os.environ.get("FAKE_ZEEK_FAIL"):
    print("fatal error: trace is broken", file=sys.stderr)
    sys.exit(1)
if "policy/tuning/json-logs" in sys.argv:
    with open("conn.log", "w") as fh:
        fh.write(json.dumps({"ts": 1.5, "uid": "Cabc", "proto": "udp", "id.orig_p": 53}) + "\\n")
else:
    with open("conn.log", "w") as fh:
        fh.write("#separator \\\\x09\\n#set_separator\\t,\\n#empty_field\\t(empty)\\n#unset_field\\t-\\n"
                 "#path\\tconn\\n#open\\t2020-01-01-00-00-00\\n#fields\\tts\\tuid\\tproto\\n"
                 "#types\\ttime\\tstring\\tenum\\n1.500000\\tCabc\\tudp\\n#close\\t2020-01-01-00-00-01\\n")
os.makedirs("extract_files")
open("extract_files/extract-1.5-HTTP-FAbc", "wb").write(b"payload")
"""


@pytest.fixture
def fake_zeek(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin" / "zeek"
    path.parent.mkdir()
    path.write_text(FAKE_ZEEK.replace("{python}", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_ZEEK_RECORD", str(tmp_path / "argv.json"))
    return path


def test_zeek_command_construction(tmp_path: Path) -> None:
    options = AnalyzeOptions(
        ignore_checksums=True,
        capture_filter="port 53",
        hashes=("MD5",),
        extract=True,
        local_nets=("10.0.0.0/8",),
    )
    argv = zeek_command("/opt/zeek/bin/zeek", ["a.pcap", "-"], options, json_logs=True)
    assert argv[:4] == ["/opt/zeek/bin/zeek", "-C", "-f", "port 53"]
    assert argv[4:8] == ["-r", str(Path("a.pcap").resolve()), "-r", "-"]
    assert "policy/tuning/json-logs" in argv and "policy/frameworks/files/hash-all-files" in argv
    assert "policy/frameworks/files/extract-all-files" in argv
    assert argv[-1] == "Site::local_nets += { 10.0.0.0/8 }"
    # The user's own Zeek scripts, redefs and -e code reach real Zeek as given, last.
    own = ("/abs/local.zeek", "base/protocols/dns", "Tunnel::delay_teredo_confirmation=F")
    options = AnalyzeOptions(zeek_scripts=(*own, "-e", "redef ignore_checksums = T;"))
    argv = zeek_command("zeek", ["a.pcap"], options, json_logs=False)
    assert argv[3:] == [*own, "-e", "redef ignore_checksums = T;"]


def test_find_zeek(fake_zeek: Path, tmp_path: Path) -> None:
    assert find_zeek(str(fake_zeek)) == str(fake_zeek)
    assert find_zeek(str(fake_zeek.parent.parent)) == str(fake_zeek)  # a Zeek prefix folder
    assert find_zeek(str(tmp_path / "nope")) is None


def test_run_zeek_collects_logs_and_files(fake_zeek: Path, tmp_path: Path) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1.0))
    sink = LogFolderSink(tmp_path / "out")
    result = run_zeek(str(fake_zeek), [str(trace)], sink, AnalyzeOptions(ignore_checksums=True))
    sink.close()
    assert json.loads((tmp_path / "argv.json").read_text()) == ["-C", "-r", str(trace)]
    assert result.engine == "zeek" and result.rows == {"conn": 1}
    (conn,) = rows(tmp_path / "out/conn.log")
    assert conn["ts"] == 1.5 and conn["proto"] == "udp"
    assert (tmp_path / "out/extract_files/extract-1.5-HTTP-FAbc").read_bytes() == b"payload"


def test_run_zeek_reads_json_logs(fake_zeek: Path, tmp_path: Path) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1.0))
    sink = LogFolderSink(tmp_path / "out", "json")
    result = run_zeek(str(fake_zeek), [str(trace)], sink, AnalyzeOptions(), json_logs=True)
    sink.close()
    assert result.rows == {"conn": 1}
    (conn,) = rows(tmp_path / "out/conn.log")
    assert conn["ts"] == 1.5 and conn["id.orig_p"] == 53 and conn["proto"] == "udp"


def test_engine_auto_picks_zeek_when_configured(
    fake_zeek: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("WIRESTREAM_ZEEK_PATH", str(fake_zeek))
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1.0))
    result = run(str(trace), "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "zeek:" in result.output
    monkeypatch.setenv("FAKE_ZEEK_FAIL", "1")
    failed = run(str(trace), "--out", str(tmp_path / "o2"), "--engine", "zeek")
    assert failed.exit_code != 0 and "trace is broken" in failed.output


def test_engine_zeek_without_zeek_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WIRESTREAM_ZEEK_PATH", str(tmp_path / "missing-zeek"))
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(1.0))
    result = run(str(trace), "--out", str(tmp_path / "o"), "--engine", "zeek")
    assert result.exit_code != 0 and "no zeek binary found" in result.output
    assert os.path.exists(trace)


def test_zeek_scripts_and_redefs_on_the_command_line(tmp_path: Path, caplog) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(5.0))
    local = tmp_path / "local.zeek"
    local.write_text(
        "@load protocols/conn/vlan-logging\n"
        "redef Site::local_nets = { 10.2.0.0/16 };\n"
        "event connection_state_remove(c: connection) { print c$uid; }\n"
    )
    out = tmp_path / "s"
    result = run("-r", str(trace), str(local), "--out", str(out), "--engine", "builtin")
    assert result.exit_code == 0, result.output
    (conn,) = rows(out / "conn.log")
    assert (conn["local_orig"], conn["local_resp"]) == (False, True)  # A is not in 10.2/16
    assert "vlan" in conn  # the policy's columns
    assert "event connection_state_remove" in caplog.text  # ignored, and said so
    # A command-line redef after the script wins over it; an explicit flag wins over both.
    out2 = tmp_path / "f"
    redef = "Site::local_nets={10.1.0.0/16}"
    assert run(str(trace), str(local), redef, "--out", str(out2)).exit_code == 0
    assert rows(out2 / "conn.log")[0]["local_orig"] is True
    out_e = tmp_path / "e"
    code = "redef Site::local_nets = { 10.1.0.0/16 };"
    assert run(str(trace), str(local), "-e", code, "--out", str(out_e)).exit_code == 0
    assert rows(out_e / "conn.log")[0]["local_orig"] is True  # -e comes after the script
    out3 = tmp_path / "g"
    args = (str(trace), str(local), redef, "--local-nets", "192.168.0.0/16", "--out", str(out3))
    assert run(*args).exit_code == 0
    assert (rows(out3 / "conn.log")[0]["local_orig"], rows(out3 / "conn.log")[0]["local_resp"]) == (
        False,
        False,
    )


def test_broken_zeek_script_is_a_clear_error(tmp_path: Path) -> None:
    trace = pb.write_pcap(tmp_path / "t.pcap", dns_exchange(5.0))
    bad = tmp_path / "bad.zeek"
    bad.write_text("event zeek_init() {\n")
    result = run(str(trace), str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "unclosed" in result.output
    result = run(str(trace), "Site::local_nets={nonsense}", "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "bad subnet" in result.output
    assert run("--out", str(tmp_path / "o")).exit_code == 2  # no trace at all


def test_bare_mode_likely_server_ports_come_from_loaded_scripts(tmp_path: Path) -> None:
    # A DNS answer seen before its query: with the DNS scripts loaded 53/udp is a likely server
    # port and Zeek flips the connection; with only base/protocols/conn it does not.
    answer_first = list(reversed(dns_exchange(5.0, sport=40000)))
    answer_first = [(5.0 + i, frame) for i, (_, frame) in enumerate(answer_first)]
    trace = pb.write_pcap(tmp_path / "t.pcap", answer_first)
    for loads, orig_p in ((["base/protocols/conn", "base/protocols/dns"], 40000), ([], 53)):
        out = tmp_path / f"o{len(loads)}"
        args = ["-b", "-r", str(trace), "base/protocols/conn", *loads, "--out", str(out)]
        assert run(*args).exit_code == 0
        assert rows(out / "conn.log")[0]["id.orig_p"] == orig_p
