"""X.509 certificates -> x509.log, formatted exactly as Zeek's X509 file analyzer and scripts do.

Zeek hands each certificate to OpenSSL and prints the parts with OpenSSL's text functions
(``X509_NAME_print_ex`` with RFC 2253 flags, ``i2a_ASN1_INTEGER``, ``i2t_ASN1_OBJECT`` ...).
This module reads the DER itself and reproduces those texts, so no TLS library decides what
the log says: :func:`parse_certificate` gives a :class:`Certificate` with every logged value,
:func:`x509_record` the x509.log row, and :func:`analyze_certificate` runs one certificate
through the file manager the way Zeek's SSL analyzer does (files.log row only with
``X509::log_x509_in_files_log``; x509.log deduplicated per ``X509::relog_known_certificates_after``).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import ipaddress
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, Record
from wirestream.schemas.zeeklog.escape import bytes_text

log = logging.getLogger(__name__)

USER_CERT_MIME = "application/x-x509-user-cert"  # the first certificate of a chain
CA_CERT_MIME = "application/x-x509-ca-cert"  # every later one
CERT_ANALYZERS = ("MD5", "SHA1", "SHA256", "X509")  # registered for both MIME types
RELOG_KNOWN_CERTIFICATES_AFTER = 86400.0  # X509::relog_known_certificates_after (1 day)
KNOWN_LOG_CERTS_MAXIMUM_SIZE = 1_000_000  # X509::known_log_certs_maximum_size
_BIO_LINE = 2047  # Zeek reads subject/issuer with BIO_gets into a 2048-byte buffer


class CertificateError(ValueError):
    """The bytes are not a certificate OpenSSL's d2i_X509 would accept."""


# -- DER -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int  # the identifier octet (class, constructed bit, number < 31)
    value: bytes
    raw: bytes  # the whole encoding, identifier and length included


