"""SSL/TLS -> ssl.log (and the certificates' x509.log rows), as Zeek's SSL analyzer and scripts.

Three layers, mirroring Zeek so that odd traffic ends up logged the same way:

* the record layer (Zeek's ``ssl-protocol.pac``): TLS and SSLv2 record headers, the version
  check that decides whether this is SSL at all, the clear/encrypted state per direction
  (Change Cipher Spec, or the first application-data record once TLS 1.3 was negotiated),
  alerts, heartbeats, and the moment both sides encrypt (``ssl_established``);
* the handshake layer (``tls-handshake-protocol.pac``): handshake messages reassembled across
  records per direction, hellos with their extensions (SNI, ALPN, supported_versions,
  key_share, pre_shared_key ...), certificates handed to the file manager, (EC)DH parameters;
* the script layer (``base/protocols/ssl/main.zeek`` and ``files.zeek``): what each event
  sets in the log record, the ``ssl_history`` letters, resumption, and when the row is written
  (at establishment, at a protocol violation, or when the connection ends).

Events are applied in the order Zeek raises them; the row is a snapshot at the moment Zeek's
script writes it. :class:`DtlsAnalyzer` does the same over UDP. Protocols that switch to TLS
mid-stream (STARTTLS, FTP AUTH TLS, RDP, QUIC's CRYPTO frames wrapped in a handshake record as
Zeek's QUIC analyzer does) can run an :class:`SslAnalyzer` on their context and feed it the
TLS bytes; this module does not detect those switches itself, nor decrypt anything.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

from wirestream.processors.engine.api import (
    OPTIONAL_COLUMNS_STATE,
    AnalyzerContext,
    AnalyzerSpec,
    Record,
    register,
)
from wirestream.processors.engine.protocols import gridftp
from wirestream.processors.engine.protocols import ssl_consts as consts
from wirestream.processors.engine.protocols.bytereader import ParseError, Reader
from wirestream.processors.engine.protocols.x509 import (
    Certificate,
    CertificateError,
    analyze_certificate,
    cert_matches_hostname,
    ocsp_records,
)
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

# Versions (ssl-defs.pac)
UNKNOWN_VERSION = 0x0000
SSLv20 = 0x0002
SSLv30 = 0x0300
TLSv10 = 0x0301
TLSv11 = 0x0302
TLSv12 = 0x0303
TLSv13 = 0x0304
DTLSv10 = 0xFEFF
DTLSv12 = 0xFEFD
DTLSv13 = 0xFEFC
_RECORD_VERSIONS = frozenset({SSLv30, TLSv10, TLSv11, TLSv12})
_HELLO_VERSIONS = frozenset(
    {SSLv20, SSLv30, TLSv10, TLSv11, TLSv12, TLSv13, DTLSv10, DTLSv12, DTLSv13}
)
_VERSION_NAMES = {
    SSLv20: "SSLv2", SSLv30: "SSLv3", TLSv10: "TLSv10", TLSv11: "TLSv11", TLSv12: "TLSv12",
    TLSv13: "TLSv13", DTLSv10: "DTLSv10", DTLSv12: "DTLSv12", DTLSv13: "DTLSv13",
}  # fmt: skip

# Content types
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
V2_ERROR, V2_CLIENT_HELLO, V2_CLIENT_MASTER_KEY, V2_SERVER_HELLO = 300, 301, 302, 304

# Handshake types
HELLO_REQUEST, CLIENT_HELLO, SERVER_HELLO, HELLO_VERIFY_REQUEST, SESSION_TICKET = 0, 1, 2, 3, 4
CERTIFICATE, SERVER_KEY_EXCHANGE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 11, 12, 13, 14
CERTIFICATE_VERIFY, CLIENT_KEY_EXCHANGE, FINISHED, CERTIFICATE_URL = 15, 16, 20, 21
CERTIFICATE_STATUS = 22
# ssl_history letter per handshake type (main.zeek); anything else is "z".
_HISTORY_LETTERS = {
    0: "h", 1: "c", 2: "s", 3: "v", 4: "t", 5: "e", 6: "j", 8: "o", 11: "x", 12: "k", 13: "r",
    14: "n", 15: "y", 16: "g", 20: "f", 21: "w", 22: "u", 23: "a", 24: "p", 254: "m",
}  # fmt: skip

# Extensions Zeek parses further
EXT_SERVER_NAME, EXT_ALPN, EXT_SESSION_TICKET, EXT_PRE_SHARED_KEY = 0, 16, 35, 41
EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE_OLD, EXT_KEY_SHARE = 43, 40, 51
EXT_ELLIPTIC_CURVES, EXT_EC_POINT_FORMATS, EXT_SIGNATURE_ALGORITHMS = 10, 11, 13
EXT_SIGNATURE_ALGORITHMS_CERT, EXT_PSK_KEY_EXCHANGE_MODES = 50, 45
EXT_CONNECTION_ID, EXT_ENCRYPTED_CLIENT_HELLO = 54, 65037

HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
MAX_ALERTS_PER_RECORD = 10  # SSL::max_alerts_per_record
MAX_SSL_HISTORY_LENGTH = 100  # SSL::max_ssl_history_length
IGNORE_VIOLATIONS_AFTER = 10 * 1024  # DPD::ignore_violations_after
SSL_PORTS = frozenset({443, 465, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223})
NO_CHOSEN_CIPHER = 0xFFFFFF
CLEAR, ENCRYPTED = 0, 1


def version_name(version: int) -> str:
    """SSL::version_strings with its &default (TLS 1.3 drafts, unknown-N)."""
    name = _VERSION_NAMES.get(version)
    if name is not None:
        return name
    if version // 0xFF == 0x7F:
        return f"TLSv13-draft{version % 0x7F}"
    return f"unknown-{version}"


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"unknown-{value}")


def version_ok(version: int) -> bool:
    """ssl-defs.pac version_ok: versions a hello may name."""
    return version >> 8 == 0x7F or version in _HELLO_VERSIONS


def padded_session_id(session_id: bytes) -> bytes:
    """to_string_val: Zeek hands scripts a 32-byte session id, zero-padded (zeros if longer)."""
    if len(session_id) > 32:
        return bytes(32)
    return session_id + bytes(32 - len(session_id))


@dataclass
class SslInfo:
    """SSL::Info as the scripts fill it (only what decides the log row)."""

    ts: float
    version_num: int | None = None
    cipher: str | None = None
    curve: str | None = None
    server_name: str | None = None
    session_id: str | None = None
    resumed: bool = False
    client_ticket_empty_session_seen: bool = False
    client_key_exchange_seen: bool = False
    client_psk_seen: bool = False
    last_alert: str | None = None
    next_protocol: str | None = None
    analyzer_id: bool = False  # set at confirmation: the script may remove the analyzer
    established: bool = False
    logged: bool = False
    hrr_seen: bool = False
    ssl_history: str = ""
    cert_chain: list[Certificate | None] | None = None
    client_cert_chain: list[Certificate | None] = field(default_factory=list)
    cert_chain_fps: list[str] | None = None
    client_cert_chain_fps: list[str] | None = None
    subject: str | None = None
    issuer: str | None = None
    client_subject: str | None = None
    client_issuer: str | None = None
    sni_matches_cert: bool | None = None


class HandshakeWatcher(Protocol):
    """Another protocol's scripts that also handle this handshake's events (QUIC's)."""

    write_ssl_log: bool  # False when base/protocols/ssl is not loaded: events, but no ssl.log

    def hello(self, is_client: bool) -> None:
        """After the ssl script's client/server hello handler."""

    def server_name(self, is_client: bool, names: list[str]) -> None:
        """Before the ssl script's SNI handler (&priority=5)."""

    def alpn(self, is_client: bool, protocols: list[str]) -> None:
        """After the ssl script's ALPN handler."""


class SslAnalyzer:
    """One TCP connection's SSL analyzer (Zeek's SSL_Analyzer plus the ssl scripts)."""

    service = "ssl"

    def __init__(self, ctx: AnalyzerContext, watcher: HandshakeWatcher | None = None) -> None:
        self.ctx = ctx
        self.watcher = watcher
        self.ts = 0.0
        self.stream = {True: bytearray(), False: bytearray()}  # record layer, per direction
        self.handshake = {True: bytearray(), False: bytearray()}  # handshake flow, per direction
        self.record_layer_version = UNKNOWN_VERSION
        self.state = {True: CLEAR, False: CLEAR}
        self.established_ = False
        self.skip = False  # SetSkip, or removed by the script / DPD
        self.had_gap = False
        self.chosen_cipher = NO_CHOSEN_CIPHER
        self.chosen_version = UNKNOWN_VERSION
        self.record_version = 0
        self.flipped = False
        self.already_alerted = False
        self.confirmed = False
        self.size = 0  # stream bytes so far (c$orig$size + c$resp$size for DPD)
        self.info: SslInfo | None = None

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        self.size += len(data)
        if self.skip or self.had_gap:
            return
        buf = self.stream[is_orig]
        buf += data
        self._records(is_orig, buf)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.size += length
        self.had_gap = True  # Zeek stops parsing both directions after a content gap

    def end(self, ts: float) -> None:
        """finalize_ssl: a record not written yet is written when the connection goes away."""
        info = self.info
        if info is not None and not info.logged:
            self._finishing(info)
            self._write(info)

    # -- record layer -----------------------------------------------------------------------
    def _records(self, is_orig: bool, buf: bytearray) -> None:
        while len(buf) >= 5 and not self.skip:
            h = buf[:5]
            version = self._record_layer(h, is_orig)
            if version == UNKNOWN_VERSION:
                return
            if version == SSLv20:
                length = (((h[0] & 0x7F) << 8) | h[1]) - 3
                content_type = h[2] + 300
                raw_version = 0
            else:
                length = (h[3] << 8) | h[4]
                content_type = h[0]
                raw_version = (h[1] << 8) | h[2]
            if length < 0:
                self._violation("Binpac exception: negative SSLv2 record length", skip=True)
                return
            if len(buf) < length + 5:
                return
            body = bytes(buf[5 : length + 5])
            del buf[: length + 5]
            self._record(is_orig, content_type, raw_version, h, body)

    def _record_layer(self, h: bytes, is_orig: bool) -> int:
        """determine_ssl_record_layer: is this SSLv2, a TLS record, or not SSL at all?"""
        h0, h1, h2, h3, h4 = h
        if self.record_layer_version not in (UNKNOWN_VERSION, SSLv20):
            version = (h1 << 8) | h2
            if version not in _RECORD_VERSIONS:
                self._violation(
                    f"Invalid version late in TLS connection. Packet reported version: {version}",
                    skip=True,
                )
                return UNKNOWN_VERSION
        if self.record_layer_version != UNKNOWN_VERSION:
            return self.record_layer_version
        if h0 & 0x80:
            if h2 == 0x01 and is_orig:
                version = (h3 << 8) | h4
                if version not in _HELLO_VERSIONS - {TLSv13, DTLSv10, DTLSv12, DTLSv13}:
                    self._violation(
                        f"Invalid version in SSL client hello. Version: {version}", skip=True
                    )
                    return UNKNOWN_VERSION
                return SSLv20
            if h2 == 0x04 and h4 < 2 and not is_orig:
                self.record_layer_version = SSLv20
                return SSLv20
            self._violation(
                f"Invalid headers in SSL connection. Head1: {h1}, head2: {h2}, head3: {h3}",
                skip=True,
            )
            return UNKNOWN_VERSION
        version = (h1 << 8) | h2
        if version not in _RECORD_VERSIONS:
            self._violation(f"Invalid version in TLS connection. Version: {version}", skip=True)
            return UNKNOWN_VERSION
        if 20 <= h0 <= 30:
            self.record_layer_version = version
            return version
        self._violation(
            f"Invalid type in TLS connection. Version: {version}, Type: {h0}", skip=True
        )
        return UNKNOWN_VERSION

    def _tls13(self) -> bool:
        """determine_tls13: a TLS 1.3 (or draft) version was negotiated."""
        return self.chosen_version == TLSv13 or self.chosen_version // 0xFF == 0x7F

    def _state_for(self, is_orig: bool, content_type: int) -> int:
        """determine_state: TLS 1.3 encrypts from the first application-data record on."""
        current = self.state[is_orig]
        if current == ENCRYPTED or content_type != APPLICATION_DATA:
            return current
        if self.chosen_version not in (SSLv20, SSLv30, TLSv10, TLSv11, TLSv12):
            self.state[is_orig] = ENCRYPTED
            return ENCRYPTED
        return current

    def _record(
        self, is_orig: bool, content_type: int, raw_version: int, head: bytes, body: bytes
    ) -> None:
        pos = 0
        while pos < len(body) and not self.skip:
            if self._state_for(is_orig, content_type) == ENCRYPTED:
                self._ciphertext(is_orig)
                return
            try:
                pos += self._plaintext(is_orig, content_type, raw_version, head, body, pos)
            except ParseError as exc:
                self._violation(f"Binpac exception: {exc}")
                return
            self._plaintext_event(content_type)

    def _ciphertext(self, is_orig: bool) -> None:
        both = self.state[True] == ENCRYPTED and self.state[False] == ENCRYPTED
        if both and not self.established_:
            self.established_ = True
            self._established()

    def _plaintext(
        self, is_orig: bool, ct: int, raw_version: int, head: bytes, body: bytes, pos: int
    ) -> int:
        """One plaintext element of a record; returns how many bytes it used."""
        is_client = is_orig ^ self.flipped
        if ct == CHANGE_CIPHER_SPEC:
            if not self._tls13():
                self.state[is_orig] = ENCRYPTED
            self._ev_change_cipher_spec(is_client)
            return 1
        if ct == ALERT:
            length = len(body) - pos
            cap = 2 if self._tls13() else MAX_ALERTS_PER_RECORD * 2
            if length > cap:
                self.ctx.weird("SSL_excessive_alerts_in_record", str(length // 2))
                length = cap
            for i in range(pos, pos + length - 1, 2):
                self._ev_alert(is_client, body[i], body[i + 1])
            if length % 2:
                raise ParseError("alert record with half an alert")
            return len(body) - pos
        if ct == HEARTBEAT:
            r = Reader(body, pos)
            r.u8()
            r.u16()
            self._ev_history(is_client, "b")
            return len(body) - pos
        if ct == APPLICATION_DATA:
            return len(body) - pos
        if ct == HANDSHAKE:
            self._handshake_record(is_orig, body[pos:], raw_version)
            return len(body) - pos
        if ct == V2_CLIENT_HELLO:
            self._v2_client_hello(head, body[pos:])
        elif ct == V2_SERVER_HELLO:
            self._v2_server_hello(head, body[pos:])
        elif ct == V2_CLIENT_MASTER_KEY:
            r = Reader(body, pos)
            r.u8()
            lens = r.u16(), r.u16(), r.u16()
            for n in lens:
                r.take(n)
            self.state[True] = self.state[False] = ENCRYPTED
            self._established()
        elif ct == V2_ERROR:
            self._ev_alert(is_client, -1, (head[3] << 8) | head[4])
        else:
            side = "originator" if is_orig else "responder"
            self._violation(f"unknown SSL record type ({ct}) from {side}")
        return len(body) - pos

    def _plaintext_event(self, content_type: int) -> None:
        """ssl_plaintext_data: application data in the clear before establishment is odd."""
        info = self._session()
        if (
            info.version_num is not None
            and not info.established
            and content_type == APPLICATION_DATA
        ):
            self.ctx.weird("ssl_early_application_data")

    # -- SSLv2 --------------------------------------------------------------------------------
    def _v2_client_hello(self, head: bytes, body: bytes) -> None:
        r = Reader(body)
        csuit_len, session_len, chal_len = r.u16(), r.u16(), r.u16()
        r.take(3 * (csuit_len // 3))  # 24-bit cipher kinds
        session_id = r.take(session_len)
        r.take(chal_len)
        self._proc_client_hello((head[3] << 8) | head[4], session_id, record_version=0)

    def _v2_server_hello(self, head: bytes, body: bytes) -> None:
        r = Reader(body)
        version = r.u16()
        cert_len, ciphers_len, conn_id_len = r.u16(), r.u16(), r.u16()
        cert = r.take(cert_len)
        ciphers = [int.from_bytes(r.take(3), "big") for _ in range(ciphers_len // 3)]
        r.take(conn_id_len)
        if version != SSLv20:
            self._violation(f"Invalid version in SSL server hello. Version: {version}", skip=True)
            return
        self._proc_server_hello(version, b"", b"", ciphers[0] if ciphers else 0)
        self._certificates(False, [cert])

    # -- handshake layer ----------------------------------------------------------------------
    def _handshake_record(self, is_orig: bool, data: bytes, raw_version: int) -> None:
        """A handshake record's content goes to the handshake flow (DTLS reassembles first)."""
        self._handshake_data(is_orig, data, raw_version)

    def _handshake_data(self, is_orig: bool, data: bytes, raw_version: int) -> None:
        self.record_version = raw_version
        buf = self.handshake[is_orig]
        buf += data
        while len(buf) >= 4 and not self.skip:
            length = int.from_bytes(buf[1:4], "big")
            if len(buf) < length + 4:
                return
            msg_type = buf[0]
            body = bytes(buf[4 : length + 4])
            del buf[: length + 4]
            self._handshake_message(is_orig, msg_type, length, body)

    def _handshake_message(self, is_orig: bool, msg_type: int, length: int, body: bytes) -> None:
        r = Reader(body)
        try:
            known = self._parse_handshake(is_orig, msg_type, r)
        except ParseError as exc:
            self._violation(f"Binpac exception: {exc}")
            return
        if not known:
            side = "originator" if is_orig else "responder"
            self._violation(f"unknown handshake message ({msg_type}) from {side}")
        self._ev_handshake_message(is_orig ^ self.flipped, msg_type)

    def _parse_handshake(self, is_orig: bool, msg_type: int, r: Reader) -> bool:
        if msg_type == HELLO_REQUEST:
            self._check_flipped(False, is_orig)
        elif msg_type == CLIENT_HELLO:
            self._check_flipped(True, is_orig)
            self._client_hello(is_orig, r)
        elif msg_type == SERVER_HELLO:
            self._check_flipped(False, is_orig)
            self._server_hello(is_orig, r)
        elif msg_type == HELLO_VERIFY_REQUEST:
            r.u16()
            r.take(r.u8())
        elif msg_type == SESSION_TICKET:
            r.u32()
            r.take(r.u16())
        elif msg_type == CERTIFICATE:
            cr = r.sub(r.u24())
            certs = []
            while cr.left:
                certs.append(cr.take(cr.u24()))
            self._certificates(is_orig, certs)
        elif msg_type == SERVER_KEY_EXCHANGE:
            self._server_key_exchange(r)
        elif msg_type == CERTIFICATE_REQUEST:
            r.take(r.u8())
            if self._uses_signature_algorithm():
                sr = r.sub(r.u16())
                while sr.left:
                    sr.u16()
            ca = r.sub(r.u16())
            while ca.left:
                ca.take(ca.u16())
        elif msg_type == CERTIFICATE_STATUS:
            status_type = r.u8()
            r.u24()
            response = r.rest()
            if status_type == 1 and response:
                self._stapled_ocsp(is_orig, response)
            elif not response:
                self.ctx.weird("SSL_zero_length_stapled_OCSP_message")
        elif msg_type not in (
            SERVER_HELLO_DONE,
            CERTIFICATE_VERIFY,
            CLIENT_KEY_EXCHANGE,
            FINISHED,
            CERTIFICATE_URL,
        ):
            return False
        return True

    def _check_flipped(self, desired: bool, is_orig: bool) -> None:
        """The hellos tell who the client is; Zeek flips its view when the roles look reversed."""
        if self.flipped:
            if desired == is_orig:
                self.flipped = False
                self._ev_flipped()
                if not self.already_alerted:
                    self.already_alerted = True
                    self.ctx.weird("SSL_unclear_connection_direction")
        elif desired != is_orig:
            self.flipped = True
            self._ev_flipped()

    def _uses_signature_algorithm(self) -> bool:
        return self.chosen_version > TLSv11 and self.chosen_version != DTLSv10

    def _client_hello(self, is_orig: bool, r: Reader) -> None:
        version = r.u16()
        r.u32()
        r.take(28)
        session_id = r.take(r.u8())
        if version in (DTLSv10, DTLSv12):
            r.take(r.u8())
        n = r.u16() // 2
        r.take(2 * n)
        r.take(r.u8())
        self._extensions(is_orig, CLIENT_HELLO, r)
        self._proc_client_hello(version, session_id, record_version=self.record_version)

    def _server_hello(self, is_orig: bool, r: Reader) -> None:
        version = r.u16()
        parsed = 0x7F00 if version >> 8 == 0x7F else version
        random = r.take(32)
        session_id = b""
        if parsed in (TLSv13, 0x7F00):
            cipher = r.u16()
            self._extensions(is_orig, SERVER_HELLO, r)
            self.chosen_cipher = cipher
            self._proc_server_hello(version, random, None, cipher)
        else:
            session_id = r.take(r.u8())
            cipher = r.u16()
            r.u8()
            self._extensions(is_orig, SERVER_HELLO, r)
            self.chosen_cipher = cipher
            self._proc_server_hello(version, random, session_id, cipher)
        if self.chosen_version == UNKNOWN_VERSION:
            self.chosen_version = version

    def _extensions(self, is_orig: bool, msg_type: int, r: Reader) -> None:
        if not r.left:
            return
        r.u16()  # the extensions' total length, unused
        is_client = is_orig ^ self.flipped
        while r.left:
            code = r.u16()
            er = r.sub(r.u16())
            if er.left:
                self._extension(is_client, msg_type, code, Reader(er.data, er.pos, er.end))
            self._ev_extension(is_client, code, er.left)

    def _extension(self, is_client: bool, msg_type: int, code: int, r: Reader) -> None:
        """The extensions Zeek parses (and may fail on); others are opaque."""
        if code == EXT_SERVER_NAME:
            sr = r.sub(r.u16())
            names = []
            while sr.left:
                name_type = sr.u8()
                if name_type != 0:
                    self.ctx.weird("ssl_ext_unknown_server_name_type", str(name_type))
                    sr.rest()
                    continue
                names.append(text(sr.take(sr.u16())))
            self._ev_server_name(is_client, names)
        elif code == EXT_ALPN:
            ar = r.sub(r.u16())
            protocols = []
            while ar.left:
                protocols.append(text(ar.take(ar.u8())))
            self._ev_alpn(is_client, protocols)
        elif code == EXT_ELLIPTIC_CURVES:
            r.take(2 * (r.u16() // 2))
        elif code == EXT_EC_POINT_FORMATS:
            r.take(r.u8())
        elif code in (EXT_SIGNATURE_ALGORITHMS, EXT_SIGNATURE_ALGORITHMS_CERT):
            sr = r.sub(r.u16())
            while sr.left:
                sr.u16()
        elif code in (EXT_KEY_SHARE, EXT_KEY_SHARE_OLD):
            if msg_type == CLIENT_HELLO:
                kr = r.sub(r.u16())
                while kr.left:
                    kr.u16()
                    kr.take(kr.u16())
            elif msg_type == SERVER_HELLO:
                retry = r.left == 2  # a HelloRetryRequest names just the group
                group = r.u16()
                if not retry:
                    r.take(r.u16())
                self._ev_key_share(is_client, [group])
        elif code == EXT_SUPPORTED_VERSIONS:
            if is_client:
                vr = r.sub(r.u8())
                while vr.left:
                    vr.u16()
            else:
                version = r.u16()
                if self.chosen_version == UNKNOWN_VERSION:
                    self.chosen_version = version
                self._ev_supported_versions(is_client, [version])
        elif code == EXT_PSK_KEY_EXCHANGE_MODES:
            r.take(r.u8())
        elif code == EXT_PRE_SHARED_KEY:
            if msg_type == CLIENT_HELLO:
                ir = r.sub(r.u16())
                while ir.left:
                    ir.take(ir.u16())
                    ir.u32()
                br = r.sub(r.u16())
                while br.left:
                    br.take(br.u8())
            elif msg_type == SERVER_HELLO:
                r.u16()
        elif code == EXT_CONNECTION_ID:
            r.take(r.u8())
        elif code == EXT_ENCRYPTED_CLIENT_HELLO:
            if r.u8() == 0:
                r.u16()
                r.u16()
                r.u8()
                r.take(r.u16())
                r.take(r.u16())
            else:
                self.ctx.weird("ssl_unexpected_inner_encrypted_client_hello")

    def _server_key_exchange(self, r: Reader) -> None:
        cipher = self.chosen_cipher
        if cipher in consts.ECDHE_KEX or cipher in consts.ECDH_ANON_KEX:
            curve_type = r.u8()
            if curve_type != 3:  # only named curves are parsed
                r.rest()
                return
            curve = r.u16()
            r.take(r.u8())
            if cipher in consts.ECDHE_KEX:
                self._signature(r)
            self._ev_ecdh_server_params(curve)
        elif cipher in consts.DHE_KEX or cipher in consts.DH_ANON_KEX:
            for _ in range(3):
                r.take(r.u16())
            if cipher in consts.DHE_KEX:
                self._signature(r)

    def _signature(self, r: Reader) -> None:
        if self._uses_signature_algorithm():
            r.u16()
        r.take(r.u16())

    def _proc_client_hello(self, version: int, session_id: bytes, record_version: int) -> None:
        if not version_ok(version):
            self._violation(f"unsupported client SSL version 0x{version:04x}", skip=True)
        elif not self.confirmed:
            self.confirmed = True
            self.ctx.confirm(self.service)
            self._session().analyzer_id = True
        self._ev_client_hello(record_version, session_id)

    def _proc_server_hello(
        self, version: int, random: bytes, session_id: bytes | None, cipher: int
    ) -> None:
        if not version_ok(version):
            self._violation(f"unsupported server SSL version 0x{version:04x}", skip=True)
        self._ev_server_hello(version, random, padded_session_id(session_id or b""), cipher)

    def _certificates(self, is_orig: bool, certs: list[bytes]) -> None:
        """proc_certificate: each certificate a file (the first the host's), then x509.log."""
        is_client = is_orig ^ self.flipped
        for i, der in enumerate(certs):
            if not der:
                self.ctx.weird("zero_length_certificate")
                continue
            cert = analyze_certificate(self.ctx, der, self.ts, is_orig=is_client, host_cert=i == 0)
            self._ev_file_sniff(is_client, cert)

    def _stapled_ocsp(self, is_orig: bool, response: bytes) -> None:
        """A stapled OCSP response is a file of its own (files.log) and its ocsp.log rows."""
        files = self.ctx.files
        handle = files.new_file(
            source="SSL",
            ts=self.ts,
            is_orig=is_orig ^ self.flipped,
            uid=self.ctx.uid,
            conn_id=self.ctx.conn_id,
            mime_type="application/ocsp-response",
            analyzers=("OCSP_REPLY",),
        )
        handle.data(response, self.ts)
        try:
            rows = ocsp_records(response, self.ts, handle.fuid)
        except CertificateError:
            rows = []  # Zeek: openssl_ocsp_response_parse_error (a file weird)
        for row in rows:
            self.ctx.emit("ocsp", row)
        handle.end(self.ts)

    # -- the script layer ---------------------------------------------------------------------
    def _session(self) -> SslInfo:
        """set_session: the record exists from the first SSL event on."""
        if self.info is None:
            self.info = SslInfo(ts=self.ts)
        return self.info

    def _ev_history(self, is_client: bool, letter: str) -> None:
        info = self._session()
        if len(info.ssl_history) == MAX_SSL_HISTORY_LENGTH:
            return
        info.ssl_history += letter.upper() if is_client else letter.lower()
        if len(info.ssl_history) == MAX_SSL_HISTORY_LENGTH:
            self.ctx.weird("SSL_max_ssl_history_length_reached", str(MAX_SSL_HISTORY_LENGTH))

    def _ev_flipped(self) -> None:
        self._session().ssl_history += "^"

    def _ev_client_hello(self, record_version: int, session_id: bytes) -> None:
        info = self._session()
        padded = padded_session_id(session_id)
        if any(padded):
            info.session_id = padded.hex()
            info.client_ticket_empty_session_seen = False
        if record_version == 0:
            self._ev_history(True, "c")
        if self.watcher is not None:
            self.watcher.hello(True)

    def _ev_server_hello(self, version: int, random: bytes, session_id: bytes, cipher: int) -> None:
        info = self._session()
        if info.version_num is None:
            info.version_num = version
        info.cipher = _name(consts.CIPHER_DESC, cipher)
        if random == HRR_RANDOM:
            info.hrr_seen = True
        vn = info.version_num
        same_session = info.session_id is not None and info.session_id == session_id.hex()
        if same_session and vn // 0xFF != 0x7F and vn != TLSv13:
            info.resumed = True
        if version == SSLv20:
            self._ev_history(False, "s")
        if self.watcher is not None:
            self.watcher.hello(False)

    def _ev_supported_versions(self, is_client: bool, versions: list[int]) -> None:
        if is_client or len(versions) != 1:
            return
        self._session().version_num = versions[0]

    def _ev_ecdh_server_params(self, curve: int) -> None:
        self._session().curve = _name(consts.EC_CURVES, curve)

    def _ev_key_share(self, is_client: bool, groups: list[int]) -> None:
        if is_client or len(groups) != 1:
            return
        self._session().curve = _name(consts.EC_CURVES, groups[0])

    def _ev_server_name(self, is_client: bool, names: list[str]) -> None:
        if self.watcher is not None:
            self.watcher.server_name(is_client, names)
        info = self._session()
        if is_client and names:
            info.server_name = names[0]
            if len(names) > 1:
                self.ctx.weird("SSL_many_server_names", f"[{', '.join(names)}]")

    def _ev_alpn(self, is_client: bool, protocols: list[str]) -> None:
        info = self._session()
        if not is_client and protocols:
            info.next_protocol = protocols[0]
        if self.watcher is not None:
            self.watcher.alpn(is_client, protocols)

    def _ev_extension(self, is_client: bool, code: int, length: int) -> None:
        info = self._session()
        if is_client and code == EXT_SESSION_TICKET and length > 0:
            info.client_ticket_empty_session_seen = True
        elif is_client and code == EXT_PRE_SHARED_KEY:
            info.client_psk_seen = True
        elif not is_client and code == EXT_PRE_SHARED_KEY and info.client_psk_seen:
            info.resumed = True

    def _ev_handshake_message(self, is_client: bool, msg_type: int) -> None:
        info = self._session()
        if is_client and msg_type == CLIENT_KEY_EXCHANGE:
            info.client_key_exchange_seen = True
        if msg_type == SERVER_HELLO and info.hrr_seen:
            info.hrr_seen = False
            self._ev_history(is_client, "j")
        else:
            self._ev_history(is_client, _HISTORY_LETTERS.get(msg_type, "z"))

    def _ev_change_cipher_spec(self, is_client: bool) -> None:
        info = self._session()
        self._ev_history(is_client, "i")
        if (
            is_client
            and info.client_ticket_empty_session_seen
            and not info.client_key_exchange_seen
        ):
            info.resumed = True

    def _ev_alert(self, is_client: bool, level: int, desc: int) -> None:
        info = self._session()
        self._ev_history(is_client, "l")
        info.last_alert = _name(consts.ALERT_DESCRIPTIONS, desc)

    def _ev_file_sniff(self, is_client: bool, cert: Certificate | None) -> None:
        """files.zeek's file_sniff: certificates join the chain of the side that sent them."""
        info = self.info
        if info is None:
            return
        if info.cert_chain is None:
            info.cert_chain = []
            info.client_cert_chain = []
        (info.client_cert_chain if is_client else info.cert_chain).append(cert)

    def _established(self) -> None:
        info = self._session()
        self._finishing(info)
        info.established = True
        conn = getattr(self.ctx, "conn", None)  # gridftp.zeek's handler (priority -3)
        if conn is not None:
            gridftp.ssl_established(conn, info.cipher, info.subject, info.client_subject)
        self._write(info)
        if info.analyzer_id:  # the script removes the analyzer (disable_analyzer_after_detection)
            self.skip = True

    def _finishing(self, info: SslInfo) -> None:
        """The ssl_finishing hook of files.zeek: fingerprints, SNI match, subject and issuer."""
        if info.cert_chain is not None:
            info.cert_chain_fps = (info.cert_chain_fps or []) + [
                c.fingerprint for c in info.cert_chain if c is not None
            ]
            info.client_cert_chain_fps = (info.client_cert_chain_fps or []) + [
                c.fingerprint for c in info.client_cert_chain if c is not None
            ]
        if info.cert_chain and info.cert_chain[0] is not None:
            host = info.cert_chain[0]
            if info.server_name is not None:
                info.sni_matches_cert = cert_matches_hostname(host, info.server_name)
            info.subject, info.issuer = host.subject, host.issuer
        if info.client_cert_chain and info.client_cert_chain[0] is not None:
            client = info.client_cert_chain[0]
            info.client_subject, info.client_issuer = client.subject, client.issuer

    def _violation(self, reason: str, skip: bool = False) -> None:
        """A protocol violation: the script logs what it has; DPD removes the analyzer unless
        the connection is past DPD::ignore_violations_after (then only SetSkip stops it)."""
        info = self.info
        if info is not None and not info.logged:
            self._finishing(info)
            self._write(info)
        within = self.size <= IGNORE_VIOLATIONS_AFTER
        if skip or within:
            self.skip = True
        if within:  # DPD disables the analyzer (analyzer_failed) only this early
            self.ctx.violation(reason)

    def _write(self, info: SslInfo) -> None:
        info.logged = True
        if self.watcher is None or self.watcher.write_ssl_log:
            self.ctx.emit("ssl", self.record(info))

    def record(self, info: SslInfo) -> Record:
        record = {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "version": version_name(info.version_num) if info.version_num is not None else None,
            "cipher": info.cipher,
            "curve": info.curve,
            "server_name": info.server_name,
            "resumed": info.resumed,
            "last_alert": info.last_alert,
            "next_protocol": info.next_protocol,
            "established": info.established,
            "ssl_history": info.ssl_history,
            "cert_chain_fps": info.cert_chain_fps,
            "client_cert_chain_fps": info.client_cert_chain_fps,
            "sni_matches_cert": info.sni_matches_cert,
        }
        # subject/issuer columns only exist with SSL::log_include_*_subject_issuer
        state = getattr(self.ctx, "shared_state", None) or {}
        for name in state.get(OPTIONAL_COLUMNS_STATE, {}).get("ssl", ()):
            record[name] = getattr(info, name)
        return record


@dataclass
class _Fragments:
    """dtls-analyzer.pac's message_info: one handshake message being reassembled."""

    handshake_seq: int = -1
    length: int = -1
    buffer: bytearray | None = None
    first_sequence: int = 0
    first_sequence_seen: bool = False
    last_sequence: int = 0
    seen: int = 0  # bit i: the record with sequence number first_sequence + i was used


STUN_MAGIC = b"\x21\x12\xa4\x42"
MAX_DTLS_HANDSHAKE_RECORD = 100_000
DTLS_MAX_VERSION_ERRORS = 10  # SSL::dtls_max_version_errors
DTLS_MAX_REPORTED_VERSION_ERRORS = 1  # SSL::dtls_max_reported_version_errors


class DtlsAnalyzer(SslAnalyzer):
    """DTLS over UDP (Zeek's DTLS_Analyzer): each datagram holds whole records, handshake
    messages may be fragmented across records; the handshake and script layers are TLS's."""

    service = "dtls"

    def __init__(self, ctx: AnalyzerContext) -> None:
        super().__init__(ctx)
        self.fragments = {True: _Fragments(), False: _Fragments()}
        self.invalid_versions = 0
        self.reported_errors = 0
        self._sequence = 0  # record sequence number of the record being read

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        self.size += len(data)
        if self.skip:
            return
        if len(data) > 20 and data[4:8] == STUN_MAGIC:
            return  # STUN shares the port (WebRTC)
        r = Reader(data)
        try:
            while r.left and not self.skip:
                if not self._dtls_record(is_orig, r):
                    return
        except ParseError as exc:
            self._violation(f"Binpac exception: {exc}")

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """Datagrams have no gaps."""

    def _dtls_record(self, is_orig: bool, r: Reader) -> bool:
        first = r.u8()
        if self.chosen_version == DTLSv13 and first & 0xE0 == 0x20:
            if not first & 0x10:  # without a connection id the header can be read
                r.take(2 if first & 0x08 else 1)
                if first & 0x04:
                    r.u16()
            r.rest()
            self.state[is_orig] = ENCRYPTED
            self._ciphertext(is_orig)
            return False
        version = r.u16()
        epoch = r.u16()
        sequence = int.from_bytes(r.take(6), "big")
        length = r.u16()
        if not self._dtls_version_ok(version):
            r.rest()
            return False
        body = r.take(length)
        self._sequence = sequence
        if not body:
            return True
        if epoch != 0:
            self._ciphertext(is_orig)
            return True
        pos = 0
        while pos < len(body) and not self.skip:
            pos += self._plaintext(is_orig, first, version, b"", body, pos)
            self._plaintext_event(first)
        return True

    def _dtls_version_ok(self, version: int) -> bool:
        if version in (DTLSv10, DTLSv12):
            if self.confirmed:
                self.invalid_versions = 0
            return True
        self.invalid_versions += 1
        if self.confirmed:
            self.reported_errors += 1
            if self.reported_errors <= DTLS_MAX_REPORTED_VERSION_ERRORS:
                self._violation(
                    f"Invalid version in DTLS connection. Packet reported version: {version}"
                )
        if self.invalid_versions > DTLS_MAX_VERSION_ERRORS:
            self.skip = True
        return False

    def _handshake_record(self, is_orig: bool, data: bytes, raw_version: int) -> None:
        """proc_handshake: whole messages go on; fragments are reassembled within a window of
        32 record sequence numbers, each fragment used once."""
        r = Reader(data)
        msg_type, length = r.u8(), r.u24()
        message_seq, offset, frag_len = r.u16(), r.u24(), r.u24()
        frag = r.rest()
        header = bytes([msg_type]) + length.to_bytes(3, "big")
        if offset == 0 and length == frag_len:
            self._handshake_data(is_orig, header + frag, raw_version)
            return
        if length > MAX_DTLS_HANDSHAKE_RECORD:
            self._violation(f"DTLS record length {length} larger than allowed maximum.")
            return
        seq = self._sequence
        m = self.fragments[is_orig]
        if m.handshake_seq != message_seq or m.length != length or m.buffer is None:
            m = self.fragments[is_orig] = _Fragments(
                message_seq, length, bytearray(length), first_sequence=seq
            )
        if abs(m.first_sequence - seq) >= 32:
            self._violation("DTLS handshake fragment sequence number outside reassembly window.")
            return
        if m.first_sequence > seq:
            if m.first_sequence_seen:
                self._violation("Saw second and different first message fragment for handshake.")
                return
            m.seen = (m.seen << (m.first_sequence - seq)) & 0xFFFFFFFF
            m.first_sequence = seq
        if offset == 0:
            m.first_sequence_seen = True
        bit = 1 << (seq - m.first_sequence)
        if m.seen & bit:
            return
        if len(frag) != frag_len:
            self._violation("DTLS handshake record length does not match packet length")
            return
        if offset + frag_len > length:
            self._violation("DTLS handshake fragment trying to write past end of buffer")
            return
        m.seen |= bit
        m.buffer[offset : offset + frag_len] = frag
        if offset + frag_len == length:
            m.last_sequence = seq
        if m.last_sequence and m.first_sequence_seen:
            total = m.last_sequence - m.first_sequence
            if total > 30:
                self._violation(
                    "DTLS Message fragmented over more than 30 pieces. Cannot reassemble."
                )
                return
            if ~m.seen & ((1 << (total + 1)) - 1) == 0:
                self._handshake_data(is_orig, header + bytes(m.buffer), raw_version)


# Zeek's dpd.sig for SSL: a TLS client hello from the originator or a server hello back.
_DPD_CLIENT = re.compile(rb"\x16\x03[\x00-\x03]..\x01...\x03[\x00-\x03]", re.S)
_DPD_SERVER = re.compile(
    rb"(\x15\x03[\x00-\x03]....)?\x16\x03[\x00-\x03]..\x02...(\x03[\x00-\x04]|\x7f[\x00-\x50])",
    re.S,
)


def sniff_ssl(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_tls_client / dpd_tls_server signatures on the first bytes of each side."""
    return bool(_DPD_CLIENT.match(orig) or _DPD_SERVER.match(resp))


_DPD_DTLS_CLIENT = re.compile(
    rb"\x16\xfe[\xff\xfd]\x00\x00\x00\x00\x00\x00\x00...\x01...........\xfe[\xff\xfd]", re.S
)


def _after_stun(data: bytes) -> bytes:
    """Skip leading STUN messages: Zeek matches UDP signatures per datagram, so a DTLS hello
    after a STUN exchange (WebRTC) still starts a datagram of its own."""
    while len(data) >= 20 and data[0] & 0xC0 == 0 and data[4:8] == STUN_MAGIC:
        data = data[20 + int.from_bytes(data[2:4], "big") :]
    return data


def sniff_dtls(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_dtls_client signature (either direction: WebRTC peers swap roles)."""
    return bool(
        _DPD_DTLS_CLIENT.match(_after_stun(orig)) or _DPD_DTLS_CLIENT.match(_after_stun(resp))
    )


DTLS_SPEC = register(
    AnalyzerSpec(
        name="dtls",
        transports=frozenset({"udp"}),
        ports=frozenset({443}),  # SSL::dtls_ports
        factory=DtlsAnalyzer,
        sniff=sniff_dtls,
    )
)

SPEC = register(
    AnalyzerSpec(
        name="ssl",
        transports=frozenset({"tcp"}),
        ports=SSL_PORTS,
        factory=SslAnalyzer,
        sniff=sniff_ssl,
    )
)
