"""RDP -> rdp.log, as Zeek's RDP analyzer (``rdp-protocol.pac``) and ``base/protocols/rdp``.

The analyzer reads TPKT frames per direction: the X.224 connection request (the client's
cookie and negotiation request), the server's connection confirm (negotiation response or
failure), and the MCS connect-initial/-response with their GCC user data blocks (client core,
security, network and cluster data; the server's core, security and network data with its
proprietary or X.509 certificate). Once the negotiated security protocol encrypts the stream
(``go_encrypted``), later deliveries go to an SSL child analyzer (TLS, CredSSP) or, for RDP's
native encryption, nowhere; as in Zeek, the frames left in the delivery that switched are
still read as TPKT.

The script layer keeps one row per connection from the first RDP event on; it is written
when ``RDP::rdp_check_interval`` has passed since then (checked every interval on packet
time), at a protocol violation, or when the connection ends, and only if it holds a cookie,
a keyboard layout or a result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols import rdp_consts as consts
from wirestream.processors.engine.protocols.bytereader import ParseError, Reader, asn1_encoding
from wirestream.processors.engine.protocols.child import ChildContext
from wirestream.processors.engine.protocols.smb2 import utf16_text
from wirestream.processors.engine.protocols.ssl import SslAnalyzer
from wirestream.processors.engine.protocols.x509 import analyze_certificate
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

RDP_PORTS = frozenset({3389})  # RDP::rdp_ports
RDP_CHECK_INTERVAL = 10.0  # RDP::rdp_check_interval
MAX_DATA_LENGTH = 262144  # rdp-protocol.pac: cap on key and certificate lengths
MAX_CHANNELS = 1000  # Client_Network_Data's &enforce
MAX_CERTS = 1000  # X509's &enforce
CHANNELS_WEIRD_OVER = 31  # main.zeek: RDP_channels_requested_exceeds_max

COOKIE_PREFIX = b"Cookie: mstshash="
SECURITY_DATA_CERT_RSA, SECURITY_DATA_CERT_X509 = 1, 2


def lookup(table: str, number: int) -> str:
    """A consts.zeek table's name for ``number``, or the table's ``&default`` text."""
    names: dict[int, str] = getattr(consts, table)
    name = names.get(number)
    return name if name is not None else f"{consts.DEFAULT_PREFIXES[table]}{number}"


def keyboard_layout_name(layout: int) -> str:
    """rdp_client_core_data's keyboard_layout: the language, a best guess on its low 16
    bits, or ``keyboard-<n>``."""
    name = consts.LANGUAGES.get(layout)
    if name is not None:
        return name
    guess = consts.LANGUAGES.get(layout & 0xFFFF)
    if guess is not None:
        return f"{guess} (Best Guess for {layout})"
    return f"keyboard-{layout}"


# ----------------------------------------------------------------------------- wire reading


def _le(r: Reader, n: int) -> int:
    return int.from_bytes(r.take(n), "little")


def _enforce(ok: bool, where: str) -> None:
    """binpac's &enforce: ``where`` is "Type:field", as its exception names it."""
    if not ok:
        raise ParseError(f"&enforce violation : {where}")


@dataclass
class ClientCoreData:
    """The Client_Core_Data fields the script reads."""

    desktop_width: int
    desktop_height: int
    keyboard_layout: int
    client_build: int
    client_name: bytes
    high_color_depth: int
    early_capability_flags: int
    dig_product_id: bytes

    @property
    def want_32bpp_session(self) -> bool:
        return bool(self.early_capability_flags & 0x02)


def _client_core_data(r: Reader) -> ClientCoreData:
    _le(r, 2), _le(r, 2)  # version major, minor
    width, height = _le(r, 2), _le(r, 2)
    _le(r, 2), _le(r, 2)  # color_depth, sas_sequence
    layout, build = _le(r, 4), _le(r, 4)
    name = r.take(32)
    r.take(12)  # keyboard type, subtype, function keys
    r.take(64)  # ime_file_name
    r.take(8)  # post_beta2_color_depth, client_product_id, serial_number
    high = _le(r, 2)
    _le(r, 2)  # supported_color_depths
    flags = _le(r, 2)
    dig = r.take(64)
    return ClientCoreData(
        width, height, layout, build, utf16_text(name), high, flags, utf16_text(dig)
    )


