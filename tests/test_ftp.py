"""FTP analyzer: NVT lines, command/reply matching, what ftp.log gets when, data channels
expected through the engine and analysed as FTP_DATA files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from analyzer_ctx import FakeContext, tcp_conn
from engine_kit import ListSink, TcpTalk
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import ftp

# ----------------------------------------------------------------------------- helpers


def test_port_arguments() -> None:
    assert ftp.parse_ftp_port("192,168,1,2,4,1") == ftp.FtpPort("192.168.1.2", 1025, True)
    assert not ftp.parse_ftp_port("192,168,1,2,4,256").valid
    assert not ftp.parse_ftp_port("1,2,3,4").valid
    assert ftp.parse_eftp("|2|2001:db8::1|49189|") == ftp.FtpPort("2001:db8::1", 49189, True)
    assert ftp.parse_eftp("|1|10.0.0.1|21|").h == "10.0.0.1"
    assert not ftp.parse_eftp("|2|not-an-address|21|").valid
    assert not ftp.parse_eftp("|2|::1|70000|").valid


def test_passive_replies() -> None:
    pasv = ftp.parse_ftp_pasv("Entering Passive Mode (10,0,0,2,195,80).")
    assert pasv == ftp.FtpPort("10.0.0.2", 50000, True)
    assert ftp.parse_ftp_pasv("Entering Passive Mode 10,0,0,2,195,80").p == 50000
    epsv = ftp.parse_ftp_epsv("Entering Extended Passive Mode (|||57086|)")
    assert epsv == ftp.FtpPort("::", 57086, True)  # no address: the script uses the server's
    assert not ftp.parse_ftp_epsv("no parenthesis").valid


def test_paths_as_zeek_compresses_them() -> None:
    assert ftp.build_path_compressed(".", "robots.txt") == "./robots.txt"
    assert ftp.build_path_compressed("/pub/", "a/../b") == "/pub/b"
    assert ftp.build_path_compressed("/pub", "/etc/x") == "/etc/x"
    assert ftp.normalize_path("/a//b/./c/") == "/a/b/c"
    assert ftp.normalize_path("/..") == "/.."
    assert ftp.extract_path('"/home/user" is the current directory') == "/home/user"
    assert ftp.extract_last_count("Opening BINARY mode data connection for f2 (77 bytes)") == 77


def test_reply_matching_prefers_compatible_then_oldest() -> None:
    pending = {
        1: ftp.CmdArg(1.0, "<init>", "", 1),
        2: ftp.CmdArg(2.0, "USER", "bob", 2),
        3: ftp.CmdArg(3.0, "PASS", "pw", 3),
    }
    best = ftp.best_pending(pending, 220, "Welcome")
    assert best is not None and best.cmd == "<init>"
    best = ftp.best_pending(pending, 331, "Password required for bob")
    assert best is not None and best.cmd == "USER"
    best = ftp.best_pending(pending, 500, "what")  # 500 fits all: the oldest wins
    assert best is not None and best.seq == 1
    assert ftp.best_pending({}, 200, "x") is None


# ----------------------------------------------------------------------------- NVT


def lines(data: bytes, weirds: list[str] | None = None) -> list[bytes]:
    nvt = ftp.NvtLines((weirds if weirds is not None else []).append)
    return list(nvt.feed(data))


def test_nvt_cuts_lines_and_drops_telnet_options() -> None:
    assert lines(b"USER a\r\nPASS b\nNOOP") == [b"USER a", b"PASS b"]
    assert lines(b"\xff\xf4\xff\xf2ABOR\r\n") == [b"ABOR"]  # IAC IP IAC DM
    assert lines(b"A\xff\xfb\x01B\r\n") == [b"AB"]  # IAC WILL ECHO
    assert lines(b"A\xff\xfa\x18\x01\xff\xf0B\r\n") == [b"AB"]  # a suboption
    assert lines(b"A\xff\xffB\n") == [b"A\xffB"]  # IAC IAC is the byte itself


def test_nvt_weirds_and_partial_line() -> None:
    weirds: list[str] = []
    assert lines(b"A\0B\0C\r\nD\rE\n", weirds) == [b"AB\0C", b"D\rE"]
    assert weirds == ["NUL_in_line", "line_terminated_with_single_CR"]
    nvt = ftp.NvtLines(weirds.append)
    assert list(nvt.feed(b"QUIT")) == [] and nvt.partial() == b"QUIT" and nvt.partial() is None


# ----------------------------------------------------------------------------- control channel


@dataclass
class FtpContext(FakeContext):
    """The fake context plus what FTP needs from the engine."""

    shared_state: dict[str, Any] = field(default_factory=dict)
    expected: list[tuple[str | None, str, int, str, float]] = field(default_factory=list)

    def expect_connection(
        self, orig_h: str | None, resp_h: str, resp_p: int, analyzer: str, timeout: float
    ) -> None:
        self.expected.append((orig_h, resp_h, resp_p, analyzer, timeout))


class Session:
    def __init__(self, config: ftp.FtpConfig | None = None) -> None:
        self.ctx = FtpContext(tcp_conn(21))
        if config is not None:
            self.ctx.shared_state[ftp.CONFIG_KEY] = config
        self.a = ftp.FtpAnalyzer(self.ctx)
        self.t = 100.0

    def c(self, line: str) -> None:
        self.t += 1
        self.a.data(True, line.encode() + b"\r\n", self.t)

    def s(self, line: str) -> None:
        self.t += 1
        self.a.data(False, line.encode() + b"\r\n", self.t)

    def rows(self) -> list[dict[str, Any]]:
        return self.ctx.logs("ftp")


def test_passive_retrieval_is_logged_with_its_channel_and_size() -> None:
    s = Session()
    s.s("220 hello")
    s.c("USER anonymous")
    s.s("331 guest ok")
    s.c("PASS me@x")
    s.s("230 in")
    s.c("PWD")
    s.s('257 "/" is the current directory')
    s.c("CWD pub")
    s.s("250 ok")
    s.c("PASV")
    s.s("227 Entering Passive Mode (203,0,113,5,195,80)")
    s.c("RETR a.txt")
    s.s("150 Opening BINARY mode data connection for a.txt (1234 bytes)")
    s.s("226 done")
    s.c("QUIT")
    s.s("221 bye")
    s.a.end(200.0)
    rows = s.rows()
    assert [r["command"] for r in rows] == ["PASV", "RETR"]
    pasv, retr = rows
    assert pasv["data_channel.passive"] is True and pasv["data_channel.resp_p"] == 50000
    assert pasv["data_channel.orig_h"] == "192.0.2.1" and pasv["reply_code"] == 227
    assert retr["arg"] == "ftp://203.0.113.5/pub/a.txt" and retr["file_size"] == 1234
    assert retr["reply_code"] == 226 and retr["data_channel.passive"] is None
    assert retr["user"] == "anonymous" and retr["password"] == "me@x"  # guests show it
    assert s.ctx.expected == [("192.0.2.1", "203.0.113.5", 50000, "ftp_data", 300.0)]
    assert s.ctx.confirmed[0] == "ftp"


def test_relative_directory_keeps_zeeks_dot() -> None:
    """Without a PWD the working directory starts as "." and Zeek's URLs say so."""
    s = Session()
    s.s("220 hi")
    s.c("CWD pub")
    s.s("250 ok")
    s.c("RETR a.txt")
    s.s("226 done")
    s.a.end(200.0)
    assert s.rows()[0]["arg"] == "ftp://203.0.113.5/./pub/a.txt"


