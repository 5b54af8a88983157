"""QUIC -> quic.log (and the ssl.log row of its TLS handshake), as Zeek's QUIC analyzer and scripts.

Three layers, mirroring Zeek (``src/analyzer/protocol/quic``: the Spicy grammar plus
``decrypt_crypto.cc``; ``base/protocols/quic``) so odd traffic ends up logged the same way:

* packet protection (RFC 9001 §5, RFC 9369 for v2): the Initial keys every observer can
  derive from the client's first Destination Connection ID (HKDF-SHA256), header protection
  (AES-ECB mask) and the AEAD (AES-128-GCM). Only Initial packets can be read this way;
* the grammar: each datagram is a run of packets. Long headers are parsed per version, an
  Initial packet is decrypted and its frames read (PADDING, PING, ACK, CRYPTO,
  CONNECTION_CLOSE; anything else is a violation). CRYPTO data is reassembled per direction;
  its first handshake message (ClientHello / ServerHello) goes to a child SSL analyzer wrapped
  in a TLS handshake record, as Zeek does. Short-header packets are only counted; a packet
  whose fixed bit is clear ends the datagram (``discarded``);
* the script layer: the ``c$quic`` record, its history letters, and when a row is written
  (RETRY, CONNECTION_CLOSE, an unknown version, or when the connection goes away).

The TLS handshake itself is :mod:`.ssl`'s: this module only decrypts and reassembles.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols import ssl
from wirestream.processors.engine.protocols.bytereader import ParseError, Reader
from wirestream.processors.engine.sessions import AnalyzerSlot

log = logging.getLogger(__name__)

# -- versions (QUIC.spicy, consts.zeek) ---------------------------------------------------------
VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF  # RFC 9369
DRAFT_22, DRAFT_34 = 0xFF000016, 0xFF000022
MVFST_VERSIONS = frozenset({0xFACEB001, 0xFACEB002, 0xFACEB00E, 0xFACEB011, 0xFACEB012, 0xFACEB013})
# Versions the grammar parses with v1's packet types (anything else is "unhandled").
V1_LAYOUT_VERSIONS = frozenset({VERSION_1, *range(DRAFT_22, DRAFT_34 + 1), *MVFST_VERSIONS})

# QUIC::version_strings; Zeek names 0xff00001f "draft-30" too (kept, since logs must match).
_VERSION_NAMES = {
    VERSION_1: "1",
    VERSION_2: "quicv2",
    **{v: f"draft-{v - 0xFF000000}" for v in range(DRAFT_22, DRAFT_34 + 1)},
    0xFF00001F: "draft-30",
    **{v: f"mvfst ({v:x})" for v in MVFST_VERSIONS},
}


def version_name(version: int) -> str:
    """QUIC::version_strings with its &default."""
    return _VERSION_NAMES.get(version) or f"unknown-{version:x}"


# Long-header packet types: v1 numbering, and v2's (RFC 9369 §3.2) mapped onto it.
INITIAL, ZERO_RTT, HANDSHAKE, RETRY = 0, 1, 2, 3
_V2_TYPES = {1: INITIAL, 2: ZERO_RTT, 3: HANDSHAKE, 0: RETRY}

# -- packet protection (RFC 9001 §5.2, decrypt_crypto.cc) ---------------------------------------
SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
SALT_DRAFT_22 = bytes.fromhex("7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a")
SALT_DRAFT_23_28 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
SALT_DRAFT_29_32 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
AEAD_TAG_LENGTH = 16
SAMPLE_LENGTH = 16
MAX_PN_LENGTH = 4
MAX_PAYLOAD_LENGTH = 10_000  # decrypt_crypto.cc bails on larger payloads


class QuicDecryptError(ValueError):
    """An Initial packet that cannot be unprotected (Zeek: a violation of the QUIC analyzer)."""


def decryptable(version: int) -> bool:
    """Versions whose Initial keys are known: v1, drafts 22-34, Facebook's mvfst, v2."""
    return (
        version in (VERSION_1, VERSION_2, 0xFACEB001)
        or DRAFT_22 <= version <= DRAFT_34
        or 0xFACEB002 <= version <= 0xFACEB013
    )


def initial_salt(version: int) -> bytes:
    if version == VERSION_2:
        return SALT_V2
    if version in (DRAFT_22, 0xFACEB001):
        return SALT_DRAFT_22
    if 0xFF000017 <= version <= 0xFF00001C or 0xFACEB002 <= version <= 0xFACEB013:
        return SALT_DRAFT_23_28
    if 0xFF00001D <= version <= 0xFF000020:
        return SALT_DRAFT_29_32
    return SALT_V1