def read_tlv(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """One DER element at ``pos``; returns it and the position after it."""
    if pos + 2 > len(data):
        raise CertificateError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise CertificateError("multi-byte DER tags are not used in certificates")
    first = data[pos + 1]
    hdr = 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + 2 + n > len(data):
            raise CertificateError("bad DER length")
        length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
        hdr += n
    end = pos + hdr + length
    if end > len(data):
        raise CertificateError("DER element runs past its container")
    return Tlv(tag, data[pos + hdr : end], data[pos:end]), end


def children(value: bytes) -> list[Tlv]:
    """The elements inside a constructed value."""
    out, pos = [], 0
    while pos < len(value):
        tlv, pos = read_tlv(value, pos)
        out.append(tlv)
    return out


def oid_text(value: bytes) -> str:
    """Dotted-decimal form of an OBJECT IDENTIFIER's content octets."""
    if not value:
        raise CertificateError("empty OID")
    arcs, acc = [], 0
    for b in value:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(acc)
            acc = 0
    if value[-1] & 0x80:
        raise CertificateError("unterminated OID")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def _expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv.tag != tag:
        raise CertificateError(f"{what}: expected tag 0x{tag:02x}, got 0x{tlv.tag:02x}")
    return tlv


# -- OpenSSL's names for object identifiers ---------------------------------------------------

# Short names X509_NAME_print_ex (XN_FLAG_FN_SN) prints for attribute types.
_ATTR_SN: dict[str, str] = {
    "2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
    "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.12": "title", "2.5.4.13": "description", "2.5.4.14": "searchGuide",
    "2.5.4.15": "businessCategory", "2.5.4.16": "postalAddress", "2.5.4.17": "postalCode",
    "2.5.4.18": "postOfficeBox", "2.5.4.19": "physicalDeliveryOfficeName",
    "2.5.4.20": "telephoneNumber", "2.5.4.21": "telexNumber",
    "2.5.4.22": "teletexTerminalIdentifier", "2.5.4.23": "facsimileTelephoneNumber",
    "2.5.4.24": "x121Address", "2.5.4.25": "internationaliSDNNumber",
    "2.5.4.26": "registeredAddress", "2.5.4.27": "destinationIndicator",
    "2.5.4.28": "preferredDeliveryMethod", "2.5.4.29": "presentationAddress",
    "2.5.4.30": "supportedApplicationContext", "2.5.4.31": "member", "2.5.4.32": "owner",
    "2.5.4.33": "roleOccupant", "2.5.4.34": "seeAlso", "2.5.4.35": "userPassword",
    "2.5.4.41": "name", "2.5.4.42": "GN", "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier", "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier", "2.5.4.47": "enhancedSearchGuide",
    "2.5.4.48": "protocolInformation", "2.5.4.49": "distinguishedName",
    "2.5.4.50": "uniqueMember", "2.5.4.51": "houseIdentifier", "2.5.4.54": "dmdName",
    "2.5.4.65": "pseudonym", "2.5.4.72": "role", "2.5.4.97": "organizationIdentifier",
    "2.5.4.98": "c3", "2.5.4.99": "n3", "2.5.4.100": "dnsName",
    "1.2.840.113549.1.9.1": "emailAddress", "1.2.840.113549.1.9.2": "unstructuredName",
    "1.2.840.113549.1.9.8": "unstructuredAddress", "1.2.840.113549.1.9.7": "challengePassword",
    "0.9.2342.19200300.100.1.1": "UID", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.3": "mail",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL", "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
    "1.2.643.3.131.1.1": "INN", "1.2.643.100.1": "OGRN", "1.2.643.100.3": "SNILS",
    "1.2.643.100.5": "OGRNIP",
}  # fmt: skip

# Long names i2t_ASN1_OBJECT prints for key and signature algorithms.
_ALG_LN: dict[str, str] = {
    "1.2.840.113549.1.1.1": "rsaEncryption", "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.3": "md4WithRSAEncryption", "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption", "1.2.840.113549.1.1.7": "rsaesOaep",
    "1.2.840.113549.1.1.10": "rsassaPss", "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.15": "sha512-224WithRSAEncryption",
    "1.2.840.113549.1.1.16": "sha512-256WithRSAEncryption",
    "1.2.840.113549.1.3.1": "dhKeyAgreement", "1.2.840.10046.2.1": "X9.42 DH",
    "1.2.840.10045.2.1": "id-ecPublicKey", "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224", "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384", "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.1": "dsaEncryption", "1.2.840.10040.4.3": "dsaWithSHA1",
    "2.16.840.1.101.3.4.3.1": "dsa_with_SHA224", "2.16.840.1.101.3.4.3.2": "dsa_with_SHA256",
    "1.3.14.3.2.12": "dsaEncryption-old", "1.3.14.3.2.13": "dsaWithSHA",
    "1.3.14.3.2.27": "dsaWithSHA1-old", "1.3.14.3.2.3": "md5WithRSA",
    "1.3.14.3.2.15": "shaWithRSAEncryption", "1.3.14.3.2.29": "sha1WithRSA",
    "1.3.101.110": "X25519", "1.3.101.111": "X448", "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448", "1.2.156.10197.1.301": "sm2",
    "1.2.156.10197.1.501": "SM2-with-SM3",
    "2.16.840.1.101.3.4.3.17": "ML-DSA-44", "2.16.840.1.101.3.4.3.18": "ML-DSA-65",
    "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
    "2.16.840.1.101.3.4.3.9": "ecdsa_with_SHA3-224", "2.16.840.1.101.3.4.3.10": "ecdsa_with_SHA3-256",
    "2.16.840.1.101.3.4.3.11": "ecdsa_with_SHA3-384", "2.16.840.1.101.3.4.3.12": "ecdsa_with_SHA3-512",
    "2.16.840.1.101.3.4.3.13": "RSA-SHA3-224", "2.16.840.1.101.3.4.3.14": "RSA-SHA3-256",
    "2.16.840.1.101.3.4.3.15": "RSA-SHA3-384", "2.16.840.1.101.3.4.3.16": "RSA-SHA3-512",
    "1.2.643.2.2.3": "GOST R 34.11-94 with GOST R 34.10-2001",
    "1.2.643.2.2.19": "GOST R 34.10-2001",
}  # fmt: skip

# Named curves: OpenSSL's group name (OSSL_PKEY_PARAM_GROUP_NAME) and the order's bit length.
_CURVES: dict[str, tuple[str, int]] = {
    "1.2.840.10045.3.1.7": ("prime256v1", 256), "1.3.132.0.34": ("secp384r1", 384),
    "1.3.132.0.35": ("secp521r1", 521), "1.3.132.0.10": ("secp256k1", 256),
    "1.2.840.10045.3.1.1": ("prime192v1", 192), "1.3.132.0.33": ("secp224r1", 224),
    "1.3.132.0.31": ("secp192k1", 192), "1.3.132.0.32": ("secp224k1", 225),
    "1.3.36.3.3.2.8.1.1.7": ("brainpoolP256r1", 256), "1.3.36.3.3.2.8.1.1.11": ("brainpoolP384r1", 384),
    "1.3.36.3.3.2.8.1.1.13": ("brainpoolP512r1", 512), "1.3.132.0.8": ("secp160r1", 161),
}  # fmt: skip

# Key types OpenSSL decodes whose EVP type name Zeek logs as key_type, with their bit sizes.
_FIXED_KEYS: dict[str, tuple[str, int]] = {
    "1.3.101.110": ("X25519", 253), "1.3.101.111": ("X448", 448),
    "1.3.101.112": ("ED25519", 253), "1.3.101.113": ("ED448", 456),
}  # fmt: skip
_ML_DSA = {"2.16.840.1.101.3.4.3.17", "2.16.840.1.101.3.4.3.18", "2.16.840.1.101.3.4.3.19"}

OID_RSA = "1.2.840.113549.1.1.1"
OID_RSA_PSS = "1.2.840.113549.1.1.10"
OID_MD5_RSA = "1.2.840.113549.1.1.4"  # RDP servers put it as key algorithm; Zeek decodes RSA
OID_EC = "1.2.840.10045.2.1"
OID_DSA = "1.2.840.10040.4.1"
OID_DH = "1.2.840.113549.1.3.1"
OID_SAN = "2.5.29.17"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_CN = "2.5.4.3"


# -- OpenSSL's text forms ---------------------------------------------------------------------

# charmap.h flags for ASCII: 1 = RFC 2253 special, 2 = control, 0x20/0x40 = special when first/last.
_ESC_2253 = frozenset(b'"+,;<>\\')
_UNIVERSAL_WIDTH = {12: 0, 18: 1, 19: 1, 20: 1, 22: 1, 23: 1, 24: 1, 26: 1, 28: 4, 30: 2}


def _escape_char(c: int, first: bool, last: bool) -> str:
    """do_esc_char with ASN1_STRFLGS_RFC2253 (ESC_2253 | ESC_CTRL | ESC_MSB) for one byte."""
    if c > 0x7F:
        return f"\\{c:02X}"
    ch = chr(c)
    if c in _ESC_2253 or (first and ch in " #") or (last and ch == " "):
        return "\\" + ch
    if c < 0x20 or c == 0x7F:
        return f"\\{c:02X}"
    return ch


def _codepoints(tag: int, value: bytes) -> list[int] | None:
    """The characters of a string value as do_buf reads them; None when it cannot (OpenSSL -1)."""
    width = _UNIVERSAL_WIDTH.get(tag)
    if width == 1:
        return list(value)
    if width == 2:
        if len(value) % 2:
            return None
        return [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]
    if width == 4:
        if len(value) % 4:
            return None
        return [int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4)]
    try:  # UTF8String
        return [ord(c) for c in value.decode("utf-8")]
    except UnicodeDecodeError:
        return None


