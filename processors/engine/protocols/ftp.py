"""FTP -> ftp.log, FTP data channels -> files, as Zeek's FTP analyzers and ``base/protocols/ftp``.

Three layers, mirroring Zeek so that odd traffic ends up logged the same way:

* :class:`NvtLines` is Zeek's NVT support analyzer: telnet option sequences removed, lines
  cut at LF (a CR before it dropped), the first NUL flagged;
* :class:`FtpAnalyzer` is Zeek's FTP_Analyzer (commands, multi-line replies, ``AUTH TLS``
  handing the stream to the SSL analyzer, ``AUTH GSSAPI`` with GSI's base64 ADAT tokens fed
  to it) plus the scripts: commands matched to replies, the working directory, file URLs,
  what is logged when (``main.zeek``, ``utils-commands.zeek``, ``gridftp.zeek``), and the
  data channels PORT/EPRT/PASV/EPSV announce, which the engine is told to expect;
* :class:`FtpDataAnalyzer` is FTP_DATA: an expected connection gets the ``ftp-data`` service
  and each direction's bytes become a file (source ``FTP_DATA``) whose fuid, size and MIME
  type land on the control channel's next logged command.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import (
    AnalyzerContext,
    AnalyzerSpec,
    Record,
    register,
)
from wirestream.processors.engine.mime import sniff_mime
from wirestream.processors.engine.protocols.child import ChildContext as _ChildContext
from wirestream.processors.engine.protocols.dpd import keyword_starts_line
from wirestream.processors.engine.protocols.ssl import SslAnalyzer
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

PORTS = frozenset({21, 2811})  # FTP::ports (2811: GridFTP)
DATA_ANALYZER = "ftp_data"
DATA_CHANNEL_TIMEOUT = 300.0  # schedule_analyzer's 5 mins
EXPECTED_READ_EXPIRE = 300.0  # ftp_data_expected &read_expire=5mins
MAX_COMMAND_LENGTH = 100  # FTP::max_command_length
MAX_PENDING_COMMANDS = 20
MAX_USER_LENGTH = 128
MAX_PASSWORD_LENGTH = 128
MAX_ARG_LENGTH = 4096
MAX_REPLY_MSG_LENGTH = 4096
MAX_EXPECTED_DATA_CHANNELS = 100_000
IDENTIFY_BUFFER = 1024  # File_Analyzer::BUFFER_SIZE

LOGGED_COMMANDS = frozenset(
    {"APPE", "DELE", "RETR", "STOR", "STOU", "ACCT", "PORT", "PASV", "EPRT", "EPSV"}
)
GUEST_IDS = frozenset({"anonymous", "ftp", "ftpuser", "guest"})
FILE_CMDS = frozenset(
    {"APPE", "CWD", "DELE", "MKD", "RETR", "RMD", "RNFR", "RNTO", "STOR", "STOU", "REST", "SIZE", "MDTM"}
)  # fmt: skip
DIRECTORY_CMDS = frozenset(
    {("CWD", 250), ("CDUP", 200), ("CDUP", 250), ("PWD", 257), ("XPWD", 257)}
)
_TRANSFER_CODES = (110, 125, 150, 226, 250, 421, 425, 426, 451)
# FTP::cmd_reply_code: the replies each command may get (RFC 959 and extensions).
CMD_REPLY_CODE: dict[str, frozenset[int]] = {
    k: frozenset(v)
    for k, v in {
        "<init>": (120, 220, 421, 0),
        "<missing>": (0,),
        "USER": (230, 331, 332, 421, 530, 500, 501),
        "PASS": (230, 202, 332, 421, 530, 500, 501, 503),
        "ACCT": (230, 202, 421, 530, 500, 501, 503),
        "CWD": (250, 421, 500, 501, 502, 530, 550),
        "CDUP": (200, 250, 421, 500, 501, 502, 530, 550),
        "SMNT": (202, 250, 421, 500, 501, 502, 530, 550),
        "REIN": (120, 220, 421, 500, 502),
        "QUIT": (221, 500, 0),
        "PORT": (200, 421, 500, 501, 530),
        "PASV": (227, 421, 500, 501, 502, 530),
        "MODE": (200, 421, 500, 501, 502, 504, 530),
        "TYPE": (200, 421, 500, 501, 504, 530),
        "STRU": (200, 421, 500, 501, 504, 530),
        "ALLO": (200, 202, 421, 500, 501, 504, 530),
        "REST": (200, 350, 421, 500, 501, 502, 530),
        "STOR": (*_TRANSFER_CODES, 551, 552, 532, 450, 452, 553, 500, 501, 530, 550),
        "STOU": (*_TRANSFER_CODES, 551, 552, 532, 450, 452, 553, 500, 501, 530, 550),
        "RETR": (*_TRANSFER_CODES, 450, 500, 501, 530, 550),
        "LIST": (125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 502, 530, 550),
        "NLST": (125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 502, 530, 550),
        "APPE": (125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 550, 452, 553)
        + (500, 501, 502, 530),
        "RNFR": (350, 421, 450, 550, 500, 501, 502, 530),
        "RNTO": (250, 421, 532, 553, 500, 501, 502, 503, 530),
        "DELE": (250, 421, 450, 550, 500, 501, 502, 530),
        "RMD": (250, 421, 500, 501, 502, 530, 550),
        "MKD": (257, 421, 500, 501, 502, 530, 550),
        "PWD": (257, 421, 500, 501, 502, 550),
        "ABOR": (225, 226, 421, 500, 501, 502),
        "SYST": (215, 421, 500, 501, 502, 530),
        "STAT": (211, 212, 213, 421, 450, 500, 501, 502, 530),
        "HELP": (200, 211, 214, 421, 500, 501, 502),
        "SITE": (200, 202, 214, 500, 501, 502, 530),
        "NOOP": (200, 421, 500),
        "LPRT": (500, 501, 521),
        "FEAT": (211, 500, 502),
        "OPTS": (200, 451, 501),
        "EPSV": (229, 500, 501),
        "EPRT": (200, 500, 501, 522),
        "SIZE": (213, 500, 501, 550),
        "MDTM": (213, 500, 501, 550),
        "MLST": (150, 226, 250, 500, 501, 550),
        "MLSD": (150, 226, 250, 500, 501, 550),
        "CLNT": (200, 500),
        "MACB": (200, 500, 550),
    }.items()
}

_REPLY_LOOKS_FINAL = re.compile(r"[1-9][0-9]{2} [\x20-\x7e]{10}")
# dpd_ftp_client: /(|.*[\n\r]) *[uU][sS][eE][rR] /
_DPD_CLIENT_KEYWORDS = (b"user ",)
# dpd_ftp_server: /[\n\r ]*(120|220)[^0-9].*[\n\r] *(230|331)[^0-9]/, the part after .* searched
_DPD_SERVER_GREETING = re.compile(rb"[\n\r ]*(120|220)[^0-9]")
_DPD_SERVER_LOGIN = re.compile(rb"[\n\r] *(230|331)[^0-9]")
_ABSOLUTE_PATH = re.compile(r"(/|[A-Za-z]:[\\/]).*", re.S)
_DIR_PATTERN = re.compile(r'(/|[A-Za-z]:[\\/])([^" ]|(\\ ))*')
_NUMBER = re.compile(r"[0-9]+")

TELNET_IAC, TELNET_SB, TELNET_SE = 255, 250, 240


@dataclass(frozen=True)
class FtpConfig:
    """What Zeek's scripts let a site redef; the default is plain ``zeek -r``."""

    logged_commands: frozenset[str] = LOGGED_COMMANDS  # FTP::logged_commands
    capture_password: bool = False  # FTP::default_capture_password
    log_at_least_one_command: bool = True  # FTP::log_at_least_one_command


