"""DNS (UDP, TCP, mDNS, LLMNR, NetBIOS name service) -> dns.log, as Zeek's DNS analyzer writes it.

Two halves, kept apart so each can be tested alone:

* :func:`parse_message` decodes one DNS message the way Zeek's ``DNS_Interpreter`` does (which
  sections it reads, how names are lower-cased, how each RR type is summarised for the log,
  where parsing stops on malformed data);
* :class:`DnsAnalyzer` replays the scripts' pairing logic (``base/protocols/dns/main.zeek``):
  queries and replies matched by transaction id with FIFO queues per id, multicast destinations
  never paired, unmatched messages logged when the connection goes away.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wirestream.processors.engine.api import (
    AnalyzerContext,
    AnalyzerSpec,
    Record,
    register,
)
from wirestream.schemas.zeeklog.escape import bytes_text as text
from wirestream.schemas.zeeklog.escape import text_bytes

log = logging.getLogger(__name__)

NETBIOS_PORT = 137
MAX_QUERIES = 25  # Zeek's dns_max_queries
MAX_COMPRESSION_DEPTH = 100  # Zeek's dns_max_compression_chain_depth
MAX_PENDING_MSGS = 50
MAX_PENDING_QUERY_IDS = 50
UDP_PORTS = frozenset({53, 137, 5353, 5355})  # DNS::ports
TCP_PORTS = frozenset({53})

OP_QUERY, OP_NOTIFY, OP_UPDATE = 0, 4, 5
TRACKED_OPCODES = frozenset({OP_QUERY, OP_NOTIFY, OP_UPDATE})

# answer_type values of Zeek's dns_answer record
ANS, AUTH, ADDL, PREREQ, UPDATE = "ans", "auth", "addl", "prereq", "update"

CLASS_NONE, CLASS_ANY = 254, 255
TYPE_ANY = 255

MULTICAST = (ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8"))

QUERY_TYPES: dict[int, str] = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP",
    18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR", 24: "SIG",
    25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC",
    33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK",
    41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC",
    48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA",
    55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY",
    61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF",
    100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64",
    107: "LP", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR",
    253: "MAILB", 254: "MAILA", 255: "*", 256: "URI", 257: "CAA", 32768: "TA", 32769: "DLV",
    65281: "WINS", 65282: "WINS-R", 65422: "XPF", 65521: "INTEGRITY",
}  # fmt: skip

RCODES: dict[int, str] = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSet", 9: "NOTAUTH", 10: "NOTZONE",
    11: "unassigned-11", 12: "unassigned-12", 13: "unassigned-13", 14: "unassigned-14",
    15: "unassigned-15", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE",
    20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE", 3842: "BADSIG",
}  # fmt: skip

CLASSES = {1: "C_INTERNET", 2: "C_CSNET", 3: "C_CHAOS", 4: "C_HESIOD", 254: "C_NONE", 255: "C_ANY"}
OPCODES = {0: "query", 1: "iquery", 2: "server-status", 4: "notify", 5: "dynamic-update", 6: "dso"}
NETBIOS_OPCODES = {
    0: "netbios-query",
    5: "netbios-registration",
    6: "netbios-release",
    7: "netbios-wack",
    8: "netbios-refresh",
}


def qtype_name(n: int) -> str:
    return QUERY_TYPES.get(n, f"query-{n}")


def rcode_name(n: int) -> str:
    return RCODES.get(n, f"rcode-{n}")


def qclass_name(n: int) -> str:
    return CLASSES.get(n, f"qclass-{n}")


def opcode_name(n: int, netbios: bool) -> str:
    if netbios:
        return NETBIOS_OPCODES.get(n, f"netbios-opcode-{n}")
    return OPCODES.get(n, f"opcode-{n}")


def decode_netbios_name(name: str) -> str:
    """First-level NetBIOS name decoding (RFC 1001 'half-ASCII'), as Zeek's decode_netbios_name."""
    raw = text_bytes(name)
    if len(raw) != 32:
        return ""
    out = bytearray()
    for i in range(16):
        c0, c1 = chr(raw[2 * i]).upper(), chr(raw[2 * i + 1]).upper()
        if not ("A" <= c0 <= "P" and "A" <= c1 <= "P"):
            return ""
        b = ((ord(c0) - 65) << 4) + (ord(c1) - 65)
        ch = chr(b)
        if ch.isascii() and (ch.isalnum() or _is_punct(b) or b == 0x20 or b < 3):
            out.append(b)
        else:
            break
    length = len(out)
    if length == 16:
        length = 15  # the 16th byte is the name type suffix
    while length and out[length - 1] in (0x20, 0x00):
        length -= 1
    return text(bytes(out[:length]))