def asn1_string_rfc2253(tlv: Tlv, dump: bool = False) -> str | None:
    """do_print_ex with the RFC 2253 flags: escaped text, or ``#`` + the DER in hex for
    unknown string types and unknown attribute types; None when OpenSSL's printing fails."""
    if dump or (tlv.tag & 0xE0) or tlv.tag not in _UNIVERSAL_WIDTH:
        return "#" + tlv.raw.hex().upper()
    cps = _codepoints(tlv.tag, tlv.value)
    if cps is None:
        return None
    out = []
    n = len(cps)
    for i, cp in enumerate(cps):
        first, last = i == 0, i == n - 1
        if cp > 0x7F:  # ASN1_STRFLGS_UTF8_CONVERT: each UTF-8 byte, escaped as MSB
            try:
                encoded = chr(cp).encode("utf-8", "surrogatepass")
            except (ValueError, OverflowError):
                return None
            out.extend(_escape_char(b, first, last) for b in encoded)
        else:
            out.append(_escape_char(cp, first, last))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class NameEntry:
    oid: str
    value: Tlv
    rdn: int  # which RDN (SET) it belongs to


def parse_name(tlv: Tlv) -> list[NameEntry]:
    """A Name's attribute entries in encoding order, each with its RDN index."""
    _expect(tlv, 0x30, "Name")
    entries = []
    for i, rdn in enumerate(children(tlv.value)):
        _expect(rdn, 0x31, "RelativeDistinguishedName")
        for atv in children(rdn.value):
            parts = children(_expect(atv, 0x30, "AttributeTypeAndValue").value)
            if len(parts) != 2:
                raise CertificateError("AttributeTypeAndValue needs type and value")
            entries.append(NameEntry(oid_text(_expect(parts[0], 0x06, "type").value), parts[1], i))
    return entries


