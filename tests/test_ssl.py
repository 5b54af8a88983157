"""SSL/TLS analyzer: hand-built records through the analyzer, and Zeek's own traces end to end."""

from __future__ import annotations

import hashlib
import struct

import der_build as d
import pytest
from analyzer_ctx import FakeContext, compare_case, tcp_conn, udp_conn
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.protocols import ssl

# -- building TLS ---------------------------------------------------------------------------


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def hs(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def ext(code: int, body: bytes) -> bytes:
    return struct.pack("!HH", code, len(body)) + body


def sni(*names: str) -> bytes:
    entries = b"".join(b"\0" + struct.pack("!H", len(n)) + n.encode() for n in names)
    return ext(0, struct.pack("!H", len(entries)) + entries)


def alpn(*protocols: str) -> bytes:
    body = b"".join(bytes([len(p)]) + p.encode() for p in protocols)
    return ext(16, struct.pack("!H", len(body)) + body)


def exts(*items: bytes) -> bytes:
    body = b"".join(items)
    return struct.pack("!H", len(body)) + body if items else b""


def client_hello(
    *extensions: bytes, version: int = 0x0303, session_id: bytes = b"", ciphers=(0xC02F,)
) -> bytes:
    body = struct.pack("!H", version) + bytes(32) + bytes([len(session_id)]) + session_id
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
    body += b"\x01\x00" + exts(*extensions)
    return hs(1, body)


def server_hello(
    *extensions: bytes,
    version: int = 0x0303,
    cipher: int = 0xC02F,
    session_id: bytes = b"",
    random: bytes = bytes(32),
) -> bytes:
    body = struct.pack("!H", version) + random + bytes([len(session_id)]) + session_id
    body += struct.pack("!HB", cipher, 0) + exts(*extensions)
    return hs(2, body)


def certificate_msg(*certs: bytes) -> bytes:
    inner = b"".join(len(c).to_bytes(3, "big") + c for c in certs)
    return hs(11, len(inner).to_bytes(3, "big") + inner)


def ecdhe_key_exchange(curve: int = 23) -> bytes:
    return hs(12, struct.pack("!BHB", 3, curve, 4) + b"\x04abc" + b"\x04\x01" + b"\0\x02sg")


CCS = record(20, b"\x01")


def encrypted(n: int = 40) -> bytes:
    return record(23, bytes(n))


def run(ctx: FakeContext, *messages: tuple[bool, bytes], chunk: int | None = None) -> dict | None:
    an = ssl.SslAnalyzer(ctx)
    t = 100.0
    for is_orig, data in messages:
        t += 0.5
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            an.data(is_orig, data[i : i + step], t)
    an.end(t + 1)
    rows = ctx.logs("ssl")
    assert len(rows) <= 1
    return rows[0] if rows else None


def tls12(cert: bytes, **kw: object) -> list[tuple[bool, bytes]]:
    return [
        (
            True,
            record(22, client_hello(sni("www.acme.test"), alpn("h2", "http/1.1"), ext(35, b""))),
        ),
        (
            False,
            record(
                22,
                server_hello(alpn("h2"))
                + certificate_msg(cert)
                + ecdhe_key_exchange()
                + hs(14, b""),
            ),
        ),
        (True, record(22, hs(16, b"\x41" + bytes(65))) + CCS + encrypted()),
        (False, CCS + encrypted()),
    ]


HOST_CERT = d.certificate(
    subject=d.name([("2.5.4.3", d.utf8("www.acme.test"))]),
    extensions=(d.san(dns=("www.acme.test", "acme.test")),),
)

# -- the analyzer ----------------------------------------------------------------------------


def test_tls12_handshake_logs_at_establishment() -> None:
    ctx = FakeContext(tcp_conn(443))
    rec = run(ctx, *tls12(HOST_CERT))
    assert rec is not None
    assert rec["version"] == "TLSv12"
    assert rec["cipher"] == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert rec["curve"] == "secp256r1"
    assert rec["server_name"] == "www.acme.test"
    assert rec["next_protocol"] == "h2"
    assert rec["established"] is True and rec["resumed"] is False
    assert rec["ssl_history"] == "CsxknGIi"
    assert rec["cert_chain_fps"] == [hashlib.sha256(HOST_CERT).hexdigest()]
    assert rec["client_cert_chain_fps"] == []
    assert rec["sni_matches_cert"] is True
    assert rec["ts"] == 100.5
    assert ctx.confirmed == ["ssl"]
    (x,) = ctx.logs("x509")
    assert x["host_cert"] is True and x["client_cert"] is False
    assert ctx.logs("files") == []  # certificates stay out of files.log by default


def test_records_split_byte_by_byte_give_the_same_row() -> None:
    whole = run(FakeContext(tcp_conn(443)), *tls12(HOST_CERT))
    split = run(FakeContext(tcp_conn(443)), *tls12(HOST_CERT), chunk=1)
    assert whole is not None and split is not None
    assert {k: v for k, v in whole.items() if k != "ts"} == {
        k: v for k, v in split.items() if k != "ts"
    }


def test_sni_not_in_certificate() -> None:
    other = d.certificate(subject=d.name([("2.5.4.3", d.utf8("other.test"))]))
    rec = run(FakeContext(tcp_conn(443)), *tls12(other))
    assert rec is not None and rec["sni_matches_cert"] is False


def test_tls13_version_and_curve_come_from_extensions_and_encryption_from_app_data() -> None:
    supported = ext(43, b"\x04\x03\x04\x03\x03")
    key_share = ext(51, b"\x00\x24\x00\x1d\x00\x20" + bytes(32))
    rec = run(
        FakeContext(tcp_conn(443)),
        (True, record(22, client_hello(sni("a.test"), supported, key_share), version=0x0301)),
        (
            False,
            record(
                22,
                server_hello(
                    ext(43, b"\x03\x04"),
                    ext(51, b"\x00\x1d\x00\x20" + bytes(32)),
                    cipher=0x1301,
                ),
            )
            + CCS
            + encrypted(),
        ),
        (True, CCS + encrypted()),
    )
    assert rec is not None
    assert (rec["version"], rec["cipher"], rec["curve"]) == (
        "TLSv13",
        "TLS_AES_128_GCM_SHA256",
        "x25519",
    )
    assert rec["ssl_history"] == "CsiI"
    assert rec["established"] is True
    assert rec["cert_chain_fps"] is None  # TLS 1.3 certificates are encrypted


def test_session_id_echo_is_a_resumption() -> None:
    sid = bytes(range(1, 33))
    rec = run(
        FakeContext(tcp_conn(443)),
        (True, record(22, client_hello(session_id=sid))),
        (False, record(22, server_hello(session_id=sid)) + CCS + encrypted()),
        (True, CCS + encrypted()),
    )
    assert rec is not None and rec["resumed"] is True
    assert rec["ssl_history"] == "CsiI"


def test_alert_before_establishment_is_logged_when_the_connection_ends() -> None:
    rec = run(
        FakeContext(tcp_conn(443)),
        (True, record(22, client_hello())),
        (False, record(21, b"\x02\x28")),
    )
    assert rec is not None
    assert (rec["last_alert"], rec["established"], rec["ssl_history"]) == (
        "handshake_failure",
        False,
        "Cl",
    )
    assert rec["version"] is None and rec["cert_chain_fps"] is None


def test_hello_retry_request_is_j() -> None:
    rec = run(
        FakeContext(tcp_conn(443)),
        (True, record(22, client_hello())),
        (False, record(22, server_hello(ext(51, b"\x00\x17"), random=ssl.HRR_RANDOM))),
    )
    assert rec is not None and rec["ssl_history"] == "Cj" and rec["curve"] == "secp256r1"


def test_client_hello_from_the_responder_flips_the_view() -> None:
    rec = run(
        FakeContext(tcp_conn(443)),
        (False, record(22, client_hello())),
        (True, record(22, server_hello())),
    )
    assert rec is not None and rec["ssl_history"] == "^Cs"


def test_not_tls_is_a_violation_without_a_row() -> None:
    ctx = FakeContext(tcp_conn(443))
    assert run(ctx, (True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) is None
    assert ctx.violations and ctx.violations[0].startswith("Invalid version in TLS connection")
    assert ctx.confirmed == []


def test_bad_version_late_in_the_connection_logs_what_was_seen() -> None:
    ctx = FakeContext(tcp_conn(443))
    rec = run(
        ctx,
        (True, record(22, client_hello())),
        (False, record(22, server_hello()) + record(22, hs(14, b""), version=0x0909)),
    )
    assert rec is not None and rec["ssl_history"] == "Cs" and rec["established"] is False
    assert "Invalid version late" in ctx.violations[0]


def test_unknown_handshake_type_is_a_violation_logged_before_its_letter() -> None:
    ctx = FakeContext(tcp_conn(443))
    rec = run(ctx, (True, record(22, client_hello() + hs(99, b"x"))))
    assert rec is not None and rec["ssl_history"] == "C"
    assert ctx.violations == ["unknown handshake message (99) from originator"]


def test_truncated_extension_is_a_parse_violation() -> None:
    ctx = FakeContext(tcp_conn(443))
    bad = client_hello(ext(0, b"\x00\x10\x00"))  # server_name list longer than the extension
    run(ctx, (True, record(22, bad)))
    assert ctx.violations and ctx.violations[0].startswith("Binpac exception")


def test_gap_stops_the_analysis() -> None:
    ctx = FakeContext(tcp_conn(443))
    an = ssl.SslAnalyzer(ctx)
    an.data(True, record(22, client_hello()), 1.0)
    an.gap(False, 100, 2.0)
    an.data(False, record(22, server_hello()), 3.0)
    an.end(4.0)
    (rec,) = ctx.logs("ssl")
    assert rec["ssl_history"] == "C"


def test_sslv2_client_hello_and_server_hello() -> None:
    v2_hello = struct.pack("!BHHHH", 1, 0x0002, 3, 0, 16) + b"\x01\x00\x80" + bytes(16)
    v2_record = struct.pack("!H", 0x8000 | len(v2_hello)) + v2_hello
    cert = d.certificate()
    body = struct.pack("!BBBHHHH", 4, 0, 1, 0x0002, len(cert), 3, 16) + cert + b"\x01\x00\x80"
    body += bytes(16)
    server = struct.pack("!H", 0x8000 | len(body)) + body
    ctx = FakeContext(tcp_conn(443))
    rec = run(ctx, (True, v2_record), (False, server))
    assert rec is not None
    assert (rec["version"], rec["cipher"], rec["ssl_history"]) == (
        "SSLv2",
        "SSLv20_CK_RC4_128_WITH_MD5",
        "Cs",
    )
    assert len(ctx.logs("x509")) == 1


def test_version_names() -> None:
    assert ssl.version_name(0x0303) == "TLSv12"
    assert ssl.version_name(0x7F12) == "TLSv13-draft18"
    assert ssl.version_name(0x1234) == "unknown-4660"


def test_dpd_signatures() -> None:
    hello = record(22, client_hello(), version=0x0301)
    assert ssl.sniff_ssl(hello, b"")
    assert ssl.sniff_ssl(b"", record(22, server_hello()))
    assert not ssl.sniff_ssl(b"GET / HTTP/1.1\r\n", b"")
    assert not ssl.sniff_ssl(b"\x16\x03\x01\x00", b"")  # too short to tell


# -- Zeek's own traces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "logs"),
    [
        ("scripts.base.protocols.ssl.ecdhe", {"ssl", "x509"}),
        ("scripts.base.protocols.ssl.tls13-encrypted-client-hello", {"ssl"}),
        ("scripts.base.protocols.ssl.tls-1.2-late-protocol-error", {"ssl", "x509"}),
    ],
)
@pytest.mark.timeout(120)
def test_zeek_reference_cases_are_exact(shared, tmp_path, case: str, logs: set[str]) -> None:
    result = compare_case(shared, case, logs, tmp_path / "out")
    assert set(result) == {f"{name}.log" for name in logs}
    for log_name, r in result.items():
        assert r["exact"] == r["base_rows"] == r["our_rows"], (log_name, r)


@pytest.mark.timeout(120)
def test_certificates_in_files_log_with_the_option(shared, tmp_path) -> None:
    case = "scripts.base.files.x509.files"
    result = compare_case(shared, case, {"files"}, tmp_path / "out", "--x509-in-files-log")
    r = result["files.log"]
    assert r["exact"] == r["base_rows"] == 6


# -- DTLS -----------------------------------------------------------------------------------


def dtls_record(ct: int, body: bytes, *, epoch: int = 0, seq: int = 0) -> bytes:
    head = struct.pack("!BHH", ct, 0xFEFD, epoch) + seq.to_bytes(6, "big")
    return head + struct.pack("!H", len(body)) + body


def dtls_fragment(
    msg_type: int, body: bytes, offset: int, size: int, message_seq: int = 0
) -> bytes:
    frag = body[offset : offset + size]
    return (
        bytes([msg_type])
        + len(body).to_bytes(3, "big")
        + struct.pack("!H", message_seq)
        + offset.to_bytes(3, "big")
        + len(frag).to_bytes(3, "big")
        + frag
    )


def dtls_client_hello_body() -> bytes:
    body = struct.pack("!H", 0xFEFD) + bytes(32) + b"\x00" + b"\x00"  # no session id, no cookie
    return body + struct.pack("!HH", 2, 0xC02F) + b"\x01\x00" + exts(sni("dtls.test"))


def test_dtls_reassembles_fragments_in_any_order_and_logs_dtls() -> None:
    body = dtls_client_hello_body()
    first = dtls_record(22, dtls_fragment(1, body, 0, 20), seq=0)
    second = dtls_record(22, dtls_fragment(1, body, 20, len(body) - 20), seq=1)
    server_body = server_hello(version=0xFEFD)[4:]  # without the TLS handshake header
    server = dtls_fragment(2, server_body, 0, len(server_body))
    ctx = FakeContext(udp_conn(443))
    an = ssl.DtlsAnalyzer(ctx)
    an.data(True, second, 1.0)  # the tail arrives first
    an.data(True, first, 1.1)
    an.data(False, dtls_record(22, server) + dtls_record(20, b"\x01", seq=1), 1.2)
    an.data(True, dtls_record(20, b"\x01", seq=2) + dtls_record(22, bytes(40), epoch=1), 1.3)
    an.data(False, dtls_record(22, bytes(40), epoch=1), 1.4)
    an.end(2.0)
    (rec,) = ctx.logs("ssl")
    assert ctx.confirmed == ["dtls"]
    assert (rec["version"], rec["server_name"], rec["ssl_history"], rec["established"]) == (
        "DTLSv12",
        "dtls.test",
        "CsiI",
        True,
    )


def test_dtls_ignores_stun_and_rejects_other_versions() -> None:
    ctx = FakeContext(udp_conn(443))
    an = ssl.DtlsAnalyzer(ctx)
    stun = b"\x00\x01\x00\x08" + ssl.STUN_MAGIC + bytes(20)
    an.data(True, stun, 1.0)
    an.data(True, struct.pack("!BHH", 22, 0x0303, 0) + bytes(6) + b"\x00\x01\x00", 1.1)
    an.end(2.0)
    assert ctx.logs("ssl") == [] and ctx.confirmed == []


def test_dtls_signature_matches_a_client_hello_from_either_side() -> None:
    body = dtls_client_hello_body()
    hello = dtls_record(22, dtls_fragment(1, body, 0, len(body)))
    assert ssl.sniff_dtls(hello, b"") and ssl.sniff_dtls(b"", hello)
    assert not ssl.sniff_dtls(record(22, client_hello()), b"")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_handshakes_never_break_the_analyzer(data: st.DataObject) -> None:
    flows = tls12(HOST_CERT)
    ctx = FakeContext(tcp_conn(443))
    an = ssl.SslAnalyzer(ctx)
    for i, (is_orig, payload) in enumerate(flows):
        b = bytearray(payload)
        for _ in range(data.draw(st.integers(0, 3))):
            b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
        an.data(is_orig, bytes(b), float(i))
    an.end(10.0)
    assert len(ctx.logs("ssl")) <= 1


def test_violation_past_10kib_stops_parsing_without_telling_dpd() -> None:
    ctx = FakeContext(tcp_conn(443))
    filler = record(23, bytes(12_000))  # plaintext application data (odd, but allowed)
    rec = run(
        ctx,
        (True, record(22, client_hello())),
        (False, record(22, server_hello()) + filler + record(22, hs(14, b""), version=0x0909)),
    )
    assert rec is not None and rec["ssl_history"] == "Cs"
    assert ctx.violations == []  # DPD::ignore_violations_after: the analyzer is not removed
    assert ("ssl_early_application_data", "") in ctx.weirds


def test_rows_have_exactly_zeeks_ssl_columns() -> None:
    from wirestream.schemas.zeek_types import zeek_log_schemas

    rec = run(FakeContext(tcp_conn(443)), *tls12(HOST_CERT))
    assert rec is not None
    assert list(rec) == [c.name for c in zeek_log_schemas()["ssl"].columns]


def test_dtls_signature_after_a_stun_exchange() -> None:
    body = dtls_client_hello_body()
    hello = dtls_record(22, dtls_fragment(1, body, 0, len(body)))
    stun = b"\x00\x01\x00\x08" + ssl.STUN_MAGIC + bytes(12) + bytes(8)
    assert ssl.sniff_dtls(stun + stun + hello, b"")
    assert not ssl.sniff_dtls(stun + b"junk" + hello, b"")
