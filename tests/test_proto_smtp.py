"""SMTP analyzer: commands and multi-line replies, pipelining, DATA and BDAT mail bodies with their
MIME entities as files, STARTTLS into the SSL analyzer, smtp.log vs Zeek's STARTTLS case."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass, field

import pytest
from analyzer_ctx import FakeContext, compare_case, tcp_conn
from engine_kit import ListSink, TcpTalk
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import smtp


@dataclass
class SmtpContext(FakeContext):
    limits: list[tuple[str, str]] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)

    def weird(
        self, name: str, addl: str = "", ts: float | None = None, source: str | None = None
    ) -> None:
        super().weird(name, addl, ts)
        self.sources.append(source)

    def limit_reached_weird(self, name: str, addl: str = "") -> None:
        self.limits.append((name, addl))


def session() -> tuple[smtp.SmtpAnalyzer, SmtpContext]:
    ctx = SmtpContext(tcp_conn(25))
    return smtp.SmtpAnalyzer(ctx), ctx


def talk(a: smtp.SmtpAnalyzer, *steps: tuple[bool, bytes], t: float = 10.0) -> float:
    for is_orig, data in steps:
        t += 0.25
        a.data(is_orig, data, t)
    return t


GREETING = (False, b"220 mx.example.net ESMTP ready\r\n")
EHLO = [
    (True, b"EHLO client.example.org\r\n"),
    (False, b"250-mx.example.net greets you\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n"),
]  # fmt: skip

MESSAGE = (
    b"Received: from relay.example.org (relay.example.org [198.51.100.20]) by mx\r\n"
    b"Received: from laptop (unknown [10.1.2.3])\r\n"
    b"\tby relay.example.org\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b'To: "Bob, B." <bob@example.net>, carol@example.net\r\n'
    b"Cc: dave@example.net\r\n"
    b"Subject: quarterly numbers\r\n"
    b"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"In-Reply-To: <m0@example.net>\r\n"
    b"Reply-To: alice@example.org\r\n"
    b"X-Mailer: TestMailer 1.0\r\n"
    b"X-Originating-IP: [192.0.2.77]\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"..a line that started with a dot\r\n"
    b"bye\r\n"
)
BODY = b"Hello Bob,\r\n.a line that started with a dot\r\nbye\r\n"


def _mail(a: smtp.SmtpAnalyzer, message: bytes) -> float:
    """One MAIL/RCPT/DATA transaction carrying ``message`` (which ends in CRLF)."""
    return talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<a@example.org>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<b@example.net>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 go\r\n"),
        (True, message + b".\r\n"),
        (False, b"250 queued\r\n"),
    )


def test_one_mail_transaction_is_one_row_with_the_headers_fields_and_a_file() -> None:
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<alice@example.org> SIZE=300\r\n"),
        (False, b"250 2.1.0 ok\r\n"),
        (True, b"RCPT TO:<bob@example.net>\r\n"),
        (False, b"250 2.1.5 ok\r\n"),
        (True, b"RCPT TO:<carol@example.net> ORCPT=rfc822;carol@example.net\r\n"),
        (False, b"250 2.1.5 ok\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 go ahead\r\n"),
        (True, MESSAGE),
        (True, b".\r\n"),
        (False, b"250 2.0.0 queued as 12345\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 2.0.0 bye\r\n"),
    )
    a.end(t + 1)
    assert ctx.confirmed and set(ctx.confirmed) == {"smtp"}
    assert ctx.violations == [] and ctx.weirds == []
    [row] = ctx.logs("smtp")
    assert row["ts"] == 10.25  # the greeting opened the record
    assert row["trans_depth"] == 1 and row["helo"] == "client.example.org"
    assert row["mailfrom"] == "alice@example.org"
    assert row["rcptto"] == ["bob@example.net", "carol@example.net"]
    assert row["from"] == "Alice <alice@example.org>"
    assert row["to"] == ['"Bob, B." <bob@example.net>', "carol@example.net"]
    assert row["cc"] == ["dave@example.net"]
    assert row["subject"] == "quarterly numbers"
    assert row["date"] == "Mon, 1 Jun 2026 10:00:00 +0000"
    assert (row["msg_id"], row["in_reply_to"]) == ("<m1@example.org>", "<m0@example.net>")
    assert row["reply_to"] == "alice@example.org" and row["user_agent"] == "TestMailer 1.0"
    assert row["x_originating_ip"] == "192.0.2.77"
    # Received headers: the newest is first_received; the path grows from the connection's end.
    assert row["first_received"] == "from laptop (unknown [10.1.2.3])\tby relay.example.org"
    assert row["second_received"].startswith("from relay.example.org")
    assert row["path"] == ["203.0.113.5", "192.0.2.1", "198.51.100.20", "10.1.2.3"]
    assert row["last_reply"] == "250 2.0.0 queued as 12345" and row["tls"] is False
    [f] = ctx.logs("files")
    assert row["fuids"] == [f["fuid"]]
    assert f["source"] == "SMTP" and f["is_orig"] is True and f["depth"] == 1
    assert f["seen_bytes"] == len(BODY) and f["mime_type"] == "text/plain"


def test_pipelined_commands_are_matched_to_replies_in_order() -> None:
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"),
        (False, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (True, b"Subject: one\r\n\r\nbody\r\n.\r\n"),
        (False, b"250 one queued\r\n"),
        (True, b"MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n"),
        (False, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (True, b"Subject: two\r\n\r\nmore\r\n.\r\n"),
        (False, b"250 two queued\r\n"),
    )
    a.end(t + 1)
    rows = ctx.logs("smtp")
    assert [(r["trans_depth"], r["subject"], r["mailfrom"]) for r in rows] == [
        (1, "one", "a@example.org"),
        (2, "two", "c@example.org"),
    ]
    assert [r["last_reply"] for r in rows] == ["250 one queued", "250 two queued"]
    assert [r["rcptto"] for r in rows] == [["b@example.net"], ["d@example.net"]]
    assert len(ctx.logs("files")) == 2


def test_multipart_entities_become_files_with_names_depths_and_decoded_content() -> None:
    payload = bytes(range(256)) * 3
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    message = (
        b"Subject: report\r\n"
        b'Content-Type: multipart/mixed; boundary="XyZ"\r\n'
        b"\r\n"
        b"preamble is not a file\r\n"
        b"--XyZ\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"caf=C3=A9 soft=\r\n"
        b"break\r\n"
        b"--XyZ\r\n"
        b"Content-Type: application/octet-stream; name=ignored.bin\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + encoded + b"--XyZ--\r\n"
        b"epilogue\r\n"
    )
    a, ctx = session()
    t = _mail(a, message)
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    text_file, attachment = ctx.logs("files")
    assert row["subject"] == "report" and row["fuids"] == [text_file["fuid"], attachment["fuid"]]
    assert text_file["seen_bytes"] == len("café softbreak\r\n".encode())
    assert text_file["filename"] is None and text_file["depth"] == 2
    assert attachment["filename"] == "data.bin" and attachment["depth"] == 3
    assert attachment["seen_bytes"] == len(payload)
    assert attachment["md5"] in (None, hashlib.md5(payload).hexdigest())


def test_bdat_chunks_carry_the_message_and_last_ends_the_transaction() -> None:
    message = b"Subject: chunked\r\nFrom: x@example.org\r\n\r\nline one\r\nline two\r\n"
    first, second = message[:23], message[23:]
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<x@example.org>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<y@example.net>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"BDAT %d\r\n" % len(first) + first),
        (False, b"250 2.0.0 chunk ok\r\n"),
        (True, b"BDAT %d LAST\r\n" % len(second) + second[:5]),
        (True, second[5:]),
        (False, b"250 2.0.0 message ok\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 bye\r\n"),
    )
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    assert (row["subject"], row["from"]) == ("chunked", "x@example.org")
    assert row["last_reply"] == "250 2.0.0 message ok"
    [f] = ctx.logs("files")
    assert f["seen_bytes"] == len(b"line one\r\nline two\r\n")
    assert ctx.weirds == []


def test_bad_bdat_argument_is_a_weird() -> None:
    assert smtp.parse_bdat_arg(b"86 LAST") == (86, True, None)
    assert smtp.parse_bdat_arg(b"86 last") == (86, True, None)
    assert smtp.parse_bdat_arg(b"86") == (86, False, None)
    assert smtp.parse_bdat_arg(b" 86")[2] == "BDAT not followed by a valid chunk-size"
    assert smtp.parse_bdat_arg(b"86LAST")[2] == "BDAT chunk-size not valid"
    assert smtp.parse_bdat_arg(b"86 LASTX")[2] == "BDAT chunk-size followed by junk"
    assert smtp.parse_bdat_arg(b"184467440737095516150")[2] == "BDAT chunk-size too large"
    a, ctx = session()
    talk(a, GREETING, *EHLO, (True, b"BDAT lots\r\n"))
    assert ("smtp_invalid_bdat_command", "BDAT not followed by a valid chunk-size") in ctx.weirds


def _client_hello() -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\xc0\x2f" + b"\x01\x00"
    hello = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(hello)) + hello


def test_starttls_hands_the_rest_of_the_stream_to_ssl() -> None:
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"STARTTLS\r\n"),
        (False, b"220 2.0.0 Ready to start TLS\r\n"),
        (True, _client_hello()),
        (True, b"MAIL FROM:<hidden@example.org>\r\n"),  # inside TLS: not SMTP any more
    )
    assert a.ssl is not None and a.state == smtp.IN_TLS
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    assert row["tls"] is True and row["mailfrom"] is None
    assert row["last_reply"] == "220 2.0.0 Ready to start TLS" and row["fuids"] == []
    assert "ssl" in ctx.confirmed  # the SSL child confirmed on the ClientHello


def test_refused_starttls_keeps_smtp_going() -> None:
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"STARTTLS\r\n"),
        (False, b"454 TLS not available\r\n"),
        (True, b"MAIL FROM:<m@example.org>\r\n"),
        (False, b"250 ok\r\n"),
    )
    a.end(t + 1)
    assert a.ssl is None
    [row] = ctx.logs("smtp")
    assert row["tls"] is False and row["mailfrom"] == "m@example.org"


def test_reply_code_out_of_range_is_a_violation_and_rcpt_without_mail_a_weird() -> None:
    a, ctx = session()
    talk(a, (False, b"999 what\r\n"))
    assert ctx.violations == ["reply code -1 out of range"]  # sic, as Zeek words it
    a, ctx = session()
    talk(a, GREETING, *EHLO, (True, b"RCPT TO:<b@example.net>\r\n"))
    assert ctx.weirds == [("smtp_mail_transaction_invalid", "rcpt to missing mail from")]


def test_too_many_invalid_transactions_disable_the_analyzer() -> None:
    a, ctx = session()
    talk(a, GREETING, *EHLO, *[(True, b"DATA\r\n"), (False, b"503 no\r\n")] * 27)
    assert ctx.limits == [("smtp_excessive_invalid_mail_transactions", "26 > 25")]
    assert a.disabled


def test_multi_line_reply_sets_last_reply_to_its_last_line() -> None:
    a, ctx = session()
    t = talk(a, GREETING, *EHLO, (True, b"HELP\r\n"), (False, b"214-a\r\n214-b\r\n214 end\r\n"))
    a.end(t + 1)
    assert ctx.logs("smtp") == []  # EHLO and HELP are no client activity: nothing to log
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<a@example.org>\r\nHELP\r\n"),
        (False, b"250 ok\r\n214-a\r\n214-b\r\n214 end\r\n"),
    )
    a.end(t + 1)
    [row] = ctx.logs("smtp")  # written when the connection goes (finalize_smtp)
    assert row["last_reply"] == "214 end" and row["mailfrom"] == "a@example.org"


def test_script_helpers_follow_zeeks_utils() -> None:
    assert smtp.extract_email_addrs("FROM:<a.b@example.org> SIZE=1") == ["a.b@example.org"]
    assert smtp.extract_email_addrs("TO:x@y.z,<p@q.r>") == ["x@y.z", "p@q.r"]
    assert smtp.extract_email_addrs("no address") == []
    assert smtp.split_mime_email_addresses('"Doe, J" <j@d.o>, k@l.m') == [
        '"Doe, J" <j@d.o>',
        "k@l.m",
    ]
    assert smtp.extract_ip_addresses("from [10.0.0.1] via 999.1.1.1 and (2001:db8::1)") == [
        "10.0.0.1",
        "2001:db8::1",
    ]
    assert smtp.address_in_received("from a ([10.0.0.1]) by b ([10.0.0.2])") == "10.0.0.2"
    assert smtp.address_in_received("from host10.0.0.1x") == ""
    assert smtp.sniff_smtp(b"EHLO me\r\n", b"220 hi\r\n")
    assert not smtp.sniff_smtp(b"GET / HTTP/1.1\r\n", b"220 hi\r\n")


# ----------------------------------------------------------------------------- through the engine


def _engine_session(port: int) -> ListSink:
    sink = ListSink()
    engine = Engine(sink)
    c = TcpTalk(engine, ("10.0.0.1", 40000), ("10.0.0.2", port))
    c.handshake()
    for from_client, data in [
        (False, b"220 mx ready\r\n"),
        (True, b"EHLO me\r\n"),
        (False, b"250 mx\r\n"),
        (True, b"MAIL FROM:<a@example.org>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<b@example.net>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 go\r\n"),
        (True, b"Subject: hi\r\n\r\nhello\r\n.\r\n"),
        (False, b"250 queued\r\n"),
    ]:
        c.send(from_client, "PA", data)
    c.send(True, "FA")
    c.send(False, "FA")
    c.send(True, "A")
    engine.finish()
    return sink


@pytest.mark.parametrize("port", [25, 2525])
def test_engine_gives_smtp_service_by_port_and_by_signature(port: int) -> None:
    sink = _engine_session(port)
    [conn] = sink.rows("conn")
    assert conn["service"] == "smtp"
    [row] = sink.rows("smtp")
    assert row["subject"] == "hi" and row["uid"] == conn["uid"]
    [f] = sink.rows("files")
    assert f["source"] == "SMTP" and row["fuids"] == [f["fuid"]]


@pytest.mark.timeout(300)
def test_starttls_case_matches_zeek(shared, tmp_path) -> None:
    result = compare_case(
        shared, "scripts.base.protocols.smtp.starttls", {"smtp", "ssl", "x509"}, tmp_path
    )
    assert {log: score["exact"] for log, score in result.items()} == {
        "smtp.log": 1,
        "ssl.log": 1,
        "x509.log": 3,
    }, result


def test_a_command_before_the_last_bdat_chunk_ends_the_transfer() -> None:
    a, ctx = session()
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<x@example.org>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<y@example.net>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"BDAT 22\r\nSubject: cut\r\n\r\nbody\r\n"),
        (False, b"250 chunk ok\r\n"),
        (True, b"RSET\r\n"),
        (False, b"250 reset\r\n"),
    )
    assert ("smtp_missing_bdat_last_chunk", "") in ctx.weirds and a.mail is None
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    assert row["subject"] == "cut" and row["last_reply"] == "250 reset"
    [f] = ctx.logs("files")
    assert f["seen_bytes"] == len(b"body\r\n")


_SMTP_PIECES = [
    b"220 hi\r\n", b"250-a\r\n", b"250 b\r\n", b"354 go\r\n", b"EHLO x\r\n", b"MAIL FROM:<a@b>\r\n",
    b"RCPT TO:<c@d>\r\n", b"DATA\r\n", b".\r\n", b"BDAT 5\r\n", b"BDAT 3 LAST\r\n", b"STARTTLS\r\n",
    b"220 go\r\n", b"AUTH PLAIN\r\n", b"334 \r\n", b"Subject: s\r\n", b"\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n", b"--b--\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"QUJD\r\n", b"\x16\x03\x01\x00\x05",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.one_of(st.sampled_from(_SMTP_PIECES), st.binary(max_size=30))),
        max_size=25,
    )
)
def test_arbitrary_sessions_never_raise(steps) -> None:
    a, ctx = session()
    t = 1.0
    for is_orig, data in steps:
        t += 0.1
        a.data(is_orig, data, t)
    a.gap(True, 10, t)
    a.end(t + 1)
    for row in ctx.logs("smtp"):
        assert row["trans_depth"] >= 1


def test_site_options_set_the_limits_and_script_weirds_have_no_source() -> None:
    ctx = SmtpContext(tcp_conn(25))
    ctx.shared_state = {smtp.CONFIG_KEY: smtp.SmtpConfig(max_rcptto_addresses=2, max_path_length=3)}
    a = smtp.SmtpAnalyzer(ctx)
    received = b"".join(b"Received: from h%d ([10.0.0.%d])\r\n" % (i, i) for i in range(1, 4))
    t = talk(
        a,
        GREETING,
        *EHLO,
        (True, b"MAIL FROM:<a@example.org>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"RCPT TO:<b@example.net>,<c@example.net>,<d@example.net>\r\n"),
        (False, b"250 ok\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 go\r\n"),
        (True, received + b"\r\nbody\r\n.\r\n"),
        (False, b"250 queued\r\n"),
    )
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    assert row["rcptto"] == ["b@example.net", "c@example.net"]
    assert row["path"] == ["203.0.113.5", "192.0.2.1", "10.0.0.1"]
    names = [name for name, _ in ctx.weirds]  # (the engine's weird log keeps one per name)
    assert names == ["smtp_too_many_rcptto_addresses"] + ["smtp_max_path_length_exceeded"] * 2
    assert ctx.sources == ["", "", ""]


def test_without_transaction_validation_there_are_no_invalid_transaction_weirds() -> None:
    ctx = SmtpContext(tcp_conn(25))
    ctx.shared_state = {smtp.CONFIG_KEY: smtp.SmtpConfig(mail_transaction_validation=False)}
    a = smtp.SmtpAnalyzer(ctx)
    talk(a, GREETING, *EHLO, (True, b"RCPT TO:<b@example.net>\r\n"), (True, b"DATA\r\n"))
    assert ctx.weirds == []


def test_mime_limits_cut_folded_headers_and_nesting() -> None:
    ctx = SmtpContext(tcp_conn(25))
    ctx.shared_state = {
        smtp.CONFIG_KEY: smtp.SmtpConfig(mime_max_header_bytes=20, mime_max_depth=1)
    }
    a = smtp.SmtpAnalyzer(ctx)
    message = (
        b"Subject: 0123456789\r\n"  # 19 bytes: one folded line still fits, the next does not
        b" abcdefghij\r\n"
        b" klmnop\r\n"
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\n"
        b"Content-Type: multipart/mixed; boundary=i\r\n\r\n"
        b"--i\r\n\r\ndeep\r\n--i--\r\n"
        b"--o--\r\n"
    )
    t = _mail(a, message)
    a.end(t + 1)
    [row] = ctx.logs("smtp")
    assert row["subject"] == "0123456789 abcdefghij"
    assert ctx.limits == [
        ("exceeded_mime_max_header_bytes", "30"),
        ("exceeded_mime_max_depth", "1"),
    ]
    assert ctx.logs("files") == []  # the part below the depth limit is not analysed