# The cryptography imports are local: they cost ~20 ms, paid only once QUIC needs a key.


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes, hmac

    mac = hmac.HMAC(salt, hashes.SHA256())
    mac.update(ikm)
    return mac.finalize()


def hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    """TLS 1.3's HKDF-Expand-Label with an empty context (RFC 8446 §7.1)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


@dataclass(frozen=True)
class PacketKeys:
    """One direction's Initial packet protection: AEAD key and IV, header-protection key."""

    secret: bytes
    key: bytes
    iv: bytes
    hp: bytes


@functools.lru_cache(maxsize=256)
def initial_keys(version: int, dcid: bytes, from_client: bool) -> PacketKeys:
    """RFC 9001 §5.2 (RFC 9369 §3.3.1 labels for v2): keys from the client's first DCID."""
    initial_secret = hkdf_extract(initial_salt(version), dcid)
    secret = hkdf_expand_label(initial_secret, "client in" if from_client else "server in", 32)
    prefix = "quicv2 " if version == VERSION_2 else "quic "
    return PacketKeys(
        secret,
        hkdf_expand_label(secret, prefix + "key", 16),
        hkdf_expand_label(secret, prefix + "iv", 12),
        hkdf_expand_label(secret, prefix + "hp", 16),
    )


def header_protection_mask(hp: bytes, sample: bytes) -> bytes:
    """RFC 9001 §5.4.3: AES-ECB of the 16-byte ciphertext sample."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()  # noqa: S305 (the RFC's mask)
    return encryptor.update(sample) + encryptor.finalize()


def decrypt_initial(
    version: int,
    packet: bytes,
    dcid: bytes,
    pn_offset: int,
    payload_length: int,
    from_client: bool,
) -> bytes:
    """An Initial packet's plaintext frames: header protection off, then AES-128-GCM.

    ``packet`` starts at the first header byte; ``pn_offset`` is where the packet number
    starts and ``payload_length`` the header's Length field (packet number + payload + tag).
    Raises :class:`QuicDecryptError` with Zeek's reasons.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if payload_length < 20:
        raise QuicDecryptError(f"payload too small {payload_length} < 20")
    if len(packet) < pn_offset + payload_length:
        raise QuicDecryptError(f"packet too small {len(packet)} {pn_offset + payload_length}")
    if not decryptable(version):
        raise QuicDecryptError(f"unable to decrypt QUIC version 0x{version:x}")
    keys = initial_keys(version, bytes(dcid), from_client)
    sample_at = pn_offset + MAX_PN_LENGTH
    mask = header_protection_mask(keys.hp, packet[sample_at : sample_at + SAMPLE_LENGTH])
    first = packet[0]
    first ^= mask[0] & (0x0F if first & 0x80 else 0x1F)
    pn_length = (first & 0x03) + 1
    header = bytearray(packet[: pn_offset + pn_length])
    header[0] = first
    packet_number = 0
    for i in range(pn_length):
        header[pn_offset + i] ^= mask[1 + i]
        packet_number = (packet_number << 8) | header[pn_offset + i]
    if payload_length < pn_length + AEAD_TAG_LENGTH:
        raise QuicDecryptError(
            f"payload too small {payload_length} < {pn_length + AEAD_TAG_LENGTH}"
        )
    if payload_length > MAX_PAYLOAD_LENGTH:
        raise QuicDecryptError(f"payload_length too large {payload_length}")
    nonce = (int.from_bytes(keys.iv, "big") ^ packet_number).to_bytes(len(keys.iv), "big")
    end = pn_offset + payload_length
    try:
        return AESGCM(keys.key).decrypt(nonce, bytes(packet[len(header) : end]), bytes(header))
    except InvalidTag:
        raise QuicDecryptError("decryption failed") from None


# -- the grammar's building blocks ----------------------------------------------------------------
class QuicParseError(ParseError):
    """The Spicy grammar rejects the datagram: a protocol violation."""


def read_varint(r: Reader) -> int:
    """RFC 9000 §16: the two top bits of the first byte give the length (1, 2, 4, 8)."""
    first = r.u8()
    value = first & 0x3F
    for b in r.take((1 << (first >> 6)) - 1):
        value = (value << 8) | b
    return value


