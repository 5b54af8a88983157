"""SSH -> ssh.log, as Zeek's SSH analyzer and ``base/protocols/ssh/main.zeek`` write it.

Two layers, mirroring Zeek so that odd traffic ends up logged the same way:

* the protocol layer (Zeek's ``ssh-protocol.pac`` / ``ssh-analyzer.pac`` and ``SSH.cc``): per
  direction a state machine from the version line (servers may send other lines first) through
  the clear-text binary packets (KEXINIT, the key exchange of the algorithm both sides agreed
  on, its host key) to NEWKEYS, after which every byte is encrypted; the encrypted packet
  sizes then drive Zeek's authentication heuristic (SERVICE_ACCEPT, USERAUTH_FAILURE and
  USERAUTH_SUCCESS have telling lengths);
* the script layer: what each event sets in the record (versions, negotiated algorithms, host
  key fingerprint, authentication outcome and attempts) and when the row is written (at the
  first successful authentication, otherwise when the connection goes away).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols.bytereader import ParseError, Reader
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

PORTS = frozenset({22})  # SSH::ports

# Limits (init-bare.zeek, module SSH)
MAX_PACKET_LENGTH = 8 * 1024 * 1024
MAX_STRING_LENGTH = 2 * 1024 * 1024
MAX_KEXINIT_ALGORITHMS = 100  # each of kex/hostkey/encryption/mac/compression/languages

# Per-direction states (consts.pac)
VERSION_EXCHANGE, KEX_INIT, KEX_DH_GEX, KEX_DH, KEX_ECC, KEX_GSS, KEX_RSA, ENCRYPTED = range(8)
# Protocol versions (consts.pac)
SSH1, SSH2, UNK, SSH199 = 1, 2, 3, 4

MSG_KEXINIT, MSG_NEWKEYS = 20, 21
SSH_SMSG_PUBLIC_KEY, SSH_CMSG_SESSION_KEY = 2, 3

COMPRESSION_ALGORITHMS = frozenset({"zlib", "zlib@openssh.com"})  # SSH::compression_algorithms
NEGOTIATION_FAILED = "Algorithm negotiation failed"

# The key exchange each negotiated algorithm uses (update_kex in ssh-protocol.pac), in order.
_KEX_EXACT = (
    ("rsa1024-sha1", KEX_RSA),
    ("rsa2048-sha256", KEX_RSA),
    ("diffie-hellman-group1-sha1", KEX_DH),
    ("diffie-hellman-group14-sha1", KEX_DH),
    ("diffie-hellman-group14-sha256", KEX_DH),
    ("diffie-hellman-group16-sha512", KEX_DH),
    ("diffie-hellman-group18-sha512", KEX_DH),
    ("diffie-hellman-group-exchange-sha1", KEX_DH_GEX),
    ("diffie-hellman-group-exchange-sha256", KEX_DH_GEX),
)
_KEX_PREFIX = (
    ("gss-", KEX_GSS),
    ("ecdh-sha2-", KEX_ECC),
    ("curve25519-sha256", KEX_ECC),
    ("sntrup761x25519-sha512", KEX_ECC),
    ("mlkem", KEX_ECC),
)
# Message types each key exchange understands; others are a parse error (binpac case without
# a default), except where Zeek's grammar has a default (DH, DH-GEX).
_KEX_MESSAGES = {
    KEX_ECC: frozenset({30, 31}),
    KEX_GSS: frozenset({30, 31, 32, 33, 34, 40, 41}),
    KEX_RSA: frozenset({30, 31, 32}),
}
_KEXINIT_LISTS = (
    ("kex_algorithms", "SSH_max_kexinit_kex_algorithms_exceeded"),
    ("server_host_key_algorithms", "SSH_max_kexinit_hostkey_algorithms_exceeded"),
    ("encryption_client_to_server", "SSH_max_kexinit_encryption_algorithms_exceeded"),
    ("encryption_server_to_client", "SSH_max_kexinit_encryption_algorithms_exceeded"),
    ("mac_client_to_server", "SSH_max_kexinit_mac_algorithms_exceeded"),
    ("mac_server_to_client", "SSH_max_kexinit_mac_algorithms_exceeded"),
    ("compression_client_to_server", "SSH_max_kexinit_compression_algorithms_exceeded"),
    ("compression_server_to_client", "SSH_max_kexinit_compression_algorithms_exceeded"),
    ("languages_client_to_server", "SSH_max_kexinit_languages_exceeded"),
    ("languages_server_to_client", "SSH_max_kexinit_languages_exceeded"),
)

_DPD = re.compile(rb"[sS][sS][hH]-[12]\.")


@dataclass
class SshInfo:
    """SSH::Info: the ssh.log record under construction."""

    ts: float
    conn_columns: Record
    version: int | None = None
    auth_success: bool | None = None
    auth_attempts: int = 0
    direction: str | None = None
    client: str | None = None
    server: str | None = None
    cipher_alg: str | None = None
    mac_alg: str | None = None
    compression_alg: str | None = None
    kex_alg: str | None = None
    host_key_alg: str | None = None
    host_key_fingerprint: str | None = None
    logged: bool = False
    capabilities: dict[str, Any] | None = None


def host_key_fingerprint(key: bytes) -> str:
    """``SHA256:`` and Zeek's base64 of the key's SHA-256; Zeek's encoder stops after 32
    characters (its output buffer is sized for the digest, not for its base64 form)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode()[:32]


