"""X.509: certificate fields printed as Zeek (OpenSSL) prints them, dedup, files.log option."""

from __future__ import annotations

import calendar
import contextlib
import hashlib

import der_build as d
import pytest
from analyzer_ctx import FakeContext, tcp_conn
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.protocols import x509

CN, ORG, OU, C, EMAIL = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6", "1.2.840.113549.1.9.1"


def test_subject_prints_last_rdn_first_with_plus_inside_multivalued_rdns() -> None:
    subject = d.name(
        [(C, d.printable("US"))],
        [(ORG, d.utf8("Acme, Inc."))],
        [(OU, d.utf8("Web")), (OU, d.utf8("Ops"))],
        [(CN, d.utf8("www.acme.test"))],
    )
    cert = x509.parse_certificate(d.certificate(subject=subject))
    assert cert.subject == "CN=www.acme.test,OU=Ops+OU=Web,O=Acme\\, Inc.,C=US"
    assert cert.issuer == cert.subject
    assert cert.cn == "www.acme.test"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (d.utf8(" lead"), "\\ lead"),
        (d.utf8("trail "), "trail\\ "),
        (d.utf8("#hash"), "\\#hash"),
        (d.utf8('a"b+c;d<e>f\\g'), 'a\\"b\\+c\\;d\\<e\\>f\\\\g'),
        (d.utf8("tab\there"), "tab\\09here"),
        (d.utf8("café"), "caf\\C3\\A9"),  # UTF-8 bytes, each escaped (ESC_MSB)
        (d.tlv(0x14, b"caf\xe9"), "caf\\C3\\A9"),  # T61String bytes are Latin-1
        (d.tlv(0x1E, "Zé".encode("utf-16-be")), "Z\\C3\\A9"),  # BMPString
        (d.tlv(0x04, b"\x01\x02"), "#04020102"),  # not a string type: DER dump
    ],
)
def test_attribute_values_are_escaped_as_rfc2253(value: bytes, printed: str) -> None:
    cert = x509.parse_certificate(d.certificate(subject=d.name([(CN, value)])))
    assert cert.subject == "CN=" + printed


def test_unknown_attribute_type_prints_its_oid_and_the_der_in_hex() -> None:
    subject = d.name([("1.2.3.4.5", d.utf8("x"))], [(EMAIL, d.tlv(0x16, b"a@b.test"))])
    cert = x509.parse_certificate(d.certificate(subject=subject))
    assert cert.subject == "emailAddress=a@b.test,1.2.3.4.5=#0C0178"


@pytest.mark.parametrize(
    ("serial", "printed"),
    [
        (d.integer(1), "01"),
        (d.integer(0xEA83D17188B68E4D), "EA83D17188B68E4D"),  # encoded with a 00 pad byte
        (d.integer(-1), "-01"),
        (d.integer(-256), "-0100"),
        (d.integer(0), "00"),
    ],
)
def test_serial_is_i2a_asn1_integer(serial: bytes, printed: str) -> None:
    assert x509.parse_certificate(d.certificate(serial=serial)).serial == printed


def test_serial_with_illegal_padding_does_not_parse() -> None:
    with pytest.raises(x509.CertificateError):
        x509.parse_certificate(d.certificate(serial=d.tlv(0x02, b"\0\x01")))


def test_validity_times_follow_zeeks_asn1_time_rules() -> None:
    cert = x509.parse_certificate(
        d.certificate(not_before=d.utctime("4912312359Z"), not_after=d.gentime("20500101120000.5Z"))
    )
    assert cert.not_valid_before == calendar.timegm((2049, 12, 31, 23, 59, 0))
    assert cert.not_valid_after == calendar.timegm((2050, 1, 1, 12, 0, 0))
    # UTCTime from 50 on is 19YY; without the trailing Z it is rejected (0)
    assert x509.asn1_time(x509.read_tlv(d.utctime("500101000000Z"))[0]) == calendar.timegm(
        (1950, 1, 1, 0, 0, 0)
    )
    assert x509.asn1_time(x509.read_tlv(d.utctime("200101000000"))[0]) == 0.0


def test_time_offset_uses_zeeks_own_arithmetic() -> None:
    # Zeek adds hh*10 + h*60 + mm*10 + m seconds (sic) for "+hhmm"
    base = calendar.timegm((2020, 1, 1, 0, 0, 0))
    t = x509.asn1_time(x509.read_tlv(d.gentime("20200101000000+0130"))[0])
    assert t == base + (0 * 10 + 1 * 60 + 3 * 10 + 0)


def test_rsa_key_fields_and_signature_names() -> None:
    cert = x509.parse_certificate(
        d.certificate(spki=d.rsa_spki((1 << 1023) | 1, 3), sig_oid="1.2.840.113549.1.1.5")
    )
    assert (cert.key_alg, cert.sig_alg, cert.key_type) == (
        "rsaEncryption",
        "sha1WithRSAEncryption",
        "rsa",
    )
    assert (cert.key_length, cert.exponent, cert.curve) == (1024, "3", None)
    assert cert.version == 3