CONFIG_KEY = "ftp_config"


def configure(engine: Any, config: FtpConfig) -> None:
    """Use ``config`` for the FTP sessions ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


# ----------------------------------------------------------------------------- NVT lines


class NvtLines:
    """One direction of Zeek's NVT analyzer as FTP configures it (LF ends a line, NUL-sensitive)."""

    def __init__(self, weird: Any) -> None:
        self.weird = weird  # callable(name) for the once-per-connection line weirds
        self.buf = bytearray()
        self.last_char = 0
        self.flag_nuls = True
        self.iac: bytearray | None = None  # an option sequence being read (IAC seen)
        self.rest = b""  # input not yet consumed when the consumer stopped early

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Lines completed by ``data``; stop iterating to leave the rest in :attr:`rest`."""
        i, n = 0, len(data)
        while i < n:
            c = data[i]
            i += 1
            if self.iac is not None:
                self._option(c)
                continue
            if c == 0x0D:
                self.buf.append(c)
            elif c == 0x0A:
                if self.last_char == 0x0D:
                    if self.buf:
                        del self.buf[-1]
                        self.rest = data[i:]
                        yield self._take()
                else:
                    self.rest = data[i:]
                    yield self._take()
            elif c == 0:
                if self.last_char == 0x0D:
                    pass  # telnet's CR NUL
                elif self.flag_nuls:
                    self.weird("NUL_in_line")
                    self.flag_nuls = False
                else:
                    self.buf.append(c)
            elif c == TELNET_IAC:
                self.iac = bytearray()
                continue  # last_char is left as it was, as in Zeek's ScanOption
            else:
                self.buf.append(c)
            if self.last_char == 0x0D and c not in (0x0A, 0):
                self.weird("line_terminated_with_single_CR")
            self.last_char = c
        self.rest = b""

    def _take(self) -> bytes:
        line = bytes(self.buf)
        self.buf.clear()
        self.last_char = 0x0A
        return line

    def _option(self, c: int) -> None:
        """Telnet option bytes after an IAC: removed from the line (IAC IAC is a literal 0xFF)."""
        seq = self.iac
        assert seq is not None
        if not seq:
            if c == TELNET_IAC:
                self.buf.append(TELNET_IAC)
                self.last_char = c
                self.iac = None
            elif c == TELNET_SB or 251 <= c <= 254:
                seq.append(c)
            else:
                self.iac = None  # a two-byte command (NOP, IP, DM, ...)
            return
        if seq[0] != TELNET_SB:
            self.iac = None  # WILL/WONT/DO/DONT and their option code
            return
        if seq[-1:] == b"\xff" and c == TELNET_SE:
            self.iac = None
            return
        seq.append(c)

    def partial(self) -> bytes | None:
        """A last line the stream ended without terminating."""
        if not self.buf:
            return None
        return self._take()


# ----------------------------------------------------------------------------- parsing helpers


@dataclass(frozen=True)
class FtpPort:
    """Zeek's ``ftp_port``: an address and port from PORT/PASV/EPRT/EPSV, and whether valid."""

    h: str
    p: int
    valid: bool