def version_of(banner: bytes) -> int | None:
    """Protocol version a version line announces (update_version), None if it says neither."""
    if len(banner) < 5:
        return None
    if banner[4:5] == b"2":
        return SSH2
    if banner[4:5] == b"1":
        return SSH199 if len(banner) >= 8 and banner[6:8] == b"99" else SSH1
    return None


def common_version(client: int, server: int) -> int:
    """The version both sides speak (RFC 4253 section 5: 1.99 goes with either)."""
    if client == server:
        return SSH2 if server == SSH199 else server
    if {client, server} == {SSH199, SSH2}:
        return SSH2
    if {client, server} == {SSH199, SSH1}:
        return SSH1
    return UNK


def find_alg(client: list[str], server: list[str]) -> str:
    """The first client preference the server also offers (main.zeek's find_alg)."""
    offered = set(server)
    for alg in client:
        if alg in offered:
            return alg
    return NEGOTIATION_FAILED


def find_bidirectional_alg(
    client: tuple[list[str], list[str]], server: tuple[list[str], list[str]]
) -> str:
    to_server = find_alg(client[0], server[0])
    to_client = find_alg(client[1], server[1])
    if to_server == to_client:
        return to_server
    return f"To server: {to_server}, to client: {to_client}"


def script_version(client: str, server: str) -> tuple[int | None, str | None]:
    """main.zeek's set_version: the logged version, or a weird name when they disagree."""
    if len(client) > 4 and len(server) > 4:
        c, s = client[4], server[4]
        c99 = len(client) > 7 and client[6:8] == "99"
        s99 = len(server) > 7 and server[6:8] == "99"
        if c == "1" and s == "2":
            return (2, None) if c99 else (None, "SSH_version_mismatch")
        if c == "2" and s == "1":
            return (2, None) if s99 else (None, "SSH_version_mismatch")
        if c == "1" and s == "1":
            return (2 if s99 and c99 else 1), None
        if c == "2" and s == "2":
            return 2, None
        return None, None
    return None, "SSH_cannot_determine_version"


@dataclass
class _Flow:
    """One direction's parser state (binpac's flow plus the connection's state for it)."""

    state: int = VERSION_EXCHANGE
    buf: bytearray = field(default_factory=bytearray)
    skip_lf: bool = False  # a line ended in CR: a LF right after belongs to it