# ----------------------------------------------------------------------------- the script layer


@dataclass
class RdpInfo:
    """One rdp.log row in the making (RDP::Info)."""

    ts: float
    cookie: str | None = None
    result: str | None = None
    security_protocol: str | None = None
    client_channels: list[str] | None = None
    keyboard_layout: str | None = None
    client_build: str | None = None
    client_name: str | None = None
    client_dig_product_id: str | None = None
    desktop_width: int | None = None
    desktop_height: int | None = None
    requested_color_depth: str | None = None
    cert_type: str | None = None
    cert_count: int = 0
    cert_permanent: bool | None = None
    encryption_level: str | None = None
    encryption_method: str | None = None
    done: bool = False


class RdpAnalyzer:
    """One RDP connection: Zeek's RDP_Analyzer, its binpac flows and the rdp scripts."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.buffers = {True: bytearray(), False: bytearray()}
        self.had_gap = False
        self.encrypted = False  # RDP_Conn.is_encrypted_
        self.encryption_method = 0
        self.ssl: SslAnalyzer | None = None
        self.ssl_ctx: ChildContext | None = None
        self.confirmed = False
        self.info: RdpInfo | None = None
        conn = getattr(ctx, "conn", None)
        # Packet-time timers for check_record (a bare test context has none: the row is then
        # written at a violation or at the end).
        self._add_timer: Callable[..., Any] | None = conn.engine.timers.add if conn else None

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.had_gap:
            return
        if self.encrypted:
            if self.encryption_method > 0:  # SSL/TLS or CredSSP: the SSL child reads it
                self._to_ssl(is_orig, data, ts)
            return  # 0: RDP's native encryption, nothing more to read
        buf = self.buffers[is_orig]
        buf += data
        try:
            self._frames(is_orig, buf)
        except ParseError as exc:
            buf.clear()
            self._violation(f"Binpac exception: binpac exception: {exc}")

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        self.had_gap = True

    def end(self, ts: float) -> None:
        self.ts = ts
        if self.ssl is not None:
            self.ssl.end(ts)
        if self.info is not None:  # finalize_rdp
            self._write_log()

    # -- TLS child --------------------------------------------------------------------------
    def _to_ssl(self, is_orig: bool, data: bytes, ts: float) -> None:
        if self.ssl is None:
            self.ssl_ctx = ChildContext(self.ctx, "ssl")
            self.ssl = SslAnalyzer(self.ssl_ctx)
        if self.ssl_ctx is not None and not self.ssl_ctx.removed:
            self.ssl.data(is_orig, data, ts)

    # -- protocol layer (rdp-protocol.pac) --------------------------------------------------
    def _frames(self, is_orig: bool, buf: bytearray) -> None:
        """Every whole TPKT in ``buf`` (flowunit TPKT, &length=tpkt_len)."""
        while len(buf) >= 4:
            tpkt_len = int.from_bytes(buf[2:4], "big")
            if tpkt_len < 4:
                raise ParseError(f"TPKT length {tpkt_len} shorter than its header")
            if len(buf) < tpkt_len:
                return
            frame = bytes(buf[:tpkt_len])
            del buf[:tpkt_len]
            self._cotp(Reader(frame, 4))

    def _cotp(self, r: Reader) -> None:
        cotp_len = r.u8()
        pdu = r.u8()
        if pdu == 0xD0:
            self._connect_confirm(r, cotp_len)
        elif pdu == 0xE0:
            self._connect_request(r, cotp_len)
        elif pdu == 0xF0:
            r.u8()  # tpdu_number
            r.u8()  # application_defined_type
            application_type = r.u8()
            if application_type == 0x65:
                self._client_header(r)
            elif application_type == 0x66:
                self._server_header(r)

    def _connect_request(self, r: Reader, cotp_len: int) -> None:
        start = r.pos
        r.take(5)  # destination/source reference, flow control
        cookie: bytes | None = None
        if r.data.startswith(COOKIE_PREFIX, r.pos, r.end):
            r.take(len(COOKIE_PREFIX))
            cr = r.data.find(b"\r", r.pos, r.end)
            value_end = r.end if cr < 0 else cr
            cookie = r.take(value_end - r.pos)
            if r.take(2) != b"\r\n":  # RE/\x0d\x0a/ must match
                raise ParseError("cookie not terminated by CRLF")
        if (r.pos - start) + 1 - cotp_len != 0:  # rdp_neg_req present
            r.u8()  # type
            r.u8()  # flags
            _enforce(_le(r, 2) == 8, "RDP_Negotiation_Request:length")
            _le(r, 4)  # requested_protocols
        self._ev_connect_request(cookie or b"")

    def _connect_confirm(self, r: Reader, cotp_len: int) -> None:
        r.take(5)  # destination/source reference, flags
        if 5 + 1 - cotp_len == 0:
            return
        response_type = r.u8()
        if response_type == 0x02:
            r.u8()  # flags
            _enforce(_le(r, 2) == 8, "RDP_Negotiation_Response:length")
            selected = _le(r, 4)
            if selected > 0:  # enc_ssl, a &let before the response's event
                self._go_encrypted(selected)
            self._ev_negotiation_response(selected)
        elif response_type == 0x03:
            r.u8()  # flags
            _le(r, 2)  # length
            self._ev_negotiation_failure(_le(r, 4))
        else:
            raise ParseError(f"invalid index for case: Connect_Confirm_Record: {response_type}")

    def _client_header(self, r: Reader) -> None:
        for _ in range(4):  # type_length, calling/called domain selectors, upward flag
            asn1_encoding(r)
        for _ in range(3):  # target, minimum, maximum parameters
            asn1_encoding(r)
        r.take(4)  # user_data_length
        r.take(r.u16())  # GCC key object
        r.take(2)  # connect_data_connect_pdu
        r.take(8)  # GCC_Client_Create_Request up to the H.221 key
        if r.take(4) != b"Duca":
            raise ParseError("GCC client H.221 key is not Duca")
        r.take(2)  # user_data_value_length
        while r.left:
            block_type, block = self._data_block(r)
            if block_type == 0xC001:
                self._ev_client_core_data(_client_core_data(block))
            elif block_type == 0xC002:
                block.take(8)  # encryption methods (rdp_client_security_data: no log effect)
            elif block_type == 0xC003:
                self._client_network_data(block)
            elif block_type == 0xC004:
                block.take(8)  # cluster flags, redirected session id (no log effect)

    def _client_network_data(self, r: Reader) -> None:
        count = _le(r, 4)
        _enforce(count <= MAX_CHANNELS, "Client_Network_Data:channel_count")
        names = []
        for _ in range(count):
            names.append(r.take(8))
            r.take(4)  # options
        if names:
            self._ev_client_network_data(names)

    def _server_header(self, r: Reader) -> None:
        r.take(3)  # type_length
        asn1_encoding(r)  # connect_response_result
        asn1_encoding(r)  # connect_response_called_id
        asn1_encoding(r)  # domain parameters
        r.take(4)  # user_data_length
        r.take(r.u16())  # GCC key object
        r.u8()  # connect_data_connect_pdu
        r.take(5)  # extension bit, node id, tag length, tag
        result = r.u8()
        r.take(3)  # number_user_data_sets, user_data_value_present, h221 length
        if r.take(4) != b"McDn":
            raise ParseError("GCC server H.221 key is not McDn")
        r.take(2)  # user_data_value_length
        self._confirm()
        self._ev_gcc_server_create_response(result)
        while r.left:
            block_type, block = self._data_block(r)
            if block_type == 0x0C01:
                header_length = block.left + 4  # Server_Core_Data(h): h.length
                block.take(4)  # version
                if header_length != 8:
                    _le(block, 4)  # client_requested_protocols
            elif block_type == 0x0C02:
                self._server_security_data(block)
            elif block_type == 0x0C03:
                block.take(4)  # MCS channel id, channel count

    def _data_block(self, r: Reader) -> tuple[int, Reader]:
        block_type = _le(r, 2)
        length = _le(r, 2)
        return block_type, r.sub(length - 4)

    def _server_security_data(self, r: Reader) -> None:
        method, level = _le(r, 4), _le(r, 4)
        random_length = _le(r, 4)
        _enforce(
            (level == 0 and method == 0 and random_length == 0) or random_length == 0x20,
            "Server_Security_Data:server_random_length",
        )
        cert_length = _le(r, 4)
        r.take(random_length)
        self._server_certificate(r.sub(cert_length))
        if method > 0 and level > 0:  # enc, a &let before the block's event
            self._go_encrypted(0)
        self._confirm()
        self._ev_server_security(method, level)

    def _server_certificate(self, r: Reader) -> None:
        version = _le(r, 4)
        cert_type = version & 0x7FFFFFFF
        if cert_type == SECURITY_DATA_CERT_RSA:
            r.take(8)  # signature and key algorithms
            r.take(2)  # public key blob type
            blob = r.sub(_le(r, 2))
            blob.take(4)  # magic
            key_length = _le(blob, 4)
            _enforce(key_length <= MAX_DATA_LENGTH, "Public_Key_Blob:key_length")
            blob.take(8)  # bit length, public exponent
            blob.take(key_length)  # modulus
            r.take(2)  # signature blob type
            r.take(_le(r, 2))
        elif cert_type == SECURITY_DATA_CERT_X509:
            count = _le(r, 4)
            _enforce(count <= MAX_CERTS, "X509:num_of_certs")
            for _ in range(count):
                length = _le(r, 4)
                _enforce(length <= MAX_DATA_LENGTH, "X509_Cert_Data:cert_len")
                self._x509_cert(r.take(length))
        else:
            raise ParseError(f"invalid index for case: Server_Certificate: {cert_type}")
        self._ev_server_certificate(cert_type, (version & 0x80000000) == 0)

    def _x509_cert(self, der: bytes) -> None:
        """proc_x509_cert_data: each certificate a file of the RDP analyzer (server side)."""
        analyze_certificate(self.ctx, der, self.ts, is_orig=False, host_cert=True, source="RDP")
        self._ev_file_over_new_connection()

    def _go_encrypted(self, method: int) -> None:
        self.encrypted = True
        self.encryption_method = method
        self._ev_begin_encryption(method)

    def _confirm(self) -> None:
        """AnalyzerConfirmation (once): the service, and analyzer_confirmation_info's session."""
        if not self.confirmed:
            self.confirmed = True
            self.ctx.confirm("rdp")
            self._session()

    def _violation(self, reason: str) -> None:
        """analyzer_violation_info: the script logs what it has at once; DPD removes us."""
        if self.info is not None:
            self._write_log()
        self.ctx.violation(reason)

    # -- script layer (base/protocols/rdp/main.zeek) ----------------------------------------
    def _session(self) -> RdpInfo:
        if self.info is None:
            self.info = RdpInfo(ts=self.ts)
            if self._add_timer is not None:
                self._add_timer(self.ts + RDP_CHECK_INTERVAL, self._check_record)
        return self.info

    def _check_record(self, now: float) -> None:
        info = self.info
        if info is None or info.done:
            return
        if now - info.ts > RDP_CHECK_INTERVAL:
            self._write_log()
        elif self._add_timer is not None:
            self._add_timer(now + RDP_CHECK_INTERVAL, self._check_record)

    def _ev_connect_request(self, cookie: bytes) -> None:
        self._session().cookie = text(cookie)

    def _ev_negotiation_response(self, security_protocol: int) -> None:
        self._session().security_protocol = lookup("SECURITY_PROTOCOLS", security_protocol)

    def _ev_negotiation_failure(self, failure_code: int) -> None:
        self._session().result = lookup("FAILURE_CODES", failure_code)

    def _ev_client_core_data(self, data: ClientCoreData) -> None:
        self._confirm()
        info = self._session()
        info.keyboard_layout = keyboard_layout_name(data.keyboard_layout)
        info.client_build = lookup("BUILDS", data.client_build)
        info.client_name = text(data.client_name)
        info.client_dig_product_id = text(data.dig_product_id)
        info.desktop_width = data.desktop_width
        info.desktop_height = data.desktop_height
        if data.want_32bpp_session:
            info.requested_color_depth = "32bit"
        else:
            info.requested_color_depth = lookup("HIGH_COLOR_DEPTHS", data.high_color_depth)

    def _ev_client_network_data(self, names: list[bytes]) -> None:
        info = self._session()
        channels = info.client_channels if info.client_channels is not None else []
        for i, name in enumerate(names):
            value = text(name.rstrip(b"\0"))
            if i < len(channels):
                channels[i] = value
            else:
                channels.append(value)
        info.client_channels = channels
        if len(names) > CHANNELS_WEIRD_OVER:  # Reporter::conn_weird: no source
            self.ctx.weird("RDP_channels_requested_exceeds_max", str(len(names)), source="")  # type: ignore[call-arg]

    def _ev_gcc_server_create_response(self, result: int) -> None:
        self._session().result = lookup("RESULTS", result)

    def _ev_server_security(self, method: int, level: int) -> None:
        info = self._session()
        info.encryption_method = lookup("ENCRYPTION_METHODS", method)
        info.encryption_level = lookup("ENCRYPTION_LEVELS", level)

    def _ev_server_certificate(self, cert_type: int, permanently_issued: bool) -> None:
        info = self._session()
        info.cert_type = lookup("CERT_TYPES", cert_type)
        if info.cert_type == "RSA":  # no file for proprietary certificates: counted here
            info.cert_count += 1
        info.cert_permanent = permanently_issued

    def _ev_file_over_new_connection(self) -> None:
        if self.info is not None:  # c?$rdp: a certificate before any RDP event is not counted
            self.info.cert_count += 1

    def _ev_begin_encryption(self, security_protocol: int) -> None:
        info = self._session()
        if info.result is None:
            info.result = "encrypted"
        info.security_protocol = lookup("SECURITY_PROTOCOLS", security_protocol)

    def _write_log(self) -> None:
        info = self.info
        if info is None or info.done:
            return
        info.done = True
        if info.cookie is None and info.keyboard_layout is None and info.result is None:
            return
        self.ctx.emit("rdp", self.record(info))

    def record(self, info: RdpInfo) -> Record:
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "cookie": info.cookie,
            "result": info.result,
            "security_protocol": info.security_protocol,
            "client_channels": info.client_channels,
            "keyboard_layout": info.keyboard_layout,
            "client_build": info.client_build,
            "client_name": info.client_name,
            "client_dig_product_id": info.client_dig_product_id,
            "desktop_width": info.desktop_width,
            "desktop_height": info.desktop_height,
            "requested_color_depth": info.requested_color_depth,
            "cert_type": info.cert_type,
            "cert_count": info.cert_count,
            "cert_permanent": info.cert_permanent,
            "encryption_level": info.encryption_level,
            "encryption_method": info.encryption_method,
        }


# ----------------------------------------------------------------------------- DPD

# dpd_rdp_client /.*(Cookie: mstshash=|Duca.*(rdpdr|rdpsnd|drdynvc|cliprdr))/ and
# dpd_rdp_server /(.{5}\xd0|.*McDn)/, matched with finds instead of backtracking.
_DPD_CHANNELS = (b"rdpdr", b"rdpsnd", b"drdynvc", b"cliprdr")


def sniff_rdp(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_rdp_client signature, which requires dpd_rdp_server on the other side."""
    if not (resp[5:6] == b"\xd0" or b"McDn" in resp):
        return False
    if b"Cookie: mstshash=" in orig:
        return True
    duca = orig.find(b"Duca")  # the first one leaves the most room for a channel after it
    return duca >= 0 and any(orig.find(name, duca + 4) >= 0 for name in _DPD_CHANNELS)


SPEC = register(
    AnalyzerSpec(
        name="rdp",
        transports=frozenset({"tcp"}),
        ports=RDP_PORTS,
        factory=RdpAnalyzer,
        sniff=sniff_rdp,
    )
)