def test_active_mode_expects_the_server_to_connect() -> None:
    s = Session()
    s.s("220 hi")
    s.c("PORT 192,0,2,1,200,10")
    s.s("200 PORT command successful")
    s.c("EPRT |2|2001:db8::7|49189|")
    s.s("200 EPRT command successful.")
    s.a.end(200.0)
    assert s.ctx.expected == [
        ("203.0.113.5", "192.0.2.1", 51210, "ftp_data", 300.0),
        ("203.0.113.5", "2001:db8::7", 49189, "ftp_data", 300.0),
    ]
    assert [r["data_channel.passive"] for r in s.rows()] == [False, False]


def test_passwords_of_real_users_are_hidden_and_summary_row_written() -> None:
    s = Session()
    s.s("220 hi")
    s.c("USER bob")
    s.s("331 Password required for bob")
    s.c("PASS secret")
    s.s("230 ok")
    s.a.end(200.0)
    (row,) = s.rows()  # no logged command: one summary row (log_at_least_one_command)
    assert row["user"] == "bob" and row["password"] == "<hidden>" and row["command"] == "PASS"
    assert row["arg"] == "<hidden>"


def test_configured_commands_are_logged() -> None:
    config = ftp.FtpConfig(
        logged_commands=frozenset({"<init>", "USER", "PASS"}), capture_password=True
    )
    s = Session(config)
    s.s("220 hi")
    s.c("USER bob")
    s.s("331 need password")
    s.c("PASS secret")
    s.s("230 ok")
    s.a.end(200.0)
    rows = s.rows()
    assert [(r["command"], r["reply_code"]) for r in rows] == [
        ("<init>", 220),
        ("USER", 331),
        ("PASS", 230),
    ]
    assert rows[1]["password"] is None  # USER is written before PASS is seen
    assert rows[2]["password"] == rows[2]["arg"] == "secret"  # FTP::default_capture_password


