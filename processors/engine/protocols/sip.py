"""SIP over UDP (5060) -> sip.log, as Zeek's SIP analyzer and ``base/protocols/sip/main.zeek``.

The parser is Zeek's binpac SIP grammar run as a *stream* per message direction (binpac's
``flowunit``): a datagram starting ``SIP/`` feeds the reply flow, any other one the request
flow, and a message may span datagrams (or leave bytes for the next one). Lines end at CR or
LF (CR LF counts once), an empty line ends the headers, and the body is as long as the last
``Content-Length``/``L`` header seen *in that flow* said, even in an earlier message, as in
binpac. A line that does not parse is a violation and drops what the flow had buffered.

:class:`SipScript` is main.zeek: one pending record per connection (index 0 in practice)
that requests and replies both fill in place, written after each reply; provisional (1xx)
replies keep it for the final one, and what is still pending is written when the connection
is removed. Records are shared by reference as in Zeek's script language, so a record
written twice shows what both messages added (e.g. the Via paths of retransmissions).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.schemas.zeeklog.escape import bytes_text

log = logging.getLogger(__name__)

PORTS = frozenset({5060})  # SIP::ports
SIP_METHODS = frozenset(
    {"REGISTER", "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "NOTIFY", "SUBSCRIBE"}
)


@dataclass(frozen=True)
class SipConfig:
    """The SIP options a site may redef; the defaults are plain ``zeek -r``."""

    sip_methods: frozenset[str] = SIP_METHODS  # SIP::sip_methods (others are a weird)
    max_request_path_length: int = 100  # SIP::max_request_path_length (0: no limit)
    max_response_path_length: int = 100  # SIP::max_response_path_length (0: no limit)


CONFIG_KEY = "sip_config"


def configure(engine: Any, config: SipConfig) -> None:
    """Use ``config`` for the SIP connections ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


# The grammar's regular expressions (sip-protocol.pac), matched at the start of what is left.
_TOKEN_CHARS = r"a-zA-Z0-9_.!%*+`'~\-"
_JUNK = re.compile(rb"[^" + _TOKEN_CHARS.encode() + rb"]*")
_TOKEN = re.compile(rb"[" + _TOKEN_CHARS.encode() + rb"]+")
_WS = re.compile(rb"[ \t]*")
_URI = re.compile(rb"[A-Za-z0-9@!\"#$%&'()*+,\-./:;<=>?\[\\\]^_`{|}~]+")  # [[:alnum:]@[:punct:]]+
_VERSION = re.compile(rb"SIP/([0-9]+\.[0-9]+)")
_STATUS = re.compile(rb"[0-9]{3}")
_HEADER_NAME = re.compile(rb"[^: \t]+")
_TAG = re.compile(r";[ ]?tag=")
_BRANCH = re.compile(r";[ ]?branch")
# DPD signatures (dpd.sig): matched from the payload's start, in multi-line mode ('.' takes
# newlines too), so the request pattern finds " SIP/x.y CRLF" anywhere.
# dpd_sip_udp_req /.* SIP\/[0-9]\.[0-9]\r\n/: found anywhere (searched, no .* backtracking)
_DPD_REQUEST = re.compile(rb" SIP/[0-9]\.[0-9]\r\n")
_DPD_REPLY = re.compile(rb" ?SIP/[0-9]\.[0-9](\r\n| [0-9][0-9][0-9] )")

_C_NUMBER = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")  # strtol's accepted prefix
_LONG_MAX = 2**63 - 1


class SipParseError(ValueError):
    """A line that does not fit the grammar (binpac's exception -> analyzer violation)."""


def render(data: bytes) -> str:
    """Zeek's String::Render() default: bytes outside printable ASCII as ``\\xNN``."""
    return "".join(chr(b) if 32 <= b <= 126 else f"\\x{b:02x}" for b in data)