def test_ec_key_names_the_curve_and_its_size() -> None:
    cert = x509.parse_certificate(
        d.certificate(spki=d.ec_spki("1.3.132.0.34"), sig_oid="1.2.840.10045.4.3.3")
    )
    assert (cert.key_alg, cert.sig_alg, cert.key_type, cert.curve, cert.key_length) == (
        "id-ecPublicKey",
        "ecdsa-with-SHA384",
        "ecdsa",
        "secp384r1",
        384,
    )
    assert cert.exponent is None


def test_unknown_signature_algorithm_is_empty_and_unknown_key_algorithm_is_its_oid() -> None:
    spki = d.seq(d.seq(d.oid("1.2.3.4")), d.tlv(0x03, b"\0\x01"))
    cert = x509.parse_certificate(d.certificate(spki=spki, sig_oid="1.2.3.5"))
    assert (cert.key_alg, cert.sig_alg, cert.key_type, cert.key_length) == (
        "1.2.3.4",
        "",
        None,
        None,
    )


def test_san_and_basic_constraints() -> None:
    exts = (
        d.san(
            dns=("a.test", "*.b.test"),
            ips=(bytes([192, 0, 2, 1]), bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])),
            emails=("x@a.test",),
            uris=("https://a.test/",),
        ),
        d.basic_constraints(True, 2),
    )
    cert = x509.parse_certificate(d.certificate(extensions=exts))
    rec = x509.x509_record(cert, 5.0, host_cert=True, client_cert=False)
    assert rec["san.dns"] == ["a.test", "*.b.test"]
    assert rec["san.ip"] == ["192.0.2.1", "10.0.0.1"]  # v4-mapped v6 reads as v4, as in Zeek
    assert rec["san.email"] == ["x@a.test"]
    assert rec["san.uri"] == ["https://a.test/"]
    assert (rec["basic_constraints.ca"], rec["basic_constraints.path_len"]) == (True, 2)
    assert rec["fingerprint"] == hashlib.sha256(cert.der).hexdigest()
    assert (rec["host_cert"], rec["client_cert"]) == (True, False)


def test_without_extensions_the_san_and_constraint_columns_are_unset() -> None:
    rec = x509.x509_record(x509.parse_certificate(d.certificate()), 1.0, False, False)
    assert all(rec[k] is None for k in ("san.dns", "san.ip", "basic_constraints.ca"))


@pytest.mark.parametrize(
    ("host", "certname", "match"),
    [
        ("www.a.test", "www.a.test", True),
        ("www.a.test", "*.a.test", True),
        ("a.test", "*.test", False),  # wildcards need three labels
        ("x.www.a.test", "*.a.test", False),  # only the leftmost label
        ("foo.a.test", "f*.a.test", True),
        ("bar.a.test", "f*.a.test", False),
        ("WWW.A.TEST", "www.a.test", False),  # Zeek compares case-sensitively
    ],
)
def test_check_hostname(host: str, certname: str, match: bool) -> None:
    assert x509.check_hostname(host, certname) is match


def test_hostname_match_uses_san_when_present_else_the_last_cn() -> None:
    with_san = x509.parse_certificate(
        d.certificate(
            subject=d.name([(CN, d.utf8("cn.test"))]), extensions=(d.san(dns=("san.a.test",)),)
        )
    )
    assert x509.cert_matches_hostname(with_san, "san.a.test")
    assert not x509.cert_matches_hostname(with_san, "cn.test")
    no_san = x509.parse_certificate(d.certificate(subject=d.name([(CN, d.utf8("cn.test"))])))
    assert x509.cert_matches_hostname(no_san, "cn.test")


def test_garbage_is_not_a_certificate() -> None:
    for junk in (b"", b"\x30\x03\x02\x01", b"\x30\x00", b"hello world"):
        with pytest.raises(x509.CertificateError):
            x509.parse_certificate(junk)


def test_known_certificates_are_logged_once_per_window_per_role() -> None:
    known = x509.KnownCertificates(x509.X509Config())
    key = ("ab", True, False)
    assert known.first_time(key, 0.0)
    assert not known.first_time(key, 100.0)
    assert known.first_time(("ab", False, False), 100.0)  # another role is another entry
    assert known.first_time(key, 86400.0)  # relogged after a day
    always = x509.KnownCertificates(x509.X509Config(relog_after=0))
    assert always.first_time(key, 0.0) and always.first_time(key, 0.0)
    with pytest.raises(ValueError):
        x509.X509Config(relog_after=-1)


