"""SMTP -> smtp.log, mail entities -> files.log, STARTTLS -> the SSL analyzer, as Zeek does it.

Three layers, mirroring Zeek so that odd sessions end up logged the same way:

* :class:`_ContentLines` is Zeek's ContentLine support analyzer for one direction (lines end
  at LF, CRLF or a lone CR), with the raw mode BDAT chunks need;
* :class:`SmtpAnalyzer` is Zeek's SMTP_Analyzer: commands queued under pipelining and
  matched to replies (multi-line replies are one reply), the state machine that knows when
  the client is sending mail data (DATA with dot-unstuffing, BDAT chunks), ``STARTTLS``
  answered 220 handing the rest of the stream to an SSL child on a :class:`ChildContext`
  (as ftp.py does for ``AUTH TLS``), and the scripts ``base/protocols/smtp`` (``main.zeek``, ``entities.zeek``,
  ``files.zeek``): one smtp.log row per mail transaction with the headers' fields;
* :class:`_Entity` is Zeek's MIME_Entity as MIME_Mail drives it: headers (folded lines
  joined), multipart boundaries, message/rfc822 children, base64 and quoted-printable
  bodies; every entity with body data becomes a file with source ``SMTP``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols.child import ChildAnalyzer, ChildContext
from wirestream.processors.engine.protocols.dpd import keyword_starts_line
from wirestream.processors.engine.protocols.http import filename_from_disposition
from wirestream.processors.engine.protocols.ssl import SslAnalyzer
from wirestream.schemas.zeeklog.escape import bytes_text as text

PORTS = frozenset({25, 587})  # SMTP::ports
MAX_PENDING_CMDS = 1000  # max_pending_cmd_q_size in SMTP.cc
MAX_BDAT_ARG_LENGTH = 25  # len("18446744073709551615 LAST")


@dataclass(frozen=True)
class SmtpConfig:
    """What Zeek's SMTP scripts let a site redef; the default is plain ``zeek -r``.
    A limit of 0 turns that limit off, as in Zeek."""

    mail_transaction_validation: bool = True  # SMTP::mail_transaction_validation
    max_invalid_mail_transactions: int = 25  # SMTP::max_invalid_mail_transactions
    max_rcptto_addresses: int = 1000  # SMTP::max_rcptto_addresses
    max_to_addresses: int = 1000  # SMTP::max_to_addresses
    max_cc_addresses: int = 1000  # SMTP::max_cc_addresses
    max_path_length: int = 1000  # SMTP::max_path_length
    bdat_max_line_length: int = 4096  # SMTP::bdat_max_line_length
    mime_max_depth: int = 100  # MIME::max_depth
    mime_max_header_bytes: int = 65536  # MIME::max_header_bytes


CONFIG_KEY = "smtp_config"


def configure(engine: Any, config: SmtpConfig) -> None:
    """Use ``config`` for the SMTP sessions ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


# Zeek's SMTP states (SMTP.h), only as far as the analyzer needs them.
CONNECTED, INITIATED, NOT_AVAILABLE, READY, MAIL_OK, RCPT_OK, IN_DATA = range(7)
AFTER_DATA, IN_AUTH, IN_TLS, QUIT, AFTER_GAP, GAP_RECOVERY, IN_BDAT = range(7, 14)

# SMTP_cmd.def: the commands the analyzer knows; CONN_ESTABLISHMENT, END_OF_DATA and
# AUTH_ANSWER never appear on the wire.
COMMANDS = frozenset(
    {"EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "VRFY", "EXPN", "HELP", "NOOP",
     "STARTTLS", "X-ANONYMOUSTLS", "SEND", "SOML", "SAML", "TURN", "BDAT", "ETRN", "AUTH"}
)  # fmt: skip
CONN_ESTABLISHMENT, END_OF_DATA, AUTH_ANSWER = ">", ".", "AUTH_ANSWER"
UNKNOWN_CMD = "(UNKNOWN)"

_EMAIL = re.compile(r"(?:^|[<,:\t ])[^<,:\t @]+@[^>,;\t ]+(?:[>,;\t ]|$)")
_EMAIL_JUNK = re.compile(r"[<>,:;\t ]")
_MIME_ADDRESS = re.compile(r'(?:"[^"]*")?[^,]+')
_IPV4 = re.compile(r"(?<![0-9])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9])")
_IPV6 = re.compile(
    r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:[0-9]{1,3}\.){3}[0-9]{1,3})?"
)
_FILENAME_IN_DISPOSITION = re.compile(r"[fF][iI][lL][eE][nN][aA][mM][eE][ \t]*\*?=")
_NAME_IN_TYPE = re.compile(r"[nN][aA][mM][eE][ \t]*=")
_TOKEN = re.compile(rb"[^\x00-\x20()<>@,;:\\\"/\[\]?=\x7f-\xff]+")


# ----------------------------------------------------------------------------- script helpers