def _c_long(value: bytes, *, unsigned: bool) -> tuple[int, int]:
    """C's strtol/strtoull in base 10: (value, bytes consumed; 0 when no digits)."""
    text = value.split(b"\0", 1)[0]
    m = _C_NUMBER.match(text)
    if m is None:
        return 0, 0
    number = int(m.group(2))
    if unsigned:
        number = min(number, 2**64 - 1)
        if m.group(1) == b"-":
            number = (-number) % 2**64
        return number, m.end()
    number = -number if m.group(1) == b"-" else number
    return max(-_LONG_MAX - 1, min(_LONG_MAX, number)), m.end()


def binpac_int(value: bytes) -> int:
    """binpac's ``bytestring_to_int(value, 10)``: strtol, then narrowed to a C int."""
    number, _ = _c_long(value, unsigned=False)
    number &= 0xFFFFFFFF
    return number - 2**32 if number & 0x80000000 else number


def zeek_count(value: str) -> int | None:
    """Zeek's ``value ?as count`` / ``value as count`` on a string: strtoull with nothing but
    whitespace after the number (None where Zeek's cast fails)."""
    raw = value.encode("utf-8", "surrogateescape").split(b"\0", 1)[0]
    if not raw:
        return None
    number, used = _c_long(raw, unsigned=True)
    if any(c not in b" \t\n\v\f\r" for c in raw[used:]):
        return None
    return number


class SipFlow:
    """binpac's SIP_Flow for one direction: request lines or status lines, headers, body."""

    def __init__(self, is_request: bool, script: SipScript) -> None:
        self.is_request = is_request
        self.script = script
        self.content_length = 0  # flow member: kept from message to message, as binpac does
        self.partial = b""  # bytes of an unfinished line or body
        self.after_cr = False  # binpac's CR_OR_LF_1: a line ended at CR; skip one LF next
        self.stage = "first"  # "first" line, "headers", "body"

    def discard(self) -> None:
        """binpac's DiscardData after an exception: the message under way is dropped."""
        self.partial = b""
        self.stage = "first"

    def feed(self, data: bytes, ts: float) -> None:
        pos = 0
        while True:
            if self.stage == "body":
                need = self.content_length - len(self.partial)
                if need > len(data) - pos:
                    self.partial += data[pos:]
                    return
                pos += need
                self.partial = b""
                self.stage = "first"
                self.script.end_entity(self.is_request, ts)
                continue
            if self.after_cr and pos < len(data) and data[pos] == 0x0A:
                self.after_cr = False
                pos += 1
            end = _line_end(data, pos)
            if end < 0:
                self.partial += data[pos:]
                return
            line = self.partial + data[pos:end]
            self.partial = b""
            if data[end] == 0x0D:
                self.after_cr = True
            pos = end + 1
            self._line(line, ts)

    def _line(self, line: bytes, ts: float) -> None:
        if self.stage == "first":
            if self.is_request:
                self._request_line(line, ts)
            else:
                self._reply_line(line, ts)
            self.stage = "headers"
        elif line:
            self._header(line, ts)
        else:  # the empty line ends the headers; the body follows at once
            if self.content_length < 0:
                raise SipParseError(f"invalid body length {self.content_length}")
            self.stage = "body"

    def _request_line(self, line: bytes, ts: float) -> None:
        junk = _JUNK.match(line)
        assert junk is not None  # '*' always matches
        pos = junk.end()
        method = _TOKEN.match(line, pos)
        if method is None:
            raise SipParseError("request line: no method")
        pos = _WS.match(line, method.end()).end()  # type: ignore[union-attr]
        uri = _URI.match(line, pos)
        if uri is None:
            raise SipParseError("request line: no URI")
        pos = _WS.match(line, uri.end()).end()  # type: ignore[union-attr]
        version = _VERSION.match(line, pos)
        if version is None:
            raise SipParseError("request line: no SIP version")
        if junk.end():
            self.script.analyzer_weird("sip_junk_before_request", render(junk.group()), ts)
        self.script.request(bytes_text(method.group()), bytes_text(uri.group()), ts)

    def _reply_line(self, line: bytes, ts: float) -> None:
        version = _VERSION.match(line)
        if version is None:
            raise SipParseError("status line: no SIP version")
        pos = _WS.match(line, version.end()).end()  # type: ignore[union-attr]
        status = _STATUS.match(line, pos)
        if status is None:
            raise SipParseError("status line: no status code")
        pos = _WS.match(line, status.end()).end()  # type: ignore[union-attr]
        self.script.reply(int(status.group()), bytes_text(line[pos:]), ts)

    def _header(self, line: bytes, ts: float) -> None:
        name = _HEADER_NAME.match(line)
        if name is None:  # folded continuation lines start with whitespace: not SIP to binpac
            raise SipParseError("header line: no name")
        pos = _WS.match(line, name.end()).end()  # type: ignore[union-attr]
        if line[pos : pos + 1] != b":":
            raise SipParseError("header line: no colon")
        pos = _WS.match(line, pos + 1).end()  # type: ignore[union-attr]
        value = line[pos:]
        if name.group() in (b"Content-Length", b"L"):  # case-sensitive, as in the analyzer
            self.content_length = binpac_int(value)
        self.script.header(self.is_request, bytes_text(name.group()).upper(), bytes_text(value), ts)