def _is_punct(b: int) -> bool:
    return 0x21 <= b <= 0x7E and not chr(b).isalnum()


@dataclass(slots=True)
class Header:
    id: int
    qr: bool
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    z: int
    rcode: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int

    @classmethod
    def parse(cls, data: bytes) -> Header:
        ident, flags, qd, an, ns, ar = struct.unpack_from("!6H", data)
        return cls(
            id=ident,
            qr=bool(flags & 0x8000),
            opcode=(flags & 0x7800) >> 11,
            aa=bool(flags & 0x0400),
            tc=bool(flags & 0x0200),
            rd=bool(flags & 0x0100),
            ra=bool(flags & 0x0080),
            z=(flags & 0x0070) >> 4,
            rcode=flags & 0x000F,
            qdcount=qd,
            ancount=an,
            nscount=ns,
            arcount=ar,
        )


@dataclass(slots=True)
class Question:
    name: str  # lower-cased, as Zeek hands it to dns_request
    qtype: int
    qclass: int


@dataclass(slots=True)
class Answer:
    section: str
    name: str
    rtype: int
    rclass: int
    ttl: int
    reply: str | None  # what the scripts log for this RR; None: the scripts log nothing for it


@dataclass(slots=True)
class Message:
    header: Header
    questions: list[Question] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    confirmed: bool = False  # questions and answers parsed: Zeek's AnalyzerConfirmation
    too_many_queries: bool = False
    log_end: bool = True  # False only where Zeek returns without raising dns_end
    ignored: bool = False  # an opcode Zeek does not parse at all (no dns_message)
    weirds: list[tuple[str, str]] = field(default_factory=list)


class _Malformed(Exception):
    """Parsing stops here; what was parsed before still counts (Zeek's 'return false')."""


class _Reader:
    """Cursor over one DNS message with Zeek's name-decompression rules."""

    def __init__(
        self, msg: bytes, netbios: bool, netbios_resp: bool, weirds: list[tuple[str, str]]
    ) -> None:
        self.msg = msg
        self.pos = 12
        self.netbios = netbios
        self.netbios_resp = netbios_resp
        self.weirds = weirds

    @property
    def left(self) -> int:
        return len(self.msg) - self.pos

    def weird(self, name: str, addl: str = "") -> None:
        self.weirds.append((name, addl))

    def u8(self) -> int:
        if self.left < 1:
            return 0
        self.pos += 1
        return self.msg[self.pos - 1]

    def u16(self) -> int:
        if self.left < 2:
            return 0
        self.pos += 2
        return struct.unpack_from("!H", self.msg, self.pos - 2)[0]

    def u32(self) -> int:
        if self.left < 4:
            return 0
        self.pos += 4
        return struct.unpack_from("!I", self.msg, self.pos - 4)[0]

    def take(self, n: int) -> bytes:
        n = max(0, min(n, self.left))
        self.pos += n
        return self.msg[self.pos - n : self.pos]

    def name(self, downcase: bool = True) -> str:
        labels = self._labels(self.pos, len(self.msg), 0, downcase)
        raw = b"".join(labels)
        if len(raw) >= 255:
            self.weird("DNS_NAME_too_long")
        if len(raw) >= 2 and raw.endswith(b"."):
            raw = raw[:-1]
        return text(raw)

    def _labels(self, start: int, end: int, depth: int, downcase: bool) -> list[bytes]:
        """Labels (each with its trailing dot) from ``start``; advances self.pos at depth 0."""
        if depth > MAX_COMPRESSION_DEPTH:
            self.weird("DNS_max_compression_chain_depth_exceeded")
            return []
        out: list[bytes] = []
        pos = start
        total = 0
        while True:
            if pos >= end:
                self.weird("dns_invalid_name")
                raise _Malformed
            label_len = self.msg[pos]
            pos += 1
            if label_len == 0:
                break
            if label_len & 0xC0 == 0xC0:
                if pos >= end:
                    self.weird("dns_invalid_name")
                    raise _Malformed
                offset = ((label_len & 0x3F) << 8) | self.msg[pos]
                pos += 1
                here = pos - 2
                if offset >= here:
                    self.weird("DNS_label_forward_compress_offset")
                    raise _Malformed
                out.extend(self._labels(offset, here, depth + 1, True))
                break
            if label_len > end - pos:
                self.weird("DNS_label_len_gt_pkt")
                if depth == 0:
                    self.pos = end
                raise _Malformed
            if label_len > 63 and not self.netbios_resp:
                self.weird("DNS_label_too_long")
                raise _Malformed
            total += label_len + 1
            if total > 512:
                self.weird("DNS_label_len_gt_name_len")
                raise _Malformed
            label = self.msg[pos : pos + label_len]
            out.append((label.lower() if downcase else label) + b".")
            pos += label_len
        if depth == 0:
            self.pos = pos
        return out

    def char_string(self, rdlen: int) -> tuple[bytes | None, int]:
        if rdlen <= 0:
            return None, rdlen
        size = self.u8()
        rdlen -= 1
        if size > rdlen:
            self.weird("DNS_TXT_char_str_past_rdlen")
            return None, rdlen
        return self.take(size), rdlen - size


