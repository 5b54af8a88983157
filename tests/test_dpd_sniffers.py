"""The find-based DPD sniffers give exactly the verdicts of Zeek's dpd.sig regexes.

The regexes below are Zeek's signatures as written in dpd.sig (``payload /.../`` matches from
the payload's start); the sniffers avoid their ``.*`` backtracking. Inputs are built from the
signatures' own tokens so that hits, near misses and odd line breaks all come up often.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.protocols import ftp, rdp, smtp
from wirestream.processors.engine.protocols.dpd import keyword_starts_line

ZEEK_FTP_CLIENT = re.compile(rb"(|.*[\n\r]) *[uU][sS][eE][rR] ", re.S)
ZEEK_FTP_SERVER = re.compile(rb"[\n\r ]*(120|220)[^0-9].*[\n\r] *(230|331)[^0-9]", re.S)
ZEEK_SMTP_CLIENT = re.compile(
    rb"(?:|.*[\n\r])[\t\n\v\f\r ]*(?:[hH][eE][lL][oO]|[eE][hH][lL][oO])", re.S
)
ZEEK_SMTP_SERVER = re.compile(rb"[\t\n\v\f\r ]*220[\t\n\v\f\r -]")
ZEEK_RDP_CLIENT = re.compile(rb".*(Cookie: mstshash=|Duca.*(rdpdr|rdpsnd|drdynvc|cliprdr))", re.S)
ZEEK_RDP_SERVER = re.compile(rb"(.{5}\xd0|.*McDn)", re.S)

TOKENS = [
    b"\r", b"\n", b" ", b"\t", b"\v", b"x", b"0", b"3", b"-", b"\xd0",
    b"120", b"220", b"230", b"331", b"USER ", b"user", b"uSeR ", b"HeLo", b"ehlo", b"EHLO",
    b"helO", b"eh", b"lo", b"Duca", b"rdpdr", b"rdpsnd", b"drdynvc", b"cliprdr",
    b"Cookie: mstshash=", b"McDn", b"SMB", b"\r\n331 ", b"\n  230-", b"\r2301", b"\r331\n", b"\r 230 ",
]  # fmt: skip
token_runs = st.lists(st.sampled_from(TOKENS), max_size=24).map(b"".join)
# Server greetings: the anchored part of the FTP/SMTP server signatures, then anything.
greetings = st.tuples(
    st.sampled_from([b"", b" ", b"\r\n", b"\n \t", b"\v"]),
    st.sampled_from([b"120", b"220", b"221"]),
    token_runs,
).map(b"".join)
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