def _zeek_addr(raw: str) -> str:
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _strtol(s: str, i: int) -> tuple[int, int]:
    """C's strtol in base 10: (value, index after the number; ``i`` if there was none)."""
    j = i
    while j < len(s) and s[j] in " \t\n\v\f\r":
        j += 1
    k = j
    if k < len(s) and s[k] in "+-":
        k += 1
    start = k
    while k < len(s) and s[k].isdigit():
        k += 1
    if k == start:
        return 0, i
    return int(s[j:k]), k


def parse_ftp_port(arg: str) -> FtpPort:
    """``h1,h2,h3,h4,p1,p2`` as Zeek's parse_ftp_port (sscanf with six ``%d``)."""
    nums: list[int] = []
    i = 0
    if len(arg) >= 11:
        for k in range(6):
            if k:
                if i >= len(arg) or arg[i] != ",":
                    break
                i += 1
            value, j = _strtol(arg, i)
            if j == i:
                break
            nums.append(value)
            i = j
    if len(nums) == 6 and all(0 <= b <= 255 for b in nums):
        return FtpPort(".".join(str(b) for b in nums[:4]), nums[4] << 8 | nums[5], True)
    return FtpPort("0.0.0.0", 0, False)


def parse_eftp(line: str | None) -> FtpPort:
    """``<d>proto<d>addr<d>port<d>`` (RFC 2428) as Zeek's parse_eftp; no address means ``::``."""
    addr, port, good = "::", 0, False
    if line is None:
        return FtpPort(addr, port, good)
    i = 0
    while i < len(line) and line[i].isspace():
        i += 1
    if i >= len(line):
        return FtpPort(addr, port, good)
    delim = line[i]
    good = True
    i += 1
    _proto, j = _strtol(line, i)
    if j >= len(line) or line[j] != delim:
        good = False
    i = j + 1 if j < len(line) else j
    if i < len(line) and line[i] != delim:
        end = line.find(delim, i)
        raw = line[i:] if end < 0 else line[i:end]
        try:
            addr = _zeek_addr(raw)
        except ValueError:
            good = False
    k = line.find(delim, i)
    if k >= 0:
        value, j = _strtol(line, k + 1)
        port = value
        if j >= len(line) or line[j] != delim:
            good = False
        if not 0 <= port <= 65535:
            port, good = 0, False
    return FtpPort(addr, port, good)


def parse_ftp_pasv(msg: str) -> FtpPort:
    """The address in a 227 reply (after ``(``, after ``PORT``, or the first digits run)."""
    if not msg:
        return parse_ftp_port("")
    if (i := msg.find("(")) >= 0:
        start = i + 1
    elif (i := msg.find("PORT")) >= 0:
        start = i + 5
    elif (i := msg.find(",")) >= 0:
        start = i
        while start > 0 and msg[start - 1].isdigit():
            start -= 1
    else:
        return parse_ftp_port("")
    if start > len(msg):
        return parse_ftp_port("")
    return parse_ftp_port(msg[start:])


