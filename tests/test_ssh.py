"""SSH analyzer: version lines, KEXINIT negotiation, host keys, NEWKEYS, the authentication
heuristic on encrypted packet sizes, and when ssh.log rows are written."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from analyzer_ctx import FakeContext, tcp_conn
from wirestream.processors.engine.protocols import ssh

CLIENT_ALGS = {
    "kex": "curve25519-sha256,diffie-hellman-group14-sha256",
    "hostkey": "ssh-ed25519,rsa-sha2-512",
    "enc": "chacha20-poly1305@openssh.com,aes128-ctr",
    "mac": "hmac-sha2-256,hmac-sha1",
    "comp": "none,zlib@openssh.com",
}
SERVER_ALGS = {
    "kex": "diffie-hellman-group14-sha256,curve25519-sha256",
    "hostkey": "rsa-sha2-512,ssh-ed25519",
    "enc": "aes128-ctr,chacha20-poly1305@openssh.com",
    "mac": "hmac-sha1,hmac-sha2-256",
    "comp": "none",
}
HOST_KEY = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))


def sstr(value: bytes | str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!I", len(raw)) + raw


def packet(msg_type: int, payload: bytes = b"", padding: int = 4) -> bytes:
    body = bytes([padding, msg_type]) + payload + b"\0" * padding
    return struct.pack("!I", len(body)) + body


def kexinit(algs: dict[str, str], enc_s2c: str | None = None) -> bytes:
    lists = [
        algs["kex"],
        algs["hostkey"],
        algs["enc"],
        enc_s2c if enc_s2c is not None else algs["enc"],
        algs["mac"],
        algs["mac"],
        algs["comp"],
        algs["comp"],
        "",
        "",
    ]
    return packet(20, b"C" * 16 + b"".join(sstr(x) for x in lists) + b"\0" + b"\0" * 4)


def analyzer(**kw: object) -> tuple[ssh.SshAnalyzer, FakeContext]:
    ctx = FakeContext(tcp_conn(22), **kw)  # type: ignore[arg-type]
    return ssh.SshAnalyzer(ctx), ctx


def handshake(a: ssh.SshAnalyzer, *, client_comp: str = "none,zlib@openssh.com") -> None:
    """Versions, KEXINITs, curve25519 exchange, NEWKEYS both ways (one delivery per line)."""
    a.data(True, b"SSH-2.0-OpenSSH_9.7\r\n", 1.0)
    a.data(False, b"SSH-2.0-OpenSSH_9.2\r\n", 1.1)
    a.data(True, kexinit({**CLIENT_ALGS, "comp": client_comp}), 1.2)
    a.data(False, kexinit(SERVER_ALGS), 1.3)
    a.data(True, packet(30, sstr(b"Q" * 32)), 1.4)
    a.data(False, packet(31, sstr(HOST_KEY) + sstr(b"S" * 32) + sstr(b"sig")) + packet(21), 1.5)
    a.data(True, packet(21), 1.6)


def test_fingerprint_is_zeeks_truncated_base64() -> None:
    full = base64.b64encode(hashlib.sha256(HOST_KEY).digest()).decode()
    assert ssh.host_key_fingerprint(HOST_KEY) == "SHA256:" + full[:32]


def test_negotiation_fills_the_record_and_newkeys_confirms() -> None:
    a, ctx = analyzer()
    handshake(a)
    assert ctx.confirmed and set(ctx.confirmed) == {"ssh"}
    assert not ctx.violations and not ctx.weirds
    a.end(9.0)
    (row,) = ctx.logs("ssh")
    assert row["ts"] == 1.0 and row["version"] == 2
    assert (row["client"], row["server"]) == ("SSH-2.0-OpenSSH_9.7", "SSH-2.0-OpenSSH_9.2")
    assert row["kex_alg"] == "curve25519-sha256"  # the client's first choice the server offers
    assert row["host_key_alg"] == "ssh-ed25519"
    assert row["cipher_alg"] == "chacha20-poly1305@openssh.com"
    assert row["mac_alg"] == "hmac-sha2-256" and row["compression_alg"] == "none"
    assert row["host_key_fingerprint"] == ssh.host_key_fingerprint(HOST_KEY)
    assert row["auth_success"] is None and row["auth_attempts"] == 0
    assert a.flows[True].state == a.flows[False].state == ssh.ENCRYPTED


def test_directions_that_disagree_are_spelled_out() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-x\r\n", 1.0)
    a.data(False, b"SSH-2.0-y\r\n", 1.0)
    a.data(True, kexinit(CLIENT_ALGS, enc_s2c="aes128-ctr"), 1.0)
    a.data(False, kexinit({**SERVER_ALGS, "comp": "zstd"}), 1.0)
    a.end(2.0)
    row = ctx.logs("ssh")[0]
    assert row["cipher_alg"] == ("To server: chacha20-poly1305@openssh.com, to client: aes128-ctr")
    assert row["compression_alg"] == "Algorithm negotiation failed"


def test_server_lines_before_its_banner_are_skipped_and_crlf_may_split() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-client\r", 1.0)
    a.data(False, b"Welcome\nto the machine\r\n", 1.0)
    a.data(True, b"\n", 1.0)  # the LF of the client's CRLF comes late
    a.data(False, b"SSH-1.99-server\n", 1.0)
    a.data(True, kexinit(CLIENT_ALGS), 1.0)
    assert not ctx.violations
    assert a.version == ssh.SSH2  # 2.0 with 1.99 speaks 2
    a.end(2.0)
    assert ctx.logs("ssh")[0]["server"] == "SSH-1.99-server"


def test_client_must_start_with_its_version() -> None:
    a, ctx = analyzer()
    a.data(True, b"GET / HTTP/1.1\r\n", 1.0)
    assert ctx.violations
    a.data(True, b"SSH-2.0-late\r\n", 1.1)  # ignored: the analyzer is gone
    a.end(2.0)
    assert ctx.logs("ssh") == []


def test_version_mismatch_is_a_weird_and_leaves_version_unset() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-1.5-old\r\n", 1.0)
    a.data(False, b"SSH-2.0-new\r\n", 1.0)
    a.end(2.0)
    assert ("SSH_version_mismatch", "SSH-2.0-new vs SSH-1.5-old") in ctx.weirds
    assert ctx.logs("ssh")[0]["version"] is None


def test_script_version_rules() -> None:
    assert ssh.script_version("SSH-1.99-a", "SSH-2.0-b") == (2, None)
    assert ssh.script_version("SSH-1.5-a", "SSH-1.99-b") == (1, None)
    assert ssh.script_version("SSH-1.99-a", "SSH-1.99-b") == (2, None)
    assert ssh.script_version("SSH", "SSH-2.0") == (None, "SSH_cannot_determine_version")


def test_successful_authentication_is_logged_at_once() -> None:
    a, ctx = analyzer()
    handshake(a, client_comp="none")
    a.data(True, b"x" * 44, 2.0)  # SERVICE_REQUEST
    a.data(False, b"x" * 44, 2.1)  # SERVICE_ACCEPT: 44 bytes on the wire
    a.data(True, b"x" * 100, 2.2)
    a.data(False, b"x" * 60, 2.3)  # USERAUTH_FAILURE (methods list)
    a.data(True, b"x" * 100, 2.4)
    a.data(False, b"x" * 60, 2.5)  # the same size again: another failed attempt
    a.data(True, b"x" * 300, 2.6)
    a.data(False, b"x" * 28, 2.7)  # 16 less than SERVICE_ACCEPT: USERAUTH_SUCCESS
    rows = ctx.logs("ssh")
    assert len(rows) == 1 and rows[0]["auth_success"] is True and rows[0]["auth_attempts"] == 2
    a.data(False, b"x" * 60, 2.8)  # the analyzer is done once the decision was made
    a.end(3.0)
    assert len(ctx.logs("ssh")) == 1


def test_failures_only_are_logged_at_the_end() -> None:
    a, ctx = analyzer()
    handshake(a, client_comp="none")
    a.data(True, b"x" * 44, 2.0)
    a.data(False, b"x" * 44, 2.1)
    a.data(True, b"x" * 100, 2.2)
    a.data(False, b"x" * 400, 2.3)  # over 256 bigger than SERVICE_ACCEPT: a banner, skipped
    a.data(False, b"x" * 60, 2.4)
    a.data(True, b"x" * 100, 2.5)
    a.data(False, b"x" * 60, 2.6)
    assert ctx.logs("ssh") == []
    a.end(3.0)
    row = ctx.logs("ssh")[0]
    assert row["auth_success"] is False and row["auth_attempts"] == 1


def test_compression_hides_the_outcome() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-c\r\n", 1.0)
    a.data(False, b"SSH-2.0-s\r\n", 1.0)
    a.data(True, kexinit({**CLIENT_ALGS, "comp": "zlib@openssh.com"}), 1.0)
    a.data(False, kexinit({**SERVER_ALGS, "comp": "zlib@openssh.com,none"}), 1.0)
    a.data(True, packet(30, sstr(b"Q")), 1.0)
    a.data(False, packet(31, sstr(HOST_KEY) + sstr(b"S") + sstr(b"g")) + packet(21), 1.0)
    a.data(True, packet(21) + b"x" * 44, 1.0)  # NEWKEYS and encrypted bytes in one segment
    a.data(False, b"x" * 44, 2.1)
    a.data(True, b"x" * 300, 2.6)
    a.data(False, b"x" * 28, 2.7)  # looks like success, but compression makes sizes unreliable
    row = ctx.logs("ssh")[0]  # still written at once, unset outcome
    assert row["auth_success"] is None and row["auth_attempts"] == 0
    assert row["compression_alg"] == "zlib@openssh.com"


def test_unknown_kex_algorithm_is_a_weird() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-c\r\n", 1.0)
    a.data(False, b"SSH-2.0-s\r\n", 1.0)
    a.data(True, kexinit({**CLIENT_ALGS, "kex": "brand-new-kex"}), 1.0)
    a.data(False, kexinit({**SERVER_ALGS, "kex": "brand-new-kex"}), 1.0)
    assert ("ssh_unknown_kex_algorithm", "brand-new-kex") in ctx.weirds
    assert a.flows[True].state == ssh.KEX_INIT


def test_oversized_packet_length_is_capped_with_a_limit_weird() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-c\r\n", 1.0)
    a.data(False, b"SSH-2.0-s\r\n", 1.0)
    a.data(True, struct.pack("!I", ssh.MAX_PACKET_LENGTH + 1) + b"\x04\x14", 1.0)
    assert ctx.weirds[0] == (
        "SSH_max_packet_length_exceeded",
        f"{ssh.MAX_PACKET_LENGTH + 1} > {ssh.MAX_PACKET_LENGTH}",
    )


def test_gap_stops_the_analysis() -> None:
    a, ctx = analyzer()
    a.data(True, b"SSH-2.0-c\r\n", 1.0)
    a.gap(False, 100, 1.1)
    a.data(False, b"SSH-2.0-s\r\n", 1.2)
    a.end(2.0)
    assert ctx.logs("ssh")[0]["server"] is None


def test_sniffer_needs_both_banners() -> None:
    assert ssh.sniff_ssh(b"SSH-2.0-x\r\n", b"ssh-1.99-y\r\n")
    assert not ssh.sniff_ssh(b"SSH-2.0-x\r\n", b"")
    assert not ssh.sniff_ssh(b"SSH-3.0-x\r\n", b"SSH-2.0-y")


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "case", ["scripts.base.protocols.ssh.curve25519_kex", "scripts.base.protocols.ssh.pre-banner"]
)
def test_ssh_logs_match_zeek_reference(shared, tmp_path, case: str) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, case, {"ssh", "conn"}, tmp_path)
    for log, score in result.items():
        assert score["exact"] == score["base_rows"], (log, score)