MAX_HANDSHAKE_MESSAGE = 2**14 + 256  # RFC 8446's limit, as the grammar's &requires
MAX_CRYPTO_WITHOUT_LENGTH = 2000


class CryptoStream:
    """One direction's CRYPTO frames: Spicy's sink (in-order delivery, the first copy of a byte
    wins) feeding the grammar's CryptoSinkUnit, which reads the first handshake message's
    length and hands the message on wrapped in a TLS handshake record."""

    def __init__(self, to_ssl) -> None:  # noqa: ANN001 (Callable[[bytes], None])
        self.to_ssl = to_ssl
        self.size = 0  # bytes delivered in order (Spicy's |sink|)
        self.next = 0  # offset of the next byte to deliver
        self.pending: list[tuple[int, bytes]] = []  # out-of-order pieces, sorted, disjoint
        self.head = bytearray()  # msg_type + 24-bit length
        self.length = 0  # message length + 4, once known
        self.remaining = 0
        self.finished = False
        self.failed = False  # the unit failed: the sink skips it from now on

    def write(self, data: bytes, offset: int) -> None:
        if not data:
            return
        if not self.pending and offset == self.next:
            self.next += len(data)
            self._deliver(data)
            return
        end = offset + len(data)
        if end <= self.next:
            return
        if offset < self.next:
            data, offset = data[self.next - offset :], self.next
        self._buffer(offset, data)
        while self.pending and self.pending[0][0] == self.next:
            _, piece = self.pending.pop(0)
            self.next += len(piece)
            self._deliver(piece)

    def _buffer(self, offset: int, data: bytes) -> None:
        """Keep the parts of ``data`` no buffered piece covers yet."""
        end = offset + len(data)
        pieces = []
        cursor = offset
        for start, piece in self.pending:
            stop = start + len(piece)
            if stop <= cursor or start >= end:
                continue
            if start > cursor:
                pieces.append((cursor, data[cursor - offset : start - offset]))
            cursor = max(cursor, stop)
        if cursor < end:
            pieces.append((cursor, data[cursor - offset :]))
        self.pending = sorted(self.pending + pieces)

    def _deliver(self, data: bytes) -> None:
        self.size += len(data)
        if self.failed:
            return
        if self.finished:
            raise QuicParseError("more data after sink's unit has already completed parsing")
        if len(self.head) < 4:
            used = min(4 - len(self.head), len(data))
            self.head += data[:used]
            data = data[used:]
            if len(self.head) < 4:
                return
            self.length = int.from_bytes(self.head[1:4], "big") + 4
            if self.length > MAX_HANDSHAKE_MESSAGE:
                self.failed = True  # &requires failed; the sink stops feeding the unit
                return
            self.to_ssl(b"\x16\x03\x03" + self.length.to_bytes(2, "big") + bytes(self.head))
            self.remaining = self.length - 4
            if not self.remaining:
                self.finished = True
                return
        if data and self.remaining:
            piece = data[: self.remaining]
            self.remaining -= len(piece)
            self.to_ssl(piece)
            if not self.remaining:
                self.finished = True


@dataclass
class LongHeader:
    first: int
    version: int
    dcid: bytes
    scid: bytes
    packet_type: int = INITIAL
    pn_offset: int = 0  # Initial: where the packet number starts, from the packet's start
    payload_length: int = 0  # Initial: the Length field


# -- the script layer -----------------------------------------------------------------------------
@dataclass(frozen=True)
class QuicConfig:
    """The QUIC options a site may redef; the defaults are plain ``zeek -r``."""

    max_history_length: int = 100  # QUIC::max_history_length
    max_discarded_packet_events: int = 100  # QUIC::max_discarded_packet_events (0 all, -1 none)

    def __post_init__(self) -> None:
        if self.max_history_length < 0:
            raise ValueError("QUIC::max_history_length must be a count")


CONFIG_KEY = "quic_config"