def parse_ftp_epsv(msg: str) -> FtpPort:
    i = msg.find("(")
    return parse_eftp(msg[i + 1 :] if i >= 0 else None)


def normalize_path(path: str) -> str:
    """Zeek's ``compress_path`` (util::detail::normalize_path, POSIX flavour)."""
    if "/." not in path and "//" not in path:
        return path[:-1] if len(path) > 1 and path.endswith("/") else path
    out = "/" if path.startswith("/") else ""
    final: list[str] = []
    parts = path.split("/")
    for k, comp in enumerate(parts):
        if not comp or (comp == "." and k != 0):
            continue
        final.append(comp)
        if comp == ".." and len(final) > 1:
            last = final[-2]
            if last in ("/", "~", ".."):
                continue
            if last == ".":
                final[-2] = ".."
                final.pop()
            else:
                del final[-2:]
    out += "".join(c + "/" for c in final)
    if len(out) > 1 and out.endswith("/"):
        out = out[:-1]
    return out


def build_path_compressed(directory: str, file_name: str) -> str:
    if _ABSOLUTE_PATH.fullmatch(file_name) or directory == "":
        joined = file_name
    else:
        joined = directory + ("" if directory.endswith("/") else "/") + file_name
    return normalize_path(joined)


def extract_path(text_: str) -> str:
    """The first absolute path in a reply (PWD's 257 "..." message), or ""."""
    m = _DIR_PATTERN.search(text_)
    return m.group(0) if m else ""


def extract_last_count(msg: str) -> int:
    """extract_count(msg, F): the last run of digits (150's "(N bytes)")."""
    found = _NUMBER.findall(msg)
    return int(found[-1]) if found else 0