def parse_message(
    data: bytes, *, netbios: bool = False, netbios_resp: bool = False
) -> Message | None:
    """Decode one message as Zeek does; None when it is shorter than a DNS header."""
    if len(data) < 12:
        return None
    hdr = Header.parse(data)
    msg = Message(hdr)
    if hdr.opcode not in TRACKED_OPCODES and not netbios:
        msg.weirds.append(("DNS_unknown_opcode", str(hdr.opcode)))
        msg.ignored = True
        return msg
    if hdr.qdcount > MAX_QUERIES:
        msg.too_many_queries = True
        return msg
    rd = _Reader(data, netbios, netbios_resp, msg.weirds)
    dynamic_update = hdr.opcode == OP_UPDATE and not netbios
    try:
        if dynamic_update:
            if hdr.qdcount != 1:
                msg.weirds.append(("DNS_DU_invalid_zone_count", str(hdr.qdcount)))
                return msg
            rd.name()
            if rd.left < 4:
                rd.weird("DNS_truncated_ans_too_short")
                return msg
            ztype, zclass = rd.u16(), rd.u16()
            if ztype != 6:
                rd.weird("DNS_DU_incorrect_zone_type")
                msg.log_end = False
                return msg
            _parse_answers(rd, msg, hdr.ancount, PREREQ, zclass)
            _parse_answers(rd, msg, hdr.nscount, UPDATE, zclass)
        else:
            for _ in range(hdr.qdcount):
                qname = rd.name(downcase=False).lower()
                if rd.left < 4:
                    rd.weird("DNS_truncated_quest_too_short")
                    raise _Malformed
                msg.questions.append(Question(qname, rd.u16(), rd.u16()))
            _parse_answers(rd, msg, hdr.ancount, ANS, 0)
    except _Malformed:
        return msg
    msg.confirmed = True
    # Zeek skips the authority and additional sections by default (dns_skip_all_auth/addl).
    return msg


def _parse_answers(rd: _Reader, msg: Message, count: int, section: str, zclass: int) -> None:
    for _ in range(count):
        ans = _parse_rr(rd, msg, section, zclass)
        if ans is not None:
            msg.answers.append(ans)


