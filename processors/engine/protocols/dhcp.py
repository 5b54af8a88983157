"""DHCP (UDP 67/68/4011) -> dhcp.log, as Zeek's DHCP analyzer and ``base/protocols/dhcp/main.zeek``.

:func:`parse_dhcp` reads one datagram as Zeek's binpac grammar does: the fixed BOOTP header,
the magic cookie, then options until END or the end of the datagram. Each option's value is
read by its *type* (an address option takes 4 bytes whatever its length byte says, a list
``length // 4`` addresses), so a malformed length shifts the options after it exactly as in
Zeek. Decoded options accumulate in a per-direction record that only a delivered message
(or a bad cookie) clears, and the relay-agent sub-option counter is per direction and never
reset, both as in the binpac flow.

:class:`DhcpJoin` is the script's ``join_data``: messages of one transaction id, from any
connection, are aggregated into one record that is written when the table's expiry pass
(every ``table_expire_interval``, driven by packet time) finds it idle for 5 s or older than
``max_txid_watch_time``, when it collects too many uids or message types, or at the end.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.schemas.zeeklog.escape import bytes_text

log = logging.getLogger(__name__)

SERVER_PORTS = frozenset({67, 4011})  # DHCP::server_ports
CLIENT_PORTS = frozenset({68})  # DHCP::client_ports (attached by port, not a server port)
MAGIC_COOKIE = 0x63825363
IDLE_BEFORE_LOG = 5.0  # join_data_expiration: no message for this long -> write
JOIN_CREATE_EXPIRE = 10.0  # join_data &create_expire
TABLE_EXPIRE_INTERVAL = 10.0  # Zeek's table_expire_interval: one expiry pass this often
JOIN_RETRY = 5.0  # join_data_expiration's "not yet" answer

MESSAGE_TYPES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
    9: "FORCERENEW",
    10: "LEASEQUERY",
    11: "LEASEUNASSIGNED",
    12: "LEASEUNKNOWN",
    13: "LEASEACTIVE",
    14: "BULKLEASEQUERY",
    15: "LEASEQUERYDONE",
    16: "ACTIVELEASEQUERY",
    17: "LEASEQUERYSTATUS",
    18: "TLS",
}

_HEADER = struct.Struct("!BBBBIHHIIII16s64s128sI")  # op .. file, then the cookie (240 bytes)
_ADDR_LIST_OPTIONS = {3: "routers", 4: "time_servers", 5: "name_servers", 6: "dns_servers",
                      42: "ntp_servers", 44: "nbns"}  # fmt: skip
_ADDR_OPTIONS = {1: "subnet_mask", 28: "broadcast", 50: "addr_request", 54: "serv_addr"}
_TEXT_OPTIONS = {12: "host_name", 43: "vendor", 56: "message", 60: "vendor_class",
                 77: "user_class"}  # fmt: skip
_INTERVAL_OPTIONS = {51: "lease", 58: "renewal_time", 59: "rebinding_time"}


@dataclass(frozen=True)
class DhcpConfig:
    """The DHCP options a site may redef; the defaults are plain ``zeek -r``."""

    max_txid_watch_time: float = 30.0  # DHCP::max_txid_watch_time
    max_uids_per_log_entry: int = 10  # DHCP::max_uids_per_log_entry
    max_msg_types_per_log_entry: int = 50  # DHCP::max_msg_types_per_log_entry
    max_tracked_transactions: int = 100000  # DHCP::max_tracked_transactions


CONFIG_KEY = "dhcp_config"


def configure(engine: Any, config: DhcpConfig) -> None:
    """Use ``config`` for the DHCP transactions ``engine`` joins (set before the first one)."""
    engine.analyzer_state[CONFIG_KEY] = config


class DhcpParseError(ValueError):
    """The datagram runs out where the grammar needs more (binpac's out-of-bound exception)."""


def message_type_name(code: int) -> str:
    return MESSAGE_TYPES.get(code, f"unknown-message-type-{code}")


def fmt_mac(data: bytes) -> str:
    """Zeek's fmt_mac: 6 bytes, or 8 unless bytes 7-8 are zero; shorter input gives ""."""
    if len(data) < 8 and len(data) != 6:
        return ""
    size = 6 if len(data) == 6 or data[6:8] == b"\0\0" else 8
    return ":".join(f"{b:02x}" for b in data[:size])


def _addr(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def _trim_nuls(data: bytes) -> bytes:
    """The analyzer's last_non_null rule: cut trailing NULs, and a match at index 0 counts as
    none (so a one-byte value comes out empty)."""
    last = 0
    for i, b in enumerate(data):
        if b:
            last = i
    return data[: last + 1] if last > 0 else b""


@dataclass
class DhcpFlow:
    """What binpac's DHCP_Flow keeps between datagrams of one direction."""

    options: Record | None = None  # the Options record under construction
    relay_sum_len: int = 0  # get_dhcp_sumlen's counter (uint8, never reset)


@dataclass
class DhcpMessage:
    """Zeek's ``DHCP::Msg`` (the columns the script reads)."""

    op: int
    m_type: int
    xid: int
    chaddr: str
    yiaddr: str
    ciaddr: str
    giaddr: str
    cookie_ok: bool = True


class _Cursor:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0:
            raise DhcpParseError(f"negative length {n}")
        end = self.pos + n
        if end > len(self.data):
            raise DhcpParseError(f"need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack("!I", self.take(4))[0]


def _option(cur: _Cursor, code: int, flow: DhcpFlow, options: Record) -> int | None:
    """One option's length and value; records it in ``options``. Returns the message type for
    option 53."""
    length = cur.u8()
    if code == 53:
        return cur.u8()
    if code in _ADDR_OPTIONS:
        options[_ADDR_OPTIONS[code]] = _addr(cur.u32())
    elif code in _ADDR_LIST_OPTIONS:
        options[_ADDR_LIST_OPTIONS[code]] = [_addr(cur.u32()) for _ in range(length // 4)]
    elif code in _TEXT_OPTIONS:
        options[_TEXT_OPTIONS[code]] = bytes_text(cur.take(length))
    elif code in _INTERVAL_OPTIONS:
        options[_INTERVAL_OPTIONS[code]] = float(cur.u32())
    elif code == 2:
        options["time_offset"] = struct.unpack("!i", cur.take(4))[0]
    elif code == 15:
        options["domain_name"] = bytes_text(_trim_nuls(cur.take(length)))
    elif code in (19, 116):
        options["forwarding" if code == 19 else "auto_config"] = cur.u8() != 0
    elif code == 55:
        options["param_list"] = list(cur.take(length))
    elif code == 57:
        options["max_msg_size"] = struct.unpack("!H", cur.take(2))[0]
    elif code == 61:
        hwtype = cur.u8()
        hwaddr = cur.take(length - 1)
        shown = bytes_text(hwaddr) if hwtype == 0 else fmt_mac(hwaddr)
        options["client_id"] = {"hwtype": hwtype, "hwaddr": shown}
    elif code == 81:
        flags, rcode1, rcode2 = cur.u8(), cur.u8(), cur.u8()
        name = bytes_text(cur.take(length - 3))
        options["client_fqdn"] = {
            "flags": flags,
            "rcode1": rcode1,
            "rcode2": rcode2,
            "domain_name": name,
        }
    elif code == 82:
        options["sub_opt"] = _relay_agent(cur, length, flow)
    elif code == 252:
        value = cur.take(length)
        options["auto_proxy_config"] = bytes_text(value[:-1] if value.endswith(b"\n") else value)
    else:
        cur.take(length)
    return None


def _relay_agent(cur: _Cursor, total: int, flow: DhcpFlow) -> list[Record]:
    """Relay agent sub-options until the flow's running byte count equals this option's
    length (binpac's get_dhcp_sumlen, which keeps counting across options), or the data ends."""
    subs: list[Record] = []
    while cur.pos < len(cur.data):
        code = cur.u8()
        length = cur.u8()
        value = cur.take(length)
        flow.relay_sum_len = (flow.relay_sum_len + ((length + 2) & 0xFF)) & 0xFF
        subs.append({"code": code, "value": bytes_text(value)})
        if flow.relay_sum_len == total:
            break
    return subs


def parse_dhcp(data: bytes, flow: DhcpFlow) -> tuple[DhcpMessage, Record, list[str]]:
    """One datagram: the message, its options and the violations binpac reports while still
    going on ("no DHCP message type option"). Raises :class:`DhcpParseError` where binpac
    throws; the options read before that stay in ``flow`` for the next message."""
    if len(data) < _HEADER.size:
        raise DhcpParseError(f"need {_HEADER.size} bytes, have {len(data)}")
    (op, _htype, _hlen, _hops, xid, _secs, _flags, ciaddr, yiaddr, _siaddr, giaddr, chaddr,
     _sname, _file, cookie) = _HEADER.unpack_from(data)  # fmt: skip
    if flow.options is None:
        flow.options = {}
    options = flow.options
    cur = _Cursor(data, _HEADER.size)
    m_type = 0
    seen_type = False
    while cur.pos < len(data):
        code = cur.u8()
        if code == 255:
            break
        if code == 0:
            continue
        found = _option(cur, code, flow, options)
        if found is not None and not seen_type:
            m_type, seen_type = found, True
    problems = [] if m_type else ["no DHCP message type option"]
    msg = DhcpMessage(
        op=op,
        m_type=m_type,
        xid=xid,
        chaddr=fmt_mac(chaddr),
        yiaddr=_addr(yiaddr),
        ciaddr=_addr(ciaddr),
        giaddr=_addr(giaddr),
        cookie_ok=cookie == MAGIC_COOKIE,
    )
    if not msg.cookie_ok:
        problems.append(f"bad cookie ({cookie - 2**32 if cookie & 0x80000000 else cookie})")
    return msg, options, problems


# -- the script: join_data ---------------------------------------------------------------------


@dataclass
class _Entry:
    info: Record
    created: float  # the table entry's expire-access time
    last_message_ts: float
    client_chaddr: str | None = None
    uids: list[str] = field(default_factory=list)


Schedule = Callable[[float, Callable[[float], None], bool], Any]


class DhcpJoin:
    """``DHCP::join_data`` and its expiry, shared by every DHCP connection of one engine."""

    def __init__(
        self,
        emit: Callable[[str, Record], None],
        schedule: Schedule,
        now: float,
        net_weird: Callable[[str, str], None] | None = None,
        config: DhcpConfig | None = None,
    ) -> None:
        self.config = config or DhcpConfig()
        self.emit = emit
        self.schedule = schedule
        self.net_weird = net_weird
        self.entries: dict[int, _Entry] = {}  # insertion order = join_data_ordered
        schedule(now + TABLE_EXPIRE_INTERVAL, self._expire_pass, False)
        schedule(float("inf"), self._zeek_done, True)

    # -- expiry --------------------------------------------------------------------------------
    def _expire_pass(self, now: float) -> None:
        """TableVal::DoExpire over join_data, then the next pass table_expire_interval later."""
        for xid in list(self.entries):
            entry = self.entries.get(xid)
            if entry is None or not entry.created + JOIN_CREATE_EXPIRE < now:
                continue
            if now - entry.last_message_ts > IDLE_BEFORE_LOG or (
                now - entry.info["ts"] > self.config.max_txid_watch_time
            ):
                self._write_log(entry)
                del self.entries[xid]
            else:  # SetExpireAccess(now - timeout + 5s)
                entry.created = now - JOIN_CREATE_EXPIRE + JOIN_RETRY
        self.schedule(now + TABLE_EXPIRE_INTERVAL, self._expire_pass, False)

    def _zeek_done(self, now: float) -> None:
        """zeek_done: every transaction still held is written."""
        for entry in self.entries.values():
            self._write_log(entry)
        self.entries.clear()

    def _write_log(self, entry: _Entry) -> None:
        """write_log: the client's chaddr stands in for a missing mac."""
        if entry.info.get("mac") is None and entry.client_chaddr is not None:
            entry.info["mac"] = entry.client_chaddr
        self._write(entry)

    def _write(self, entry: _Entry) -> None:
        rec = dict(entry.info)
        rec["uids"] = list(entry.uids)
        rec["msg_types"] = list(entry.info["msg_types"])
        self.emit("dhcp", rec)

    # -- DHCP::aggregate_msgs ------------------------------------------------------------------
    def aggregate(
        self, ts: float, conn: tuple[str, int, str, int], uid: str, is_orig: bool,
        msg: DhcpMessage, options: Record,
    ) -> None:  # fmt: skip
        orig_h, orig_p, resp_h, resp_p = conn
        entry = self.entries.get(msg.xid)
        if entry is None:
            limit = self.config.max_tracked_transactions
            if limit > 0 and len(self.entries) >= limit:
                if self.net_weird is not None:
                    self.net_weird("DHCP_max_tracked_transactions_exceeded", str(len(self.entries)))
                oldest = next(iter(self.entries))
                self._write_log(self.entries.pop(oldest))
            info: Record = {"ts": ts, "msg_types": [], "duration": 0.0}
            entry = _Entry(info=info, created=ts, last_message_ts=ts, uids=[uid])
            self.entries[msg.xid] = entry
        info = entry.info
        info["duration"] = ts - info["ts"]
        if uid not in entry.uids:
            entry.uids.append(uid)
        info["msg_types"].append(message_type_name(msg.m_type))
        is_client = is_orig and (orig_h == "0.0.0.0" or orig_p == 68 or resp_p == 67)
        if options.get("message") is not None:
            info["client_message" if is_client else "server_message"] = options["message"]
        entry.last_message_ts = ts
        if is_client:
            if orig_h not in ("0.0.0.0", "255.255.255.255"):
                info["client_addr"] = orig_h
            if options.get("host_name") is not None:
                info["host_name"] = options["host_name"]
            if options.get("client_fqdn") is not None:
                info["client_fqdn"] = options["client_fqdn"]["domain_name"]
            client_id = options.get("client_id")
            if client_id is not None and client_id["hwtype"] == 1:
                info["mac"] = client_id["hwaddr"]
            else:
                entry.client_chaddr = msg.chaddr
            if options.get("addr_request") is not None:
                info["requested_addr"] = options["addr_request"]
        else:
            if msg.yiaddr != "0.0.0.0":
                info["server_addr"] = orig_h if is_orig else resp_h
            if msg.chaddr != "" and info.get("mac") is None:
                info["mac"] = msg.chaddr
            if msg.yiaddr != "0.0.0.0":
                info["assigned_addr"] = msg.yiaddr
            if info.get("client_addr") is None and info.get("assigned_addr") is not None:
                info["client_addr"] = info["assigned_addr"]
            if options.get("domain_name") is not None:
                info["domain"] = options["domain_name"]
            if options.get("lease") is not None:
                info["lease_time"] = options["lease"]
        if (
            len(entry.uids) >= self.config.max_uids_per_log_entry
            or len(info["msg_types"]) >= self.config.max_msg_types_per_log_entry
        ):
            self._write(entry)  # Log::write directly: no mac from chaddr here
            del self.entries[msg.xid]


# -- the analyzer ------------------------------------------------------------------------------


def join_for(ctx: AnalyzerContext) -> DhcpJoin:
    """The engine's one DhcpJoin (made on first use, on the engine's packet-time timers)."""
    state = getattr(ctx, "shared_state", None)
    if state is None:
        raise TypeError("DHCP needs AnalyzerContext.shared_state (transactions span connections)")
    join = state.get("dhcp")
    if join is None:
        conn = getattr(ctx, "conn", None)
        if conn is None:
            raise TypeError("DHCP needs the engine's timers: put a DhcpJoin in shared_state")
        engine = conn.engine

        def net_weird(name: str, addl: str) -> None:
            engine.weirds.net_weird(name, engine.now, source="DHCP", addl=addl)

        config = state.get(CONFIG_KEY)
        join = DhcpJoin(engine.sink.log, engine.timers.add, engine.now, net_weird, config)
        state["dhcp"] = join
    return join


class DhcpAnalyzer:
    """Zeek's DHCP_Analyzer for one UDP connection."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.join = join_for(ctx)
        self.flows = {True: DhcpFlow(), False: DhcpFlow()}

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        flow = self.flows[is_orig]
        try:
            msg, options, problems = parse_dhcp(data, flow)
        except DhcpParseError as exc:
            self.ctx.violation(f"Binpac exception: binpac exception: {exc}")
            return
        for problem in problems:
            self.ctx.violation(problem)
        if not msg.cookie_ok:
            flow.options = None
            return
        flow.options = None  # handed to the event
        cid = self.ctx.conn_id
        self.join.aggregate(ts, cid.id_tuple(), self.ctx.uid, is_orig, msg, options)
        self.ctx.confirm("dhcp")

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """UDP has no gaps."""

    def end(self, ts: float) -> None:
        """Transactions outlive connections: DhcpJoin writes them."""


_DPD_COOKIE = b"\x63\x82\x53\x63"  # dhcp_cookie: /^.{236}\x63\x82\x53\x63/ (multi-line)


def sniff(orig: bytes, resp: bytes) -> bool:
    """Zeek's dhcp_cookie signature (dpd.sig): the magic cookie after the BOOTP header."""
    return orig[236:240] == _DPD_COOKIE or resp[236:240] == _DPD_COOKIE


SPEC = register(
    AnalyzerSpec(
        name="dhcp",
        transports=frozenset({"udp"}),
        ports=SERVER_PORTS | CLIENT_PORTS,
        factory=DhcpAnalyzer,
        sniff=sniff,
    )
)