def test_analyze_certificate_keeps_certificates_out_of_files_log_unless_configured() -> None:
    der = d.certificate()
    ctx = FakeContext(tcp_conn(443))
    cert = x509.analyze_certificate(ctx, der, 10.0, is_orig=False, host_cert=True)
    assert cert is not None
    assert [r["fingerprint"] for r in ctx.logs("x509")] == [cert.fingerprint]
    assert ctx.logs("files") == []
    # the same certificate again within the window: no second x509 row
    x509.analyze_certificate(ctx, der, 11.0, is_orig=False, host_cert=True)
    assert len(ctx.logs("x509")) == 1

    ctx2 = FakeContext(tcp_conn(443))
    x509.configure(ctx2.files, x509.X509Config(log_in_files_log=True))
    x509.analyze_certificate(ctx2, der, 10.0, is_orig=False, host_cert=False)
    (row,) = ctx2.logs("files")
    assert row["mime_type"] == "application/x-x509-ca-cert"
    assert row["analyzers"] == ["MD5", "SHA1", "SHA256", "X509"]
    assert row["sha256"] == hashlib.sha256(der).hexdigest()
    assert (row["source"], row["is_orig"], row["seen_bytes"]) == ("SSL", False, len(der))


def test_unparseable_certificate_still_is_a_file_but_has_no_x509_row() -> None:
    ctx = FakeContext(tcp_conn(443))
    x509.configure(ctx.files, x509.X509Config(log_in_files_log=True))
    assert x509.analyze_certificate(ctx, b"\x30\x01", 1.0, is_orig=False, host_cert=True) is None
    assert ctx.logs("x509") == []
    assert len(ctx.logs("files")) == 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_certificates_raise_only_certificate_error(data: st.DataObject) -> None:
    der = bytearray(
        d.certificate(extensions=(d.san(dns=("a.test",)), d.basic_constraints(True, 0)))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(der)))
    with contextlib.suppress(x509.CertificateError):
        x509.parse_certificate(bytes(der[:cut]))


def ocsp_response(*singles: bytes) -> bytes:
    data = d.seq(d.tlv(0xA2, d.tlv(0x04, bytes(20))), d.gentime("20200101000000Z"), d.seq(*singles))
    basic = d.seq(data, d.seq(d.oid("1.2.840.113549.1.1.11")), d.tlv(0x03, b"\0"))
    body = d.seq(d.oid("1.3.6.1.5.5.7.48.1.1"), d.tlv(0x04, basic))
    return d.seq(d.tlv(0x0A, b"\0"), d.tlv(0xA0, body))


def single(serial: int, status: bytes, next_update: bool = True) -> bytes:
    cert_id = d.seq(
        d.seq(d.oid("1.3.14.3.2.26"), d.tlv(0x05, b"")),
        d.tlv(0x04, bytes.fromhex("ab" * 20)),
        d.tlv(0x04, b""),
        d.integer(serial),
    )
    nxt = d.tlv(0xA0, d.gentime("20200108000000Z")) if next_update else b""
    return d.seq(cert_id, status, d.gentime("20200101000000Z"), nxt)


def test_ocsp_rows_as_zeeks_ocsp_log() -> None:
    revoked = d.tlv(0xA1, d.gentime("20191231000000Z") + d.tlv(0xA0, d.tlv(0x0A, b"\x09")))
    der = ocsp_response(single(0x3D47, d.tlv(0x80, b"")), single(5, revoked, next_update=False))
    good, bad = x509.ocsp_records(der, 7.0, "Fx")
    assert good == {
        "ts": 7.0,
        "id": "Fx",
        "hashAlgorithm": "sha1",
        "issuerNameHash": "AB" * 20,
        "issuerKeyHash": "0",  # i2a_ASN1_STRING prints an empty string as 0
        "serialNumber": "3D47",
        "certStatus": "good",
        "revoketime": None,
        "revokereason": None,
        "thisUpdate": float(calendar.timegm((2020, 1, 1, 0, 0, 0))),
        "nextUpdate": float(calendar.timegm((2020, 1, 8, 0, 0, 0))),
    }
    assert (bad["certStatus"], bad["revokereason"], bad["nextUpdate"]) == (
        "revoked",
        "privilegeWithdrawn",
        None,
    )
    assert bad["revoketime"] == calendar.timegm((2019, 12, 31, 0, 0, 0))


def test_ocsp_without_response_bytes_has_no_rows_and_junk_is_an_error() -> None:
    assert x509.ocsp_records(d.seq(d.tlv(0x0A, b"\x06")), 1.0, "F") == []
    with pytest.raises(x509.CertificateError):
        x509.ocsp_records(b"\x30\x03\x0a\x01", 1.0, "F")


def test_rows_have_exactly_zeeks_x509_and_ocsp_columns() -> None:
    from wirestream.schemas.zeek_types import zeek_log_schemas

    schemas = zeek_log_schemas()
    rec = x509.x509_record(x509.parse_certificate(d.certificate()), 1.0, True, False)
    assert list(rec) == [c.name for c in schemas["x509"].columns]
    (row,) = x509.ocsp_records(ocsp_response(single(1, d.tlv(0x80, b""))), 1.0, "F")
    assert list(row) == [c.name for c in schemas["ocsp"].columns]