def name_rfc2253(entries: list[NameEntry]) -> str:
    """X509_NAME_print_ex(XN_FLAG_RFC2253): last RDN first, ``,`` between RDNs, ``+`` within."""
    out: list[str] = []
    prev = -1
    for entry in reversed(entries):
        if prev != -1:
            out.append("+" if prev == entry.rdn else ",")
        prev = entry.rdn
        short = _ATTR_SN.get(entry.oid)
        out.append(f"{short or entry.oid}=")
        text = asn1_string_rfc2253(entry.value, dump=short is None)
        if text is None:
            break  # OpenSSL stops printing; Zeek keeps what was written
        out.append(text)
    return "".join(out)[:_BIO_LINE]


def asn1_string_print(tlv: Tlv) -> str:
    """ASN1_STRING_print: the raw bytes, anything not printable ASCII shown as ``.``."""
    return "".join(
        chr(b) if (0x20 <= b <= 0x7E or b in (0x0A, 0x0D)) else "." for b in tlv.value
    ).split("\n")[0][:_BIO_LINE]


def integer_hex(value: bytes) -> str:
    """i2a_ASN1_INTEGER: magnitude in upper-case hex byte pairs, ``-`` for negatives."""
    if not value:
        raise CertificateError("empty INTEGER")
    neg = value[0] & 0x80
    if neg:
        magnitude = ((1 << (8 * len(value))) - int.from_bytes(value, "big")).to_bytes(
            len(value), "big"
        )
        magnitude = magnitude.lstrip(b"\0") or b"\0"
    elif len(value) > 1 and value[0] == 0:
        if not value[1] & 0x80:
            raise CertificateError("INTEGER with illegal padding")
        magnitude = value[1:]
    else:
        magnitude = value
    digits = magnitude.hex().upper()
    # OpenSSL breaks the line with "\\\n" every 35 bytes
    chunks = [digits[i : i + 70] for i in range(0, len(digits), 70)]
    return ("-" if neg else "") + "\\\n".join(chunks)


def asn1_time(tlv: Tlv) -> float:
    """X509Common::GetTimeFromAsn1, including its leniencies (and its offset arithmetic)."""
    s = tlv.value.decode("latin-1")
    if tlv.tag == 0x17:  # UTCTime
        if not 11 <= len(s) <= 17 or s[-1] != "Z":
            return 0.0
        buf = ("20" if s[0] < "5" else "19") + s[:10]
        rest = s[10:]
    elif tlv.tag == 0x18:  # GeneralizedTime
        if not 12 <= len(s) <= 23:
            return 0.0
        buf = s[:12]
        rest = s[12:]
    else:
        return 0.0
    if not rest or rest[0] in "Z-+":
        buf += "00"
    elif len(rest) >= 2:
        buf += rest[:2]
        rest = rest[2:]
        if rest and rest[0] == ".":
            rest = rest[1:]
            while rest and rest[0].isdigit():
                rest = rest[1:]
    else:
        return 0.0
    offset = 0
    if rest and rest[0] != "Z":
        if len(rest) < 5 or rest[0] not in "+-":
            return 0.0
        d = [ord(c) - 48 for c in rest[1:5]]
        offset = d[0] * 10 + d[1] * 60 + d[2] * 10 + d[3]  # sic: Zeek's arithmetic
        if rest[0] == "-":
            offset = -offset
    try:
        nums = [ord(c) - 48 for c in buf[:14]]
        year = nums[0] * 1000 + nums[1] * 100 + nums[2] * 10 + nums[3]
        if year <= 1900:  # Zeek subtracts 1900 only from larger years: tm_year stays as is
            year += 1900
        fields = (
            year,
            nums[4] * 10 + nums[5],
            nums[6] * 10 + nums[7],
            nums[8] * 10 + nums[9],
            nums[10] * 10 + nums[11],
            nums[12] * 10 + nums[13],
        )
        result = _timegm(*fields)
    except (IndexError, ValueError, OverflowError):
        return 0.0
    return float(result + offset) if result else 0.0