def _parse_rr(rd: _Reader, msg: Message, section: str, zclass: int) -> Answer | None:
    name = rd.name()
    if rd.left < 4:
        rd.weird("DNS_truncated_ans_too_short")
        raise _Malformed
    rtype, rclass = rd.u16(), rd.u16()
    ttl = rd.u32()
    rdlength = rd.u16()
    if rdlength > rd.left:
        rd.weird("DNS_truncated_RR_rdlength_lt_len")
        raise _Malformed
    ans = Answer(section, name, rtype, rclass, ttl, None)
    if section == UPDATE:
        if rclass == CLASS_ANY and ttl == 0 and rdlength == 0:
            what = f"RRSet * {name}" if rtype == TYPE_ANY else f"RRSet {qtype_name(rtype)}"
            ans.reply = f"del: {what}"
            return ans
        if not ((rclass == CLASS_NONE and ttl == 0) or rclass == zclass):
            rd.weird("DNS_dynamic_update_invalid_update")
            return None
    elif section == PREREQ:
        if ttl != 0:
            rd.weird("DNS_dynamic_update_prereq_nonzero_ttl", str(ttl))
            return None
        if (rclass in (CLASS_ANY, CLASS_NONE) and rdlength == 0) or rclass == zclass:
            ans.reply = "pre: " + _prereq_text(ans)
            return ans
        rd.weird("DNS_dynamic_update_invalid_prereq")
        return None
    if rdlength == 0 and rd.left > 0:
        if section in (PREREQ, UPDATE):
            return None
        rd.weird("DNS_zero_rdlength")
        raise _Malformed
    ans.reply = _parse_rdata(rd, msg, ans, rdlength)
    if section == UPDATE and ans.reply is not None and not ans.reply.startswith("del:"):
        ans.reply = f"add: {ans.reply}"
    return ans


def _prereq_text(ans: Answer) -> str:
    if ans.rclass == CLASS_NONE and ans.rtype == TYPE_ANY:
        return f"NameNotInUse {ans.name}"
    if ans.rclass == CLASS_ANY and ans.rtype == TYPE_ANY:
        return f"NameInUse {ans.name}"
    if ans.rclass == CLASS_NONE:
        return f"NoRRSet {qtype_name(ans.rtype)} {ans.name}"
    return f"RRSetExists {qtype_name(ans.rtype)} {ans.name}"


