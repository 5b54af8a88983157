"""The find-based DPD sniffers give exactly the verdicts of Zeek's dpd.sig regexes.

The regexes below are Zeek's signatures as written in dpd.sig (``payload /.../`` matches from
the payload's start); the sniffers avoid their ``.*`` backtracking. Inputs are built from the
signatures' own tokens so that hits, near misses and odd line breaks all come up often.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.protocols import dhcp, ftp, rdp, sip, smb, smtp, socks
from wirestream.processors.engine.protocols.dpd import keyword_starts_line

ZEEK_FTP_CLIENT = re.compile(rb"(|.*[\n\r]) *[uU][sS][eE][rR] ", re.S)
ZEEK_FTP_SERVER = re.compile(rb"[\n\r ]*(120|220)[^0-9].*[\n\r] *(230|331)[^0-9]", re.S)
ZEEK_SMTP_CLIENT = re.compile(
    rb"(?:|.*[\n\r])[\t\n\v\f\r ]*(?:[hH][eE][lL][oO]|[eE][hH][lL][oO])", re.S
)
ZEEK_SMTP_SERVER = re.compile(rb"[\t\n\v\f\r ]*220[\t\n\v\f\r -]")
ZEEK_RDP_CLIENT = re.compile(rb".*(Cookie: mstshash=|Duca.*(rdpdr|rdpsnd|drdynvc|cliprdr))", re.S)
ZEEK_RDP_SERVER = re.compile(rb"(.{5}\xd0|.*McDn)", re.S)
ZEEK_DHCP = re.compile(rb".{236}\x63\x82\x53\x63", re.S)
ZEEK_SIP_REQUEST = re.compile(rb".* SIP/[0-9]\.[0-9]\r\n", re.S)
ZEEK_SIP_REPLY = re.compile(rb" ?SIP/[0-9]\.[0-9](\r\n| [0-9][0-9][0-9] )")
ZEEK_SMB = re.compile(rb"....[\xfe\xff]SMB", re.S)
ZEEK_SOCKS4_CLIENT = re.compile(rb"\x04[\x01\x02].{0,32}\x00", re.S)
ZEEK_SOCKS4_SERVER = re.compile(rb"\x00[\x5a\x5b\x5c\x5d]")
ZEEK_SOCKS5_CLIENT = re.compile(rb"\x05.[\x00-\x03\x05-\x09]", re.S)
ZEEK_SOCKS5_SERVER = re.compile(rb"\x05[\x00-\x03\x05-\x09\xff]")

TOKENS = [
    b"\r", b"\n", b" ", b"\t", b"\v", b"x", b"0", b"3", b"-", b"\xd0",
    b"120", b"220", b"230", b"331", b"USER ", b"user", b"uSeR ", b"HeLo", b"ehlo", b"EHLO",
    b"helO", b"eh", b"lo", b"Duca", b"rdpdr", b"rdpsnd", b"drdynvc", b"cliprdr",
    b"Cookie: mstshash=", b"McDn", b"SMB", b"\r\n331 ", b"\n  230-", b"\r2301", b"\r331\n", b"\r 230 ", b"\x04\x01", b"\x00\x5a", b"\x05", b"\x02", b"\x00", b"\xfeSMB", b"\xffSMB", b" SIP/2.0\r\n", b"SIP/2.0 200 ", b"SIP/1.", b"INVITE",
]  # fmt: skip
token_runs = st.lists(st.sampled_from(TOKENS), max_size=24).map(b"".join)
# Server greetings: the anchored part of the FTP/SMTP server signatures, then anything.
greetings = st.tuples(
    st.sampled_from([b"", b" ", b"\r\n", b"\n \t", b"\v"]),
    st.sampled_from([b"120", b"220", b"221"]),
    token_runs,
).map(b"".join)
# SOCKS requests/replies: the first bytes both sides of a pair must start with, then anything.
socks_starts = st.tuples(
    st.sampled_from([b"", b"\x04", b"\x04\x01", b"\x04\x02", b"\x00\x5a", b"\x00\x5d",
                     b"\x00", b"\x05", b"\x05\x01", b"\x05\x00", b"\x05\x04", b"\x05\xff"]),
    st.binary(max_size=40),
).map(b"".join)  # fmt: skip
payloads = st.one_of(token_runs, greetings, st.binary(max_size=64))


@settings(max_examples=1500, deadline=None)
@given(orig=payloads, resp=payloads)
def test_ftp_sniffer_is_zeeks_signature(orig: bytes, resp: bytes) -> None:
    zeek = bool(ZEEK_FTP_CLIENT.match(orig) and ZEEK_FTP_SERVER.match(resp))
    assert ftp.sniff_ftp(orig, resp) == zeek
    # each side alone, the other a sure hit
    assert ftp.sniff_ftp(orig, b"220 x\r\n331 y") == bool(ZEEK_FTP_CLIENT.match(orig))
    assert ftp.sniff_ftp(b"USER a", resp) == bool(ZEEK_FTP_SERVER.match(resp))


@settings(max_examples=1500, deadline=None)
@given(orig=payloads, resp=payloads)
def test_smtp_sniffer_is_zeeks_signature(orig: bytes, resp: bytes) -> None:
    zeek = bool(ZEEK_SMTP_CLIENT.match(orig) and ZEEK_SMTP_SERVER.match(resp))
    assert smtp.sniff_smtp(orig, resp) == zeek
    # each side alone, the other a sure hit
    assert smtp.sniff_smtp(orig, b"220 x") == bool(ZEEK_SMTP_CLIENT.match(orig))
    assert smtp.sniff_smtp(b"EHLO a", resp) == bool(ZEEK_SMTP_SERVER.match(resp))


@settings(max_examples=1500, deadline=None)
@given(orig=payloads, resp=payloads)
def test_rdp_sniffer_is_zeeks_signature(orig: bytes, resp: bytes) -> None:
    zeek = bool(ZEEK_RDP_CLIENT.match(orig) and ZEEK_RDP_SERVER.match(resp))
    assert rdp.sniff_rdp(orig, resp) == zeek
    # each side alone, the other a sure hit
    assert rdp.sniff_rdp(orig, b"McDn") == bool(ZEEK_RDP_CLIENT.match(orig))
    assert rdp.sniff_rdp(b"Cookie: mstshash=", resp) == bool(ZEEK_RDP_SERVER.match(resp))


@settings(max_examples=1500, deadline=None)
@given(orig=payloads, resp=payloads)
def test_smb_sniffer_is_zeeks_signature(orig: bytes, resp: bytes) -> None:
    assert smb.sniff_smb(orig, resp) == bool(ZEEK_SMB.match(orig) or ZEEK_SMB.match(resp))


@settings(max_examples=1500, deadline=None)
@given(orig=socks_starts, resp=socks_starts)
def test_socks_sniffer_is_zeeks_signatures(orig: bytes, resp: bytes) -> None:
    v4 = ZEEK_SOCKS4_CLIENT.match(orig) and ZEEK_SOCKS4_SERVER.match(resp)
    v4_reverse = ZEEK_SOCKS4_CLIENT.match(resp) and ZEEK_SOCKS4_SERVER.match(orig)
    v5 = ZEEK_SOCKS5_CLIENT.match(orig) and ZEEK_SOCKS5_SERVER.match(resp)
    assert socks.sniff_socks(orig, resp) == bool(v4 or v4_reverse or v5)


# BOOTP-sized datagrams with the magic cookie where it belongs, near it, or cut.
bootp = st.tuples(
    st.integers(234, 237).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.sampled_from([b"\x63\x82\x53\x63", b"\x63\x82", b"\x63\x82\x53\x64", b""]),
    st.binary(max_size=8),
).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(orig=st.one_of(bootp, payloads), resp=st.one_of(bootp, payloads))
def test_udp_sniffers_are_zeeks_signatures(orig: bytes, resp: bytes) -> None:
    assert dhcp.sniff(orig, resp) == bool(ZEEK_DHCP.match(orig) or ZEEK_DHCP.match(resp))
    assert sip.sniff(orig, resp) == any(
        ZEEK_SIP_REQUEST.match(p) or ZEEK_SIP_REPLY.match(p) for p in (orig, resp)
    )


@settings(max_examples=1500, deadline=None)
@given(data=payloads)
def test_keyword_starts_line_is_the_regex(data: bytes) -> None:
    assert keyword_starts_line(data, (b"helo", b"ehlo"), b"\t\n\v\f\r ") == bool(
        ZEEK_SMTP_CLIENT.match(data)
    )
    assert keyword_starts_line(data, (b"user ",), b" ") == bool(ZEEK_FTP_CLIENT.match(data))


def test_known_verdicts() -> None:
    """Hand-checked examples, so the comparisons above cannot pass with both sides broken."""
    assert ftp.sniff_ftp(b"SYST\r\n  user anonymous\r\n", b"220 hi\r\n331 pass?\r\n")
    assert not ftp.sniff_ftp(b"xuser a\r\n", b"220 hi\r\n331 pass?\r\n")
    assert not ftp.sniff_ftp(b"USER a\r\n", b"220 hi 331 x")
    assert smtp.sniff_smtp(b"\r\n \tEhLo x\r\n", b" 220-mail\r\n")
    assert not smtp.sniff_smtp(b"x helo", b"220 mail\r\n")
    assert not smtp.sniff_smtp(b"HELO x", b"2200")
    assert rdp.sniff_rdp(b"\x03\x00Cookie: mstshash=a", b"\x03\x00\x00\x0b\x06\xd0")
    assert rdp.sniff_rdp(b"..Duca....cliprdr", b"....McDn")
    assert not rdp.sniff_rdp(b"cliprdr Duca", b"McDn")
    assert smb.sniff_smb(b"", b"\x00\x00\x00\x10\xfeSMB")
    assert not smb.sniff_smb(b"\x00\x00\x00\xfeSMB", b"")
    assert socks.sniff_socks(b"\x04\x01\x00\x50\x01\x02\x03\x04u\x00", b"\x00\x5a")
    assert socks.sniff_socks(b"\x00\x5b", b"\x04\x02\x00\x50\x00")
    assert socks.sniff_socks(b"\x05\x01\x00", b"\x05\x00")
    assert not socks.sniff_socks(b"\x05\x01\x04", b"\x05\x00")
