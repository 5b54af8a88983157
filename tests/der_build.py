"""Hand-built DER for tests: certificates with exactly the oddities a test needs."""

from __future__ import annotations


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(items))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def integer(value: int) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def utf8(s: str) -> bytes:
    return tlv(0x0C, s.encode())


def printable(s: str) -> bytes:
    return tlv(0x13, s.encode())


def utctime(s: str) -> bytes:
    return tlv(0x17, s.encode())


def gentime(s: str) -> bytes:
    return tlv(0x18, s.encode())


def name(*rdns: list[tuple[str, bytes]]) -> bytes:
    """A Name from RDNs, each a list of (attribute OID, encoded value)."""
    return seq(*(set_(*(seq(oid(t), v) for t, v in rdn)) for rdn in rdns))


def rsa_spki(modulus: int, exponent: int = 65537) -> bytes:
    key = seq(integer(modulus), integer(exponent))
    return seq(seq(oid("1.2.840.113549.1.1.1"), tlv(0x05, b"")), tlv(0x03, b"\0" + key))


def ec_spki(curve_oid: str = "1.2.840.10045.3.1.7", point: bytes = b"\x04" + bytes(64)) -> bytes:
    return seq(seq(oid("1.2.840.10045.2.1"), oid(curve_oid)), tlv(0x03, b"\0" + point))


def extension(ext_oid: str, value: bytes, critical: bool = False) -> bytes:
    crit = tlv(0x01, b"\xff") if critical else b""
    return seq(oid(ext_oid), crit, tlv(0x04, value))


def san(dns: tuple[str, ...] = (), ips: tuple[bytes, ...] = (), emails=(), uris=()) -> bytes:
    names = [tlv(0x82, d.encode()) for d in dns]
    names += [tlv(0x87, ip) for ip in ips]
    names += [tlv(0x81, e.encode()) for e in emails]
    names += [tlv(0x86, u.encode()) for u in uris]
    return extension("2.5.29.17", seq(*names))


def basic_constraints(ca: bool, path_len: int | None = None) -> bytes:
    body = (tlv(0x01, b"\xff") if ca else b"") + (
        integer(path_len) if path_len is not None else b""
    )
    return extension("2.5.29.19", seq(body), critical=True)


def certificate(
    *,
    serial: bytes = integer(1),
    issuer: bytes | None = None,
    subject: bytes | None = None,
    not_before: bytes = utctime("200101000000Z"),
    not_after: bytes = utctime("300101000000Z"),
    spki: bytes | None = None,
    extensions: tuple[bytes, ...] = (),
    sig_oid: str = "1.2.840.113549.1.1.11",
    version: int = 2,
) -> bytes:
    """A certificate (signature bytes are filler: nothing here verifies them)."""
    subject = subject if subject is not None else name([("2.5.4.3", utf8("test.example"))])
    issuer = issuer if issuer is not None else subject
    spki = spki if spki is not None else rsa_spki((1 << 2047) | 12345)
    alg = seq(oid(sig_oid), tlv(0x05, b""))
    tbs = seq(
        tlv(0xA0, integer(version)),
        serial,
        alg,
        issuer,
        seq(not_before, not_after),
        subject,
        spki,
        tlv(0xA3, seq(*extensions)) if extensions else b"",
    )
    return seq(tbs, alg, tlv(0x03, b"\0" + bytes(32)))