def addr_to_uri(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


# ----------------------------------------------------------------------------- script state


@dataclass
class CmdArg:
    """FTP::CmdArg: one command waiting for (or matched to) its reply."""

    ts: float
    cmd: str = "<unknown>"
    arg: str = ""
    seq: int = 0
    cwd_consumed: bool = False


@dataclass
class DataChannel:
    """FTP::ExpectedDataChannel."""

    passive: bool
    orig_h: str
    resp_h: str
    resp_p: int


@dataclass
class FtpInfo:
    """FTP::Info: one control connection's state, shared with its expected data channels."""

    ts: float
    uid: str
    conn_columns: Record
    resp_h: str
    user: str = "<unknown>"
    password: str | None = None
    command: str | None = None
    arg: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    reply_code: int | None = None
    reply_msg: str | None = None
    data_channel: DataChannel | None = None
    cwd: str = "."
    cmdarg: CmdArg | None = None
    pending: dict[int, CmdArg] = field(default_factory=dict)
    command_seq: int = 0
    passive: bool = False
    capture_password: bool = False
    logged_command_seen: bool = False
    fuid: str | None = None
    last_auth_requested: str | None = None


def build_url_ftp(info: FtpInfo) -> str:
    if info.arg is None:
        return "ftp://"
    path = build_path_compressed(info.cwd, info.arg)
    if not path.startswith("/"):
        path = "/" + path
    return f"ftp://{addr_to_uri(info.resp_h)}{path}"


def best_pending(pending: dict[int, CmdArg], code: int, msg: str) -> CmdArg | None:
    """get_pending_cmd: the waiting command this reply fits best (ties: the oldest)."""
    best: CmdArg | None = None
    best_score = -1
    for seq in sorted(pending):
        cmd = pending[seq]
        score = 0
        if code == 500 or code in CMD_REPLY_CODE.get(cmd.cmd, ()):
            score += 100
        if cmd.cmd in msg:
            score += 20
        if cmd.arg in msg:
            score += 10
        if score > best_score:
            best, best_score = cmd, score
    return best


class ExpectedChannels:
    """ftp_data_expected: (resp_h, resp_p) -> the control connection's FtpInfo, 5 min read expiry."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int], tuple[FtpInfo, float]] = {}

    def get(self, key: tuple[str, int], now: float | None) -> FtpInfo | None:
        """The entry for ``key``; a read at ``now`` keeps it alive (None: just look)."""
        entry = self.entries.get(key)
        if entry is None or now is None:
            return None if entry is None else entry[0]
        if now - entry[1] >= EXPECTED_READ_EXPIRE:
            del self.entries[key]
            return None
        self.entries[key] = (entry[0], now)
        return entry[0]

    def put(self, key: tuple[str, int], info: FtpInfo, now: float) -> None:
        self.entries[key] = (info, now)

    def expire(self, now: float) -> None:
        for key, (_info, read) in list(self.entries.items()):
            if now - read >= EXPECTED_READ_EXPIRE:
                del self.entries[key]


def expected_channels(ctx: AnalyzerContext) -> ExpectedChannels:
    """The engine-wide ftp_data_expected table (a script global in Zeek)."""
    state = getattr(ctx, "shared_state", None)
    if state is None:
        raise TypeError("FTP needs AnalyzerContext.shared_state for its data channels")
    table = state.get("ftp_data_expected")
    if table is None:
        table = state["ftp_data_expected"] = ExpectedChannels()
    return table


# ----------------------------------------------------------------------------- child SSL


class _Adat:
    """FTP_ADAT_Analyzer: GSI's ADAT exchange, base64-decoded TLS records for the SSL child."""

    def __init__(self) -> None:
        self.first_token = True
        self.done = False

    def line(self, is_orig: bool, line: bytes) -> tuple[bytes | None, bool]:
        """(decoded bytes to forward, whether the exchange is over)."""
        decoded: bytes | None = None
        done = False
        if is_orig:
            s = line.lstrip(b" \t")
            cmd = _word(s)
            if cmd == b"ADAT"[: len(cmd)]:
                decoded = _b64(s[len(cmd) :].lstrip(b" \t"))
                if self.first_token:
                    msg = decoded or b""
                    if len(msg) < 5 or msg[0] != 0x16 or len(msg) - 5 != int.from_bytes(msg[3:5]):
                        done, decoded = True, None  # not TLS: nothing to analyze
                self.first_token = False
            elif cmd == b"AUTH"[: len(cmd)]:
                done = True
        else:
            code = _reply_code(line)
            if code in (232, 234):
                done = True
            elif code in (235, 334, 335):
                done = code == 235
                rest = line[3:]
                if len(line) > 3 and rest[:1] == b"-":
                    rest = rest[1:]
                rest = rest.lstrip(b" \t")
                if rest.startswith(b"ADAT="):
                    decoded = _b64(rest[5:])
            elif code in (421, 431, 500, 501, 503, 535, 631, 632, 633):
                done = True
        return decoded, done


def _b64(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(data.strip() + b"=" * (-len(data.strip()) % 4))
    except (binascii.Error, ValueError):
        return None


def _word(s: bytes) -> bytes:
    end = 0
    while end < len(s) and s[end] not in b" \t\n\r\v\f\0":
        end += 1
    return s[:end]


def _reply_code(line: bytes) -> int:
    if len(line) >= 3 and line[:3].isdigit():
        return int(line[:3])
    return 0


def _is_ftp_cmd(cmd: bytes) -> bool:
    return len(cmd) >= 3 and all(0x21 <= c <= 0x7E for c in cmd)


# ----------------------------------------------------------------------------- FTP control


class FtpAnalyzer:
    """One FTP control connection: Zeek's FTP_Analyzer and the ftp scripts."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.flagged: set[str] = set()  # Conn::FlagEvent: these weirds once per connection
        self.nvt = {True: NvtLines(self._nvt_weird), False: NvtLines(self._nvt_weird)}
        self.confirmed = False
        self.pending_reply = 0
        self.auth_requested = ""
        self.tls_active = False
        self.ssl: SslAnalyzer | None = None
        self.ssl_ctx: _ChildContext | None = None
        self.adat: _Adat | None = None
        self.ssl_established = False
        self.info: FtpInfo | None = None
        state = getattr(ctx, "shared_state", None) or {}
        self.config: FtpConfig = state.get(CONFIG_KEY) or FtpConfig()

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.tls_active:
            self._to_ssl(is_orig, data)
            return
        nvt = self.nvt[is_orig]
        for line in nvt.feed(data):
            self._line(is_orig, line)
            if self.tls_active:
                rest = nvt.rest
                if rest:
                    self._to_ssl(is_orig, rest)
                break

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        if self.ssl is not None and not self._ssl_gone():
            self.ssl.gap(is_orig, length, ts)

    def end(self, ts: float) -> None:
        self.ts = ts
        if not self.tls_active:
            for is_orig in (True, False):
                line = self.nvt[is_orig].partial()
                if line is not None:
                    self._line(is_orig, line)
        if self.ssl is not None:
            self.ssl.end(ts)
        self._finalize()

    # -- protocol layer ---------------------------------------------------------------------
    def _nvt_weird(self, name: str) -> None:
        if name not in self.flagged:
            self.flagged.add(name)
            self.ctx.weird(name, ts=self.ts)

    def _line(self, is_orig: bool, line: bytes) -> None:
        if not line:
            return
        if is_orig:
            if not self._request(line):
                return
        elif not self._reply(line):
            return
        if not self.tls_active:
            self._forward(is_orig, line)

    def _request(self, line: bytes) -> bool:
        s = line.lstrip(b" \t")
        cmd = _word(s)
        arg = s[len(cmd) :].lstrip(b" \t")
        if not _is_ftp_cmd(cmd):
            if self.confirmed:
                self.ctx.weird("FTP_invalid_command", ts=self.ts)
            return False
        if len(cmd) > MAX_COMMAND_LENGTH:
            if self.confirmed:
                self._limit_weird("FTP_max_command_length_exceeded", len(cmd), MAX_COMMAND_LENGTH)
            return False
        command = cmd.upper().decode("ascii")
        self.confirmed = True
        self.ctx.confirm("ftp")
        if command == "AUTH"[: len(command)]:
            self.auth_requested = text(arg)
        self._ev_request(command, text(arg))
        return True

    def _reply(self, line: bytes) -> bool:
        code = _reply_code(line)
        if self.pending_reply:
            if code == self.pending_reply and len(line) > 3 and line[3:4] == b" ":
                msg = line[3:].lstrip(b" \t")
                self.pending_reply = 0
                cont = False
            else:
                msg, cont, code = line, True, 0
        else:
            cont = False
            if code == 0:
                self.ctx.violation("non-numeric reply code", line)
                return False
            if code < 100:
                self.ctx.violation("invalid reply code", line)
                return False
            if len(line) > 3 and line[3:4] == b"-":
                self.pending_reply = code
                msg = line[4:].lstrip(b" \t")
                cont = True
            elif len(line) > 3 and line[3:4] != b" ":
                self.ctx.violation("invalid reply line", line)
                return False
            else:
                msg = line[3:].lstrip(b" \t")
        if code == 234 and self.auth_requested == "TLS":
            self._start_ssl(adat=False)
            self.tls_active = True
        if code == 334 and self.auth_requested == "GSSAPI":
            self._start_ssl(adat=True)
        self._ev_reply(code, text(msg), cont)
        return True

    def _start_ssl(self, adat: bool) -> None:
        """A new SSL child (an earlier one stays in place for its log, as Zeek's script
        state would, but gets no more data)."""
        if self.ssl is not None:
            self.ssl.end(self.ts)
        self.ssl_ctx = _ChildContext(self.ctx)
        self.ssl = SslAnalyzer(self.ssl_ctx)
        self.adat = _Adat() if adat else None
        self.ssl_established = False

    def _ssl_gone(self) -> bool:
        return self.ssl_ctx is None or self.ssl_ctx.removed

    def _forward(self, is_orig: bool, line: bytes) -> None:
        """FTP forwards each line to its children: the ADAT decoder in front of SSL."""
        if self.ssl is None or self._ssl_gone() or self.adat is None or self.adat.done:
            return
        decoded, done = self.adat.line(is_orig, line)
        if decoded:
            self._to_ssl(is_orig, decoded)
        if done:
            self.adat.done = True
            if self.ssl_ctx is not None:
                self.ssl_ctx.removed = True

    def _to_ssl(self, is_orig: bool, data: bytes) -> None:
        if self.ssl is None or self._ssl_gone():
            return
        self.ssl.data(is_orig, data, self.ts)
        if not self.ssl_established and getattr(self.ssl, "established_", False):
            self.ssl_established = True
            self._ev_ssl_established()

    def _limit_weird(self, name: str, value: int, limit: int) -> None:
        reached = getattr(self.ctx, "limit_reached_weird", None)
        if reached is not None:
            reached(name, f"{value} > {limit}")
        else:
            self.ctx.weird(name, f"{value} > {limit}", ts=self.ts)

    # -- script layer (main.zeek, gridftp.zeek) ---------------------------------------------
    def _session(self) -> FtpInfo:
        if self.info is None:
            cid = self.ctx.conn_id
            info = FtpInfo(self.ts, self.ctx.uid, cid.columns(), cid.resp_h)
            info.capture_password = self.config.capture_password
            self.info = info
            info.command_seq += 1
            info.pending[info.command_seq] = CmdArg(self.ts, "<init>", "", info.command_seq)
        return self.info

    def _ev_request(self, command: str, arg: str) -> None:
        info = self.info
        if (
            info is not None
            and info.cmdarg is not None
            and info.reply_code is not None
            and info.pending.pop(info.cmdarg.seq, None) is not None
        ):
            self._message()
        info = self._session()
        if len(info.pending) < MAX_PENDING_COMMANDS:
            info.command_seq += 1
            info.pending[info.command_seq] = CmdArg(self.ts, command, arg, info.command_seq)
        else:
            self.ctx.weird("FTP_too_many_pending_commands", str(len(info.pending)), ts=self.ts)
        if command == "USER":
            if len(arg) > MAX_USER_LENGTH:
                self.ctx.weird("FTP_user_too_long", str(len(arg)), ts=self.ts)
                arg = arg[:MAX_USER_LENGTH]
            info.user = arg
        elif command == "PASS":
            if len(arg) > MAX_PASSWORD_LENGTH:
                self.ctx.weird("FTP_password_too_long", str(len(arg)), ts=self.ts)
                arg = arg[:MAX_PASSWORD_LENGTH]
            info.password = arg
        elif command in ("PORT", "EPRT"):
            port = parse_ftp_port(arg) if command == "PORT" else parse_eftp(arg)
            if port.valid:
                resp_h = self.ctx.conn_id.resp_h
                self._expect(info, DataChannel(False, resp_h, port.h, port.p))
        if command == "AUTH":  # gridftp.zeek
            info.last_auth_requested = arg

    def _ev_reply(self, code: int, msg: str, cont: bool) -> None:
        info = self._session()
        if cont and code == 0 and info.reply_code is not None and not _REPLY_LOOKS_FINAL.match(msg):
            return
        cmdarg = best_pending(info.pending, code, msg)
        if cmdarg is None:
            return  # Zeek's handler stops on the unset result
        info.cmdarg, info.reply_code, info.reply_msg = cmdarg, code, msg
        if cont:
            return
        if (code == 150 and cmdarg.cmd == "RETR") or (code == 213 and cmdarg.cmd == "SIZE"):
            info.file_size = extract_last_count(msg)
        elif code in (227, 229) and cmdarg.cmd in ("PASV", "EPSV"):
            port = parse_ftp_pasv(msg) if code == 227 else parse_ftp_epsv(msg)
            if port.valid:
                info.passive = True
                h = port.h
                if code == 229 and h == "::":
                    h = self.ctx.conn_id.resp_h
                self._expect(info, DataChannel(True, self.ctx.conn_id.orig_h, h, port.p))
        if (cmdarg.cmd, code) in DIRECTORY_CMDS and not cmdarg.cwd_consumed:
            cmdarg.cwd_consumed = True
            if cmdarg.cmd == "CWD":
                info.cwd = build_path_compressed(info.cwd, cmdarg.arg)
            elif cmdarg.cmd == "CDUP":
                info.cwd = build_path_compressed(info.cwd, "/..")
            else:
                info.cwd = extract_path(msg)
        if len(info.pending) > 1:
            info.pending.pop(cmdarg.seq, None)
            self._message()

    def _expect(self, info: FtpInfo, chan: DataChannel) -> None:
        """add_expected_data_channel: remember the channel and tell the engine to expect it."""
        table = expected_channels(self.ctx)
        key = (chan.resp_h, chan.resp_p)
        table.expire(self.ts)
        if key not in table.entries and len(table.entries) >= MAX_EXPECTED_DATA_CHANNELS:
            self.ctx.weird(
                "FTP_too_many_expected_data_channels", str(len(table.entries)), ts=self.ts
            )
            return
        info.passive = chan.passive
        info.data_channel = chan
        table.put(key, info, self.ts)
        expect = getattr(self.ctx, "expect_connection", None)
        if expect is None:
            raise TypeError("FTP needs AnalyzerContext.expect_connection for its data channels")
        expect(chan.orig_h, chan.resp_h, chan.resp_p, DATA_ANALYZER, DATA_CHANNEL_TIMEOUT)

    def _ev_ssl_established(self) -> None:
        info = self.info
        if info is not None and info.last_auth_requested and "GSSAPI" in info.last_auth_requested:
            self.ctx.confirm("gridftp")

    def _message(self) -> None:
        """ftp_message: write the command/reply pair if its command is logged, then clear the
        per-transfer fields."""
        info = self.info
        if info is None or info.cmdarg is None:
            return
        info.ts = info.cmdarg.ts
        info.command = info.cmdarg.cmd
        info.arg = info.cmdarg.arg
        if info.command in FILE_CMDS:
            info.arg = build_url_ftp(info)
        if len(info.arg) > MAX_ARG_LENGTH:
            self.ctx.weird("FTP_arg_too_long", str(len(info.arg)), ts=self.ts)
            info.arg = info.arg[:MAX_ARG_LENGTH]
        if info.reply_msg is not None and len(info.reply_msg) > MAX_REPLY_MSG_LENGTH:
            self.ctx.weird("FTP_reply_msg_too_long", str(len(info.reply_msg)), ts=self.ts)
            info.reply_msg = info.reply_msg[:MAX_REPLY_MSG_LENGTH]
        hide = not info.capture_password and info.user.lower() not in GUEST_IDS
        if info.command == "PASS" and hide:
            info.arg = "<hidden>"
        if info.arg == "":
            info.arg = None
        if info.password is not None and hide:
            info.password = "<hidden>"
        if info.command in self.config.logged_commands:
            self.ctx.emit("ftp", self.record(info))
            info.logged_command_seen = True
        info.mime_type = info.file_size = info.data_channel = info.fuid = None

    def _finalize(self) -> None:
        """finalize_ftp: commands still waiting are written as they are; a session with no
        logged command gets one summary row."""
        info = self.info
        if info is None:
            return
        for seq in sorted(info.pending):
            info.cmdarg = info.pending[seq]
            self._message()
        if not info.logged_command_seen and self.config.log_at_least_one_command:
            self.ctx.emit("ftp", self.record(info))

    def record(self, info: FtpInfo) -> Record:
        chan = info.data_channel
        return {
            "ts": info.ts,
            "uid": info.uid,
            **info.conn_columns,
            "user": info.user,
            "password": info.password,
            "command": info.command,
            "arg": info.arg,
            "mime_type": info.mime_type,
            "file_size": info.file_size,
            "reply_code": info.reply_code,
            "reply_msg": info.reply_msg,
            "data_channel.passive": chan.passive if chan else None,
            "data_channel.orig_h": chan.orig_h if chan else None,
            "data_channel.resp_h": chan.resp_h if chan else None,
            "data_channel.resp_p": chan.resp_p if chan else None,
            "fuid": info.fuid,
        }


# ----------------------------------------------------------------------------- FTP data


class FtpDataAnalyzer:
    """An expected data connection (Zeek's FTP_Data file analyzer plus files.zeek)."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.table = expected_channels(ctx)
        cid = ctx.conn_id
        self.key = (cid.resp_h, cid.resp_p)
        self.files: dict[bool, Any] = {}
        self.buffer = bytearray()
        self.identified = False
        self.ts: float | None = None
        if self._info() is not None:  # scheduled_analyzer_applied
            ctx.confirm("ftp-data")

    def _info(self) -> FtpInfo | None:
        return self.table.get(self.key, self.ts)

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if not self.identified:
            self.buffer += data[: IDENTIFY_BUFFER - len(self.buffer)]
            if len(self.buffer) >= IDENTIFY_BUFFER:
                self._identify()
        f = self._file(is_orig, ts)
        if f is not None:
            f.data(data, ts)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        f = self._file(is_orig, ts)
        if f is not None:
            f.gap(length, ts)

    def end(self, ts: float) -> None:
        self.ts = ts
        if self.buffer and not self.identified:
            self._identify()
        for f in self.files.values():
            if not f.done:
                f.end(ts)
        self.table.entries.pop(self.key, None)  # finalize_ftp_data

    def _file(self, is_orig: bool, ts: float) -> Any:
        f = self.files.get(is_orig)
        if f is not None:
            return f
        info = self._info()
        if info is None:  # FTP::get_file_handle gives no handle: no file
            return None
        f = self.ctx.files.new_file(
            source="FTP_DATA",
            ts=ts,
            is_orig=is_orig,
            uid=self.ctx.uid,
            conn_id=self.ctx.conn_id,
            on_sniff=lambda _f, mime: self._sniffed(info, mime),
        )
        self.files[is_orig] = f
        info.fuid = f.fuid  # file_over_new_connection
        return f

    @staticmethod
    def _sniffed(info: FtpInfo, mime: str | None) -> None:
        if mime is not None:  # file_sniff
            info.mime_type = mime

    def _identify(self) -> None:
        """file_transferred: the first KB's MIME type (or <unknown>) on the control record."""
        self.identified = True
        mime = sniff_mime(bytes(self.buffer)) or "<unknown>"
        info = self._info()
        if info is not None:
            info.mime_type = mime.split(";")[0]


def sniff_ftp(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_ftp_server signature, which requires dpd_ftp_client on the other side
    (the anchored server greeting first: it rules out nearly every connection at once)."""
    greeting = _DPD_SERVER_GREETING.match(resp)
    return (
        greeting is not None
        and _DPD_SERVER_LOGIN.search(resp, greeting.end()) is not None
        and keyword_starts_line(orig, _DPD_CLIENT_KEYWORDS, b" ")
    )


SPEC = register(
    AnalyzerSpec(
        name="ftp",
        transports=frozenset({"tcp"}),
        ports=PORTS,
        factory=FtpAnalyzer,
        sniff=sniff_ftp,
    )
)

DATA_SPEC = register(
    AnalyzerSpec(
        name=DATA_ANALYZER,
        transports=frozenset({"tcp"}),
        ports=frozenset(),  # attached only to expected connections
        factory=FtpDataAnalyzer,
    )
)