def _parse_rdata(rd: _Reader, msg: Message, ans: Answer, rdlength: int) -> str | None:  # noqa: C901, PLR0911, PLR0912
    """The summary string main.zeek logs for one RR (None: no log entry), advancing the reader."""
    t = ans.rtype
    start = rd.pos
    update = msg.header.opcode == OP_UPDATE and not rd.netbios

    def skip() -> None:
        rd.pos = start + rdlength

    def check_len() -> None:
        if rd.pos - start != rdlength:
            rd.weird("DNS_RR_length_mismatch")

    if t == 1:  # A
        if rdlength != 4:
            rd.weird("DNS_RR_bad_length")
            raise _Malformed
        addr = str(ipaddress.IPv4Address(rd.take(4)))
        return f"A {ans.name} {addr}" if update else addr
    if t in (28, 38):  # AAAA, A6
        if rd.left < 16:
            rd.weird("DNS_AAAA_neg_length" if t == 28 else "DNS_A6_neg_length")
            raise _Malformed
        addr = str(ipaddress.IPv6Address(rd.take(16)))
        kind = "AAAA" if t == 28 else "A6"
        return f"{kind} {ans.name} {addr}" if update else addr
    if t in (2, 5, 12):  # NS, CNAME, PTR
        target = rd.name()
        check_len()
        return target
    if t == 6:  # SOA
        mname = rd.name()
        rd.name()
        if rd.left < 20:
            raise _Malformed
        rd.take(20)
        check_len()
        return mname
    if t == 11:  # WKS: the script's reply is "": rtt, AA, RA are set, no answer is added
        skip()
        return ""
    if t == 13:  # HINFO: no script handler
        skip()
        return None
    if t == 15:  # MX
        rd.u16()
        target = rd.name()
        check_len()
        return target
    if t in (16, 99):  # TXT, SPF
        kind = "TXT" if t == 16 else "SPF"
        parts: list[str] = []
        left = rdlength
        while True:
            s, left = rd.char_string(left)
            if s is None:
                break
            parts.append(f"{kind} {len(s)} {text(s)}")
        reply = " ".join(parts)
        if left != 0:  # Zeek raises the event with the strings it got, then stops parsing
            ans.reply = reply
            msg.answers.append(ans)
            raise _Malformed
        return reply
    if t == 257:  # CAA: no script handler
        skip()
        return None
    if t == 32:  # NB / NIMLOC: skipped by Zeek
        skip()
        return None
    if t == 33:  # SRV (NBSTAT on the NetBIOS port)
        if rd.netbios_resp:
            return None  # Zeek does not even advance past it
        rd.take(6)
        target = rd.name()
        check_len()
        return target
    if t == 35:  # NAPTR
        order, pref = rd.u16(), rd.u16()
        left = rdlength - 4
        if rd.left <= 0 or left <= 0:
            raise _Malformed
        flags, left = rd.char_string(left)
        service, left = rd.char_string(left)
        regexp, left = rd.char_string(left)
        replacement = rd.name(downcase=False)
        if flags is None or service is None or regexp is None:
            raise _Malformed
        tail = text(regexp)
        if replacement:
            tail = f"{tail} {replacement}" if tail else replacement
        return f"NAPTR {order} {pref} {text(flags)} {text(service)} {tail}"
    if t == 41:  # OPT (EDNS)
        skip()
        return None
    if t in (249, 250):  # TKEY, TSIG
        skip()
        return None
    if t == 46:  # RRSIG
        if rd.left < 18:
            raise _Malformed
        covered = rd.u16()
        rd.take(16)
        name_start = rd.pos
        signer = rd.name()
        sig_len = rdlength - ((rd.pos - name_start) + 18)
        rd.take(sig_len)
        return f"RRSIG {covered} {signer or '<Root>'}"
    if t == 48:  # DNSKEY
        if rd.left < 4:
            raise _Malformed
        rd.u16()
        algo = rd.u16() & 0xFF
        rd.take(rdlength - 4)
        return f"DNSKEY {algo}"
    if t == 47:  # NSEC
        next_name = rd.name()
        skip()
        return f"NSEC {ans.name} {next_name}"
    if t == 50:  # NSEC3
        if rd.left < 6:
            raise _Malformed
        skip()
        return "NSEC3"
    if t == 51:  # NSEC3PARAM
        if rd.left < 5:
            raise _Malformed
        skip()
        return "NSEC3PARAM"
    if t == 43:  # DS
        if rd.left < 4:
            raise _Malformed
        rd.u16()
        algo, dtype = rd.u8(), rd.u8()
        rd.take(rdlength - 4)
        return f"DS {algo} {dtype}"
    if t == 65534:  # BIND9 signing signal
        if rd.left < 5:
            raise _Malformed
        skip()
        return "BIND9 signing signal"
    if t == 44:  # SSHFP
        if rd.left < 2:
            raise _Malformed
        rd.u16()
        return "SSHFP: " + rd.take(rdlength - 2).hex()
    if t == 29:  # LOC
        if rdlength != 16:
            rd.weird("dns_invalid_loc_length")
            raise _Malformed
        raw = rd.take(16)
        return f"LOC:  {raw[1]} {raw[2]} {raw[3]}"
    if t in (64, 65):  # SVCB, HTTPS: no script handler
        if rdlength < 3:
            rd.weird("DNS_SVCB_wrong_length")
            raise _Malformed
        skip()
        return None
    rd.weird("DNS_RR_unknown_type", str(t))
    skip()
    return f"<unknown type={t}>"


# ----------------------------------------------------------------------------- script logic


@dataclass(slots=True)
class _Info:
    """One dns.log row in the making (DNS::Info)."""

    ts: float
    trans_id: int
    rtt: float | None = None
    query: str | None = None
    qclass: int | None = None
    qtype: int | None = None
    qtype_name: str | None = None
    rcode: int | None = None
    AA: bool = False
    TC: bool = False
    RD: bool = False
    RA: bool = False
    Z: int = 0
    answers: list[str] | None = None
    TTLs: list[float] | None = None
    rejected: bool = False
    opcode: int | None = None
    opcode_name: str | None = None
    total_answers: int | None = None
    saw_query: bool = False
    saw_reply: bool = False


class _Pending:
    """Zeek's PendingMessages: FIFO queues of unmatched messages per transaction id."""

    def __init__(self) -> None:
        self.queues: OrderedDict[int, deque[_Info]] = OrderedDict()

    def put(self, tid: int, info: _Info, flush: Callable[[_Info], None]) -> None:
        q = self.queues.get(tid)
        if q is None:
            if len(self.queues) > MAX_PENDING_QUERY_IDS:
                self.drain(flush)
            self.queues[tid] = q = deque()
        elif len(q) > MAX_PENDING_MSGS:
            for old in q:
                flush(old)
            q.clear()
        q.append(info)

    def has(self, tid: int) -> bool:
        return bool(self.queues.get(tid))

    def pop(self, tid: int) -> _Info:
        q = self.queues[tid]
        info = q.popleft()
        if not q:
            del self.queues[tid]
        return info

    def pop_any(self) -> _Info | None:
        for tid, q in self.queues.items():
            if q:
                return self.pop(tid)
        return None

    def drain(self, flush: Callable[[_Info], None]) -> None:
        for q in self.queues.values():
            for info in q:
                flush(info)
        self.queues.clear()


