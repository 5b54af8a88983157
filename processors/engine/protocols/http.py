"""HTTP/1.x -> http.log (and one file per entity), as Zeek's HTTP analyzer and scripts write them.

Three layers, mirroring Zeek so that odd traffic ends up logged the same way:

* :class:`_Lines` cuts each direction's stream into lines or raw runs the way Zeek's
  ContentLine analyzer does (CRLF, bare LF or bare CR end a line; only CRLF inside multipart
  parts; a delivery size that ends the last line of a multipart body);
* :class:`_Entity` / :class:`_Message` are Zeek's MIME entity and HTTP message: headers with
  folding, Content-Length, chunked transfer, gzip/deflate, multipart parts (each part its own
  file), partial content, gaps;
* :class:`HttpAnalyzer` is Zeek's HTTP_Analyzer (request/reply lines, HTTP/0.9, 1xx, upgrades,
  CONNECT) plus the bookkeeping of ``base/protocols/http`` (pipelined requests matched to
  replies by depth, what each header sets, when a row is written).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, ConnId, Record, register
from wirestream.processors.engine.protocols import websocket
from wirestream.processors.engine.protocols.child import ChildAnalyzer
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

INF = 1 << 62  # "until the connection closes"

# HTTP_Analyzer body expectations
BODY_NOT_EXPECTED, BODY_EXPECTED, BODY_MAYBE = 0, 1, 2

PROXY_HEADERS = frozenset(
    {
        "FORWARDED",
        "X-FORWARDED-FOR",
        "X-FORWARDED-FROM",
        "CLIENT-IP",
        "VIA",
        "XROXY-CONNECTION",
        "PROXY-CONNECTION",
    }
)
HTTP_METHODS = frozenset(
    {
        "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "CONNECT", "PROPFIND", "PROPPATCH",
        "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "POLL", "REPORT", "SUBSCRIBE", "BMOVE", "SEARCH", "QUERY",
    }
)  # fmt: skip
MAX_PENDING_REQUESTS = 100
MAX_FILES_PER_SIDE = 15  # HTTP::max_files_orig / max_files_resp
MAX_MIME_DEPTH = 100  # MIME::max_depth

_DPD_CLIENT = re.compile(
    rb"[ \t\n\r\f\v]*(OPTIONS|GET|HEAD|POST|PUT|DELETE|QUERY|ACL|BASELINE-CONTROL|BIND|CHECKIN|CHECKOUT|CONNECT|COPY|"
    rb"LABEL|LINK|LOCK|MERGE|MKACTIVITY|MKCALENDAR|MKCOL|MKREDIRECTREF|MOVE|ORDERPATCH|PATCH|PROPFIND|PROPPATCH|"
    rb"REBIND|REPORT|SEARCH|TRACE|UNBIND|UNCHECKOUT|UNLINK|UNLOCK|UPDATE|VERSION-CONTROL|BCOPY|BDELETE|BMOVE|"
    rb"BPROPFIND|BPROPPATCH|NOTIFY|POLL|SUBSCRIBE|UNSUBSCRIBE|X-MS-ENUMATTS|MKWORKSPACE|RPC_IN_DATA|RPC_OUT_DATA)"
)
_DPD_SERVER = re.compile(rb"[hH][tT][tT][pP]/[0-9]")


# ----------------------------------------------------------------------------- small parsers

# Leading blanks, then printable ASCII (33..126) minus the tspecials ()<>@,;:\\"/[]?=
_TOKEN = re.compile(rb"[ \t]*([!#$%&'*+\-.0-9A-Z^_`a-z{|}~]*)")


def _token(value: bytes) -> tuple[bytes, bytes]:
    """MIME_get_token: the first token of a header value and what follows it."""
    m = _TOKEN.match(value)
    return m.group(1), value[m.end() :]


def _atoi(digits: bytes, base: int) -> int | None:
    """Zeek's atoi_n: leading digits after optional whitespace; None when there are none."""
    s = digits.lstrip(b" \t")
    alphabet = b"0123456789abcdefABCDEF" if base == 16 else b"0123456789"
    n = 0
    for i, c in enumerate(s):
        if c not in alphabet:
            if i == 0:
                return None
            return n
        n = n * base + int(chr(c), base)
    return n if s else None


def _param(value: bytes, name: bytes) -> bytes | None:
    """A ``name=value`` parameter (quoted or token) of a structured header value."""
    m = re.search(
        rb"(?:^|;)\s*" + re.escape(name) + rb"\s*=\s*(\"((?:[^\"\\]|\\.)*)\"|[^;\s]*)", value, re.I
    )
    if m is None:
        return None
    if m.group(2) is not None:
        return re.sub(rb"\\(.)", rb"\1", m.group(2))
    return m.group(1)


# RFC 3986 reserved + unreserved characters and '%' (Zeek's is_reserved/unreserved_URI_char).
_URI_CHARS = re.compile(rb"[A-Za-z0-9:/?#\[\]@!$&'()*+,;=\-_.~%]*")
# HTTP token characters (printable ASCII minus separators), as Zeek's is_HTTP_token_char.
_TOKEN_CHARS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
_FIELD_NAME = re.compile(rb"[\x21-\x7e]+")
_HEADER_START_SPECIAL = b"\x00 \t"  # first bytes _mime_deliver treats apart in a header
# Valid header names seen so far -> lower-cased (names repeat: one dict lookup, no regex).
_FIELD_NAMES: dict[bytes, bytes] = {}
# Top-level entity headers submit_header acts on, and request headers http/main.zeek reads.
_ENTITY_HEADERS = frozenset(
    {b"content-length", b"content-range", b"transfer-encoding", b"content-encoding", b"expect"}
)
_PROXY_LNAMES = frozenset(h.lower().encode() for h in PROXY_HEADERS)
# Shared-state key of the policy scripts' handler objects HTTP analyzers call
# (http_header(analyzer, is_orig, lname, value), http_message_done(analyzer, is_orig)).
SCRIPT_HANDLERS_KEY = "http_script_handlers"
_REQUEST_SCRIPT_HEADERS = frozenset(
    {b"referer", b"host", b"range", b"origin", b"user-agent", b"authorization"}
    | {b"proxy-authorization"}
    | _PROXY_LNAMES
)


def unescape_uri(raw: bytes) -> bytes:
    """Zeek's unescape_URI: %XX and %uXXXX decoded, malformed escapes kept as they are."""
    i = raw.find(b"%")
    if i < 0:
        return bytes(raw)
    out = bytearray(raw[:i])
    n = len(raw)
    hexd = b"0123456789abcdefABCDEF"
    while i < n:
        c = raw[i]
        if c != 0x25:  # '%': copy the run up to the next one
            j = raw.find(b"%", i)
            if j < 0:
                out += raw[i:]
                break
            out += raw[i:j]
            i = j
            continue
        i += 1
        if i == n:
            out.append(0x25)
            break
        if i + 1 == n:
            out += b"%" + raw[i : i + 1]
            break
        if raw[i] == 0x25:
            continue  # double '%': drop the first
        if raw[i] in hexd and raw[i + 1] in hexd:
            out.append(int(raw[i : i + 2], 16))
            i += 2
            continue
        if n - i >= 5 and raw[i] == ord("u") and all(ch in hexd for ch in raw[i + 1 : i + 5]):
            if raw[i + 1 : i + 3] != b"00":
                out.append(int(raw[i + 1 : i + 3], 16))
            out.append(int(raw[i + 3 : i + 5], 16))
            i += 5
            continue
        out += b"%" + raw[i : i + 1]
        i += 1
    return bytes(out)


