"""NTLM tokens as Zeek's binpac NTLM parser reads them, and ntlm.log as base/protocols/ntlm
writes it, fed the way SMB's session setups feed them (raw and inside SPNEGO)."""

from __future__ import annotations

import struct

import pytest
from analyzer_ctx import FakeContext, tcp_conn
from wirestream.processors.engine.protocols import ntlm
from wirestream.processors.engine.protocols.bytereader import ParseError

UNICODE, REQUEST_TARGET, TARGET_INFO = 0x1, 0x4, 0x00800000


def u16(s: str) -> bytes:
    return s.encode("utf-16-le")


def av(av_id: int, value: bytes) -> bytes:
    return struct.pack("<HH", av_id, len(value)) + value


def challenge(pairs: bytes, flags: int = UNICODE | REQUEST_TARGET | TARGET_INFO) -> bytes:
    target = u16("DOM")
    payload = target + pairs
    head = b"NTLMSSP\0" + struct.pack("<I", 2)
    head += struct.pack("<HHI", len(target), len(target), 48) + struct.pack("<I", flags)
    head += b"\x01" * 8 + b"\0" * 8 + struct.pack("<HHI", len(pairs), len(pairs), 48 + len(target))
    return head + payload


def authenticate(domain: str, user: str, host: str, flags: int = UNICODE) -> bytes:
    values = [b"", b"", u16(domain), u16(user), u16(host), b""]
    offset, fields, payload = 64, b"", b""
    for v in values:
        fields += struct.pack("<HHI", len(v), len(v), offset)
        payload += v
        offset += len(v)
    return b"NTLMSSP\0" + struct.pack("<I", 3) + fields + struct.pack("<I", flags) + payload


SERVER_PAIRS = av(2, u16("CONTOSO")) + av(1, u16("SRV01")) + av(3, u16("srv01.contoso.com"))
SERVER_PAIRS += av(5, u16("contoso.com")) + av(7, b"\0" * 8) + av(0, b"")


def test_challenge_target_info_and_authenticate_names() -> None:
    msg = ntlm.parse_ntlm(challenge(SERVER_PAIRS))
    assert msg is not None and msg.target_info == {
        "nb_domain_name": b"CONTOSO",
        "nb_computer_name": b"SRV01",
        "dns_computer_name": b"srv01.contoso.com",
        "dns_tree_name": b"contoso.com",
    }
    assert not msg.av_underflow
    auth = ntlm.parse_ntlm(authenticate("CONTOSO", "alice", "PC7"))
    assert auth is not None and (auth.domain_name, auth.user_name, auth.workstation) == (
        b"CONTOSO", b"alice", b"PC7",
    )  # fmt: skip
    assert ntlm.parse_ntlm(b"NTLMSSP\0" + struct.pack("<I", 9)) is None  # taken whole


def test_binpac_layout_quirks() -> None:
    # A target info without its end-of-list pair ends with the data (a violation Zeek ignores).
    msg = ntlm.parse_ntlm(challenge(av(1, u16("SATURN"))))
    assert msg is not None and msg.target_info == {"nb_computer_name": b"SATURN"}
    assert msg.av_underflow
    # An AV pair id the grammar does not name is a binpac exception.
    with pytest.raises(ParseError):
        ntlm.parse_ntlm(challenge(av(0x0B, b"xx") + av(0, b"")))
    # A string past the payload is one too.
    with pytest.raises(ParseError):
        ntlm.parse_ntlm(authenticate("D", "u", "h")[:-2])


def test_session_logs_at_the_negotiation_result_or_at_the_end() -> None:
    ctx = FakeContext(tcp_conn(445))
    s = ntlm.NtlmSession(ctx)
    s.token(challenge(SERVER_PAIRS), 10.0)
    s.token(authenticate("CONTOSO", "alice", "PC7"), 10.5)
    s.neg_result(1)  # accept-incomplete: nothing settled
    assert ctx.logs("ntlm") == []
    s.neg_result(0)
    (row,) = ctx.logs("ntlm")
    assert row["ts"] == 10.0 and row["success"] is True
    assert (row["username"], row["hostname"], row["domainname"]) == ("alice", "PC7", "CONTOSO")
    assert (row["server_nb_computer_name"], row["server_dns_computer_name"]) == (
        "SRV01", "srv01.contoso.com",
    )  # fmt: skip
    assert row["server_tree_name"] == "contoso.com"
    s.finish()
    assert len(ctx.logs("ntlm")) == 1 and ctx.confirmed == ["ntlm", "ntlm"]
    other = FakeContext(tcp_conn(445))
    t = ntlm.NtlmSession(other)
    t.token(authenticate("D", "bob", "H"), 1.0)
    t.token(b"NTLMSSP\0\x02\0\0\0", 1.1)  # a broken challenge: no event, no confirmation
    t.finish()
    (row,) = other.logs("ntlm")
    assert row["username"] == "bob" and row["success"] is None
    assert other.confirmed == ["ntlm"]