def test_multiline_reply_is_one_reply() -> None:
    config = ftp.FtpConfig(logged_commands=frozenset({"<init>"}))
    s = Session(config)
    s.s("220-Welcome")
    s.s("220-to the server")
    s.s("220 ready")
    s.c("USER x")
    s.a.end(200.0)
    (row,) = s.rows()
    assert row["reply_code"] == 220 and row["reply_msg"] == "ready"


def test_bad_reply_codes_are_violations() -> None:
    s = Session()
    s.s("hello there")
    s.s("099 low")
    assert s.ctx.violations == ["non-numeric reply code", "invalid reply code"]
    s.s("2200 x")
    assert s.ctx.violations[-1] == "invalid reply line"


def test_invalid_and_overlong_commands_are_ignored() -> None:
    s = Session()
    s.c("hi")  # shorter than 3: not a command, and not confirmed yet: no weird
    assert not s.ctx.confirmed and not s.ctx.weirds
    s.c("NOOP")
    s.c("\x01\x02\x03")
    s.c("X" * 101)
    assert s.ctx.weirds == [
        ("FTP_invalid_command", ""),
        ("FTP_max_command_length_exceeded", "101 > 100"),
    ]


def test_auth_tls_hands_the_stream_to_ssl() -> None:
    s = Session(ftp.FtpConfig(logged_commands=frozenset({"AUTH"})))
    s.s("220 hi")
    s.c("AUTH TLS")
    s.s("234 Proceed with negotiation.")
    assert s.a.tls_active and s.a.ssl is not None
    s.a.data(True, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 300.0)  # goes to SSL, not FTP
    s.a.end(400.0)
    (row,) = s.rows()
    assert row["command"] == "AUTH" and row["arg"] == "TLS" and row["reply_code"] == 234


def test_gssapi_adat_tokens_reach_ssl() -> None:
    s = Session()
    s.s("220 hi")
    s.c("AUTH GSSAPI")
    s.s("334 Using authentication type GSSAPI; ADAT must follow")
    assert s.a.ssl is not None and s.a.adat is not None
    import base64

    record = b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"
    received: list[bytes] = []
    s.a.ssl.data = lambda is_orig, data, ts: received.append(data)  # type: ignore[method-assign]
    s.c("ADAT " + base64.b64encode(record).decode())
    s.s("335 ADAT=" + base64.b64encode(b"\x16\x03\x01").decode())
    assert received == [record, b"\x16\x03\x01"]
    s.s("235 done")
    assert s.a.adat.done


# ----------------------------------------------------------------------------- through the engine


