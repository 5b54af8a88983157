"""HTTP analyzer: request/reply parsing, pipelining, bodies and entities, driven byte by byte."""

from __future__ import annotations

import base64
import gzip
import hashlib
import zlib

import pytest
from analyzer_ctx import FakeContext, compare_case, tcp_conn
from wirestream.processors.engine.api import ConnId
from wirestream.processors.engine.files import FileManager, FilesConfig
from wirestream.processors.engine.protocols import http
from wirestream.processors.engine.uid import UidGenerator


def run(
    *chunks: tuple[bool, bytes], ctx: FakeContext | None = None, end: bool = True
) -> FakeContext:
    ctx = ctx or FakeContext(tcp_conn(), files_config=FilesConfig(hashes=("MD5",), extract=True))
    an = http.HttpAnalyzer(ctx)
    for i, (is_orig, data) in enumerate(chunks):
        an.data(is_orig, data, 10.0 + i)
    if end:
        an.end(50.0)
    return ctx


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


GET = b"GET /a%20b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t/1\r\nReferer: http://r.example/\r\nOrigin: null\r\n\r\n"


def test_simple_get_fills_every_column() -> None:
    ctx = run(
        (True, GET), (False, response(b"<html><body>hi</body></html>", "Content-Type: text/html"))
    )
    (row,) = ctx.logs("http")
    assert (row["method"], row["host"], row["uri"], row["referrer"]) == (
        "GET",
        "example.com:8080",
        "/a b?q=1",  # the unescaped URI, as Zeek logs it
        "http://r.example/",
    )
    assert (row["version"], row["user_agent"], row["origin"]) == ("1.1", "t/1", "null")
    assert (row["status_code"], row["status_msg"], row["trans_depth"], row["ts"]) == (
        200,
        "OK",
        1,
        10.0,
    )
    assert (row["request_body_len"], row["response_body_len"]) == (0, 28)
    assert (
        row["tags"] == [] and row["orig_fuids"] is None and row["resp_mime_types"] == ["text/html"]
    )
    (f,) = ctx.logs("files")
    assert row["resp_fuids"] == [f["fuid"]] and f["source"] == "HTTP" and f["is_orig"] is False
    assert f["seen_bytes"] == f["total_bytes"] == 28
    assert f["md5"] == hashlib.md5(b"<html><body>hi</body></html>").hexdigest() and f[
        "analyzers"
    ] == ["MD5", "EXTRACT"]
    assert ctx.extracted[0].data == b"<html><body>hi</body></html>" and ctx.confirmed[0] == "http"


def test_pipelined_requests_pair_with_replies_in_order() -> None:
    req = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    ctx = run(
        (True, req),
        (False, response(b"one", status="200 OK") + response(b"", status="404 Not Found")),
    )
    rows = ctx.logs("http")
    assert [
        (r["trans_depth"], r["uri"], r["status_code"], r["response_body_len"]) for r in rows
    ] == [
        (1, "/1", 200, 3),
        (2, "/2", 404, 0),
    ]


def test_chunked_body_and_trailer() -> None:
    body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
    ctx = run((True, GET), (False, response(body, "Transfer-Encoding: chunked")))
    (row,) = ctx.logs("http")
    assert row["response_body_len"] == 12 and ctx.extracted[0].data == b"hello, world"
    assert ctx.logs("files")[0]["total_bytes"] is None  # no Content-Length: size unknown


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_content_encoding_is_decompressed_for_body_length_and_file(coding: str) -> None:
    plain = b'{"key": "value", "n": 1}' * 20
    packed = gzip.compress(plain) if coding == "gzip" else zlib.compress(plain)
    ctx = run((True, GET), (False, response(packed, f"Content-Encoding: {coding}")))
    (row,) = ctx.logs("http")
    assert row["response_body_len"] == len(plain) and row["resp_mime_types"] == ["text/json"]
    assert ctx.extracted[0].data == plain


def test_multipart_parts_are_separate_files_with_names() -> None:
    parts = (
        b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nfield value\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="up"; filename="notes.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nline one\r\nline two, which is long\r\n--XyZ--\r\n"
    )
    req = (
        b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
        b"Content-Length: %d\r\n\r\n" % len(parts)
    ) + parts
    ctx = run((True, req), (False, response(b"ok")))
    (row,) = ctx.logs("http")
    assert row["request_body_len"] == len(parts) and len(row["orig_fuids"]) == 2
    assert row["orig_filenames"] == ["notes.txt"] and row["orig_mime_types"] == [
        "text/plain",
        "text/plain",
    ]
    datas = sorted(x.data for x in ctx.extracted)
    assert (
        b"line one\r\nline two, which is long" in datas and b"field value" in datas
    )  # last CRLF is the boundary's