_MIME_TYPE = re.compile(rb"\s*([^\s/;]+)\s*/\s*([^\s;]+)")  # type/subtype of Content-Type
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_CD_FILENAME = re.compile(rb"[fF][iI][lL][eE][nN][aA][mM][eE][ \t]*\*?=")
_CT_NAME = re.compile(rb"[nN][aA][mM][eE][ \t]*=")
_CD_NAME = re.compile(rb"^.*[nN][aA][mM][eE][ \t]*\*?=[ \t]*", re.S)
_CD_LANG = re.compile(rb"^[a-zA-Z0-9!#$%&+\-^_`{}~]+'[a-zA-Z0-9!#$%&+\-^_`{}~]*'")


def filename_from_disposition(value: bytes) -> str:
    """extract_filename_from_content_disposition (base/utils/files.zeek)."""
    name = _CD_NAME.sub(b"", value, count=1)
    if name.startswith(b'"'):
        parts = name.split(b'"', 2)
        name = parts[1] if len(parts) > 1 else b""
    if _CD_LANG.match(name):
        name = re.sub(rb"^.+'.*'", b"", name, count=1, flags=re.S)
    return text(unescape_uri(name))


# ----------------------------------------------------------------------------- line splitter


class _Lines:
    """Zeek's ContentLine analyzer for one direction: lines, raw runs, delivery size, skipping."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink  # object with line(bytes, bool), plain(bytes) and weird(str)
        self.buf = bytearray()
        self.plain = 0
        self.delivery_size: int | None = None
        self.crlf_only = False
        self.skip = False
        self.raw = False  # HTTP/0.9 replies and upgraded streams: everything is plain data

    def feed(self, data: bytes) -> None:
        if self.skip:
            return
        buf = self.buf
        if not buf and (self.raw or self.plain > 0):
            # Body bytes with nothing buffered: hand them on without copying them through buf
            # (the same steps as pump, whose loop then takes whatever is left).
            if self.raw:
                self.sink.plain(data if data.__class__ is bytes else bytes(data))
                return
            n = len(data)
            if self.plain < n:
                n = self.plain
                buf += memoryview(data)[n:]
                data = data[:n]
            if self.plain != INF:
                self.plain -= n
            self._consumed(n)
            self.sink.plain(data if data.__class__ is bytes else bytes(data))
            self.pump()
            return
        buf += data
        self.pump()

    def pump(self) -> None:
        buf = self.buf
        while buf and not self.skip:
            if self.raw:
                chunk = bytes(buf)
                buf.clear()
                self.sink.plain(chunk)
                continue
            if self.plain > 0:
                n = min(self.plain, len(buf))
                chunk = bytes(buf[:n])
                del buf[:n]
                if self.plain != INF:
                    self.plain -= n
                self._consumed(n)
                self.sink.plain(chunk)
                continue
            if self.delivery_size is None and not self.crlf_only:
                # The common CRLF-terminated line: what _find_eol would find, in two finds.
                lf = buf.find(b"\n")
                if lf > 0 and buf[lf - 1] == 0x0D and buf.find(b"\r", 0, lf - 1) < 0:
                    line = bytes(buf[: lf - 1])
                    del buf[: lf + 1]
                    self.sink.line(line, True)
                    continue
            limit = len(buf) if self.delivery_size is None else min(len(buf), self.delivery_size)
            end, eol = self._find_eol(buf, limit)
            if end is None:
                if self.delivery_size is not None and len(buf) >= self.delivery_size:
                    # The body ends inside a line: Zeek terminates it (counting a CRLF) and says so.
                    end, eol = self.delivery_size, 0
                    if end:
                        self.sink.weird("line_terminated_without_CRLF")
                else:
                    return
            line = bytes(buf[:end])
            del buf[: end + eol]
            self._consumed(end + eol)
            self.sink.line(line, True)

    def _consumed(self, n: int) -> None:
        if self.delivery_size is not None:
            self.delivery_size -= n
            if self.delivery_size <= 0:
                self.delivery_size = None

    def _find_eol(self, buf: bytearray, limit: int) -> tuple[int | None, int]:
        if self.crlf_only:
            i = buf.find(b"\r\n", 0, limit)
            return (i, 2) if i >= 0 else (None, 0)
        lf = buf.find(b"\n", 0, limit)
        cr = buf.find(b"\r", 0, limit if lf < 0 else lf)
        if cr >= 0:
            if cr + 1 < len(buf):
                return (cr, 2) if buf[cr + 1] == 0x0A else (cr, 1)
            if self.delivery_size is not None and cr + 1 >= self.delivery_size:
                return cr, 1
            return None, 0  # a CR at the end: wait to see whether LF follows
        if lf >= 0:
            return lf, 1
        return None, 0

    def flush(self) -> None:
        """End of stream: a partial last line is delivered without its CRLF."""
        if self.skip or not self.buf:
            return
        if self.plain > 0 or self.raw:
            self.pump()
            return
        line = bytes(self.buf)
        self.buf.clear()
        self.sink.line(line, True)  # Zeek terminates the partial line at EOF


# ----------------------------------------------------------------------------- MIME entities


@dataclass
class _ScriptEntity:
    """HTTP::Entity: what entities.zeek remembers of the entity being parsed."""

    filename: str | None = None


@dataclass
class _Info:
    """One http.log row in the making (HTTP::Info)."""

    ts: float
    trans_depth: int
    method: str | None = None
    host: str | None = None
    uri: str | None = None
    referrer: str | None = None
    version: str | None = None
    user_agent: str | None = None
    origin: str | None = None
    request_body_len: int = 0
    response_body_len: int = 0
    status_code: int | None = None
    status_msg: str | None = None
    info_code: int | None = None
    info_msg: str | None = None
    username: str | None = None
    password: str | None = None
    proxied: list[str] | None = None
    orig_fuids: list[str] | None = None
    orig_filenames: list[str] | None = None
    orig_mime_types: list[str] | None = None
    resp_fuids: list[str] | None = None
    resp_filenames: list[str] | None = None
    resp_mime_types: list[str] | None = None
    range_request: bool = False
    current_entity: _ScriptEntity | None = None
    orig_mime_depth: int = 0
    resp_mime_depth: int = 0


class _Entity:
    """A MIME entity of an HTTP message (Zeek's HTTP_Entity over MIME_Entity)."""

    def __init__(self, msg: _Message, parent: _Entity | None, expect_body: int) -> None:
        self.msg = msg
        self.parent = parent
        self.depth = parent.depth + 1 if parent else 0
        self.expect_body = expect_body
        self.in_header = True
        self.end_of_data = False
        self.header: list[bytes] | None = None
        self.header_lines: list[bytes] = []  # the lines of the header being submitted (folding)
        self.content_type = b"TEXT"
        self.boundary: bytes | None = None
        self.encoding = parent.encoding if parent else b""  # content-transfer-encoding
        self.child: _Entity | None = None
        self.delay_crlf = False
        self.b64 = bytearray()
        # HTTP_Entity
        self.content_length = -1
        self.expect_data_length = 0
        self.chunked = "none"  # none, before, size, data, data_crlf, trailer, nothing
        self.body_length = 0
        self.zip: Any = None
        self.zip_failed = False
        self.compression = ""
        self.partial = False
        self.offset = 0
        self.instance_length = -1
        self.send_size = True
        self.offset_len = -1  # length of the Content-Range of a 206 reply
        self.file: Any = None

    # -- MIME_Entity::Deliver

    def deliver(self, data: bytes, trailing_crlf: bool) -> None:
        if self.depth == 0:
            self._http_deliver(data, trailing_crlf)
        else:
            self._mime_deliver(data, trailing_crlf)

    def _mime_deliver(self, data: bytes, trailing_crlf: bool) -> None:
        if self.in_header:
            if not data or data[0] == 0:
                self._finish_header()
                self.in_header = False
                self.submit_all_headers()
                if not self.end_of_data:
                    self._begin_body()
            elif data[0] in b" \t":
                if self.header is None:
                    self._new_header(data.lstrip(b" \t"))
                else:
                    self.header.append(data)
            else:  # _new_header(data), inlined: data is not empty here
                self._finish_header()
                self.header = [data]
        else:
            self._new_data_line(data, trailing_crlf)

    def _new_header(self, data: bytes) -> None:
        self._finish_header()
        if data:
            self.header = [data]

    def _finish_header(self) -> None:
        if self.header is None:
            return
        header = self.header
        line = header[0] if len(header) == 1 and header[0].__class__ is bytes else b"".join(header)
        self.header_lines = header
        self.header = None
        name, colon, value = line.partition(b":")
        if not colon or not name:  # no colon, or the line starts with one
            return
        name = name.rstrip(b" \t")
        lname = _FIELD_NAMES.get(name)
        if lname is None:
            if not _FIELD_NAME.fullmatch(name):
                return
            lname = name.lower()
            if len(_FIELD_NAMES) < 4096:
                _FIELD_NAMES[name] = lname
        value = value.lstrip(b" \t\r\n\f\v")
        if lname == b"content-type" or lname == b"content-transfer-encoding":
            self._parse_mime_header(lname, value)
        self.submit_header(name, value, lname)

    def _parse_mime_header(self, lname: bytes, value: bytes) -> None:
        """MIME_Entity::ParseMIMEHeader for ``lname`` (the lower-cased name)."""
        if lname == b"content-type":
            m = _MIME_TYPE.match(value)
            if m is None:
                return
            self.content_type = m.group(1).upper()
            if self.content_type in (b"MULTIPART", b"MESSAGE"):
                self.boundary = _param(value, b"boundary")
        elif lname == b"content-transfer-encoding":
            self.encoding = _token(value)[0].lower()

    def _begin_body(self) -> None:
        if self.content_type == b"MESSAGE":
            self._begin_child()

    def _new_data_line(self, data: bytes, trailing_crlf: bool) -> None:
        if (
            self.content_type == b"MULTIPART"
            and self.boundary is not None
            and data.startswith(b"--")
        ):
            rest = data[2:]
            if rest.startswith(self.boundary):
                after = rest[len(self.boundary) :]
                if self.child is not None:
                    self._end_child()
                if after.startswith(b"--"):
                    self.end_data()
                elif not self.end_of_data:
                    self._begin_child()
                return
        if self.content_type in (b"MULTIPART", b"MESSAGE"):
            if self.child is not None:
                self.child.deliver(data, trailing_crlf)
            return
        self._decode_line(data, trailing_crlf)

    def _begin_child(self) -> None:
        if self.depth >= MAX_MIME_DEPTH:
            return
        self.child = _Entity(self.msg, self, BODY_EXPECTED)
        self.msg.begin_entity(self.child)

    def _end_child(self) -> None:
        child = self.child
        assert child is not None
        child.end_data()
        self.child = None

    def _decode_line(self, data: bytes, trailing_crlf: bool) -> None:
        if self.encoding == b"quoted-printable":
            line = data.rstrip(b" \t")
            soft = line.endswith(b"=")
            decoded = binascii.a2b_qp(line[:-1] if soft else line)
            self.submit_data(decoded if soft else decoded + b"\r\n")
        elif self.encoding == b"base64":
            self.b64 += _NOT_BASE64.sub(b"", data)
            usable = len(self.b64) - len(self.b64) % 4
            if usable:
                chunk = bytes(self.b64[:usable])
                del self.b64[:usable]
                self.submit_data(_b64(chunk))
        else:
            out = b""
            if self.delay_crlf:
                self.delay_crlf = False
                out = b"\r\n"
            out += data
            if trailing_crlf:
                if self.parent is not None and self.parent.content_type == b"MULTIPART":
                    self.delay_crlf = True
                else:
                    out += b"\r\n"
            self.submit_data(out)

    def end_data(self) -> None:
        """MIME_Entity::EndOfData (with HTTP_Entity's decompressor flush)."""
        if self.end_of_data:
            return
        if self.zip is not None:
            try:
                tail = self.zip.flush()
            except zlib.error:
                tail = b""
            self.zip = None
            if tail:
                self._deliver_body_clear(tail, False)
        self.end_of_data = True
        if self.in_header:
            self._finish_header()
            self.in_header = False
            self.submit_all_headers()
        else:
            if self.child is not None:
                self._end_child()
            if self.b64:
                self.submit_data(_b64(bytes(self.b64)))
                self.b64.clear()
        self.msg.end_entity(self)

    # -- HTTP_Entity

    def _http_deliver(self, data: bytes, trailing_crlf: bool) -> None:
        if self.end_of_data:
            return
        if self.in_header:
            self._mime_deliver(data, trailing_crlf)
            return
        if self.content_type in (b"MULTIPART", b"MESSAGE"):
            self._deliver_body(data, trailing_crlf)
            if self.depth == 0 and self.content_length > 0:
                self.expect_data_length -= len(data) + (2 if trailing_crlf else 0)
                if self.expect_data_length <= 0:
                    self.msg.set_plain(0)
                    self.end_data()
        elif self.chunked != "none":
            self._chunked(data, trailing_crlf)
        elif self.content_length >= 0:
            self._deliver_body(data, False)
            self.expect_data_length -= len(data)
            if self.expect_data_length <= 0:
                self.msg.set_plain(0)
                self.msg.lines.delivery_size = None
                self.end_data()
        else:
            self._deliver_body(data, trailing_crlf)

    def _chunked(self, data: bytes, trailing_crlf: bool) -> None:
        if self.chunked == "size":
            size = _atoi(data, 16)
            if size is None:
                self.msg.weird("HTTP_bad_chunk_size", text(data))
                size = 0
            self.expect_data_length = size
            if size > 0:
                self.chunked = "data"
                self.msg.set_plain(size)
            else:
                self.in_header = True
                self.chunked = "trailer"
        elif self.chunked == "data":
            self.expect_data_length -= len(data)
            if self.expect_data_length <= 0:
                self.msg.set_plain(0)
                self.chunked = "data_crlf"
            self._deliver_body(data, False)
        elif self.chunked == "data_crlf":
            self.chunked = "size"

    def _deliver_body(self, data: bytes, trailing_crlf: bool) -> None:
        if self.compression and not self.zip_failed:
            if self.zip is None:
                wbits = 47 if self.compression == "gzip" else 15
                self.zip = zlib.decompressobj(wbits)
            try:
                out = self.zip.decompress(data)
            except zlib.error:
                if (
                    self.compression == "deflate"
                    and self.body_length == 0
                    and self.zip.unused_data == b""
                ):
                    self.zip = zlib.decompressobj(-15)  # raw deflate, as some servers send it
                    try:
                        out = self.zip.decompress(data)
                    except zlib.error:
                        self._zip_failure()
                        return
                else:
                    self._zip_failure()
                    return
            if out:
                self._deliver_body_clear(out, False)
        else:
            self._deliver_body_clear(data, trailing_crlf)

    def _zip_failure(self) -> None:
        self.msg.weird("gzip_failure" if self.compression == "gzip" else "deflate_failure")
        self.zip_failed = True
        self.zip = None

    def _deliver_body_clear(self, data: bytes, trailing_crlf: bool) -> None:
        self.body_length += len(data) + (2 if trailing_crlf else 0)
        if (
            trailing_crlf
            or self.in_header
            or self.delay_crlf
            or self.content_type in (b"MULTIPART", b"MESSAGE")
            or self.encoding in (b"quoted-printable", b"base64")
        ):
            self._mime_deliver(data, trailing_crlf)
        elif data:
            # A plain body run: what _mime_deliver -> _new_data_line -> _decode_line would
            # hand submit_data (the bytes as they are), without the layers.
            if self.compression:
                self.send_size = False
            self.msg.http.file_data(self.msg.is_orig, self, data)
            self.send_size = False

    def submit_header(self, name: bytes, value: bytes, lname: bytes) -> None:
        # Entity-level headers of parts (a part's own Content-Length, encodings) are left alone.
        if self.depth > 0:
            if lname == b"transfer-encoding":
                self.msg.weird("HTTP_nested_transfer_encoding_header")
        else:
            if len(self.header_lines) > 1:
                self.msg.weird("HTTP_obsolete_line_folding", text(name))
            if lname not in _ENTITY_HEADERS:
                pass  # most headers: nothing for the entity to do
            elif lname == b"content-length":
                if self.chunked != "none":
                    self.msg.weird("HTTP_content_length_and_chunked")
                token = _token(value)[0]
                n = _atoi(token, 10) if token else None
                if token:
                    if n is not None and n >= 0:
                        if n > 0 and token.startswith(b"0"):
                            self.msg.weird("HTTP_content_length_leading_zeros", text(token))
                        self.content_length = n
                        if self.partial and self.offset_len != n:
                            self.msg.weird("HTTP_range_not_matching_len")
                            self.content_length = max(self.content_length, self.offset_len)
                    else:
                        self.msg.weird("HTTP_bad_content_length", text(token))
                        self.content_length = 0
            elif lname == b"content-range" and self.msg.http.reply_code == 206:
                self._content_range(value)
            elif lname == b"transfer-encoding":
                http_ = self.msg.http
                version = http_.request_version if http_.request_ongoing else http_.reply_version
                token, rest = _token(value)
                if token.lower() == b"chunked" and version == (1, 1):
                    self.chunked = "before"
                    if rest:
                        self.msg.weird("HTTP_chunked_multi", text(rest))
                    if self.content_length >= 0:
                        self.msg.weird("HTTP_content_length_and_chunked")
            elif lname == b"content-encoding":
                tok = _token(value)[0].lower()
                if tok in (b"gzip", b"x-gzip"):
                    self.compression = "gzip"
                if tok == b"deflate":
                    self.compression = "deflate"
            elif lname == b"expect":
                token = _token(value)[0]
                if token.lower() != b"100-continue":
                    self.msg.weird("HTTP_expect_not_100_continue", text(token))
        msg = self.msg
        msg.http.header(msg.is_orig, name, value, lname)

    def _content_range(self, value: bytes) -> None:
        unit, rest = _token(value)
        byte_range = rest.replace(b" ", b"")
        if unit != b"bytes":
            self.msg.weird("HTTP_content_range_unknown_byte_unit")
            return
        m = re.fullmatch(rb"(\d+)-(\d+)/(\d+|\*)", byte_range)
        if m is None:
            self.msg.weird("HTTP_content_range_cannot_parse")
            return
        first, last = int(m.group(1)), int(m.group(2))
        if last < first:
            self.msg.weird("HTTP_non_positive_content_range", text(byte_range))
            return
        length = last - first + 1
        if m.group(3) != b"*":
            self.instance_length = int(m.group(3))
        self.partial = True
        self.offset = first
        self.offset_len = length
        if self.content_length > 0:
            if self.content_length != length:
                self.msg.weird("HTTP_range_not_matching_len")
                self.content_length = max(self.content_length, length)
        else:
            self.content_length = length

    def submit_all_headers(self) -> None:
        if self.depth > 0:
            if self.parent is not None and self.parent.content_type == b"MULTIPART":
                self.msg.lines.crlf_only = True
            return
        if self.parent is not None and self.parent.content_type == b"MULTIPART":
            self.msg.lines.crlf_only = True
        if self.content_length >= 0:
            self.msg.lines.delivery_size = self.content_length
        if self.chunked == "trailer":
            self.chunked = "nothing"
            self.end_data()
            return
        if self.expect_body == BODY_NOT_EXPECTED:
            self.end_data()
            return
        if self.content_type in (b"MULTIPART", b"MESSAGE"):
            if self.depth == 0 and self.content_length >= 0:
                if self.content_length > 0:
                    self.expect_data_length = self.content_length
                else:
                    self.end_data()
        elif self.chunked != "none":
            self.chunked = "size"
        elif self.content_length >= 0:
            if self.content_length > 0:
                self.expect_data_length = self.content_length
                self.msg.set_plain(self.content_length)
            else:
                self.end_data()
        elif self.msg.http.connection_close or self.compression:
            self.expect_data_length = INF
            self.msg.set_plain(INF)
        elif self.expect_body != BODY_EXPECTED:
            self.end_data()

    def submit_data(self, data: bytes) -> None:
        if not data:
            return
        if self.compression:
            self.send_size = False
        self.msg.file_data(self, data)
        self.send_size = False

    def undelivered(self, length: int) -> bool:
        """A content gap: True when it falls inside a body we can skip over."""
        if (self.end_of_data and self.in_header) or self.body_length == 0:
            return False
        self.msg.file_gap(self, length)
        if self.chunked != "none":
            if self.chunked == "data" and self.expect_data_length >= length:
                self.body_length += length
                self.expect_data_length -= length
                self.msg.set_plain(self.expect_data_length)
                if self.expect_data_length == 0:
                    self.chunked = "data_crlf"
                return True
            return False
        if self.content_length >= 0 and self.expect_data_length >= length:
            self.body_length += length
            self.expect_data_length -= length
            self.msg.set_plain(self.expect_data_length)
            if self.expect_data_length <= 0:
                self.end_data()
            return True
        return False


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return b""


class _Message:
    """One HTTP request or reply (Zeek's HTTP_Message)."""

    def __init__(self, http: HttpAnalyzer, is_orig: bool, expect_body: int) -> None:
        self.http = http
        self.is_orig = is_orig
        self.lines = http.lines[is_orig]
        self.finished = False
        self.body_length = 0
        self.top = _Entity(self, None, expect_body)
        self.current: _Entity | None = None
        self.begin_entity(self.top)

    def deliver(self, data: bytes, trailing_crlf: bool) -> None:
        self.top.deliver(data, trailing_crlf)

    def weird(self, name: str, addl: str = "") -> None:
        self.http.ctx.weird(name, addl, ts=self.http.ts)

    def set_plain(self, n: int) -> None:
        self.lines.plain = n

    def begin_entity(self, entity: _Entity) -> None:
        self.current = entity
        self.http.begin_entity(self.is_orig)

    def end_entity(self, entity: _Entity) -> None:
        if entity is self.top:
            self.body_length += entity.body_length
        self.http.end_entity(self.is_orig)
        self.current = entity.parent
        if entity.parent is not None and entity.parent.content_type == b"MULTIPART":
            self.lines.crlf_only = False
        if entity.file is not None:
            self.http.end_file(entity)
        if entity is self.top:
            self.done(False)

    def file_data(self, entity: _Entity, data: bytes) -> None:
        self.http.file_data(self.is_orig, entity, data)

    def file_gap(self, entity: _Entity, length: int) -> None:
        if entity.file is not None:
            entity.file.gap(length, self.http.ts)
            if entity.partial:
                entity.offset += length

    def done(self, interrupted: bool) -> None:
        if self.finished:
            return
        self.finished = True
        self.top.end_data()
        self.http.message_done(self.is_orig, self.body_length, interrupted)

    def undelivered(self, length: int) -> bool:
        entity = self.current or self.top
        return entity.undelivered(length)


# ----------------------------------------------------------------------------- the analyzer


class _Side:
    """Routes one direction's lines and raw runs to the analyzer."""

    def __init__(self, http: HttpAnalyzer, is_orig: bool) -> None:
        self.http = http
        self.is_orig = is_orig

    def line(self, data: bytes, trailing_crlf: bool) -> None:
        http = self.http
        # A header line of a message under way goes straight to its top entity: the checks of
        # deliver -> _request_side/_reply_side -> _Message.deliver -> _Entity.deliver ->
        # _http_deliver, done here once (an empty line, which ends the headers, and every
        # other case take that path).
        if data and not http.upgraded and not http.finished:
            if self.is_orig:
                msg = http.request_message if http.request_state == "message" else None
            else:
                msg = http.reply_message if http.reply_state == "message" else None
            if msg is not None:
                top = msg.top
                if top.in_header and not top.end_of_data:
                    if data[0] in _HEADER_START_SPECIAL:  # NUL, or a folded continuation
                        top._mime_deliver(data, True)
                    else:  # a new header: _mime_deliver's last branch
                        top._finish_header()
                        top.header = [data]
                    return
        http.deliver(self.is_orig, data, trailing_crlf, plain=False)

    def plain(self, data: bytes) -> None:
        http = self.http
        # Body bytes of a message under way go straight to its top entity (deliver's plain
        # branch -> _Message.deliver -> _Entity.deliver, whose checks are these).
        if not http.upgraded and not http.finished:
            if self.is_orig:
                msg = http.request_message
            else:
                msg = http.reply_message if http.reply_state != "http09" else None
            if msg is not None:
                msg.top._http_deliver(data, False)
                return
        http.deliver(self.is_orig, data, False, plain=True)

    def weird(self, name: str) -> None:
        # Raised by Zeek's ContentLine support analyzer, which names itself as the source.
        self.http.ctx.weird(name, ts=self.http.ts, source="CONTENTLINE")


class HttpAnalyzer:
    """One per TCP connection; gets each direction's reassembled bytes in order."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.ts = 0.0
        self.lines = {True: _Lines(_Side(self, True)), False: _Lines(_Side(self, False))}
        self.request_state = "line"  # line, message, nothing
        self.reply_state = "line"  # line, message, http09, nothing
        self.request_message: _Message | None = None
        self.reply_message: _Message | None = None
        self.num_requests = 0
        self.num_replies = 0
        self.keep_alive = False
        self.connection_close = False
        self.request_ongoing = False
        self.reply_ongoing = False
        self.reply_code = 0
        self.reply_reason: bytes | None = None
        self.request_version = (0, 0)
        self.reply_version = (0, 0)
        self.request_method: bytes | None = None
        self.request_uri = b""
        self.unanswered: deque[bytes] = deque()
        self.connect_request = False
        self.upgraded = False
        self.upgrade_connection = False
        self.upgrade_protocol = b""
        self.finished = False
        self.confirmed = False
        self.announced_fuids: set[str] = set()
        # script state (HTTP::State)
        self.pending: dict[int, _Info] = {}
        self.current_request = 0
        self.current_response = 0
        self.trans_depth = 0
        self.info: _Info | None = None  # c$http
        self.websocket: websocket.WebSocketInfo | None = None  # c$websocket
        self.upgrade_child: ChildAnalyzer | None = None  # what an upgrade handed the stream to
        # Policy scripts' http_header / http_message_done handlers (e.g. software.py).
        state = getattr(ctx, "shared_state", None) or {}
        self.script_handlers: tuple[Any, ...] = tuple(state.get(SCRIPT_HANDLERS_KEY, ()))

    # -- AppAnalyzer

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.ts = ts
        if self.finished:
            return
        if self.upgrade_child is not None:
            self.upgrade_child.data(is_orig, data, ts)
            return
        self.lines[is_orig].feed(data)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.ts = ts
        if self.finished or self.upgraded:
            return
        lines = self.lines[is_orig]
        msg = self.request_message if is_orig else self.reply_message
        if msg is not None and not msg.finished and msg.undelivered(length):
            return
        if is_orig:
            self.request_made(True)
            self.reply_made(True)
        else:
            self.reply_made(True)
        lines.skip = True

    def end(self, ts: float) -> None:
        self.ts = ts
        if self.finished:
            return
        for is_orig in (True, False):
            self.lines[is_orig].flush()
        self.request_made(True)
        self.reply_made(True)
        self.finished = True
        if self.upgrade_child is not None:
            self.upgrade_child.end(ts)
        for index in sorted(self.pending):
            if index != 0:
                self._write(self.pending[index])
        self.pending.clear()

    def _confirm(self) -> None:
        self.confirmed = True
        self.ctx.confirm("http")

    def _violation(self, reason: str) -> None:
        # Zeek's baselines: a violation before the analyzer confirmed HTTP changes nothing (no
        # analyzer.log row, the replies are still parsed and logged: http-methods); after
        # confirmation DPD removes the analyzer (http-11-request-then-cruft).
        if self.confirmed:
            self.ctx.violation(reason)

    # -- HTTP_Analyzer::DeliverStream, per line or raw run

    def deliver(self, is_orig: bool, data: bytes, trailing_crlf: bool, plain: bool) -> None:
        if self.upgraded or self.finished:
            return
        if not is_orig and self.reply_state == "http09":
            self._http09_data(data)
            return
        if plain:
            msg = self.request_message if is_orig else self.reply_message
            if msg is not None:
                msg.deliver(data, False)
            else:
                self.ctx.weird(
                    "unexpected_client_HTTP_data" if is_orig else "unexpected_server_HTTP_data",
                    ts=self.ts,
                )
            return
        if is_orig:
            self._request_side(data, trailing_crlf)
        else:
            self._reply_side(data, trailing_crlf)

    def _request_side(self, line: bytes, trailing_crlf: bool) -> None:
        if self.request_state == "line":
            res = self._request_line(line)
            if res > 0:
                self.num_requests += 1
                if not self.keep_alive and self.num_requests > 1:
                    self.ctx.weird("unexpected_multiple_HTTP_requests", ts=self.ts)
                self.request_state = "message"
                self.request_ongoing = True
                assert self.request_method is not None
                self.unanswered.append(self.request_method)
                self._http_request()
                self.request_message = self._new_message(self.request_message, True, BODY_MAYBE)
                if self.request_version == (0, 9):
                    if self.request_method != b"GET":
                        self.ctx.weird(
                            "invalid_http_09_request_method", text(self.request_method), ts=self.ts
                        )
                    if self.reply_message is not None:
                        self.ctx.weird("http_09_reply_before_request", ts=self.ts)
                        self.reply_message.done(False)
                        self.reply_message = None
                    self.reply_state = "http09"
                    self.lines[False].raw = True
                    self.lines[False].pump()
            elif res == 0:
                if not (self.num_requests == 0 or self.keep_alive):
                    pass  # crud_trailing_HTTP_request: an http_event, nothing logged
                elif not line:
                    self.ctx.weird("empty_http_request", ts=self.ts)
                else:
                    self._violation("not a http request line")
                    self.request_state = "nothing"
        elif self.request_state == "message":
            assert self.request_message is not None
            self.request_message.deliver(line, True)

    def _reply_side(self, line: bytes, trailing_crlf: bool) -> None:
        if self.reply_state == "line":
            if self._reply_line(line):
                self.num_replies += 1
                if self.unanswered:
                    self._confirm()
                self.reply_state = "message"
                self.reply_ongoing = True
                self._http_reply()
                if self.connect_request and self.reply_code != 200:
                    self.connect_request = False
                self.reply_message = self._new_message(
                    self.reply_message, False, self._expect_reply_body()
                )
            elif line:
                self._violation("not a http reply line")
                self.reply_state = "nothing"
        elif self.reply_state == "message":
            assert self.reply_message is not None
            self.reply_message.deliver(line, True)
            if self.connect_request and not line and not self.upgraded:
                # End of a successful CONNECT reply's headers: the rest is tunnelled traffic.
                self.upgraded = True

    def _http09_data(self, data: bytes) -> None:
        if self.reply_message is None:
            self._set_version("reply", (0, 9))
            if self.unanswered:
                self._confirm()
                self.unanswered.popleft()
            self.connection_close = True
            self.reply_ongoing = True
            self._http_reply()
            self.reply_message = _Message(self, False, self._expect_reply_body())
            self.reply_message.deliver(b"", True)
        self.reply_message.deliver(data, False)

    def _new_message(self, old: _Message | None, is_orig: bool, expect_body: int) -> _Message:
        if old is not None and not old.finished:
            self.ctx.weird("HTTP_overlapping_messages", ts=self.ts)
        return _Message(self, is_orig, expect_body)

    def _request_line(self, line: bytes) -> int:
        end_method = _TOKEN_CHARS.match(line).end()
        if end_method == 0:
            if len(line) >= 9 and line[-9:-3].lower() == b" http/":
                self.ctx.weird("bad_HTTP_request_with_version", ts=self.ts)
            else:
                self.ctx.weird("bad_HTTP_request", ts=self.ts)
            return 0
        rest = end_method
        while rest < len(line) and line[rest] in b" \t":
            rest += 1
        if rest == end_method:
            self.ctx.weird("bad_HTTP_request", ts=self.ts)
            return 0
        uri = self._parse_request(line, rest)
        if self.request_version == (0, 9) and (end_method < 3 or not uri):
            self.ctx.weird("bad_HTTP_request", ts=self.ts)
            return 0
        self.request_method = line[:end_method]
        self.request_uri = uri
        return 1

    def _parse_request(self, line: bytes, start: int) -> bytes:
        end = len(line)
        end_uri = _URI_CHARS.match(line, start).end()
        match = line[start : start + 5]
        if match != b"HTTP/" and match.upper() == b"HTTP/":
            self.ctx.weird("lowercase_HTTP_keyword", ts=self.ts)
        if end_uri >= end and match.upper() == b"HTTP/":
            self.ctx.weird("missing_HTTP_uri", ts=self.ts)
            end_uri = start
        version_start = end_uri
        while version_start < end:
            end_uri = version_start
            while version_start < end and line[version_start] in b" \t":
                version_start += 1
            word = line[version_start : version_start + 5]
            if word == b"HTTP/":
                break
            if word.upper() == b"HTTP/":
                self.ctx.weird("lowercase_HTTP_keyword", ts=self.ts)
                break
            version_start += 1
        if version_start >= end:
            self._set_version("request", (0, 9))
        elif version_start + 8 <= end:
            self._set_version("request", _http_version(line[version_start + 5 :]))
        return line[start:end_uri]

    def _set_version(self, which: str, new: tuple[int, int]) -> None:
        attr = f"{which}_version"
        old = getattr(self, attr)
        if old != (0, 0) and old != new:
            self.ctx.weird("HTTP_version_mismatch", ts=self.ts)
        setattr(self, attr, new)
        if new[0] > 1 or (new[0] == 1 and new[1] > 0):
            self.keep_alive = True

    def _reply_line(self, line: bytes) -> bool:
        if line[:5].upper() != b"HTTP/":
            return False
        if line[:5] != b"HTTP/":
            self.ctx.weird("lowercase_HTTP_keyword", ts=self.ts)
        self._set_version("reply", _http_version(line[5:]))
        i = 5
        while i < len(line) and line[i] not in b" \t":
            i += 1
        if i >= len(line):
            return False
        while i < len(line) and line[i] in b" \t":
            i += 1
        if i + 3 > len(line):
            return False
        code = line[i : i + 3]
        self.reply_code = int(code) if code.isdigit() else 0
        i += 3
        while i < len(line) and line[i] not in b" \t":
            i += 1
        if i >= len(line):
            self.reply_reason = None
            return True
        while i < len(line) and line[i] in b" \t":
            i += 1
        self.reply_reason = line[i:]
        return True

    def _expect_reply_body(self) -> int:
        method = self.unanswered[0] if self.unanswered else None
        if method is not None and method.upper() == b"HEAD":
            return BODY_NOT_EXPECTED
        if 100 <= self.reply_code < 200 or self.reply_code in (204, 304):
            return BODY_NOT_EXPECTED
        return BODY_EXPECTED

    def request_made(self, interrupted: bool) -> None:
        if not self.request_ongoing:
            return
        self.request_ongoing = False
        if self.request_message is not None:
            self.request_message.done(interrupted)
        self.request_method = None
        self.request_state = "nothing" if interrupted else "line"

    def reply_made(self, interrupted: bool) -> None:
        if not self.reply_ongoing:
            return
        self.reply_ongoing = False
        if self.reply_message is not None:
            self.reply_message.done(interrupted)
        if (self.reply_code < 100 or self.reply_code >= 200) and self.unanswered:
            self.unanswered.popleft()
        self.reply_reason = None
        if (
            self.reply_code == 101
            and len(self.unanswered) == 1
            and self.upgrade_connection
            and self.upgrade_protocol
        ):
            self.upgraded = True  # the rest of the connection is the upgraded protocol's
            self.upgrade_child = websocket.upgrade(
                self.ctx, self.upgrade_protocol, self.websocket, self.ts, self.info
            )
        self.reply_code = 0
        self.upgrade_connection = False
        self.upgrade_protocol = b""
        self.reply_state = "nothing" if interrupted or self.upgraded else "line"

    def message_done(self, is_orig: bool, body_length: int, interrupted: bool) -> None:
        info = self._set_state(is_orig)
        for handler in self.script_handlers:  # http_message_done in policy scripts
            handler.http_message_done(self, is_orig)
        if is_orig:
            info.request_body_len = body_length
        else:
            info.response_body_len = body_length
            if not (info.status_code is not None and 100 <= info.status_code <= 199):
                self._write(info)
                self.pending.pop(self.current_response, None)
        # HTTP_MessageDone: a no-op when the message ended because the request/reply was cut short.
        if is_orig:
            self.request_made(False)
        else:
            self.reply_made(False)

    # -- header handling (HTTP_Analyzer::HTTP_Header + the scripts' http_header handlers)

    def header(self, is_orig: bool, name: bytes, value: bytes, lname: bytes) -> None:
        """One header of a message (``lname``: its name lower-cased)."""
        if lname == b"connection":
            token = _token(value)[0].lower()
            if is_orig:
                if token == b"keep-alive":
                    self.keep_alive = True
            elif token == b"close":
                self.connection_close = True
            elif token == b"upgrade":
                self.upgrade_connection = True
        elif lname == b"upgrade" and not is_orig:
            self.upgrade_protocol = _token(value)[0]
        elif lname.startswith(b"sec-websocket-"):  # websocket/main.zeek's http_header
            self.websocket = websocket.header(
                self.websocket, self.ctx, self.ts, is_orig, lname, value
            )
        # _set_state(is_orig), inlined
        index = self.current_request if is_orig else self.current_response
        info = self.pending.get(index)
        if info is None:
            info = self.pending[index] = self._new_session()
        self.info = info
        # The scripts compare the upper-cased name; names are printable ASCII, so comparing
        # the lower-cased bytes is the same test.
        if is_orig and lname in _REQUEST_SCRIPT_HEADERS:
            if lname == b"referer":
                info.referrer = text(value)
            elif lname == b"host":
                info.host = text(value)
            elif lname == b"range":
                info.range_request = True
            elif lname == b"origin":
                info.origin = text(value)
            elif lname == b"user-agent":
                info.user_agent = text(value)
            elif lname in _PROXY_LNAMES:
                info.proxied = info.proxied or []
                entry = f"{text(name).upper()} -> {text(value)}"
                if entry not in info.proxied:
                    info.proxied.append(entry)
            else:  # authorization, proxy-authorization
                self._basic_auth(info, value)
        for handler in self.script_handlers:  # policy scripts, after main.zeek's handler
            handler.http_header(self, is_orig, lname, value)
        # entities.zeek
        ent = info.current_entity
        if ent is None:
            self.ctx.weird("missing_HTTP_entity", ts=self.ts)
            return
        if (
            lname == b"content-disposition"
            and _CD_FILENAME.search(value)
            or lname == b"content-type"
            and _CT_NAME.search(value)
        ):
            ent.filename = filename_from_disposition(value)

    def _basic_auth(self, info: _Info, value: bytes) -> None:
        if not re.match(rb"[bB][aA][sS][iI][cC] ", value):
            return
        encoded = re.sub(rb"[bB][aA][sS][iI][cC][ \t]+", b"", value, count=1)
        try:
            userpass = base64.b64decode(encoded + b"=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            self.ctx.weird("base64_illegal_encoding", ts=self.ts)
            userpass = b""
        user, sep, _password = userpass.partition(b":")
        if sep:
            info.username = text(user)
        else:
            info.username = f"<problem-decoding> ({text(value)})"

    # -- the scripts' bookkeeping

    def _new_session(self) -> _Info:
        self.trans_depth += 1
        return _Info(ts=self.ts, trans_depth=self.trans_depth)

    def _set_state(self, is_orig: bool) -> _Info:
        index = self.current_request if is_orig else self.current_response
        info = self.pending.get(index)
        if info is None:
            info = self.pending[index] = self._new_session()
        self.info = info
        return info

    def _http_request(self) -> None:
        self._confirm()
        self.websocket = None  # websocket/main.zeek's http_request handler
        method = self.request_method or b""
        if method and b"CONNECT".startswith(
            method.upper()
        ):  # Zeek's strncasecmp over the method's length
            self.connect_request = True
        if self.current_request < self.current_response:
            self.ctx.weird("HTTP_response_before_request", ts=self.ts)
            self.current_request = self.current_response
        if len(self.pending) > MAX_PENDING_REQUESTS:
            self.ctx.weird("HTTP_excessive_pipelining", ts=self.ts)
            if self.current_response == 0:
                self.current_response += 1
            while self.current_response < self.current_request:
                info = self.pending.pop(self.current_response, None)
                if info is not None:
                    self._write(info)
                self.current_response += 1
        self.current_request += 1
        info = self._set_state(True)
        info.method = text(method)
        info.uri = text(unescape_uri(self.request_uri))
        if info.method not in HTTP_METHODS:
            # http/main.zeek's Reporter::conn_weird: a script-level weird, no source.
            self.ctx.weird("unknown_HTTP_method", info.method, ts=self.ts, source="")

    def _http_reply(self) -> None:
        cur = self.pending.get(self.current_response)
        if cur is None or (cur.status_code is not None and not 100 <= cur.status_code <= 199):
            self.current_response += 1
        info = self._set_state(False)
        reason = text(self.reply_reason) if self.reply_reason is not None else "<empty>"
        info.status_code = self.reply_code
        info.status_msg = reason
        info.version = f"{self.reply_version[0]}.{self.reply_version[1]}"
        if 100 <= self.reply_code <= 199:
            info.info_code = self.reply_code
            info.info_msg = reason

    def begin_entity(self, is_orig: bool) -> None:
        info = self._set_state(is_orig)
        if is_orig:
            info.orig_mime_depth += 1
        else:
            info.resp_mime_depth += 1
        info.current_entity = _ScriptEntity()

    def end_entity(self, is_orig: bool) -> None:
        if self.info is not None:
            self.info.current_entity = None

    # -- files

    def file_data(self, is_orig: bool, entity: _Entity, data: bytes) -> None:
        if entity.file is None or entity.file.done:  # new, or timed out while idle: a new file
            entity.file = self._new_file(is_orig, entity)
            if entity.file is None:
                return
            if entity.partial and entity.send_size and entity.instance_length > 0:
                entity.file.set_total(entity.instance_length)
            elif not entity.partial and entity.send_size and entity.content_length > 0:
                entity.file.set_total(entity.content_length)
        if entity.partial:
            entity.file.data(data, self.ts, offset=entity.offset)
            entity.offset += len(data)
        else:
            entity.file.data(data, self.ts)

    def _new_file(self, is_orig: bool, entity: _Entity) -> Any:
        files = self.ctx.files
        if files is None:
            raise RuntimeError(
                "the engine context has no file manager; HTTP needs one for its entities"
            )
        info = self.info if self.info is not None else self._set_state(is_orig)
        filename = info.current_entity.filename if info.current_entity is not None else None

        def sniffed(
            handle: Any, mime: str | None, info: _Info = info, is_orig: bool = is_orig
        ) -> None:
            if mime is None:
                return
            types = info.orig_mime_types if is_orig else info.resp_mime_types
            if types is not None and len(types) >= MAX_FILES_PER_SIDE:
                return
            if is_orig:
                info.orig_mime_types = (types or []) + [mime]
            else:
                info.resp_mime_types = (types or []) + [mime]

        # HTTP::get_file_handle: the byte ranges of one URL are pieces of one file, across
        # replies and connections; every other entity is a file of its own.
        key = None
        if info.range_request and not is_orig:
            key = ("HTTP", is_orig, self.ctx.conn_id.orig_h, build_url(info, self.ctx.conn_id))
        handle = files.new_file(
            source="HTTP",
            ts=self.ts,
            is_orig=is_orig,
            uid=self.ctx.uid,
            conn_id=self.ctx.conn_id,
            filename=filename,
            on_sniff=sniffed,
            key=key,
        )
        if handle.fuid in self.announced_fuids:
            return handle  # file_over_new_connection fires once per connection
        self.announced_fuids.add(handle.fuid)
        fuids = info.orig_fuids if is_orig else info.resp_fuids
        if fuids is None or len(fuids) < MAX_FILES_PER_SIDE:
            if is_orig:
                info.orig_fuids = (info.orig_fuids or []) + [handle.fuid]
                if filename is not None:
                    info.orig_filenames = (info.orig_filenames or []) + [filename]
            else:
                info.resp_fuids = (info.resp_fuids or []) + [handle.fuid]
                if filename is not None:
                    info.resp_filenames = (info.resp_filenames or []) + [filename]
        return handle

    def end_file(self, entity: _Entity) -> None:
        # Zeek leaves the file of a 206 reply open (more ranges may come): it ends with the trace.
        if (
            entity.file is not None
            and not entity.file.done
            and (entity.msg.is_orig or self.reply_code != 206)
        ):
            entity.file.end(self.ts)

    # -- output

    def _write(self, info: _Info) -> None:
        self.ctx.emit("http", self.record(info))

    def record(self, info: _Info) -> Record:
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "trans_depth": info.trans_depth,
            "method": info.method,
            "host": info.host,
            "uri": info.uri,
            "referrer": info.referrer,
            "version": info.version,
            "user_agent": info.user_agent,
            "origin": info.origin,
            "request_body_len": info.request_body_len,
            "response_body_len": info.response_body_len,
            "status_code": info.status_code,
            "status_msg": info.status_msg,
            "info_code": info.info_code,
            "info_msg": info.info_msg,
            "tags": [],
            "username": info.username,
            "password": info.password,
            "proxied": info.proxied,
            "orig_fuids": info.orig_fuids,
            "orig_filenames": info.orig_filenames,
            "orig_mime_types": info.orig_mime_types,
            "resp_fuids": info.resp_fuids,
            "resp_filenames": info.resp_filenames,
            "resp_mime_types": info.resp_mime_types,
        }


def build_url(info: _Info, conn_id: ConnId) -> str:
    """HTTP::build_url: host (or the server's address), port when not 80, and the URI."""
    uri = info.uri if info.uri is not None else "/<missed_request>"
    if "://" in uri:
        return uri
    host = info.host
    if host is None:
        host = f"[{conn_id.resp_h}]" if ":" in conn_id.resp_h else conn_id.resp_h
    if conn_id.resp_p != 80:
        host = f"{host}:{conn_id.resp_p}"
    return f"{host}{uri}"


def _http_version(data: bytes) -> tuple[int, int]:
    if len(data) >= 3 and data[:1].isdigit() and data[1:2] == b"." and data[2:3].isdigit():
        return int(data[0:1]), int(data[2:3])
    return (0, 0)


def sniff_http(orig: bytes, resp: bytes) -> bool:
    """Zeek's dpd_http_client / dpd_http_server signatures: either side looks like HTTP."""
    return bool(_DPD_CLIENT.match(orig) or _DPD_SERVER.match(resp))


SPEC = register(
    AnalyzerSpec(
        name="http",
        transports=frozenset({"tcp"}),
        ports=frozenset({80, 81, 631, 1080, 3128, 8000, 8080, 8888}),
        factory=HttpAnalyzer,
        sniff=sniff_http,
    )
)
