"""NTP (UDP 123) -> ntp.log, ntp_control.log, ntp_private.log, as Zeek's NTP analyzer and scripts.

:func:`parse_ntp` decodes one datagram the way Zeek's ``ntp-protocol.pac`` does (modes 1-5
standard messages with RFC 5906 extension fields and MACs, mode 6 control, mode 7 private;
anything short is a parse error). :class:`NtpAnalyzer` does what ``ntp-analyzer.pac`` and
``base/protocols/ntp/main.zeek`` do with it: confirm, flip the connection when a server
message comes from the originator (or a client message from the responder), and write the
record of each kind the connection holds, after every message.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

PORTS = frozenset({123})  # NTP::ports
EPOCH_OFFSET = -2208988800  # NTP counts from 1900, Unix from 1970
CLIENT, SERVER = 3, 4
_STD = struct.Struct("!BbbhhhH4sIIIIIIII")  # stratum .. transmit_ts (47 bytes after byte 0)
_CONTROL = struct.Struct("!BHHHHH")
_MODE7 = struct.Struct("!BBBH")
_EXT_HEAD = struct.Struct(
    "!BBHHIII"
)  # first byte, type, len, assoc id, timestamp, filestamp, value_len


class NtpParseError(ValueError):
    """The datagram does not parse as NTP (Zeek's binpac exception -> analyzer violation)."""


@dataclass
class NtpMessage:
    """Zeek's ``NTP::Message``: version, mode and the record of that mode (the rest unset)."""

    version: int
    mode: int
    std: Record | None = None
    control: Record | None = None
    mode7: Record | None = None


def short_time(seconds: int, fractions: int) -> float:
    """NTP short format as Zeek reads it (both halves signed 16-bit)."""
    if seconds == 0 and fractions == 0:
        return 0.0
    return seconds + fractions * 2.0**-16


def timestamp(seconds: int, fractions: int) -> float:
    """NTP 64-bit timestamp to Unix time; all-zero stays 0 (Zeek's proc_ntp_timestamp)."""
    if seconds == 0 and fractions == 0:
        return 0.0
    return EPOCH_OFFSET + seconds + fractions * 2.0**-32


def _need(data: bytes, end: int) -> None:
    if len(data) < end:
        raise NtpParseError(f"need {end} bytes, have {len(data)}")


def _extensions(data: bytes, pos: int) -> tuple[int, int]:
    """RFC 5906 extension fields while more than 24 bytes remain: (count, position after)."""
    count = 0
    while True:
        start = pos
        _need(data, pos + _EXT_HEAD.size)
        _b, _t, length, _a, _ts, _fs, value_len = _EXT_HEAD.unpack_from(data, pos)
        if length < 16 or length < 18 or value_len > length - 18:
            raise NtpParseError("bad extension field length")
        pos += _EXT_HEAD.size + value_len
        _need(data, pos + 4)
        if length < 22 or value_len > length - 22:
            raise NtpParseError("bad extension field signature length")
        (sig_len,) = struct.unpack_from("!I", data, pos)
        pos += 4 + sig_len
        if pos - start > length:
            raise NtpParseError("extension field longer than its length")
        pos = start + length
        _need(data, pos)
        count += 1
        if len(data) - pos <= 24:
            return count, pos


def _std_msg(data: bytes) -> Record:
    _need(data, 1 + _STD.size)
    (stratum, poll, precision, rd_s, rd_f, rdisp_s, rdisp_f, ref_id, *ts) = _STD.unpack_from(
        data, 1
    )
    rd_f, rdisp_f = _signed16(rd_f), _signed16(rdisp_f)
    msg: Record = {
        "stratum": stratum,
        "poll": 2.0**poll,
        "precision": 2.0**precision,
        "root_delay": short_time(rd_s, rd_f),
        "root_disp": short_time(rdisp_s, rdisp_f),
        "ref_time": timestamp(ts[0], ts[1]),
        "org_time": timestamp(ts[2], ts[3]),
        "rec_time": timestamp(ts[4], ts[5]),
        "xmt_time": timestamp(ts[6], ts[7]),
        "num_exts": None,
    }
    # Stratum 0 carries a kiss code, 1 a reference clock name, the rest a server address.
    msg["ref_id"] = text(ref_id) if stratum <= 1 else str(ipaddress.IPv4Address(ref_id))
    pos = 1 + _STD.size
    if len(data) - pos > 24:
        msg["num_exts"], pos = _extensions(data, pos)
    mac_len = len(data) - pos
    if mac_len in (20, 24):
        msg["key_id"] = struct.unpack_from("!I", data, pos)[0]
        msg["digest"] = text(data[pos + 4 : pos + mac_len])
    return msg


def _signed16(value: int) -> int:
    return value - 0x10000 if value & 0x8000 else value


def _control_msg(data: bytes) -> Record:
    _need(data, 1 + _CONTROL.size)
    second, sequence, status, assoc, _offs, count = _CONTROL.unpack_from(data, 1)
    pos = 1 + _CONTROL.size
    _need(data, pos + count)
    msg: Record = {
        "op_code": second & 0x1F,
        "resp_bit": bool(second & 0x80),
        "err_bit": bool(second & 0x40),
        "more_bit": bool(second & 0x20),
        "sequence": sequence,
        "status": status,
        "association_id": assoc,
        "data": text(data[pos : pos + count]) if count > 0 else None,
        "key_id": None,
        "crypto_checksum": None,
    }
    pos += count
    if len(data) - pos == 12:
        msg["key_id"] = struct.unpack_from("!I", data, pos)[0]
        msg["crypto_checksum"] = text(data[pos + 4 : pos + 12])
    return msg


def _mode7_msg(data: bytes) -> Record:
    _need(data, 1 + _MODE7.size)
    second, implementation, req_code, err_and_len = _MODE7.unpack_from(data, 1)
    data_len = err_and_len & 0x0FFF
    pos = 1 + _MODE7.size
    _need(data, pos + data_len)
    auth = bool(second & 0x80)
    if auth:
        _need(data, pos + data_len + 20)
    return {
        "req_code": req_code,
        "auth_bit": auth,
        "sequence": second & 0x7F,
        "implementation": implementation,
        "err": (err_and_len & 0xF000) >> 12,
        "data": text(data[pos : pos + data_len]) if data_len > 0 else None,
    }


def parse_ntp(data: bytes) -> NtpMessage:
    """One NTP datagram as Zeek's NTP_PDU; raises :class:`NtpParseError` where binpac throws."""
    _need(data, 1)
    first = data[0]
    msg = NtpMessage(version=(first & 0x38) >> 3, mode=first & 0x07)
    if 1 <= msg.mode <= 5:
        msg.std = _std_msg(data)
    elif msg.mode == 6:
        msg.control = _control_msg(data)
    elif msg.mode == 7:
        msg.mode7 = _mode7_msg(data)
    return msg


class NtpAnalyzer:
    """One UDP connection's NTP analyzer plus the ntp scripts."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.flipped = {True: False, False: False}  # binpac's flipped_, one per flow
        self.last: dict[str, Record] = {}  # c$ntp, c$ntp_control, c$ntp_private

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        try:
            msg = parse_ntp(data)
        except NtpParseError as exc:
            self.ctx.violation(f"Binpac exception: {exc}")
            return
        self.ctx.confirm("ntp")
        wrong_way = (msg.mode == SERVER and is_orig) or (msg.mode == CLIENT and not is_orig)
        if wrong_way and not self.flipped[is_orig]:
            flip = getattr(self.ctx, "flip_roles", None)
            if flip is None:
                raise TypeError("NTP needs AnalyzerContext.flip_roles (Zeek flips on direction)")
            flip()
            self.flipped[is_orig] = True
        self._message(msg, ts)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """UDP has no gaps."""

    def end(self, ts: float) -> None:
        """Every record was written with its message."""

    def _message(self, msg: NtpMessage, ts: float) -> None:
        """ntp_message in main.zeek: set the record of this mode, then write every one held."""
        head: Record = {"ts": ts, "uid": self.ctx.uid, **self.ctx.conn_id.columns()}
        head["version"], head["mode"] = msg.version, msg.mode
        if msg.std is not None:
            self.last["ntp"] = ntp_record(head, msg.std)
        if msg.control is not None:
            self.last["ntp_control"] = {**head, **msg.control}
        if msg.mode7 is not None:
            self.last["ntp_private"] = {**head, **msg.mode7}
        for name in ("ntp", "ntp_control", "ntp_private"):
            rec = self.last.get(name)
            if rec is not None:
                self.ctx.emit(name, dict(rec))


def ntp_record(head: Record, std: Record) -> Record:
    """The ntp.log columns of a standard (mode 1-5) message."""
    return {
        **head,
        "stratum": std["stratum"],
        "poll": std["poll"],
        "precision": std["precision"],
        "root_delay": std["root_delay"],
        "root_disp": std["root_disp"],
        "ref_id": std["ref_id"],
        "ref_time": std["ref_time"],
        "org_time": std["org_time"],
        "rec_time": std["rec_time"],
        "xmt_time": std["xmt_time"],
        "num_exts": std["num_exts"] or 0,
    }


SPEC = register(
    AnalyzerSpec(
        name="ntp",
        transports=frozenset({"udp"}),
        ports=PORTS,
        factory=NtpAnalyzer,
    )
)