def configure(engine: Any, config: QuicConfig) -> None:
    """Use ``config`` for the QUIC connections ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


@dataclass
class QuicInfo:
    """QUIC::Info as main.zeek fills it."""

    ts: float
    version: str
    client_initial_dcid: str | None = None
    client_scid: str | None = None
    server_scid: str | None = None
    server_name: str | None = None
    client_protocol: str | None = None
    history: list[str] = field(default_factory=list)
    logged: bool = False


class QuicAnalyzer:
    """One UDP connection's QUIC analyzer (the Spicy grammar's shared context plus the
    quic scripts' ``c$quic``)."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        if not hasattr(ctx, "conn"):
            raise TypeError("QUIC needs the engine's AnalyzerSlot to attach its SSL child")
        self.ctx = ctx
        self.ts = 0.0
        state = getattr(ctx, "shared_state", None) or {}
        self.config: QuicConfig = state.get(CONFIG_KEY) or QuicConfig()
        # the SSL child's ssl.HandshakeWatcher: no ssl.log in bare mode, the events still come
        self.write_ssl_log = "ssl" in ctx.conn.engine.analyzers  # type: ignore[attr-defined]
        # grammar context
        self.client_cid_len = 0
        self.server_cid_len = 0
        self.initial_dcid: bytes | None = None
        self.crypto: dict[bool, CryptoStream] | None = None
        self.ssl: ssl.SslAnalyzer | None = None  # the SSL child; None until a packet needs it
        self.ssl_slot: AnalyzerSlot | None = None
        self.last_ssl: ssl.SslAnalyzer | None = None  # the latest one, for its ssl.log row
        self.total_decrypted = 0
        self.total_discarded = 0
        self.short_total = {True: 0, False: 0}
        self.short_next = {True: 1, False: 1}
        # script state
        self.info: QuicInfo | None = None

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        pos = 0
        try:
            while pos < len(data):
                pos = self._packet(is_orig, data, pos)
        except ParseError as exc:
            log.debug("%s: QUIC violation: %s", self.ctx.uid, exc)
            self.ctx.violation(str(exc))

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """Datagrams have no gaps."""

    def end(self, ts: float) -> None:
        """finalize_quic, then finalize_ssl: rows not written yet are written now."""
        info = self.info
        if info is not None and not info.logged:
            self._log_record(info)
        if self.last_ssl is not None:
            self.last_ssl.end(ts)

    # -- the grammar ------------------------------------------------------------------------
    def _packet(self, is_orig: bool, data: bytes, pos: int) -> int:
        """One ``Packet``: returns where the next one starts."""
        self._init_crypto()
        crypto: CryptoStream | None = self.crypto[is_orig]  # type: ignore[index]
        first = data[pos]
        if not first & 0x40:  # fixed bit clear: the rest of the datagram is discarded
            self.total_discarded += 1
            limit = self.config.max_discarded_packet_events
            if self.total_decrypted > 0 and (limit == 0 or 0 < self.total_discarded <= limit):
                self._ev_discarded(is_orig)
            return len(data)
        if not first & 0x80:
            self._short_header(is_orig, data, pos)
            return len(data)
        r = Reader(data, pos)
        header = self._long_header(is_orig, r)
        if header.packet_type == RETRY:
            self._reset_crypto()
            crypto = None
        if (
            header.packet_type == INITIAL
            and crypto is not None
            and (is_orig or self.initial_dcid is not None)
            and not crypto.finished
        ):
            self._decrypt(is_orig, header, data[pos : r.pos], crypto)
        return r.pos

    def _init_crypto(self) -> None:
        """Packet's %init: the SSL child and both CRYPTO streams exist from the first packet."""
        if self.ssl is None:
            conn = self.ctx.conn  # type: ignore[attr-defined]
            self.ssl_slot = AnalyzerSlot(conn, ssl.SPEC)
            child = ssl.SslAnalyzer(self.ssl_slot, watcher=self)
            if self.last_ssl is not None:  # after a RETRY: the connection's c$ssl stays
                child.info = self.last_ssl.info
            self.ssl_slot.analyzer = child
            self.ssl = self.last_ssl = child
        if self.crypto is None:
            self.crypto = {
                True: CryptoStream(lambda data: self._to_ssl(True, data)),
                False: CryptoStream(lambda data: self._to_ssl(False, data)),
            }

    def _reset_crypto(self) -> None:
        """A RETRY: close the SSL child, forget the streams and the initial DCID."""
        self.ssl = None
        self.ssl_slot = None
        self.crypto = None
        self.initial_dcid = None

    def _to_ssl(self, is_orig: bool, data: bytes) -> None:
        slot, child = self.ssl_slot, self.ssl
        if slot is not None and child is not None and slot.active:
            child.data(is_orig, data, self.ts)

    def _short_header(self, is_orig: bool, data: bytes, pos: int) -> None:
        need = 1 + self.client_cid_len
        if len(data) - pos < need:
            raise QuicParseError(f"expected {need} bytes for a short header")
        self.short_total[is_orig] += 1
        total = self.short_total[is_orig]
        if total == self.short_next[is_orig]:
            self.short_next[is_orig] *= 2
            self._ev_short_threshold(is_orig, total)

    def _long_header(self, is_orig: bool, r: Reader) -> LongHeader:
        start = r.pos
        first = r.u8()
        version = r.u32()
        dcid = r.take(r.u8())
        scid = r.take(r.u8())
        header = LongHeader(first, version, dcid, scid)
        raw_type = (first >> 4) & 0x03
        if version in V1_LAYOUT_VERSIONS:
            header.packet_type = raw_type
        elif version == VERSION_2:
            header.packet_type = _V2_TYPES[raw_type]
        else:
            r.rest()
            self._ev_unhandled_version(is_orig, header)
            raise QuicParseError(f"unhandled QUIC version 0x{version:x}")
        kind = header.packet_type
        if kind == INITIAL:
            r.take(read_varint(r))  # token
            length = read_varint(r)
            if length < 20:
                raise QuicParseError("&requires failed: Initial length < 20")
            header.pn_offset = r.pos - start
            header.payload_length = length
            r.take(length)
            self._ev_packet(is_orig, header, "INIT")
        elif kind in (ZERO_RTT, HANDSHAKE):
            r.take(read_varint(r))
            self._ev_packet(is_orig, header, "ZeroRTT" if kind == ZERO_RTT else "HANDSHAKE")
        else:
            rest = r.rest()
            if len(rest) < AEAD_TAG_LENGTH:
                raise QuicParseError("retry packet shorter than its integrity tag")
            self._ev_retry(is_orig, header)
        return header

    def _decrypt(
        self, is_orig: bool, header: LongHeader, packet: bytes, crypto: CryptoStream
    ) -> None:
        if is_orig:
            self.server_cid_len, self.client_cid_len = len(header.dcid), len(header.scid)
            if self.initial_dcid is None:
                self.initial_dcid = header.dcid
        else:
            self.server_cid_len, self.client_cid_len = len(header.scid), len(header.dcid)
        assert self.initial_dcid is not None
        try:
            plain = decrypt_initial(
                header.version,
                packet,
                self.initial_dcid,
                header.pn_offset,
                header.payload_length,
                is_orig,
            )
        except QuicDecryptError as exc:
            raise QuicParseError(str(exc)) from None
        if not plain:
            raise QuicParseError("decryption failed")
        self.ctx.confirm("quic")
        self.total_decrypted += 1
        self._frames(is_orig, header, plain, crypto)

    def _frames(
        self, is_orig: bool, header: LongHeader, plain: bytes, crypto: CryptoStream
    ) -> None:
        r = Reader(plain)
        while r.left:
            frame_type = r.u8()
            if frame_type in (0x02, 0x03):  # ACK
                read_varint(r)
                read_varint(r)
                ranges = read_varint(r)
                read_varint(r)
                for _ in range(ranges):
                    read_varint(r)
                    read_varint(r)
                if frame_type == 0x03:
                    for _ in range(3):
                        read_varint(r)
            elif frame_type == 0x06:  # CRYPTO
                offset = read_varint(r)
                data = r.take(read_varint(r))
                crypto.write(data, offset)
                if crypto.length > 0:
                    if crypto.size > crypto.length:
                        raise QuicParseError(
                            f"too much crypto data received {crypto.size} > {crypto.length}"
                        )
                elif crypto.size > MAX_CRYPTO_WITHOUT_LENGTH:
                    raise QuicParseError(
                        f"too much crypto data without length received {crypto.size}"
                    )
            elif frame_type == 0x1C:  # CONNECTION_CLOSE (transport)
                error_code = read_varint(r)
                if r.left and r.data[r.pos] == 0:
                    r.u8()
                else:
                    read_varint(r)
                r.take(read_varint(r))
                self._ev_connection_close(is_orig, error_code)
            elif frame_type == 0x00:  # PADDING: the zeros that follow too
                while r.left and r.data[r.pos] == 0:
                    r.pos += 1
            elif frame_type != 0x01:  # PING has no body
                raise QuicParseError(
                    f"unhandled frame type {frame_type} in {header.first >> 4 & 0x03}"
                )

    # -- the script layer (base/protocols/quic/main.zeek) -----------------------------------
    def _set_session(self, is_orig: bool, header: LongHeader) -> QuicInfo:
        info = self.info
        if info is None:
            info = self.info = QuicInfo(ts=self.ts, version=version_name(header.version))
        if is_orig and header.dcid and info.client_initial_dcid is None:
            info.client_initial_dcid = header.dcid.hex()
        if is_orig:
            info.client_scid = header.scid.hex()
        else:
            info.server_scid = header.scid.hex()
        return info

    def _add_history(self, is_orig: bool, what: str) -> None:
        info = self.info
        assert info is not None
        limit = self.config.max_history_length
        if len(info.history) == limit:
            return
        info.history.append(what[0].upper() if is_orig else what[0].lower())
        if len(info.history) == limit:
            self._script_weird("QUIC_max_history_length_reached")

    def _script_weird(self, name: str, addl: str = "") -> None:
        """Reporter::conn_weird from a script: no analyzer source."""
        self.ctx.weird(name, addl, source="")  # type: ignore[call-arg]

    def _log_record(self, info: QuicInfo) -> None:
        info.logged = True
        self.ctx.emit("quic", self.record(info))

    def record(self, info: QuicInfo) -> Record:
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "version": info.version,
            "client_initial_dcid": info.client_initial_dcid,
            "client_scid": info.client_scid,
            "server_scid": info.server_scid,
            "server_name": info.server_name,
            "client_protocol": info.client_protocol,
            "history": "".join(info.history),
        }

    def _ev_packet(self, is_orig: bool, header: LongHeader, what: str) -> None:
        """initial_packet / handshake_packet / zero_rtt_packet."""
        self._set_session(is_orig, header)
        self._add_history(is_orig, what)

    def _ev_retry(self, is_orig: bool, header: LongHeader) -> None:
        """A RETRY writes the row and starts a new one."""
        self._final_packet(is_orig, header, "RETRY")

    def _ev_unhandled_version(self, is_orig: bool, header: LongHeader) -> None:
        self._final_packet(is_orig, header, "UNHANDLED_VERSION")

    def _final_packet(self, is_orig: bool, header: LongHeader, what: str) -> None:
        """A packet that ends the row: it is the session's first if none is open yet."""
        if self.info is None:
            self._set_session(is_orig, header)
        self._add_history(is_orig, what)
        assert self.info is not None
        self._log_record(self.info)
        self.info = None

    def _ev_connection_close(self, is_orig: bool, error_code: int) -> None:
        if self.info is None:
            return
        self._add_history(is_orig, "CONNECTION_CLOSE")
        self._log_record(self.info)
        self.info = None

    def _ev_short_threshold(self, is_orig: bool, threshold: int) -> None:
        if self.info is None:
            self._script_weird(
                "QUIC_spurious_short_header_packet_threshold_crossed", str(threshold)
            )
            return
        self._add_history(is_orig, "Oshort_header")

    def _ev_discarded(self, is_orig: bool) -> None:
        if self.info is None:
            self._script_weird("QUIC_spurious_discarded_packet")
            return
        self._add_history(is_orig, "Xdiscarded")

    # -- ssl.HandshakeWatcher: the quic scripts' handlers of the SSL child's events --------
    def hello(self, is_client: bool) -> None:
        if self.info is not None:
            self._add_history(is_client, "SSL")

    def server_name(self, is_client: bool, names: list[str]) -> None:
        if is_client and self.info is not None and names:
            self.info.server_name = names[0]

    def alpn(self, is_client: bool, protocols: list[str]) -> None:
        if self.info is None or not is_client or not protocols:
            return  # (an empty list is a script error in Zeek: the handler stops)
        self.info.client_protocol = protocols[0]
        if len(protocols) > 1:
            self._script_weird("QUIC_many_protocols", f"[{', '.join(protocols)}]")


# base/protocols/quic/dpd.sig: a v1 or v2 Initial (long header, fixed bit) starts the payload.
_DPD_INITIAL = re.compile(rb"[\xc0-\xcf]\x00\x00\x00\x01|[\xd0-\xdf]\x6b\x33\x43\xcf")


def sniff_quic(orig: bytes, resp: bytes) -> bool:
    return bool(_DPD_INITIAL.match(orig) or _DPD_INITIAL.match(resp))


SPEC = register(
    AnalyzerSpec(
        name="quic",
        transports=frozenset({"udp"}),
        ports=frozenset({443, 853, 784}),  # QUIC::quic_ports + QUIC::doq_ports
        factory=QuicAnalyzer,
        sniff=sniff_quic,
    )
)