def _timegm(year: int, month: int, day: int, hour: int, minute: int, sec: int) -> int:
    """timegm() normalising out-of-range fields as C does."""
    month0 = month - 1
    year += month0 // 12
    month0 %= 12
    days = calendar.timegm((year, month0 + 1, 1, 0, 0, 0, 0, 0, 0)) // 86400 + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + sec


# -- the certificate ----------------------------------------------------------------------------


@dataclass
class Certificate:
    """The ``X509::Certificate`` fields Zeek logs, plus the extensions x509.log shows."""

    der: bytes
    version: int
    serial: str
    subject: str
    issuer: str
    not_valid_before: float
    not_valid_after: float
    key_alg: str
    sig_alg: str
    key_type: str | None = None
    key_length: int | None = None
    exponent: str | None = None
    curve: str | None = None
    cn: str | None = None  # last CN of the subject (ASN1_STRING_print)
    san_dns: list[str] | None = None
    san_uri: list[str] | None = None
    san_email: list[str] | None = None
    san_ip: list[str] | None = None
    has_san: bool = False
    basic_constraints_ca: bool | None = None
    basic_constraints_path_len: int | None = None
    weirds: list[tuple[str, str]] = field(default_factory=list)

    @functools.cached_property
    def fingerprint(self) -> str:
        """X509::hash_function: SHA-256 of the DER, as ssl.log and x509.log show it."""
        return hashlib.sha256(self.der).hexdigest()


def parse_certificate(der: bytes) -> Certificate:
    """Read a DER certificate; :class:`CertificateError` when OpenSSL would not parse it either."""
    try:
        return _parse_certificate(der)
    except (IndexError, ValueError, OverflowError) as exc:
        if isinstance(exc, CertificateError):
            raise
        raise CertificateError(f"malformed certificate: {exc}") from exc


@functools.lru_cache(maxsize=10_000)
def _parse_cached(der: bytes) -> Certificate:
    """Popular certificates come again and again (Zeek caches their parse results too); the
    returned object is shared, so callers only read it."""
    return parse_certificate(der)


def _parse_certificate(der: bytes) -> Certificate:
    cert, end = read_tlv(der)
    _expect(cert, 0x30, "Certificate")
    parts = children(cert.value)
    if len(parts) != 3:
        raise CertificateError("Certificate needs tbsCertificate, algorithm and signature")
    tbs = children(_expect(parts[0], 0x30, "TBSCertificate").value)
    sig_alg_oid = oid_text(_expect(children(parts[1].value)[0], 0x06, "algorithm").value)
    i = 0
    version = 0
    if tbs and tbs[0].tag == 0xA0:
        inner = children(tbs[0].value)
        version = int.from_bytes(_expect(inner[0], 0x02, "version").value, "big", signed=True)
        i = 1
    if len(tbs) < i + 6:
        raise CertificateError("TBSCertificate is missing fields")
    serial = integer_hex(_expect(tbs[i], 0x02, "serialNumber").value)
    issuer = parse_name(tbs[i + 2])
    validity = children(_expect(tbs[i + 3], 0x30, "Validity").value)
    if len(validity) != 2 or any(t.tag not in (0x17, 0x18) for t in validity):
        raise CertificateError("bad Validity")
    subject = parse_name(tbs[i + 4])
    spki = children(_expect(tbs[i + 5], 0x30, "SubjectPublicKeyInfo").value)
    if len(spki) != 2:
        raise CertificateError("bad SubjectPublicKeyInfo")
    alg = children(_expect(spki[0], 0x30, "AlgorithmIdentifier").value)
    key_oid = oid_text(_expect(alg[0], 0x06, "algorithm").value)
    key_params = alg[1] if len(alg) > 1 else None
    key_bits = _expect(spki[1], 0x03, "subjectPublicKey").value[1:]
    cns = [e for e in subject if e.oid == OID_CN]
    c = Certificate(
        der=der[:end],
        version=version + 1,
        serial=serial,
        subject=name_rfc2253(subject),
        issuer=name_rfc2253(issuer),
        not_valid_before=asn1_time(validity[0]),
        not_valid_after=asn1_time(validity[1]),
        key_alg=_ALG_LN.get(key_oid, key_oid),
        sig_alg=_ALG_LN.get(sig_alg_oid, ""),
        cn=asn1_string_print(cns[-1].value) if cns else None,
    )
    _public_key(c, key_oid, key_params, key_bits)
    for t in tbs[i + 6 :]:
        if t.tag == 0xA3:
            for ext in children(_expect(children(t.value)[0], 0x30, "Extensions").value):
                _extension(c, ext)
    return c