class SshAnalyzer:
    """One TCP connection's SSH analyzer plus the ssh scripts."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.flows = {True: _Flow(), False: _Flow()}
        self.version = UNK
        self.version_client = UNK
        self.version_server = UNK
        self.kex_seen = False
        self.kex_orig = False
        self.kex_algs_cache = b""
        self.encrypted_in_segment = 0
        self.had_gap = False
        self.dead = False  # violation, or disabled after the authentication was decided
        # SSH.cc's authentication heuristic
        self.auth_decision_made = False
        self.skipped_banner = False
        self.saw_encrypted_client_data = False
        self.service_accept_size = 0
        self.userauth_failure_size = 0
        self.info: SshInfo | None = None

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.dead or self.had_gap or not data:
            return
        flow = self.flows[is_orig]
        if flow.state == ENCRYPTED:
            self._encrypted_segment(len(data), is_orig)
            return
        self.encrypted_in_segment = 0
        flow.buf += data
        try:
            self._parse(is_orig, flow)
        except ParseError as exc:
            self.dead = True
            self.ctx.violation(f"Binpac exception: {exc}")
            return
        if self.encrypted_in_segment > 0:
            self._encrypted_segment(self.encrypted_in_segment, is_orig)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.had_gap = True  # Zeek stops parsing both directions after a content gap

    def end(self, ts: float) -> None:
        """finalize_ssh: a record not written yet is written when the connection goes away."""
        info = self.info
        if info is not None and not info.logged:
            self._write(info)

    # -- protocol layer ---------------------------------------------------------------------
    def _parse(self, is_orig: bool, flow: _Flow) -> None:
        buf = flow.buf
        while buf:
            if flow.skip_lf:  # binpac drops the LF lingering after a CR-ended line, whatever
                flow.skip_lf = False  # comes next
                if buf[:1] == b"\n":
                    del buf[:1]
                    continue
            if flow.state == ENCRYPTED:
                self.encrypted_in_segment += len(buf)
                buf.clear()
                return
            if flow.state == VERSION_EXCHANGE:
                line = self._line(flow)
                if line is None:
                    return
                self._version_line(is_orig, line, flow)
                continue
            if not self._binary_packet(is_orig, flow):
                return

    @staticmethod
    def _line(flow: _Flow) -> bytes | None:
        """One line as binpac's CR-or-LF line mode cuts it (CRLF ends one line)."""
        buf = flow.buf
        cr, lf = buf.find(b"\r"), buf.find(b"\n")
        ends = [i for i in (cr, lf) if i >= 0]
        if not ends:
            return None
        end = min(ends)
        line = bytes(buf[:end])
        flow.skip_lf = end == cr
        del buf[: end + 1]
        return line

    def _version_line(self, is_orig: bool, line: bytes, flow: _Flow) -> None:
        if is_orig:
            if not line.startswith(b"SSH-"):
                raise ParseError("client version line does not start with SSH-")
        elif not line.startswith(b"SSH-"):
            return  # server data before its banner (ssh_server_pre_banner_data)
        flow.state = KEX_INIT
        self._update_version(line, is_orig)
        if is_orig:
            self._ev_client_version(text(line))
        else:
            self._ev_server_version(text(line))

    def _update_version(self, banner: bytes, is_orig: bool) -> None:
        announced = version_of(banner)
        if announced is not None:
            if is_orig:
                self.version_client = announced
            else:
                self.version_server = announced
        if self.version_client != UNK and self.version_server != UNK:
            self.version = common_version(self.version_client, self.version_server)
        elif self.version_client == self.version_server:
            self.version = UNK

    def _binary_packet(self, is_orig: bool, flow: _Flow) -> bool:
        """One clear-text binary packet if it is all here; False to wait for more."""
        buf = flow.buf
        if len(buf) < 4:
            return False
        (packet_length,) = struct.unpack_from("!I", buf)
        if MAX_PACKET_LENGTH and packet_length > MAX_PACKET_LENGTH:
            self._limit_weird("SSH_max_packet_length_exceeded", packet_length, MAX_PACKET_LENGTH)
            packet_length = MAX_PACKET_LENGTH
        if self.version == SSH2:
            total = packet_length + 4
        elif self.version == SSH1:
            total = packet_length + 4 + 8 - packet_length % 8
        else:
            raise ParseError("binary packet before both sides agreed on a version")
        if len(buf) < total:
            return False
        packet = bytes(buf[:total])
        del buf[:total]
        if self.version == SSH2:
            self._ssh2_packet(is_orig, packet, packet_length, flow)
        else:
            self._ssh1_packet(is_orig, packet, packet_length, flow)
        return True

    def _ssh2_packet(self, is_orig: bool, packet: bytes, packet_length: int, flow: _Flow) -> None:
        r = Reader(packet, 4)
        padding_length, msg_type = r.u8(), r.u8()
        payload_length = packet_length - padding_length - 2
        if payload_length < 0:
            raise ParseError("padding longer than the packet")
        if msg_type == MSG_NEWKEYS:
            flow.state = ENCRYPTED  # this direction encrypts from the next byte on
        payload = Reader(packet, r.pos, r.pos + payload_length)
        state = flow.state
        if state == KEX_INIT:
            self._kexinit(is_orig, payload)
        elif state in _KEX_MESSAGES and msg_type not in _KEX_MESSAGES[state]:
            raise ParseError(f"unexpected message {msg_type} in key exchange")
        elif state in (KEX_DH, KEX_DH_GEX, KEX_ECC, KEX_GSS, KEX_RSA):
            self._kex_message(state, msg_type, payload)
        r.take(payload_length)
        r.take(padding_length)
        if msg_type == MSG_NEWKEYS:
            self._ev_confirmation()

    def _kex_message(self, state: int, msg_type: int, r: Reader) -> None:
        """The key exchange messages Zeek reads; those that carry the server's host key
        (K_S) raise the fingerprint event."""
        host_key: bytes | None = None
        if state == KEX_ECC:
            if msg_type == 30:
                self._string(r)  # Q_C
            else:
                host_key = self._string(r)
                self._string(r)  # Q_S
                self._string(r)  # signature
        elif state == KEX_DH:
            if msg_type == 30:
                self._string(r)  # e
            elif msg_type == 31:
                host_key = self._string(r)
                self._string(r)  # f
                self._string(r)  # signature
        elif state == KEX_DH_GEX:
            if msg_type == 30:
                r.u32()
            elif msg_type == 34:
                r.take(12)
            elif msg_type == 31:
                self._string(r)  # p
                self._string(r)  # g
            elif msg_type == 32:
                self._string(r)  # e
            elif msg_type == 33:
                host_key = self._string(r)
                self._string(r)
                self._string(r)
        elif state == KEX_GSS:
            if msg_type == 33:
                host_key = self._string(r)
            elif msg_type == 40:
                r.take(12)
            elif msg_type in (30, 41):
                self._string(r)
                self._string(r)
            elif msg_type == 31:
                self._string(r)
            elif msg_type == 34:
                r.u32()
                r.u32()
                self._string(r)
                self._string(r)
            elif msg_type == 32:
                self._string(r)
                self._string(r)
                if r.u8():
                    self._string(r)
        elif state == KEX_RSA:
            self._string(r)
            if msg_type == 30:
                self._string(r)
        if host_key is not None:
            self._ev_host_key_fingerprint(host_key_fingerprint(host_key))

    def _string(self, r: Reader) -> bytes:
        length = r.u32()
        if MAX_STRING_LENGTH and length > MAX_STRING_LENGTH:
            self._limit_weird("SSH_max_string_length_exceeded", length, MAX_STRING_LENGTH)
            length = MAX_STRING_LENGTH
        return r.take(length)

    def _kexinit(self, is_orig: bool, r: Reader) -> None:
        cookie = r.take(16)
        lists = {name: self._string(r) for name, _ in _KEXINIT_LISTS}
        r.u8()  # first_kex_packet_follows
        r.u32()  # reserved
        self._update_kex(lists["kex_algorithms"], is_orig)
        caps = {"is_server": not is_orig, "cookie": cookie}
        for name, weird in _KEXINIT_LISTS:
            if name.startswith("languages") and not lists[name]:
                continue
            caps[name] = self._name_list(lists[name], weird)
        self._ev_capabilities(caps)

    def _name_list(self, raw: bytes, weird: str) -> list[str]:
        words = raw.split(b",")
        if MAX_KEXINIT_ALGORITHMS and len(words) > MAX_KEXINIT_ALGORITHMS:
            self._limit_weird(weird, len(words), MAX_KEXINIT_ALGORITHMS)
            words = words[:MAX_KEXINIT_ALGORITHMS]
        return [text(w) for w in words]

    def _update_kex(self, algs: bytes, is_orig: bool) -> None:
        """The second KEXINIT (from the other side) decides the key exchange both follow."""
        if not self.kex_seen:
            self.kex_seen, self.kex_orig, self.kex_algs_cache = True, is_orig, algs
            return
        if self.kex_orig == is_orig:
            return
        client = (algs if is_orig else self.kex_algs_cache).split(b",")
        server = (self.kex_algs_cache if is_orig else algs).split(b",")
        if MAX_KEXINIT_ALGORITHMS:
            client, server = client[:MAX_KEXINIT_ALGORITHMS], server[:MAX_KEXINIT_ALGORITHMS]
        offered = set(server)
        for alg in client:
            if alg not in offered:
                continue
            name = alg.decode("latin-1")
            state = next((s for n, s in _KEX_EXACT if name == n), None)
            if state is None:
                state = next((s for p, s in _KEX_PREFIX if name.startswith(p)), None)
            if state is None:
                self.ctx.weird("ssh_unknown_kex_algorithm", text(alg), ts=self.ts)
            else:
                self.flows[True].state = self.flows[False].state = state
            return

    def _ssh1_packet(self, is_orig: bool, packet: bytes, packet_length: int, flow: _Flow) -> None:
        r = Reader(packet, 4)
        r.take(8 - packet_length % 8)  # padding
        msg_type = r.u8()
        body = Reader(packet, r.pos, r.pos + packet_length - 5)
        if msg_type == SSH_SMSG_PUBLIC_KEY:
            body.take(8)  # cookie
            for _key in ("server key", "host key"):  # bits, exponent, modulus
                body.u32()
                self._mp_int(body)
                self._mp_int(body)
            body.take(12)  # flags, ciphers, auths
        elif msg_type == SSH_CMSG_SESSION_KEY:
            body.take(9)  # cipher, cookie
            self._mp_int(body)
            body.u32()
        else:
            raise ParseError(f"unexpected SSH1 message {msg_type}")
        flow.state = ENCRYPTED
        if msg_type == SSH_CMSG_SESSION_KEY:
            self._ev_confirmation()

    @staticmethod
    def _mp_int(r: Reader) -> bytes:
        bits = r.u16()
        return r.take((bits + 7) // 8)

    def _limit_weird(self, name: str, value: int, limit: int) -> None:
        reached = getattr(self.ctx, "limit_reached_weird", None)
        if reached is not None:
            reached(name, f"{value} > {limit}")
        else:
            self.ctx.weird(name, f"{value} > {limit}", ts=self.ts)

    # -- encrypted packets: the authentication heuristic (SSH.cc) ---------------------------
    def _encrypted_segment(self, length: int, is_orig: bool) -> None:
        if self.auth_decision_made or self.version != SSH2:
            return
        if is_orig:
            self.saw_encrypted_client_data = True
            return
        if not self.saw_encrypted_client_data:
            return  # the server talks first; wait for the client
        if not self.service_accept_size:
            self.service_accept_size = length  # SSH_MSG_SERVICE_ACCEPT
            return
        if not self.userauth_failure_size and length + 16 == self.service_accept_size:
            self.auth_decision_made = True  # USERAUTH_SUCCESS with auth method "none"
            self._ev_auth_attempted(True)
            return
        if not self.userauth_failure_size:
            if not self.skipped_banner and length - self.service_accept_size > 256:
                self.skipped_banner = True  # a pre-authentication banner
                return
            self.userauth_failure_size = length
            return
        if length == self.userauth_failure_size:
            self._ev_auth_attempted(False)
            return
        if length - self.service_accept_size == -16:
            self.auth_decision_made = True
            self._ev_auth_attempted(True)

    # -- script layer (main.zeek) -----------------------------------------------------------
    def _session(self) -> SshInfo:
        if self.info is None:
            cid = self.ctx.conn_id
            info = SshInfo(ts=self.ts, conn_columns=cid.columns())
            local_nets = getattr(self.ctx.files, "local_nets", None)
            if local_nets is not None:
                orig_local = local_nets.is_local(cid.orig_h)
                if orig_local != local_nets.is_local(cid.resp_h):
                    info.direction = "OUTBOUND" if orig_local else "INBOUND"
            self.info = info
        return self.info

    def _set_version(self, info: SshInfo) -> None:
        info.version = None
        if not info.client or not info.server:
            return
        version, weird = script_version(info.client, info.server)
        info.version = version
        if weird is not None:
            self.ctx.weird(weird, f"{info.server} vs {info.client}", ts=self.ts)

    def _ev_server_version(self, version: str) -> None:
        info = self._session()
        info.server = version
        self._set_version(info)

    def _ev_client_version(self, version: str) -> None:
        info = self._session()
        info.client = version
        self._set_version(info)

    def _ev_confirmation(self) -> None:
        self.ctx.confirm("ssh")
        self._session()

    def _ev_capabilities(self, caps: dict[str, Any]) -> None:
        info = self.info
        if info is None:
            return
        first = info.capabilities
        if first is not None and first["is_server"] == caps["is_server"]:
            return
        if first is None:
            info.capabilities = caps
            return
        client, server = (first, caps) if caps["is_server"] else (caps, first)

        def both(c: dict[str, Any], kind: str) -> tuple[list[str], list[str]]:
            return c[f"{kind}_client_to_server"], c[f"{kind}_server_to_client"]

        info.cipher_alg = find_bidirectional_alg(
            both(client, "encryption"), both(server, "encryption")
        )
        info.mac_alg = find_bidirectional_alg(both(client, "mac"), both(server, "mac"))
        info.compression_alg = find_bidirectional_alg(
            both(client, "compression"), both(server, "compression")
        )
        info.kex_alg = find_alg(client["kex_algorithms"], server["kex_algorithms"])
        info.host_key_alg = find_alg(
            client["server_host_key_algorithms"], server["server_host_key_algorithms"]
        )

    def _ev_host_key_fingerprint(self, fingerprint: str) -> None:
        if self.info is not None:
            self.info.host_key_fingerprint = fingerprint

    def _ev_auth_attempted(self, authenticated: bool) -> None:
        info = self.info
        if info is None:
            return
        counted = not info.auth_success and info.compression_alg not in COMPRESSION_ALGORITHMS
        if counted:  # priority 5: count it (not when compression hides the sizes)
            info.auth_success = authenticated
            info.auth_attempts += 1
            if authenticated:
                self.dead = True  # SSH::disable_analyzer_after_detection
        if authenticated and not info.logged:  # priority -5: a success is logged at once
            self._write(info)

    def _write(self, info: SshInfo) -> None:
        info.logged = True
        self.ctx.emit("ssh", self.record(info))

    def record(self, info: SshInfo) -> Record:
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **info.conn_columns,
            "version": info.version,
            "auth_success": info.auth_success,
            "auth_attempts": info.auth_attempts,
            "direction": info.direction,
            "client": info.client,
            "server": info.server,
            "cipher_alg": info.cipher_alg,
            "mac_alg": info.mac_alg,
            "compression_alg": info.compression_alg,
            "kex_alg": info.kex_alg,
            "host_key_alg": info.host_key_alg,
            "host_key_fingerprint": info.host_key_fingerprint,
        }


def sniff_ssh(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_ssh_client signature, which requires dpd_ssh_server on the other side."""
    return bool(_DPD.match(orig) and _DPD.match(resp))


SPEC = register(
    AnalyzerSpec(
        name="ssh",
        transports=frozenset({"tcp"}),
        ports=PORTS,
        factory=SshAnalyzer,
        sniff=sniff_ssh,
    )
)