def extract_email_addrs(arg: str) -> list[str]:
    """base/utils/email's extract_email_addrs_vec: the addresses in ``arg``, in order."""
    return [_EMAIL_JUNK.sub("", m.group(0)) for m in _EMAIL.finditer(arg)]


def split_mime_email_addresses(value: str) -> list[str]:
    """split_mime_email_addresses: comma-separated parts, a quoted display name kept whole."""
    out: list[str] = []
    for m in _MIME_ADDRESS.finditer(value):
        part = m.group(0).strip()
        if part not in out:
            out.append(part)
    return out


def extract_ip_addresses(value: str, check_wrapping: bool = False) -> list[str]:
    """base/utils/addrs' extract_ip_addresses: valid addresses in ``value``; with
    ``check_wrapping`` only those wrapped in matching [], (), {} or spaces (or the whole text)."""
    found: list[tuple[int, int, str]] = []
    for regex in (_IPV4, _IPV6):
        for m in regex.finditer(value):
            candidate = m.group(0)
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            if any(s <= m.start() < e for s, e, _ in found):
                continue
            found.append((m.start(), m.end(), candidate))
    out = []
    for start, end, candidate in sorted(found):
        if check_wrapping:
            before, after = value[:start], value[end:]
            wrapped = (not before and not after) or any(
                before.endswith(o) and after.startswith(c)
                for o, c in (("[", "]"), ("(", ")"), ("{", "}"), (" ", " "))
            )
            if not wrapped:
                continue
        out.append(candidate)
    return out


def address_in_received(value: str) -> str:
    """find_address_in_smtp_header: the second wrapped address if there are several."""
    ips = extract_ip_addresses(value, check_wrapping=True)
    if len(ips) > 1:
        return ips[1]
    return ips[0] if ips else ""


def parse_bdat_arg(arg: bytes) -> tuple[int, bool, str | None]:
    """BDAT's argument: (chunk size, is last, error text or None), as SMTP.cc reads it."""
    if not arg or len(arg) > MAX_BDAT_ARG_LENGTH:
        return 0, False, "BDAT argument bad length"
    m = re.match(rb"[0-9]+", arg)
    if m is None:
        return 0, False, "BDAT not followed by a valid chunk-size"
    rest = arg[m.end() :]
    if rest and rest[:1] != b" ":
        return 0, False, "BDAT chunk-size not valid"
    size = int(m.group(0))
    if size > 0xFFFFFFFFFFFFFFFF:
        return 0, False, "BDAT chunk-size too large"
    if not rest:
        return size, False, None
    last = rest[:5].upper() == b" LAST"
    if not last or len(rest) != 5:
        return size, last, "BDAT chunk-size followed by junk"
    return size, True, None


# ----------------------------------------------------------------------------- line splitter