def _line_end(data: bytes, pos: int) -> int:
    """Index of the first CR or LF at or after ``pos`` (-1 if none)."""
    cr = data.find(b"\r", pos)
    lf = data.find(b"\n", pos)
    if cr < 0:
        return lf
    return cr if lf < 0 else min(cr, lf)


class SipScript:
    """``base/protocols/sip/main.zeek`` for one connection: c$sip and c$sip_state."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        state = getattr(ctx, "shared_state", None) or {}
        self.config: SipConfig = state.get(CONFIG_KEY) or SipConfig()
        self.sip: Record | None = None  # c$sip (a reference into pending)
        self.state: dict[str, Any] | None = None  # c$sip_state

    # -- helpers of main.zeek ----------------------------------------------------------------
    def _new_state(self) -> dict[str, Any]:
        if self.state is None:
            self.state = {"pending": {}, "current_request": 0, "current_response": 0}
        return self.state

    def _new_session(self, ts: float) -> Record:
        state = self._new_state()
        rec: Record = {"ts": ts, "uid": self.ctx.uid, **self.ctx.conn_id.columns()}
        rec["trans_depth"] = state["current_request"]
        rec["request_path"] = []
        rec["response_path"] = []
        return rec

    def _set_state(self, is_request: bool, ts: float) -> Record:
        state = self._new_state()
        current = state["current_request" if is_request else "current_response"]
        pending = state["pending"]
        if current not in pending:
            pending[current] = self._new_session(ts)
        self.sip = pending[current]
        return self.sip

    def _write(self, rec: Record) -> None:
        self.ctx.emit(
            "sip",
            dict(
                rec,
                request_path=list(rec["request_path"]),
                response_path=list(rec["response_path"]),
            ),
        )

    def script_weird(self, name: str, addl: str, ts: float) -> None:
        """Reporter::conn_weird from the script: logged without an analyzer source."""
        self.ctx.weird(name, addl, ts=ts, source="")  # type: ignore[call-arg]

    def analyzer_weird(self, name: str, addl: str, ts: float) -> None:
        self.ctx.weird(name, addl, ts=ts)

    # -- events ------------------------------------------------------------------------------
    def request(self, method: str, uri: str, ts: float) -> None:
        rec = self._set_state(True, ts)
        rec["method"] = method
        rec["uri"] = uri
        if method not in self.config.sip_methods:
            self.script_weird("unknown_SIP_method", method, ts)

    def reply(self, code: int, reason: str, ts: float) -> None:
        self.ctx.confirm("sip")
        rec = self._set_state(False, ts)
        # main.zeek also tests (code < 100 && 200 <= code) here, which never holds.
        rec["status_code"] = code
        rec["status_msg"] = reason

    def header(self, is_request: bool, name: str, value: str, ts: float) -> None:
        state = self._new_state()
        key = "current_request" if is_request else "current_response"
        if state[key] not in state["pending"]:
            state[key] += 1
        rec = self._set_state(is_request, ts)
        if is_request:
            self._request_header(rec, name, value, ts)
        else:
            self._reply_header(rec, name, value, ts)
        state["pending"][state[key]] = rec

    def _request_header(self, rec: Record, name: str, value: str, ts: float) -> None:
        if name == "CALL-ID":
            rec["call_id"] = value
        elif name in ("CONTENT-LENGTH", "L"):
            length = zeek_count(value)
            if length is None:
                self.script_weird("invalid_SIP_request_body_len", value, ts)
            else:
                rec["request_body_len"] = length
        elif name == "CSEQ":
            rec["seq"] = value
        elif name == "DATE":
            rec["date"] = value
        elif name in ("FROM", "F"):
            rec["request_from"] = _TAG.split(value, 1)[0]
        elif name == "REPLY-TO":
            rec["reply_to"] = value
        elif name in ("SUBJECT", "S"):
            rec["subject"] = value
        elif name in ("TO", "T"):
            rec["request_to"] = value
        elif name == "USER-AGENT":
            rec["user_agent"] = value
        elif name in ("VIA", "V"):
            path = rec["request_path"]
            limit = self.config.max_request_path_length
            if limit > 0 and len(path) >= limit:
                self.script_weird("sip_max_request_path_length_exceeded", "", ts)
            else:
                path.append(_BRANCH.split(value, 1)[0])

    def _reply_header(self, rec: Record, name: str, value: str, ts: float) -> None:
        if name in ("CONTENT-LENGTH", "L"):
            length = zeek_count(value)
            if length is None:
                self.script_weird("invalid_SIP_response_body_len", value, ts)
            else:
                rec["response_body_len"] = length
        elif name in ("CONTENT-TYPE", "C"):
            rec["content_type"] = value
        elif name == "WARNING":
            rec["warning"] = value
        elif name in ("FROM", "F"):
            rec["response_from"] = _TAG.split(value, 1)[0]
        elif name in ("TO", "T"):
            rec["response_to"] = value
        elif name in ("VIA", "V"):
            path = rec["response_path"]
            limit = self.config.max_response_path_length
            if limit > 0 and len(path) >= limit:
                self.script_weird("sip_max_response_path_length_exceeded", "", ts)
            else:
                path.append(_BRANCH.split(value, 1)[0])

    def end_entity(self, is_request: bool, ts: float) -> None:
        rec = self._set_state(is_request, ts)
        if is_request:
            return
        # The reply is complete: write it (priority -5 handler).
        state = self.state
        assert state is not None
        self._write(rec)
        code = rec.get("status_code")
        if code is not None and (code < 100 or code >= 200):
            state["pending"].pop(state["current_response"], None)
        method = rec.get("method")
        if method is None or (method == "BYE" and code is not None and 200 <= code < 300):
            for index, info in state["pending"].items():  # flush_pending: all but index 0
                if index != 0:
                    self._write(info)
            self.sip = None
            self.state = None

    def finalize(self) -> None:
        """finalize_sip (connection removal hook): whatever is still pending."""
        if self.state is not None:
            for info in self.state["pending"].values():
                self._write(info)
            self.state = None


class SipAnalyzer:
    """Zeek's SIP_Analyzer: the direction of a datagram comes from its content."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.script = SipScript(ctx)
        self.flows = {True: SipFlow(True, self.script), False: SipFlow(False, self.script)}

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        is_request = not (len(data) > 6 and data.startswith(b"SIP/"))
        if len(data) == 2 and data[0] == 0x0D:  # lone CR LF keep-alives are skipped
            return
        flow = self.flows[is_request]
        try:
            flow.feed(data, ts)
        except SipParseError as exc:
            flow.discard()
            self.ctx.violation(f"Binpac exception: {exc}")

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """UDP has no gaps."""

    def end(self, ts: float) -> None:
        self.script.finalize()


def sniff(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_sip_udp_req / dpd_sip_udp_resp signatures."""
    return bool(
        _DPD_REPLY.match(orig)
        or _DPD_REPLY.match(resp)
        or _DPD_REQUEST.search(orig)
        or _DPD_REQUEST.search(resp)
    )


SPEC = register(
    AnalyzerSpec(
        name="sip",
        transports=frozenset({"udp"}),
        ports=PORTS,
        factory=SipAnalyzer,
        sniff=sniff,
    )
)