def test_100_continue_and_101_upgrade() -> None:
    req = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    ctx = run(
        (True, req),
        (False, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (True, b"data"),
        (False, response(b"done")),
    )
    (row,) = ctx.logs("http")
    assert (row["status_code"], row["info_code"], row["info_msg"], row["request_body_len"]) == (
        200,
        100,
        "Continue",
        4,
    )

    up = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    reply = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    ctx = run((True, up), (False, reply), end=False)
    assert ctx.logs("http") == []  # 1xx: kept until the connection ends
    ctx2 = run((True, up), (False, reply))
    (row,) = ctx2.logs("http")
    assert (row["status_code"], row["info_code"], row["response_body_len"]) == (101, 101, 0)


def test_http09_request_takes_the_whole_reply_as_body() -> None:
    ctx = run(
        (True, b"GET /HTTP/1.1\r\n\r\n"), (False, b"HTTP/1.0 400 Bad\r\n\r\nnot really headers")
    )
    (row,) = ctx.logs("http")
    assert (row["uri"], row["version"], row["status_code"], row["status_msg"]) == (
        "/HTTP/1.1",
        "0.9",
        0,
        "<empty>",
    )
    assert row["response_body_len"] == len(b"HTTP/1.0 400 Bad\r\n\r\nnot really headers")
    assert row["resp_mime_types"] == ["text/plain"]


def test_basic_auth_username_only_and_proxied_headers() -> None:
    creds = base64.b64encode(b"alice:s3cret").decode()
    req = (
        f"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic {creds}\r\nX-Forwarded-For: 192.0.2.99\r\n"
        "Via: 1.1 proxy\r\n\r\n"
    ).encode()
    ctx = run((True, req), (False, response(b"")))
    (row,) = ctx.logs("http")
    assert row["username"] == "alice" and row["password"] is None  # Zeek does not capture passwords
    assert sorted(row["proxied"]) == ["VIA -> 1.1 proxy", "X-FORWARDED-FOR -> 192.0.2.99"]


def test_reply_without_reason_and_head_has_no_body() -> None:
    ctx = run(
        (True, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"),
        (False, b"HTTP/1.1 204\r\nContent-Length: 10\r\n\r\n"),
    )
    (row,) = ctx.logs("http")
    assert (row["status_msg"], row["response_body_len"], row["resp_fuids"]) == ("<empty>", 0, None)


def test_bad_request_line_before_and_after_confirmation() -> None:
    ctx = run(
        (True, b"\xc3\x83/ HTTP/1.1\nHost: h\n\n"),
        (False, response(b"bad", status="400 Bad Request")),
    )
    (row,) = ctx.logs("http")  # Zeek still parses and logs the reply
    assert row["method"] is None and row["status_code"] == 400 and ctx.violations == []
    assert ("bad_HTTP_request_with_version", "") in ctx.weirds
    ctx = run(
        (True, b"GET / HTTP/1.1\nHost: h\n\n"), (False, response(b"x")), (True, b"T / HTTP\n\n")
    )
    assert ctx.violations == ["not a http request line"]


def test_gap_inside_body_is_skipped_and_counted() -> None:
    ctx = FakeContext(tcp_conn(), files_config=FilesConfig(hashes=("SHA1",)))
    an = http.HttpAnalyzer(ctx)
    an.data(True, GET, 1.0)
    an.data(False, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 2.0)
    an.data(False, b"abc", 2.1)
    an.gap(False, 4, 2.2)
    an.data(False, b"xyz", 2.3)
    an.end(3.0)
    (row,) = ctx.logs("http")
    (f,) = ctx.logs("files")
    assert row["response_body_len"] == 10 and f["missing_bytes"] == 4 and f["seen_bytes"] == 6
    assert f["sha1"] is None  # a hash over a file with holes is meaningless


def test_byte_ranges_of_one_url_are_one_file_across_connections() -> None:
    """HTTP::get_file_handle keys range replies by URL; 206 files stay open until the trace ends."""
    logs: list = []
    files = FileManager(lambda log, rec: logs.append((log, rec)), None, uids=UidGenerator(3))
    content = b"%PDF-1.7\n" + bytes(range(256)) * 4
    conns = [ConnId("192.0.2.1", 40000 + i, "203.0.113.5", 80, "tcp") for i in range(2)]
    halves = [(0, content[:500]), (500, content[500:])]
    for cid, (start, piece) in zip(
        reversed(conns), reversed(halves), strict=True
    ):  # second half first
        ctx = FakeContext(cid, uid=f"C{cid.orig_p}", files=files)
        an = http.HttpAnalyzer(ctx)
        last = start + len(piece) - 1
        an.data(
            True,
            f"GET /doc.pdf HTTP/1.1\r\nHost: h\r\nRange: bytes={start}-{last}\r\n\r\n".encode(),
            1.0,
        )
        an.data(
            False,
            response(
                piece, f"Content-Range: bytes {start}-{last}/{len(content)}", status="206 Partial"
            ),
            1.5,
        )
        an.end(2.0)
        (row,) = ctx.logs("http")
        assert row["status_code"] == 206 and len(row["resp_fuids"]) == 1
    assert [log for log, _ in logs] == []  # still open: more ranges could come
    files.finish()
    rows = [rec for log, rec in logs if log == "files"]
    assert len(rows) == 2 and rows[0]["fuid"] == rows[1]["fuid"]  # one file, one row per connection
    assert [(r["uid"], r["id.orig_p"]) for r in rows] == [("C40001", 40001), ("C40000", 40000)]
    assert rows[0]["seen_bytes"] == len(content) and rows[0]["missing_bytes"] == 0
    assert rows[0]["total_bytes"] == len(content) and rows[0]["mime_type"] == "application/pdf"


def test_header_anomalies_are_reported_as_zeek_names_them() -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 05\r\nX-Folded: a\r\n  b\r\n"
        b"Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    req = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: later\r\nContent-Length: 0\r\n\r\n"
    ctx = run((True, req), (False, reply))
    names = [n for n, _ in ctx.weirds]
    for expected in (
        "HTTP_expect_not_100_continue",
        "HTTP_content_length_leading_zeros",
        "HTTP_obsolete_line_folding",
        "HTTP_chunked_multi",
        "HTTP_content_length_and_chunked",
    ):
        assert expected in names, (expected, names)
    (row,) = ctx.logs("http")
    assert row["response_body_len"] == 5  # chunked wins over the Content-Length


def test_request_without_reply_is_logged_when_connection_ends() -> None:
    ctx = run((True, GET))
    (row,) = ctx.logs("http")
    assert row["status_code"] is None and row["version"] is None and row["method"] == "GET"


def test_helpers() -> None:
    assert http.unescape_uri(b"/a%41%u0042%zz%") == b"/aAB%zz%"
    assert (
        http.filename_from_disposition(b'attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"')
        == "résumé.pdf"
    )
    assert (
        http.filename_from_disposition(b"attachment; filename*=UTF-8''na%20me.txt") == "na me.txt"
    )
    assert http.sniff_http(b"  POST /x HTTP/1.1", b"") and http.sniff_http(b"", b"HTTP/1.0 200")
    assert not http.sniff_http(b"\x16\x03\x01", b"SSH-2.0")


HTTP_CASES = [
    "core.tcp-padding",
    "core.vlan-mpls",
    "scripts.base.protocols.http.100-continue",
    "scripts.base.protocols.http.101-switching-protocols",
    "scripts.base.protocols.http.http-11-request-then-cruft",
    "scripts.base.protocols.http.http-filename",
    "scripts.base.protocols.http.http-methods",
    "scripts.base.protocols.http.http-no-crlf",
    "scripts.base.protocols.http.multipart-body-length",
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", HTTP_CASES)
def test_http_log_matches_zeek_reference(shared, tmp_path, case: str) -> None:
    result = compare_case(shared, case, {"http"}, tmp_path)["http.log"]
    assert result["exact"] == result["base_rows"], result


def test_demo_capture_is_reproducible_and_analyzes(tmp_path) -> None:
    from pathlib import Path

    from wirestream import demo_pcap

    built = demo_pcap.build_demo_pcap(tmp_path / "demo.pcap")
    committed = Path(demo_pcap.__file__).parent / "data" / "demo.pcap"
    assert built.read_bytes() == committed.read_bytes()
    assert len(committed.read_bytes()) < 200_000