def _public_key(c: Certificate, oid: str, params: Tlv | None, key: bytes) -> None:
    """What X509_extract_key + EVP_PKEY_* give Zeek: type, bits, exponent, curve."""
    try:
        if oid in (OID_RSA, OID_MD5_RSA, OID_RSA_PSS):
            n, e = children(_expect(read_tlv(key)[0], 0x30, "RSAPublicKey").value)[:2]
            bits = int.from_bytes(n.value, "big", signed=True).bit_length()
            if oid == OID_RSA_PSS:
                c.key_type = "RSA-PSS"
            else:
                c.key_type = "rsa"
                c.exponent = str(int.from_bytes(e.value, "big", signed=True))
            c.key_length = bits or None
        elif oid == OID_EC:
            c.key_type = "ecdsa"
            if params is not None and params.tag == 0x06:
                curve = _CURVES.get(oid_text(params.value))
                if curve is not None:
                    c.curve, c.key_length = curve
        elif oid == OID_DSA:
            c.key_type = "dsa"
            if params is not None and params.tag == 0x30:
                p = children(params.value)[0]
                c.key_length = int.from_bytes(p.value, "big", signed=True).bit_length() or None
        elif oid == OID_DH:
            c.key_type = "DH"
            if params is not None and params.tag == 0x30:
                p = children(params.value)[0]
                c.key_length = int.from_bytes(p.value, "big", signed=True).bit_length() or None
        elif oid in _FIXED_KEYS:
            c.key_type, c.key_length = _FIXED_KEYS[oid]
        elif oid in _ML_DSA:
            c.key_type, c.key_length = _ALG_LN[oid], len(key) * 8
    except CertificateError:
        c.key_type = c.key_length = c.exponent = c.curve = None  # OpenSSL could not decode it


def _extension(c: Certificate, ext: Tlv) -> None:
    parts = children(_expect(ext, 0x30, "Extension").value)
    oid = oid_text(_expect(parts[0], 0x06, "extnID").value)
    value = parts[-1]
    if value.tag != 0x04:
        raise CertificateError("extnValue is not an OCTET STRING")
    if oid == OID_BASIC_CONSTRAINTS:
        try:
            seq = children(_expect(read_tlv(value.value)[0], 0x30, "BasicConstraints").value)
        except CertificateError:
            c.weirds.append(("x509_invalid_basic_constraint", ""))
            return
        ca = False
        path_len = None
        for t in seq:
            if t.tag == 0x01:
                ca = t.value != b"\0"
            elif t.tag == 0x02:
                path_len = int.from_bytes(t.value, "big", signed=True)
        c.basic_constraints_ca = ca
        c.basic_constraints_path_len = path_len
    elif oid == OID_SAN:
        try:
            names = children(_expect(read_tlv(value.value)[0], 0x30, "GeneralNames").value)
        except CertificateError:
            c.weirds.append(("x509_san_parse_error", ""))
            return
        c.has_san = True
        dns: list[str] = []
        uri: list[str] = []
        email: list[str] = []
        ips: list[str] = []
        for n in names:
            kind = n.tag & 0x1F
            if kind in (1, 2, 6) and n.tag & 0xC0 == 0x80:
                text = bytes_text(n.value)
                {1: email, 2: dns, 6: uri}[kind].append(text)
            elif kind == 7 and n.tag & 0xC0 == 0x80:
                if len(n.value) == 4:
                    ips.append(str(ipaddress.IPv4Address(n.value)))
                elif len(n.value) == 16:
                    v6 = ipaddress.IPv6Address(n.value)
                    ips.append(str(v6.ipv4_mapped or v6))
                else:
                    c.weirds.append(("x509_san_ip_length", str(len(n.value))))
        c.san_dns = dns or None
        c.san_uri = uri or None
        c.san_email = email or None
        c.san_ip = ips or None