def test_data_channel_gets_ftp_data_service_file_and_fuid() -> None:
    sink = ListSink()
    engine = Engine(sink)
    control = TcpTalk(engine, ("10.0.0.1", 40000), ("10.0.0.2", 21))
    control.handshake()
    for from_client, line in [
        (False, b"220 hi\r\n"),
        (True, b"USER ftp\r\n"),
        (False, b"331 ok\r\n"),
        (True, b"PASS x\r\n"),
        (False, b"230 ok\r\n"),
        (True, b"PASV\r\n"),
        (False, b"227 Entering Passive Mode (10,0,0,2,195,80)\r\n"),
        (True, b"RETR f.html\r\n"),
        (False, b"150 Opening data connection (31 bytes)\r\n"),
    ]:
        control.send(from_client, "PA", line)
    data = TcpTalk(engine, ("10.0.0.1", 40001), ("10.0.0.2", 50000))
    data.t = control.t
    data.handshake()
    data.send(False, "PA", b"<html><body>hello</body></html>")
    data.send(False, "FA")
    data.send(True, "FA")
    data.send(False, "A")
    control.t = data.t + 10  # past tcp_close_delay: the data connection (and its file) ended
    control.send(False, "PA", b"226 done\r\n")
    control.send(True, "PA", b"QUIT\r\n")
    engine.finish()
    conns = {r["id.resp_p"]: r for r in sink.rows("conn")}
    assert conns[50000]["service"] == "ftp-data" and conns[21]["service"] == "ftp"
    (f,) = sink.rows("files")
    assert f["source"] == "FTP_DATA" and f["seen_bytes"] == 31 and f["is_orig"] is False
    retr = [r for r in sink.rows("ftp") if r["command"] == "RETR"][0]
    assert retr["fuid"] == f["fuid"] and retr["mime_type"] == "text/html"
    assert retr["file_size"] == 31


def test_unexpected_connection_on_a_data_port_is_not_ftp_data() -> None:
    sink = ListSink()
    engine = Engine(sink)
    other = TcpTalk(engine, ("10.0.0.1", 40001), ("10.0.0.2", 50000))
    other.handshake()
    other.send(False, "PA", b"hello")
    engine.finish()
    assert sink.rows("conn")[0]["service"] is None
    assert sink.rows("files") == []


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("case", "logs", "exact"),
    [
        ("scripts.base.protocols.ftp.ftp-ipv6", {"ftp", "conn"}, {"ftp.log": 7, "conn.log": 6}),
        # The baseline redefs FTP::logged_commands (<init>, AUTH): only the AUTH row is default.
        ("scripts.base.protocols.ftp.ftp-auth-tls", {"ftp", "conn"}, {"ftp.log": 1, "conn.log": 1}),
        # The data channel needs GridFTP::size_threshold = 2 (the test's redef): control only.
        ("scripts.base.protocols.ftp.gridftp", {"conn"}, {"conn.log": 1}),
    ],
)
def test_ftp_logs_match_zeek_reference(shared, tmp_path, case: str, logs, exact) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, case, logs, tmp_path)
    assert {log: score["exact"] for log, score in result.items()} == exact, result


# ----------------------------------------------------------------------------- expected connections


def test_scheduled_analyzers_match_exact_or_any_originator_until_expiry() -> None:
    from wirestream.processors.engine.expected import ScheduledAnalyzers

    table = ScheduledAnalyzers()
    table.schedule("10.0.0.1", "10.0.0.2", 5000, "tcp", "ftp_data", 100.0, now=0.0)
    table.schedule(None, "2001:db8:0::7", 6000, "tcp", "ftp_data", 100.0, now=0.0)
    assert table.lookup("10.0.0.1", "10.0.0.2", 5000, "tcp", 50.0) == ["ftp_data"]
    assert table.lookup("10.0.0.9", "10.0.0.2", 5000, "tcp", 50.0) == []  # other originator
    assert table.lookup("10.0.0.1", "10.0.0.2", 5000, "udp", 50.0) == []
    assert table.lookup("2001:db8::9", "2001:db8::7", 6000, "tcp", 50.0) == ["ftp_data"]
    assert table.lookup("10.0.0.1", "10.0.0.2", 5000, "tcp", 100.0) == []  # expired
    table.schedule("10.0.0.1", "10.0.0.2", 5000, "tcp", "ftp_data", 300.0, now=150.0)
    table.schedule("10.0.0.1", "10.0.0.2", 5000, "tcp", "ftp_data", 200.0, now=150.0)
    assert table.lookup("10.0.0.1", "10.0.0.2", 5000, "tcp", 250.0) == ["ftp_data"]
    table.expire(400.0)
    assert len(table) == 0
