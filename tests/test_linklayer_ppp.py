"""PPP link types as Zeek reads them: DLT_PPP with or without HDLC framing, DLT_PPP_SERIAL."""

from __future__ import annotations

from wirestream.processors.engine.linklayer import DLT_PPP, DLT_PPP_SERIAL, strip_link

IPV4 = bytes([0x45]) + bytes(39)  # an IPv4 header's first byte and room for more
IPV6 = bytes([0x60]) + bytes(59)
MPLS_BOTTOM = bytes([0x00, 0x01, 0x01, 0x40])  # label 16, bottom of stack


def test_dlt_ppp_with_hdlc_framing():
    res = strip_link(b"\xff\x03\x00\x21" + IPV4, DLT_PPP)
    assert (res.ip_version, res.offset) == (4, 4)


def test_dlt_ppp_without_framing_starts_with_the_protocol():
    res = strip_link(b"\x00\x57" + IPV6, DLT_PPP)
    assert (res.ip_version, res.offset) == (6, 2)


def test_dlt_ppp_carries_mpls():
    res = strip_link(b"\x02\x81" + MPLS_BOTTOM + IPV4, DLT_PPP)
    assert (res.ip_version, res.offset, res.mpls) == (4, 6, True)


def test_dlt_ppp_truncations_are_zeeks_weirds():
    assert strip_link(b"\x00\x21", DLT_PPP).weird == "truncated_ppp_header"
    assert strip_link(b"\xff\x03\x00\x21", DLT_PPP).weird == "truncated_ppp_hdlc_header"


def test_dlt_ppp_non_ip_is_reported_with_its_protocol():
    res = strip_link(b"\xc0\x21" + bytes(20), DLT_PPP)  # LCP
    assert res.ip_version == 0 and res.ethertype == 0xC021 and not res.weird


def test_ppp_serial_always_has_the_four_byte_header():
    res = strip_link(b"\x0f\x00\x00\x21" + IPV4, DLT_PPP_SERIAL)
    assert (res.ip_version, res.offset) == (4, 4)