def check_hostname(hostname: str, certname: str) -> bool:
    """Zeek's check_hostname: exact, or a wildcard in the leftmost label of a 3+ label name."""
    if hostname == certname:
        return True
    wild = certname.find("*")
    if wild < 0:
        return False
    first = certname.find(".")
    if first < 0 or certname.find(".", first + 1) < 0 or wild + 1 != first:
        return False
    host_first = hostname.find(".")
    if host_first < 0 or hostname[host_first:] != certname[first:]:
        return False
    return not (wild and hostname[:wild] != certname[:wild])


def cert_matches_hostname(cert: Certificate, hostname: str) -> bool:
    """x509_check_cert_hostname != "": SAN DNS names when a SAN exists, else the last CN."""
    if cert.has_san:
        return any(check_hostname(hostname, n) for n in cert.san_dns or ())
    return cert.cn is not None and check_hostname(hostname, cert.cn)


def x509_record(cert: Certificate, ts: float, host_cert: bool, client_cert: bool) -> Record:
    """One x509.log row (Zeek 9 columns)."""
    return {
        "ts": ts,
        "fingerprint": cert.fingerprint,
        "certificate.version": cert.version,
        "certificate.serial": cert.serial,
        "certificate.subject": cert.subject,
        "certificate.issuer": cert.issuer,
        "certificate.not_valid_before": cert.not_valid_before,
        "certificate.not_valid_after": cert.not_valid_after,
        "certificate.key_alg": cert.key_alg,
        "certificate.sig_alg": cert.sig_alg,
        "certificate.key_type": cert.key_type,
        "certificate.key_length": cert.key_length,
        "certificate.exponent": cert.exponent,
        "certificate.curve": cert.curve,
        "san.dns": cert.san_dns,
        "san.uri": cert.san_uri,
        "san.email": cert.san_email,
        "san.ip": cert.san_ip,
        "basic_constraints.ca": cert.basic_constraints_ca,
        "basic_constraints.path_len": cert.basic_constraints_path_len,
        "host_cert": host_cert,
        "client_cert": client_cert,
    }


# -- OCSP responses (ocsp.log) ------------------------------------------------------------------

_HASH_LN = {
    "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512", "2.16.840.1.101.3.4.2.4": "sha224", "1.2.840.113549.2.5": "md5",
}  # fmt: skip
_CRL_REASONS = {
    0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
    4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
    9: "privilegeWithdrawn", 10: "aACompromise",
}  # fmt: skip
OID_OCSP_BASIC = "1.3.6.1.5.5.7.48.1.1"


def octets_hex(value: bytes) -> str:
    """i2a_ASN1_STRING: upper-case hex, ``0`` for an empty string, broken every 35 bytes."""
    if not value:
        return "0"
    digits = value.hex().upper()
    return "\\\n".join(digits[i : i + 70] for i in range(0, len(digits), 70))


def ocsp_records(der: bytes, ts: float, fuid: str) -> list[Record]:
    """ocsp.log rows of an OCSP response (one per SingleResponse), as base/files/x509/log-ocsp
    writes them from Zeek's OCSP analyzer; :class:`CertificateError` if it does not parse."""
    try:
        return _ocsp_records(der, ts, fuid)
    except (IndexError, ValueError, OverflowError) as exc:
        if isinstance(exc, CertificateError):
            raise
        raise CertificateError(f"malformed OCSP response: {exc}") from exc