class DnsAnalyzer:
    """One per connection; UDP datagrams or TCP stream bytes (2-byte length framing)."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        cid = ctx.conn_id
        self.tcp = cid.proto == "tcp"
        self.netbios = NETBIOS_PORT in (cid.orig_p, cid.resp_p)
        self.first_message = True
        self.current: _Info | None = None
        self.pending_query: _Info | None = None
        self.pending_queries = _Pending()
        self.pending_replies = _Pending()
        self.buffers = {True: bytearray(), False: bytearray()}
        # Zeek registers DNS for 53/tcp only; its other ports (137, 5353, 5355) are UDP ports.
        self.dead = self.tcp and cid.resp_p not in TCP_PORTS

    # -- AppAnalyzer

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        if self.dead:
            return
        if not self.tcp:
            self._message(data, 1 if is_orig else 0, ts)
            return
        buf = self.buffers[is_orig]
        buf += data
        while len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                break
            msg = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            self._message(msg, 1 if is_orig else 0, ts)
            if self.dead:
                return

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        # A hole in a TCP DNS stream desynchronises the length framing; Zeek keeps going blind.
        self.buffers[is_orig].clear()

    def end(self, ts: float) -> None:
        if self.tcp and not self.dead:
            for is_orig in (True, False):
                buf = self.buffers[is_orig]
                if len(buf) > 2:  # deliver a partial message, as Contents_DNS::Flush
                    self._message(bytes(buf[2:]), 2, ts)
                buf.clear()
        self._finalize()

    # -- per message (DNS_Interpreter::ParseMessage + the script event handlers)

    def _message(self, data: bytes, direction: int, ts: float) -> None:
        msg = parse_message(
            data, netbios=self.netbios, netbios_resp=self.ctx.conn_id.resp_p == NETBIOS_PORT
        )
        if msg is None:
            self.ctx.weird("DNS_truncated_len_lt_hdr_len", ts=ts)
            return
        if msg.ignored:
            for name, addl in msg.weirds:
                self.ctx.weird(name, addl, ts=ts)
            return
        hdr = msg.header
        if self.first_message and hdr.qr and direction == 1 and not self._resp_multicast():
            self._flip_roles()
        self.first_message = False

        if hdr.opcode in TRACKED_OPCODES:
            self._set_session(hdr, ts)
        if msg.too_many_queries:
            self.ctx.weird("DNS_Conn_count_too_large", ts=ts)
            self.ctx.violation("DNS_Conn_count_too_large")
            self._dns_end(hdr)
            self.dead = True
            return
        for name, addl in msg.weirds:
            self.ctx.weird(name, addl, ts=ts)
        if hdr.opcode in TRACKED_OPCODES and self.current is not None:
            for q in msg.questions:
                self._question(hdr, q)
            for ans in msg.answers:
                self._do_reply(hdr, ans, ts)
        if msg.confirmed:
            self.ctx.confirm("dns")
        if msg.log_end:
            self._dns_end(hdr)

    def _resp_multicast(self) -> bool:
        return _is_multicast(self.ctx.conn_id.resp_h)

    def _flip_roles(self) -> None:
        flip = getattr(self.ctx, "flip_roles", None)
        if flip is None:
            raise TypeError(
                "DNS needs AnalyzerContext.flip_roles (Zeek flips when a reply comes first)"
            )
        flip()

    def _new_session(self, tid: int, ts: float) -> _Info:
        return _Info(ts=ts, trans_id=tid)

    def _set_session(self, hdr: Header, ts: float) -> None:
        tid = hdr.id
        if self._resp_multicast():
            self.current = self._new_session(tid, ts)
            self.current.saw_query = self.current.saw_reply = True
        elif not hdr.qr:
            if self.pending_replies.has(tid):
                self.current = self.pending_replies.pop(tid)
            else:
                self.current = self._new_session(tid, ts)
                if self.pending_query is None:
                    self.pending_query = self.current
                else:
                    self.pending_queries.put(tid, self.current, self._write)
        elif self.pending_query is not None and self.pending_query.trans_id == tid:
            self.current = self.pending_query
            self.pending_query = None
            if self.pending_queries.queues:
                if self.pending_queries.has(tid):
                    self.pending_query = self.pending_queries.pop(tid)
                else:
                    self.pending_query = self.pending_queries.pop_any()
        elif self.pending_queries.has(tid):
            self.current = self.pending_queries.pop(tid)
        else:
            self.current = self._new_session(tid, ts)
            self.pending_replies.put(tid, self.current, self._write)

        info = self.current
        if hdr.qr:
            info.rcode = hdr.rcode
            if info.total_answers is None:
                info.total_answers = hdr.ancount
            if hdr.rcode != 0 and hdr.qdcount == 0:
                info.rejected = True
        info.opcode = hdr.opcode
        info.opcode_name = opcode_name(hdr.opcode, self.netbios)

    def _question(self, hdr: Header, q: Question) -> None:
        info = self.current
        assert info is not None
        if not hdr.qr:  # dns_request
            info.RD, info.TC = hdr.rd, hdr.tc
            info.qclass, info.qtype = q.qclass, q.qtype
            info.qtype_name = qtype_name(q.qtype)
            info.Z = hdr.z
            query = q.name
            if self.ctx.conn_id.resp_p == NETBIOS_PORT:
                decoded = decode_netbios_name(query)
                if decoded:
                    query = decoded
                if info.qtype_name == "SRV":
                    info.qtype_name = "NBSTAT"
            info.query = query
        elif hdr.ancount == 0 and hdr.nscount == 0 and hdr.arcount == 0:  # dns_rejected
            info.rejected = True

    def _do_reply(self, hdr: Header, ans: Answer, ts: float) -> None:
        info = self.current
        assert info is not None
        if not hdr.qr or ans.section not in (ANS, PREREQ, UPDATE) or ans.reply is None:
            return
        if info.query is None:
            info.query = ans.name
        info.AA, info.RA = hdr.aa, hdr.ra
        if info.rtt is None:
            rtt = ts - info.ts
            info.rtt = rtt if rtt != 0 else None
        if ans.reply != "":
            if info.answers is None:
                info.answers, info.TTLs = [], []
            info.answers.append(ans.reply)
            assert info.TTLs is not None
            info.TTLs.append(float(ans.ttl))

    def _dns_end(self, hdr: Header) -> None:
        info = self.current
        if info is None:
            return
        if hdr.qr:
            info.saw_reply = True
        else:
            info.saw_query = True
        if info.saw_reply and info.saw_query:
            self._write(info)
            self.current = None

    def _finalize(self) -> None:
        if self.pending_query is not None:
            self._write(self.pending_query)
            self.pending_query = None
        self.pending_queries.drain(self._write)
        self.pending_replies.drain(self._write)

    def _write(self, info: _Info) -> None:
        self.ctx.emit("dns", self.record(info))

    def record(self, info: _Info) -> Record:
        cid = self.ctx.conn_id
        return {
            "ts": info.ts,
            "uid": self.ctx.uid,
            **cid.columns(),
            "proto": cid.proto,
            "trans_id": info.trans_id,
            "rtt": info.rtt,
            "query": info.query,
            "qclass": info.qclass,
            "qclass_name": qclass_name(info.qclass) if info.qclass is not None else None,
            "qtype": info.qtype,
            "qtype_name": info.qtype_name,
            "rcode": info.rcode,
            "rcode_name": rcode_name(info.rcode) if info.rcode is not None else None,
            "AA": info.AA,
            "TC": info.TC,
            "RD": info.RD,
            "RA": info.RA,
            "Z": info.Z,
            "answers": info.answers,
            "TTLs": info.TTLs,
            "rejected": info.rejected,
            "opcode": info.opcode,
            "opcode_name": info.opcode_name,
        }


def _is_multicast(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in MULTICAST if net.version == ip.version)


SPEC = register(
    AnalyzerSpec(
        name="dns",
        transports=frozenset({"udp", "tcp"}),
        ports=UDP_PORTS | TCP_PORTS,
        factory=DnsAnalyzer,
    )
)
