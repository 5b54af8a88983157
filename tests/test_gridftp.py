"""GridFTP data-channel detection (gridftp.zeek): thresholds after ssl_established, the
"gridftp-data" service, the data_channel_detected notice handler, skip_further_processing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from wirestream.processors.engine import notice
from wirestream.processors.engine.protocols import gridftp
from wirestream.processors.engine.zeek_script import ZeekSettings, apply_script, option_value

ROOT = Path(__file__).resolve().parents[1]
NULL_CIPHER = "TLS_RSA_WITH_NULL_SHA"
HANDLER = (
    "module GridFTP;\n"
    "redef size_threshold = 2;\n"
    "event GridFTP::data_channel_detected(c: connection)\n"
    "\t{\n"
    '\tlocal msg = fmt("over threshold %d bytes", size_threshold);\n'
    "\tNOTICE([$note=Data_Channel, $msg=msg, $conn=c]);\n"
    "\t}\n"
)


class FakeSession:
    def __init__(self) -> None:
        self.seen: list[bool] = []
        self.is_partial = False

    def process(self, is_orig: bool, *segment: object) -> bool:
        self.seen.append(is_orig)
        return is_orig


class FakeConn:
    """What the watch uses of sessions.Connection, with the engine counting after process()."""

    def __init__(self, engine: SimpleNamespace) -> None:
        self.engine = engine
        self.adapter = FakeSession()
        self.uid = "CUid"
        self.transport = "tcp"
        self.services: list[str] = ["ssl"]
        self.start_time = self.last_time = 100.0
        self.orig_pkts = self.resp_pkts = self.orig_ip_bytes = self.resp_ip_bytes = 0

    def id_tuple(self) -> tuple[str, int, str, int]:
        return ("10.0.0.1", 40000, "10.0.0.2", 50000)

    def confirm(self, service: str) -> None:
        self.services.append(service)

    def packet(self, is_orig: bool, ip_len: int, ts: float) -> None:
        """Engine._tcp: the adapter, then the counters."""
        self.engine.now = ts
        if self.adapter.process(is_orig, 0x18, 0, 0, 1000, b"x", 1, ts):
            self.orig_pkts += 1
            self.orig_ip_bytes += ip_len
        else:
            self.resp_pkts += 1
            self.resp_ip_bytes += ip_len
        self.last_time = ts

    def remove(self) -> None:
        for observer in list(self.engine.observers):
            observer.connection_removed(self)


def make_engine(script: str = HANDLER, analyzers: tuple[str, ...] = ("ftp", "ssl")):
    settings = ZeekSettings()
    apply_script(settings, script, "t.zeek")
    configs = settings.overrides.get("protocol_configs", {})
    engine = SimpleNamespace(
        analyzers=dict.fromkeys(analyzers),
        analyzer_state={},
        observers=[],
        now=100.0,
        handled_events=frozenset(settings.handled_events),
        logs=[],
    )
    engine.sink = SimpleNamespace(log=lambda name, rec: engine.logs.append((name, rec)))
    if "gridftp" in configs:
        gridftp.configure(engine, gridftp.GridftpConfig(**configs["gridftp"]))
    notice.configure(engine, settings.notice_handlers, lambda n: option_value(n, configs))
    return engine


def test_initial_criteria_needs_mutual_certificates_and_a_null_cipher():
    assert gridftp.initial_criteria(NULL_CIPHER, "CN=s", "CN=c")
    assert not gridftp.initial_criteria("TLS_RSA_WITH_AES_256_CBC_SHA", "CN=s", "CN=c")
    assert not gridftp.initial_criteria(NULL_CIPHER, "CN=s", None)
    assert not gridftp.initial_criteria(NULL_CIPHER, None, "CN=c")


def test_crossing_adds_the_service_raises_the_notice_and_freezes_the_connection():
    engine = make_engine()
    conn = FakeConn(engine)
    for ts in (100.0, 100.1, 100.2):
        conn.packet(True, 60, ts)
    conn.packet(False, 800, 100.3)  # the packet that establishes TLS
    session = conn.adapter
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    conn.packet(True, 52, 100.4)  # skipped: the threshold was crossed after the last packet
    conn.packet(False, 52, 100.5)
    assert conn.services == ["ssl", "gridftp-data"]
    assert len(session.seen) == 4  # nothing after the crossing reached the session
    conn.remove()
    assert (conn.orig_pkts, conn.orig_ip_bytes, conn.resp_pkts, conn.resp_ip_bytes) == (
        3,
        180,
        1,
        800,
    )
    ((name, row),) = engine.logs
    assert name == "notice"
    assert row["note"] == "GridFTP::Data_Channel"
    assert row["msg"] == "over threshold 2 bytes"  # the redef'd option, through fmt
    assert row["ts"] == 100.3  # network time after the crossing packet
    assert (row["uid"], row["src"], row["dst"], row["p"], row["proto"]) == (
        "CUid",
        "10.0.0.1",
        "10.0.0.2",
        50000,
        "tcp",
    )


def test_below_the_threshold_the_connection_is_analysed_as_usual():
    engine = make_engine(HANDLER.replace("= 2;", "= 10000;"))
    conn = FakeConn(engine)
    conn.packet(True, 60, 100.0)
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    for i in range(5):
        conn.packet(i % 2 == 0, 1500, 100.1 + i)
    conn.remove()
    assert conn.services == ["ssl"] and not engine.logs
    assert conn.orig_pkts == 4 and conn.resp_pkts == 2
    assert len(conn.adapter.seen) == 6


def test_crossing_later_and_after_max_time():
    engine = make_engine(HANDLER.replace("= 2;", "= 3000;"))
    conn = FakeConn(engine)
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    conn.packet(True, 1500, 100.1)
    conn.packet(True, 1500, 100.2)  # 3000 bytes after this one
    conn.packet(True, 1500, 100.3)  # skipped
    conn.remove()
    assert conn.services[-1] == "gridftp-data" and conn.orig_pkts == 2
    assert engine.logs[0][1]["ts"] == 100.2

    late = FakeConn(engine)
    gridftp.ssl_established(late, NULL_CIPHER, "CN=s", "CN=c")
    late.packet(True, 100, 100.1)
    late.packet(True, 5000, 230.0)  # past GridFTP::max_time (2 min): thresholds deleted
    late.packet(True, 100, 231.0)
    late.remove()
    assert late.services == ["ssl"] and late.orig_pkts == 3


def test_no_watch_without_ftp_loaded_or_with_another_cipher():
    engine = make_engine(analyzers=("ssl",))  # bare mode without base/protocols/ftp
    conn = FakeConn(engine)
    session = conn.adapter
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    assert conn.adapter is session
    conn.engine = make_engine()
    gridftp.ssl_established(conn, "TLS_RSA_WITH_AES_128_CBC_SHA", "CN=s", "CN=c")
    assert conn.adapter is session
    conn.transport = "udp"  # DTLS: not followed
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    assert conn.adapter is session


def test_skip_data_off_keeps_analysing():
    engine = make_engine(HANDLER + "redef GridFTP::skip_data = F;\n")
    conn = FakeConn(engine)
    conn.packet(True, 60, 100.0)
    gridftp.ssl_established(conn, NULL_CIPHER, "CN=s", "CN=c")
    conn.packet(True, 60, 100.1)
    conn.packet(True, 60, 100.2)
    conn.remove()
    assert conn.services[-1] == "gridftp-data" and conn.orig_pkts == 3
    assert len(conn.adapter.seen) == 3


def test_size_threshold_must_be_positive():
    with pytest.raises(ValueError, match="size_threshold"):
        gridftp.GridftpConfig(size_threshold=0)


@pytest.mark.timeout(300)
def test_shared_gridftp_case_conn_and_notice_exact(shared):
    """Zeek's gridftp btest with its own script: the data channel's conn.log row (frozen at
    detection) and the notice are exact."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "zeek_cases.py"),
            "--cases",
            str(shared / "zeek-ref" / "cases"),
            "--scorer",
            str(shared / "tools" / "zeek_compare.py"),
            "--only",
            "scripts.base.protocols.ftp.gridftp",
            "--logs",
            "conn,notice",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr
    report, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("\n{") + 1 :])
    for log in ("conn.log", "notice.log"):
        scored = report["per_log"][log]
        assert scored["base_rows"] > 0
        assert scored["exact"] == scored["base_rows"], (log, report["cases"])