def _ocsp_records(der: bytes, ts: float, fuid: str) -> list[Record]:
    resp = children(_expect(read_tlv(der)[0], 0x30, "OCSPResponse").value)
    _expect(resp[0], 0x0A, "responseStatus")
    if len(resp) < 2 or resp[1].tag != 0xA0:
        return []  # no responseBytes: nothing to log
    rbytes = children(_expect(children(resp[1].value)[0], 0x30, "ResponseBytes").value)
    if oid_text(_expect(rbytes[0], 0x06, "responseType").value) != OID_OCSP_BASIC:
        return []
    basic = children(
        _expect(read_tlv(_expect(rbytes[1], 0x04, "response").value)[0], 0x30, "").value
    )
    data = children(_expect(basic[0], 0x30, "ResponseData").value)
    i = 1 if data[0].tag == 0xA0 else 0
    responses = children(_expect(data[i + 2], 0x30, "responses").value)
    rows = []
    for single in responses:
        parts = children(_expect(single, 0x30, "SingleResponse").value)
        cert_id = children(_expect(parts[0], 0x30, "CertID").value)
        alg_oid = oid_text(_expect(children(cert_id[0].value)[0], 0x06, "hashAlgorithm").value)
        status = parts[1]
        row: Record = {
            "ts": ts,
            "id": fuid,
            "hashAlgorithm": _HASH_LN.get(alg_oid, _ALG_LN.get(alg_oid, alg_oid)),
            "issuerNameHash": octets_hex(_expect(cert_id[1], 0x04, "issuerNameHash").value),
            "issuerKeyHash": octets_hex(_expect(cert_id[2], 0x04, "issuerKeyHash").value),
            "serialNumber": integer_hex(_expect(cert_id[3], 0x02, "serialNumber").value),
            "certStatus": {0x80: "good", 0xA1: "revoked"}.get(status.tag, "unknown"),
            "revoketime": None,
            "revokereason": None,
            "thisUpdate": asn1_time(parts[2]),
            "nextUpdate": None,
        }
        if status.tag == 0xA1:
            info = children(status.value)
            revoked = asn1_time(info[0])
            row["revoketime"] = revoked or None
            if len(info) > 1 and info[1].tag == 0xA0:
                code = int.from_bytes(children(info[1].value)[0].value, "big")
                row["revokereason"] = _CRL_REASONS.get(code, "(UNKNOWN)")
        for extra in parts[3:]:
            if extra.tag == 0xA0:
                row["nextUpdate"] = asn1_time(children(extra.value)[0]) or None
        rows.append(row)
    return rows


# -- per engine run: options and the known-certificate table -----------------------------------


@dataclass(frozen=True)
class X509Config:
    """Zeek's X509 script options that change what is logged."""

    log_in_files_log: bool = False  # X509::log_x509_in_files_log
    relog_after: float = RELOG_KNOWN_CERTIFICATES_AFTER  # 0 disables deduplication

    def __post_init__(self) -> None:
        if self.relog_after < 0:
            raise ValueError(f"relog_after must be >= 0, got {self.relog_after}")


class KnownCertificates:
    """X509::known_log_certs: (fingerprint, host_cert, client_cert) logged within the window."""

    def __init__(self, config: X509Config) -> None:
        self.config = config
        self._added: dict[tuple[str, bool, bool], float] = {}

    def first_time(self, key: tuple[str, bool, bool], ts: float) -> bool:
        """True if this certificate should be logged now (and remember it)."""
        if self.config.relog_after == 0:
            return True
        added = self._added.get(key)
        if added is not None and ts - added < self.config.relog_after:
            return False
        if added is not None or len(self._added) < KNOWN_LOG_CERTS_MAXIMUM_SIZE:
            self._added[key] = ts  # a full table logs without remembering, as Zeek's
        return True


_STATE: weakref.WeakKeyDictionary[Any, KnownCertificates] = weakref.WeakKeyDictionary()


def configure(files: Any, config: X509Config) -> None:
    """Set the X509 options for the engine that owns the file manager ``files``."""
    _STATE[files] = KnownCertificates(config)


def known_certificates(files: Any) -> KnownCertificates:
    state = _STATE.get(files)
    if state is None:
        state = _STATE[files] = KnownCertificates(X509Config())
    return state


def analyze_certificate(
    ctx: AnalyzerContext,
    der: bytes,
    ts: float,
    *,
    is_orig: bool,
    host_cert: bool,
    source: str = "SSL",
) -> Certificate | None:
    """One certificate off the wire, as Zeek's file analysis handles it: a file with the
    certificate MIME type and MD5/SHA1/SHA256/X509 analyzers, its x509.log row (unless already
    logged within the dedup window), then the file's end. Returns the parsed certificate, or
    None when it does not parse (Zeek's ``x509_cert_parse_error``)."""
    files = ctx.files
    known = known_certificates(files)
    handle = files.new_file(
        source=source,
        ts=ts,
        is_orig=is_orig,
        uid=ctx.uid,
        conn_id=ctx.conn_id,
        mime_type=USER_CERT_MIME if host_cert else CA_CERT_MIME,
        analyzers=CERT_ANALYZERS,
        log=known.config.log_in_files_log,
    )
    handle.data(der, ts)
    try:
        cert: Certificate | None = _parse_cached(der)
    except CertificateError as exc:
        log.debug("%s: certificate does not parse: %s", ctx.uid, exc)
        cert = None
    if cert is not None and known.first_time((cert.fingerprint, host_cert, is_orig), ts):
        ctx.emit("x509", x509_record(cert, ts, host_cert, is_orig))
    handle.end(ts)
    return cert