class _ContentLines:
    """One direction of Zeek's ContentLine analyzer as SMTP sets it up, plus a raw mode:
    ``raw`` bytes are handed out as they come (BDAT chunk data) before lines resume."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.raw = 0  # bytes still to deliver raw

    def next_piece(self) -> tuple[bool, bytes] | None:
        """The next complete (is_line, bytes) piece, or None until more data comes; one at a
        time, so a command that switches to raw mode (BDAT) takes effect at once."""
        buf = self.buf
        if not buf:
            return None
        if self.raw:
            n = min(self.raw, len(buf))
            piece = bytes(buf[:n])
            del buf[:n]
            self.raw -= n
            return False, piece
        lf = buf.find(b"\n")
        cr = buf.find(b"\r", 0, lf if lf >= 0 else len(buf))
        if cr >= 0 and cr + 1 < len(buf) and buf[cr + 1] != 0x0A:
            line = bytes(buf[:cr])
            del buf[: cr + 1]
            return True, line
        if lf < 0:
            return None
        end = lf - 1 if lf > 0 and buf[lf - 1] == 0x0D else lf
        line = bytes(buf[:end])
        del buf[: lf + 1]
        return True, line

    def rest(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


# ----------------------------------------------------------------------------- MIME entities


class _Entity:
    """One MIME entity of a mail (Zeek's MIME_Entity under MIME_Mail)."""

    def __init__(self, mail: _Mail, parent: _Entity | None) -> None:
        self.mail = mail
        self.parent = parent
        self.depth = parent.depth + 1 if parent else 0
        self.in_header = True
        self.end_of_data = False
        self.header: bytearray | None = None
        self.content_type = b"TEXT"
        self.boundary: bytes | None = None
        self.encoding = parent.encoding if parent else b""
        self.child: _Entity | None = None
        self.b64 = bytearray()
        self.delay_crlf = False
        mail.begin_entity(self)

    def deliver(self, data: bytes, trailing_crlf: bool) -> None:
        if self.end_of_data:
            return
        if not self.in_header:
            self._data_line(data, trailing_crlf)
        elif not data or data[0] == 0:
            self._finish_header()
            self.in_header = False
            if self.content_type == b"MESSAGE":
                self._begin_child()
        elif data[0] in b" \t":
            if self.header is None:  # first header line starts with whitespace
                self.header = bytearray(data.lstrip(b" \t"))
            else:
                limit = self.mail.smtp.config.mime_max_header_bytes
                if 0 < limit <= len(self.header):
                    self.mail.smtp.limit_weird(
                        "exceeded_mime_max_header_bytes", str(len(self.header))
                    )
                    return
                self.header += data
        else:
            self._finish_header()
            self.header = bytearray(data)

    def _finish_header(self) -> None:
        if self.header is None:
            return
        line = bytes(self.header)
        self.header = None
        m = re.match(rb"[^\x00-\x20:\x7f]+", line)
        if m is None:
            return
        name = m.group(0)
        rest = _skip_lws_comments(line[m.end() :])
        if not rest.startswith(b":"):
            return
        value = rest[1:].lstrip(b" \t\r\n\f\v")
        upper = name.upper()
        if upper == b"CONTENT-TYPE":
            self._content_type(value)
        elif upper == b"CONTENT-TRANSFER-ENCODING":
            tok = _TOKEN.search(value)
            if tok is not None:
                self.encoding = tok.group(0).lower()
        self.mail.header(text(upper), text(value))

    def _content_type(self, value: bytes) -> None:
        m = re.match(rb"\s*([^\s/;]+)\s*/\s*([^\s;]+)", value)
        if m is None:
            return
        self.content_type = m.group(1).upper()
        if self.content_type == b"MULTIPART":
            pm = re.search(rb';\s*boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))', value, re.I)
            self.boundary = (
                (pm.group(1) if pm.group(1) is not None else pm.group(2)) if pm else None
            )

    def _data_line(self, data: bytes, trailing_crlf: bool) -> None:
        if self.content_type == b"MULTIPART" and self.boundary and data.startswith(b"--"):
            rest = data[2:]
            if rest.startswith(self.boundary):
                if self.child is not None:
                    self._end_child()
                if rest[len(self.boundary) :].startswith(b"--"):
                    self.end_data()
                else:
                    self._begin_child()
                return
        if self.content_type in (b"MULTIPART", b"MESSAGE"):
            if self.child is not None:  # preamble and epilogue are dropped
                self.child.deliver(data, trailing_crlf)
            return
        self._decode(data, trailing_crlf)

    def _begin_child(self) -> None:
        limit = self.mail.smtp.config.mime_max_depth
        if 0 < limit <= self.depth:
            self.mail.smtp.limit_weird("exceeded_mime_max_depth", str(self.depth))
        else:
            self.child = _Entity(self.mail, self)

    def _end_child(self) -> None:
        assert self.child is not None
        self.child.end_data()
        self.child = None

    def _decode(self, data: bytes, trailing_crlf: bool) -> None:
        if self.encoding == b"quoted-printable":
            line = data.rstrip(b" \t")
            soft = line.endswith(b"=")
            decoded = binascii.a2b_qp(line[:-1] if soft else line)
            self.mail.data(self, decoded if soft else decoded + b"\r\n")
        elif self.encoding == b"base64":
            self.b64 += re.sub(rb"[^A-Za-z0-9+/=]", b"", data)
            usable = len(self.b64) - len(self.b64) % 4
            if usable:
                chunk = bytes(self.b64[:usable])
                del self.b64[:usable]
                self.mail.data(self, _b64(chunk))
        else:
            out = b"\r\n" + data if self.delay_crlf else data
            self.delay_crlf = False
            if trailing_crlf:
                # The CRLF before a boundary delimiter belongs to the delimiter.
                if self.parent is not None and self.parent.content_type == b"MULTIPART":
                    self.delay_crlf = True
                else:
                    out += b"\r\n"
            self.mail.data(self, out)

    def end_data(self) -> None:
        if self.end_of_data:
            return
        self.end_of_data = True
        if self.in_header:
            self._finish_header()
            self.in_header = False
        else:
            if self.child is not None:
                self._end_child()
            if self.b64:
                self.mail.data(self, _b64(bytes(self.b64)))
                self.b64.clear()
        self.mail.end_entity(self)


def _skip_lws_comments(data: bytes) -> bytes:
    """MIME_skip_lws_comments: whitespace and (nested) comments before the colon."""
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c in b" \t\r\n":
            i += 1
        elif c == 0x28:  # '('
            level = 0
            while i < n:
                if data[i] == 0x28:
                    level += 1
                elif data[i] == 0x29:
                    level -= 1
                    if level == 0:
                        i += 1
                        break
                elif data[i] == 0x5C:
                    i += 1
                i += 1
        else:
            break
    return data[i:]


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return b""


class _Mail:
    """Zeek's MIME_Mail: one message's entity tree, its headers to the script layer and its
    entities' data to files."""

    def __init__(self, smtp: SmtpAnalyzer, is_orig: bool) -> None:
        self.smtp = smtp
        self.is_orig = is_orig
        self.files: dict[int, Any] = {}  # id(entity) -> open file
        self.current: _Entity | None = None  # the entity begun last (MIME_Mail's cur_entity)
        self.top = _Entity(self, None)

    def deliver(self, data: bytes, trailing_crlf: bool) -> None:
        self.top.deliver(data, trailing_crlf)

    def done(self) -> None:
        self.top.end_data()
        for f in self.files.values():  # a gap's file outside any entity
            if not f.done:
                f.end(self.smtp.ts)
        self.files.clear()

    def begin_entity(self, entity: _Entity) -> None:
        self.current = entity
        self.smtp.ev_begin_entity()

    def end_entity(self, entity: _Entity) -> None:
        if self.current is entity:
            self.current = None
        f = self.files.pop(id(entity), None)
        if f is not None and not f.done:
            f.end(self.smtp.ts)
        self.smtp.ev_end_entity()

    def header(self, name: str, value: str) -> None:
        self.smtp.ev_header(name, value)

    def data(self, entity: _Entity, data: bytes) -> None:
        if data:
            self._file(entity).data(data, self.smtp.ts)

    def undelivered(self, length: int) -> None:
        """MIME_Mail::Undelivered: the current entity's file (a new one if it has none yet)
        misses ``length`` bytes."""
        self._file(self.current).gap(length, self.smtp.ts)

    def _file(self, entity: _Entity | None) -> Any:
        f = self.files.get(id(entity))
        if f is None or f.done:
            f = self.smtp.new_file(self.is_orig)
            self.files[id(entity)] = f
        return f


# ----------------------------------------------------------------------------- script state


@dataclass
class SmtpInfo:
    """One smtp.log row in the making (SMTP::Info)."""

    ts: float
    trans_depth: int
    path: list[str]
    helo: str | None = None
    mailfrom: str | None = None
    rcptto: list[str] | None = None
    date: str | None = None
    from_: str | None = None
    to: list[str] | None = None
    cc: list[str] | None = None
    reply_to: str | None = None
    msg_id: str | None = None
    in_reply_to: str | None = None
    subject: str | None = None
    x_originating_ip: str | None = None
    first_received: str | None = None
    second_received: str | None = None
    last_reply: str | None = None
    user_agent: str | None = None
    tls: bool = False
    fuids: list[str] = field(default_factory=list)
    process_received_from: bool = True
    has_client_activity: bool = False
    process_smtp_headers: bool = True
    entity_count: int = 0
    entity_filename: str | None = None
    has_entity: bool = False


@dataclass
class SmtpState:
    """SMTP::State: what outlives one transaction."""

    helo: str | None = None
    messages_transferred: int = 0
    trans_mail_from_seen: bool = False
    trans_rcpt_to_seen: bool = False
    invalid_transactions: int = 0
    bdat_last_observed: bool = False
    mime_depth: int = 0
    analyzer_enabled: bool = True


# ----------------------------------------------------------------------------- the analyzer


class SmtpAnalyzer:
    """One TCP connection's SMTP analyzer (Zeek's SMTP_Analyzer plus the smtp scripts)."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.lines = {True: _ContentLines(), False: _ContentLines()}
        self.state = CONNECTED
        self.first_cmd: str | None = CONN_ESTABLISHMENT
        self.pending_cmds: deque[str] = deque()
        self.last_replied_cmd: str | None = None
        self.pending_reply = 0
        self.orig_is_sender = True
        self.mail: _Mail | None = None
        self.bdat_remaining = 0
        self.bdat_last = False
        self.bdat_buf = bytearray()
        self.bdat_active = False  # a BDAT transfer is under way (Zeek's bdat analyzer exists)
        self.ssl: ChildAnalyzer | None = None  # fed until its violation removes it
        self.disabled = False  # the script disabled the analyzer (too many invalid transactions)
        self.info: SmtpInfo | None = None
        self.st = SmtpState()
        self.announced_fuids: set[str] = set()
        state = getattr(ctx, "shared_state", None) or {}
        self.config: SmtpConfig = state.get(CONFIG_KEY) or SmtpConfig()
        self._update_state(CONN_ESTABLISHMENT, 0, True)

    # -- AppAnalyzer ------------------------------------------------------------------------
    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.disabled:
            return
        if self.state == IN_TLS:
            self._to_ssl(is_orig, data)
            return
        lines = self.lines[is_orig]
        lines.buf += data
        while not self.disabled:
            piece = lines.next_piece()
            if piece is None:
                return
            is_line, chunk = piece
            if is_line:
                self._deliver_line(is_orig, chunk)
            else:
                self._bdat_data(chunk)
            if self.state == IN_TLS:
                rest = lines.rest()
                if rest:
                    self._to_ssl(is_orig, rest)
                return

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        if self.state == IN_TLS:
            if self.ssl is not None:
                self.ssl.gap(is_orig, length, ts)
            return
        if length <= 0 or self.disabled:
            return
        if self.state in (IN_DATA, IN_BDAT):
            # The mail's current entity records the gap; the transaction ends.
            if self.mail is not None:
                self.mail.undelivered(length)
            self._end_data()
        self.lines[is_orig].buf.clear()
        self.lines[is_orig].raw = 0
        self.pending_cmds.clear()
        self.first_cmd = self.last_replied_cmd = None
        self.state = AFTER_GAP

    def end(self, ts: float) -> None:
        self.ts = ts
        if self.ssl is not None:
            self.ssl.end(ts)
        if self.mail is not None:
            self._end_data()
        if self.info is not None:  # finalize_smtp
            self._smtp_message()

    # -- protocol layer (SMTP.cc) -----------------------------------------------------------
    def _deliver_line(self, is_orig: bool, line: bytes) -> None:
        line = line.rstrip(b"\r")  # "\r\r\n" ends a line too
        is_sender = is_orig if self.orig_is_sender else not is_orig
        if is_sender:
            self._sender_line(is_orig, line)
        else:
            self._reply_line(is_orig, line)

    def _sender_line(self, is_orig: bool, line: bytes) -> None:
        state = self.state
        if state == AFTER_GAP:
            return  # can't tell a command from a data line
        if state == IN_DATA:
            if line == b".":
                self._new_cmd(END_OF_DATA)
                self._update_state(END_OF_DATA, 0, is_orig)
                self._request(".", "")
                return
            if line.startswith(b"."):
                line = line[1:]
            if self.mail is None:
                self._begin_data(is_orig)
            assert self.mail is not None
            self.mail.deliver(line, True)
            return
        if state == IN_AUTH:
            self._new_cmd(AUTH_ANSWER)
            self._request("**", text(line))
            self._update_state(AUTH_ANSWER, 0, is_orig)
            return
        m = re.match(rb"[^ \t]*", line)
        word = m.group(0) if m else b""
        arg = line[len(word) :].lstrip(b" \t")
        cmd = word.decode("latin-1").upper()
        if cmd not in COMMANDS:
            return  # Unexpected("unknown command")
        self._new_cmd(cmd)
        if word or arg:
            self._request(text(word).upper(), text(arg))
        if cmd == "BDAT":
            if self._bdat_command(is_orig, arg):
                self._update_state(cmd, 0, is_orig)
            return
        if self.bdat_active:  # other commands without a LAST chunk end the transfer
            self.ctx.weird("smtp_missing_bdat_last_chunk", ts=self.ts)
            self._end_data()
        self._update_state(cmd, 0, is_orig)

    def _reply_line(self, is_orig: bool, line: bytes) -> None:
        code = int(line[:3]) if len(line) >= 3 and line[:3].isdigit() else -1
        if code < 100 or code > 599:
            # Zeek formats the code after setting it to -1: the reason always says -1.
            self.ctx.violation("reply code -1 out of range")
            return
        if self.pending_reply and code != self.pending_reply:
            self.pending_reply = 0
        if not self.pending_reply:
            self._new_reply(code, is_orig)
        if len(line) > 3 and line[3:4] == b"-":
            self.pending_reply = code
            msg = line[4:].lstrip(b" \t")
        else:
            self.pending_reply = 0
            msg = line[3:].lstrip(b" \t")
        cmd = self.last_replied_cmd
        if cmd == AUTH_ANSWER:
            cmd = "AUTH_ANSWER"
        self._ev_reply(code, cmd or UNKNOWN_CMD, text(msg), self.pending_reply > 0)

    def _new_cmd(self, cmd: str) -> None:
        if self.first_cmd is None:
            self.first_cmd = cmd
            return
        if len(self.pending_cmds) == MAX_PENDING_CMDS:
            self.ctx.weird("smtp_excessive_pending_cmds", ts=self.ts)
            self.pending_cmds.clear()
        self.pending_cmds.append(cmd)

    def _new_reply(self, code: int, is_orig: bool) -> None:
        if self.state == AFTER_GAP:
            self.state = GAP_RECOVERY
            self._request(UNKNOWN_CMD, "")
        cmd = self.first_cmd
        self.last_replied_cmd = cmd
        self.first_cmd = self.pending_cmds.popleft() if self.pending_cmds else None
        self._update_state(cmd, code, is_orig)

    def _update_state(self, cmd: str | None, reply: int, is_orig: bool) -> None:
        """SMTP_Analyzer::UpdateState: the state follows the (command, reply) pairs."""
        st = self.state
        if cmd == CONN_ESTABLISHMENT:
            if reply == 0:
                self.state = INITIATED
            elif reply in (421, 554):
                self.state = NOT_AVAILABLE
        elif cmd in ("EHLO", "HELO"):
            if reply == 0:
                self.state = READY
            elif reply in (421, 500, 501, 504, 550):
                self.state = INITIATED
        elif cmd in ("MAIL", "SEND", "SOML", "SAML"):
            if reply == 0:
                self.state = MAIL_OK
            elif reply in (421, 451, 452, 500, 501, 503, 550, 552, 553) and st != IN_DATA:
                self.state = READY
        elif cmd == "RCPT":
            if reply == 0:
                self.state = RCPT_OK
        elif cmd == "DATA":
            if reply == 0:
                self._begin_data(is_orig)
            elif reply == 354:
                pass
            elif reply == 421:
                if st == IN_DATA:
                    self._end_data()
                self.state = QUIT
            else:
                if st == IN_DATA:
                    self._end_data()
                self.state = READY
        elif cmd == END_OF_DATA:
            if reply == 0:
                self._end_data()
                self.state = AFTER_DATA
            else:
                self.state = READY
        elif cmd == "BDAT":
            if reply == 0:  # replies leave the state alone: chunks may be in flight
                self.state = IN_BDAT
        elif cmd == "RSET":
            if reply == 0:
                self.state = READY
        elif cmd == "QUIT":
            if reply == 0:
                self.state = QUIT
        elif cmd == "AUTH" or cmd == AUTH_ANSWER:
            if reply == 334:
                self.state = IN_AUTH
            elif reply != 0:
                self.state = INITIATED
        elif cmd == "TURN":
            if reply == 250:
                self.orig_is_sender = not self.orig_is_sender
                self.state = CONNECTED
        elif cmd in ("STARTTLS", "X-ANONYMOUSTLS"):
            if reply == 220:
                self._start_tls()
        elif st == GAP_RECOVERY and reply == 354:
            self._begin_data(is_orig)

    def _begin_data(self, is_orig: bool, state: int = IN_DATA) -> None:
        self.state = state
        if self.mail is not None:
            self.ctx.weird("smtp_nested_mail_transaction", ts=self.ts)
            self.mail.done()
        self.mail = _Mail(self, is_orig)

    def _end_data(self) -> None:
        if self.mail is None:
            self.ctx.weird("smtp_unmatched_end_of_data", ts=self.ts)
            return
        mail, self.mail = self.mail, None
        if self.bdat_active:
            self.bdat_active = False
            if self.bdat_remaining > 0:
                self.ctx.weird("smtp_bdat_remaining_at_end_data", ts=self.ts)
                self.bdat_remaining = 0
                for lines in self.lines.values():
                    lines.raw = 0
            if self.bdat_buf:  # SMTP_BDAT_Analyzer::Done, a weird of its own
                self.ctx.weird("smtp_bdat_undelivered_at_done", ts=self.ts, source="SMTP_BDAT")  # type: ignore[call-arg]
                mail.deliver(bytes(self.bdat_buf), False)
                self.bdat_buf.clear()
        mail.done()

    # -- BDAT (RFC 3030) ---------------------------------------------------------------------
    def _bdat_command(self, is_orig: bool, arg: bytes) -> bool:
        """ProcessBdatArg: the next ``size`` bytes are the chunk; False for a bad argument."""
        size, last, error = parse_bdat_arg(arg)
        if error is not None:
            self.ctx.weird("smtp_invalid_bdat_command", error, ts=self.ts)
            return False
        if size > 0x7FFFFFFFFFFFFFFF:
            self.ctx.weird("smtp_huge_bdat_chunk", str(size), ts=self.ts)
            return False
        self.lines[is_orig].raw = size
        if not self.bdat_active:
            self._begin_data(is_orig, IN_BDAT)
            self.bdat_active = True
        self.bdat_last = last
        self.bdat_remaining = size
        if size == 0:
            self._bdat_chunk_done()
        return True

    def _bdat_data(self, data: bytes) -> None:
        """SMTP_BDAT_Analyzer: the chunk's bytes cut into CRLF lines for the mail."""
        mail = self.mail
        if mail is None:
            return
        self.bdat_remaining -= len(data)
        buf = self.bdat_buf
        if buf[-1:] == b"\r" and data[:1] != b"\n":
            self.ctx.weird("smtp_bdat_line_cr_only", ts=self.ts)
            mail.deliver(bytes(buf), False)
            buf.clear()
        i = len(buf) - 1 if buf else 0
        buf += data
        start = 0
        while i < len(buf):
            if buf[i] == 0x0D and i + 1 < len(buf) and buf[i + 1] == 0x0A:
                mail.deliver(bytes(buf[start:i]), True)
                start = i + 2
                i += 2
                continue
            if buf[i] == 0x0A:
                self.ctx.weird("smtp_bdat_line_lf_only", ts=self.ts)
                mail.deliver(bytes(buf[start : i + 1]), False)
                start = i + 1
            elif i - start >= self.config.bdat_max_line_length:
                self.ctx.weird("smtp_bdat_line_too_long", str(len(buf)), ts=self.ts)
                mail.deliver(bytes(buf[start:i]), False)
                start = i
            i += 1
        del buf[:start]
        if self.bdat_remaining <= 0:
            self._bdat_chunk_done()

    def _bdat_chunk_done(self) -> None:
        """The LAST chunk fully received ends the mail; the state stays until the next command."""
        if not self.bdat_last:
            return
        if self.bdat_buf and self.mail is not None:
            self.mail.deliver(bytes(self.bdat_buf), False)
            self.bdat_buf.clear()
        self._end_data()

    # -- STARTTLS ---------------------------------------------------------------------------
    def _start_tls(self) -> None:
        """STARTTLS answered 220: the rest of the connection is TLS for an SSL child."""
        self.state = IN_TLS
        ssl_ctx = ChildContext(self.ctx, "ssl")
        self.ssl = ChildAnalyzer(SslAnalyzer(ssl_ctx), ssl_ctx)
        info = self.info  # smtp_starttls
        if info is not None:
            info.tls = True
            info.has_client_activity = True

    def _to_ssl(self, is_orig: bool, data: bytes) -> None:
        if self.ssl is not None:
            self.ssl.data(is_orig, data, self.ts)

    # -- script layer (main.zeek, entities.zeek, files.zeek) --------------------------------
    def _session(self) -> SmtpInfo:
        if self.info is None:
            self.info = self._new_info()
        return self.info

    def _new_info(self) -> SmtpInfo:
        cid = self.ctx.conn_id
        info = SmtpInfo(self.ts, self.st.messages_transferred + 1, [cid.resp_h, cid.orig_h])
        info.helo = self.st.helo
        return info

    def _smtp_message(self) -> None:
        info = self.info
        if info is not None and info.has_client_activity:
            self.ctx.emit("smtp", self.record(info))
            self.info = self._new_info()

    def _request(self, command: str, arg: str) -> None:
        """RequestEvent: confirmation, then the smtp_request handlers."""
        self.ctx.confirm("smtp")
        info = self._session()
        st = self.st
        upper = command.upper()
        if upper in ("HELO", "EHLO"):
            st.helo = info.helo = arg
        elif upper == "RCPT" and arg[:3].upper() == "TO:":
            if info.rcptto is None:
                info.rcptto = []
            for addr in extract_email_addrs(arg):
                if 0 < self.config.max_rcptto_addresses <= len(info.rcptto):
                    self._script_weird("smtp_too_many_rcptto_addresses")
                    break
                addr = re.sub(r"ORCPT=rfc822;?", "", addr)
                if addr not in info.rcptto:
                    info.rcptto.append(addr)
            info.has_client_activity = True
            st.trans_rcpt_to_seen = True
            if self.config.mail_transaction_validation and not st.trans_mail_from_seen:
                self._invalid_transaction("rcpt to missing mail from")
        elif upper == "MAIL" and arg[:5].upper() == "FROM:":
            self._smtp_message()
            info = self._session()
            addrs = extract_email_addrs(arg)
            if addrs and addrs[0]:
                info.mailfrom = addrs[0]
            info.has_client_activity = True
            st.trans_mail_from_seen = True
            st.trans_rcpt_to_seen = False
        elif upper in ("DATA", "BDAT"):
            if self.config.mail_transaction_validation and not st.trans_rcpt_to_seen:
                self._invalid_transaction("data missing rcpt to")
            if upper == "BDAT" and arg.endswith(" LAST"):
                st.trans_mail_from_seen = st.trans_rcpt_to_seen = False
                st.bdat_last_observed = True
        elif upper == ".":
            st.trans_mail_from_seen = st.trans_rcpt_to_seen = False

    def _script_weird(self, name: str) -> None:
        """Reporter::conn_weird(name, c) from the scripts: no source."""
        self.ctx.weird(name, ts=self.ts, source="")  # type: ignore[call-arg]

    def limit_weird(self, name: str, addl: str) -> None:
        """A limit reached: Zeek's LimitReachedWeird (a weird plus history X) where the context
        offers it, a plain weird elsewhere."""
        reached = getattr(self.ctx, "limit_reached_weird", None)
        if reached is not None:
            reached(name, addl)
        else:
            self.ctx.weird(name, addl, ts=self.ts)

    def _invalid_transaction(self, addl: str) -> None:
        self.ctx.weird("smtp_mail_transaction_invalid", addl, ts=self.ts)
        st = self.st
        st.invalid_transactions += 1
        limit = self.config.max_invalid_mail_transactions
        if limit > 0 and st.invalid_transactions > limit and st.analyzer_enabled:
            addl = f"{st.invalid_transactions} > {limit}"
            self.limit_weird("smtp_excessive_invalid_mail_transactions", addl)
            st.analyzer_enabled = False
            self.disabled = True  # disable_analyzer

    def _ev_reply(self, code: int, cmd: str, msg: str, cont: bool) -> None:
        info = self._session()
        info.last_reply = f"{code} {msg}"
        st = self.st
        if cmd == "." or (not cont and cmd == "BDAT" and st.bdat_last_observed):
            st.messages_transferred += 1
            st.bdat_last_observed = False
            self._smtp_message()
            self.info = self._new_info()

    def ev_begin_entity(self) -> None:
        info = self.info
        if info is not None:
            info.has_entity = True
            info.entity_filename = None
            info.entity_count += 1
            if info.entity_count > 1:
                info.process_smtp_headers = False
        self.st.mime_depth += 1

    def ev_end_entity(self) -> None:
        if self.info is not None:
            self.info.has_entity = False
            self.info.entity_filename = None

    def ev_header(self, name: str, value: str) -> None:
        info = self.info
        if info is None:
            return
        if info.has_entity:  # entities.zeek
            if name == "CONTENT-DISPOSITION" and _FILENAME_IN_DISPOSITION.search(value):
                info.entity_filename = filename_from_disposition(value.encode("latin-1", "replace"))
            if name == "CONTENT-TYPE" and _NAME_IN_TYPE.search(value):
                info.entity_filename = filename_from_disposition(value.encode("latin-1", "replace"))
        if not info.process_smtp_headers:
            return
        if name == "MESSAGE-ID":
            info.msg_id = value
        elif name == "RECEIVED":
            if info.first_received is not None:
                info.second_received = info.first_received
            info.first_received = value
            self._received_path(info, value)
        elif name == "IN-REPLY-TO":
            info.in_reply_to = value
        elif name == "SUBJECT":
            info.subject = value
        elif name == "FROM":
            info.from_ = value
        elif name == "REPLY-TO":
            info.reply_to = value
        elif name == "DATE":
            info.date = value
        elif name in ("TO", "CC"):
            limit = self.config.max_to_addresses if name == "TO" else self.config.max_cc_addresses
            current = (info.to if name == "TO" else info.cc) or []
            for addr in split_mime_email_addresses(value):
                if 0 < limit <= len(current):
                    self._script_weird(f"smtp_too_many_{name.lower()}_addresses")
                    break
                if addr not in current:
                    current.append(addr)
            if name == "TO":
                info.to = current
            else:
                info.cc = current
        elif name == "X-ORIGINATING-IP":
            addrs = extract_ip_addresses(value)
            if addrs:
                info.x_originating_ip = str(ipaddress.ip_address(addrs[0]))
        elif name in ("X-MAILER", "USER-AGENT", "X-USER-AGENT"):
            info.user_agent = value

    def _received_path(self, info: SmtpInfo, value: str) -> None:
        """The Received: headers extend the path (mail_path_capture = ALL_HOSTS)."""
        if not info.process_received_from:
            return
        found = address_in_received(value)
        if not found:
            return
        ip = str(ipaddress.ip_address(found))
        if info.path[-1] != ip:
            if 0 < self.config.max_path_length <= len(info.path):
                self._script_weird("smtp_max_path_length_exceeded")
                return
            info.path.append(ip)

    def new_file(self, is_orig: bool) -> Any:
        """A mail entity's data starts: a file with source SMTP (file_over_new_connection)."""
        files = self.ctx.files
        if files is None:
            raise RuntimeError("the engine context has no file manager; SMTP needs one")
        info = self._session()
        handle = files.new_file(
            source="SMTP",
            ts=self.ts,
            is_orig=is_orig,
            uid=self.ctx.uid,
            conn_id=self.ctx.conn_id,
            depth=self.st.mime_depth,
            filename=info.entity_filename if info.has_entity else None,
        )
        if handle.fuid not in self.announced_fuids:
            self.announced_fuids.add(handle.fuid)
            if not info.tls:
                info.fuids.append(handle.fuid)
        return handle

    def record(self, info: SmtpInfo) -> Record:
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "trans_depth": info.trans_depth,
            "helo": info.helo,
            "mailfrom": info.mailfrom,
            "rcptto": info.rcptto,
            "date": info.date,
            "from": info.from_,
            "to": info.to,
            "cc": info.cc,
            "reply_to": info.reply_to,
            "msg_id": info.msg_id,
            "in_reply_to": info.in_reply_to,
            "subject": info.subject,
            "x_originating_ip": info.x_originating_ip,
            "first_received": info.first_received,
            "second_received": info.second_received,
            "last_reply": info.last_reply,
            "path": list(info.path),
            "user_agent": info.user_agent,
            "tls": info.tls,
            "fuids": list(info.fuids),
        }


_DPD_SERVER = re.compile(rb"[\t\n\v\f\r ]*220[\t\n\v\f\r -]")
# dpd_smtp_client: /(|.*[\n\r])[[:space:]]*([hH][eE][lL][oO]|[eE][hH][lL][oO])/
_DPD_CLIENT_KEYWORDS = (b"helo", b"ehlo")
_SPACE = b"\t\n\v\f\r "


def sniff_smtp(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_smtp_server signature, which requires dpd_smtp_client on the other side
    (the anchored server pattern first: it rules out nearly every connection at once)."""
    return bool(_DPD_SERVER.match(resp)) and keyword_starts_line(orig, _DPD_CLIENT_KEYWORDS, _SPACE)


SPEC = register(
    AnalyzerSpec(
        name="smtp",
        transports=frozenset({"tcp"}),
        ports=PORTS,
        factory=SmtpAnalyzer,
        sniff=sniff_smtp,
    )
)
