"""NTLMSSP messages -> ntlm.log, as Zeek's NTLM analyzer (``ntlm-protocol.pac``, ``NTLM.cc``)
and ``base/protocols/ntlm/main.zeek``.

NTLM has no port of its own: carriers (SMB session setups, raw or inside SPNEGO) hand each
token to :class:`NtlmSession`, which parses it the way binpac does and keeps the
connection's ntlm.log record. :func:`parse_ntlm` follows binpac's layout, not the
specification: strings are cut from the payload at their offsets (an offset before the
payload reads from its start), every string goes through the UTF-16 conversion whatever the
Unicode flag says, AV pairs take the size of their type rather than their length field, an
unknown AV pair id is an error, and a target info that ends before its terminator is a
violation ("NTLM AV Pair loop underflow") though the message still counts as parsed.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from wirestream.processors.engine.api import AnalyzerContext, Record
from wirestream.processors.engine.protocols.bytereader import ParseError
from wirestream.processors.engine.protocols.smb2 import utf16_text
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3
TOKEN_HEADER = 12  # signature (8) + message type (4): where each message's offsets count from
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_TARGET_INFO = 0x00800000
OEM_WORKSTATION_SUPPLIED = 0x00002000
OEM_DOMAIN_SUPPLIED = 0x00001000
REQUEST_TARGET = 0x00000004
VERSION_SIZE = 8
_STRING_FIELDS = struct.Struct("<HHI")
# AV pair ids whose value is a string; the others have fixed sizes (NTLM_AV_Pair's cases)
_AV_STRINGS = {1: "nb_computer_name", 2: "nb_domain_name", 3: "dns_computer_name",
               4: "dns_domain_name", 5: "dns_tree_name", 9: "target_name"}  # fmt: skip
_AV_FIXED = {6: 4, 7: 8, 10: 2}  # av_flags uint32, timestamp uint64, channel_bindings uint16


@dataclass
class NtlmMessage:
    """What the NTLM events carry to the scripts (the fields ntlm.log can use)."""

    msg_type: int
    flags: int = 0
    domain_name: bytes | None = None
    user_name: bytes | None = None
    workstation: bytes | None = None
    target_info: dict[str, bytes] | None = None
    av_underflow: bool = False  # the target info ended before its terminating AV pair


def _fields(data: bytes, pos: int) -> tuple[int, int]:
    """NTLM_StringData at ``pos``: (length, offset)."""
    if pos + 8 > len(data):
        raise ParseError("NTLM string fields past the end of the message")
    length, _max, offset = _STRING_FIELDS.unpack_from(data, pos)
    return length, offset


def _string(payload: bytes, fields: tuple[int, int], absolute: int) -> bytes:
    """NTLM_String withinput payload: ``padding to offset - absolute`` then ``length`` bytes."""
    length, offset = fields
    start = max(offset - absolute, 0)
    if start + length > len(payload):
        raise ParseError(f"NTLM string of {length} bytes at {start} past the payload")
    return utf16_text(payload[start : start + length])


def _version(payload: bytes) -> None:
    if len(payload) < VERSION_SIZE:
        raise ParseError("NTLM version past the payload")


def _av_pairs(payload: bytes, start: int) -> tuple[dict[str, bytes], bool]:
    """NTLM_AV_Pair_Sequence: pairs until the end-of-list id (or the end of the data)."""
    pos = start if start >= 0 else 0
    pairs: dict[str, bytes] = {}
    while pos < len(payload):
        if pos + 4 > len(payload):
            raise ParseError("NTLM AV pair header past the payload")
        av_id, length = struct.unpack_from("<HH", payload, pos)
        pos += 4
        if av_id == 0:
            return pairs, False
        if av_id in _AV_STRINGS:
            size = length
        elif av_id in _AV_FIXED:
            size = _AV_FIXED[av_id]
        elif av_id == 8:  # NTLM_Single_Host: size, 4 pad, data_present, [custom 4], machine id
            if pos + 12 > len(payload):
                raise ParseError("NTLM single host past the payload")
            present = struct.unpack_from("<I", payload, pos + 8)[0]
            size = 16 + (4 if present & 1 else 0)
        else:
            raise ParseError(f"NTLM AV pair id {av_id}")
        if pos + size > len(payload):
            raise ParseError(f"NTLM AV pair {av_id} past the payload")
        if av_id in _AV_STRINGS:
            pairs[_AV_STRINGS[av_id]] = utf16_text(payload[pos : pos + size])  # the last wins
        pos += size
    return pairs, True


def parse_ntlm(data: bytes) -> NtlmMessage | None:
    """One NTLM_SSP_Token; None for message types Zeek takes whole (no event)."""
    if len(data) < TOKEN_HEADER:
        raise ParseError("NTLM token shorter than its header")
    msg_type = struct.unpack_from("<I", data, 8)[0]
    if msg_type == NEGOTIATE:
        return _negotiate(data)
    if msg_type == CHALLENGE:
        return _challenge(data)
    if msg_type == AUTHENTICATE:
        return _authenticate(data)
    return None


def _flags(data: bytes, pos: int) -> int:
    if pos + 4 > len(data):
        raise ParseError("NTLM flags past the end of the message")
    return struct.unpack_from("<I", data, pos)[0]


def _negotiate(data: bytes) -> NtlmMessage:
    flags = _flags(data, 12)
    domain, workstation = _fields(data, 16), _fields(data, 24)
    absolute = 32
    payload = data[absolute:]
    msg = NtlmMessage(NEGOTIATE, flags)
    if flags & NEGOTIATE_VERSION and absolute < min(domain[1], workstation[1]):
        _version(payload)
    if flags & OEM_DOMAIN_SUPPLIED:
        msg.domain_name = _string(payload, domain, absolute)
    if flags & OEM_WORKSTATION_SUPPLIED:
        msg.workstation = _string(payload, workstation, absolute)
    return msg


def _challenge(data: bytes) -> NtlmMessage:
    target_name = _fields(data, 12)
    flags = _flags(data, 20)
    if len(data) < 24 + 8 + 8:
        raise ParseError("NTLM challenge past the end of the message")
    target_info = _fields(data, 40)
    absolute = 48
    payload = data[absolute:]
    msg = NtlmMessage(CHALLENGE, flags)
    if flags & NEGOTIATE_VERSION and absolute < min(target_name[1], target_info[1]):
        _version(payload)
    if flags & REQUEST_TARGET:
        _string(payload, target_name, absolute)
    if flags & NEGOTIATE_TARGET_INFO:
        # the sequence's start is a uint16 parameter: a target before the payload wraps around
        start = (target_info[1] - absolute) & 0xFFFF
        pairs, ended_early = _av_pairs(payload, start)
        msg.target_info = pairs
        msg.av_underflow = ended_early and target_info[0] != 0
    return msg


def _authenticate(data: bytes) -> NtlmMessage:
    _lm, nt, domain, user, workstation, key = (_fields(data, 12 + 8 * i) for i in range(6))
    flags = _flags(data, 60)
    absolute = 64
    payload = data[absolute:]
    msg = NtlmMessage(AUTHENTICATE, flags)
    first = min(domain[1], user[1], workstation[1], key[1])
    if flags & NEGOTIATE_VERSION and absolute < first:
        _version(payload)
    if nt[0] > 0:
        _string(payload, nt, absolute)
    if domain[0] > 0:
        msg.domain_name = _string(payload, domain, absolute)
    if user[0] > 0:
        msg.user_name = _string(payload, user, absolute)
    if workstation[0] > 0:
        msg.workstation = _string(payload, workstation, absolute)
    if key[0] > 0:
        _string(payload, key, absolute)
    return msg


class NtlmSession:
    """Zeek's NTLM analyzer on one connection plus ``base/protocols/ntlm``: confirms ``ntlm``
    on each token that parses and keeps the ntlm.log record, written at the first GSSAPI
    negotiation result that settles success, else when the connection ends."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.info: Record | None = None
        self.done = False

    def token(self, data: bytes, ts: float) -> None:
        """``NTLM_Analyzer::DeliverStream``: parse, raise the events, confirm (violations are
        ignored by DPD for NTLM, so they only go to the debug log)."""
        try:
            msg = parse_ntlm(data)
        except ParseError as exc:
            log.debug("%s: NTLM violation (ignored by DPD): %s", self.ctx.uid, exc)
            return
        if msg is not None:
            if msg.av_underflow:
                log.debug(
                    "%s: NTLM violation (ignored by DPD): AV pair loop underflow", self.ctx.uid
                )
            self._event(msg, ts)
        self.ctx.confirm("ntlm")

    def _session(self, ts: float) -> Record:
        if self.info is None:
            self.info = {"ts": ts, "uid": self.ctx.uid, **self.ctx.conn_id.columns()}
        return self.info

    def _event(self, msg: NtlmMessage, ts: float) -> None:
        info = self._session(ts)
        if msg.msg_type == CHALLENGE and msg.target_info is not None:
            ti = msg.target_info
            for column, key in (
                ("server_nb_computer_name", "nb_computer_name"),
                ("server_dns_computer_name", "dns_computer_name"),
                ("server_tree_name", "dns_tree_name"),
            ):
                if key in ti:
                    info[column] = text(ti[key])
        elif msg.msg_type == AUTHENTICATE:
            for column, value in (
                ("domainname", msg.domain_name),
                ("hostname", msg.workstation),
                ("username", msg.user_name),
            ):
                if value is not None:
                    info[column] = text(value)

    def neg_result(self, state: int) -> None:
        """``gssapi_neg_result``: accept-completed (0) or reject (2) settles ``success``."""
        info = self.info
        if info is None:
            return
        if state != 1:
            info["success"] = state == 0
        if not self.done and info.get("success") is not None:
            self.ctx.emit("ntlm", self._row(info))
            self.done = True

    def finish(self) -> None:
        """The connection's removal hook: a record not yet written is written now."""
        if self.info is not None and not self.done:
            self.ctx.emit("ntlm", self._row(self.info))
            self.done = True

    @staticmethod
    def _row(info: Record) -> Record:
        columns = ("username", "hostname", "domainname", "server_nb_computer_name",
                   "server_dns_computer_name", "server_tree_name", "success")  # fmt: skip
        return {**info, **{c: info.get(c) for c in columns}}
