"""DHCP analyzer: binpac-style option parsing, join_data aggregation and expiry, dhcp.log vs Zeek."""

from __future__ import annotations

import contextlib
import ipaddress
import struct

import pktbuild as pb
import pytest
from analyzer_ctx import FakeContext, udp_conn
from engine_kit import ListSink, datagram
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import dhcp
from wirestream.processors.engine.sessions import TimerQueue

MAC = bytes.fromhex("0011223344aa")
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5


def ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def message(
    op: int = 1,
    xid: int = 0x1234,
    *,
    options: bytes = b"",
    yiaddr: str = "0.0.0.0",
    chaddr: bytes = MAC,
    cookie: int = dhcp.MAGIC_COOKIE,
    end: bool = True,
) -> bytes:
    head = struct.pack("!BBBBIHH", op, 1, 6, 0, xid, 0, 0)
    head += ip("0.0.0.0") + ip(yiaddr) + ip("0.0.0.0") + ip("0.0.0.0")
    head += chaddr.ljust(16, b"\0") + b"\0" * 64 + b"\0" * 128 + struct.pack("!I", cookie)
    return head + options + (b"\xff" if end else b"")


def mtype(code: int) -> bytes:
    return opt(53, bytes([code]))


def parse(data: bytes, flow: dhcp.DhcpFlow | None = None) -> tuple[dhcp.DhcpMessage, dict]:
    msg, options, problems = dhcp.parse_dhcp(data, flow or dhcp.DhcpFlow())
    assert problems == []
    return msg, options


# -- parsing ------------------------------------------------------------------------------------


def test_header_and_common_options() -> None:
    options = (
        mtype(ACK) + opt(51, struct.pack("!I", 3600)) + opt(15, b"example.org\0\0")
        + opt(61, b"\x01" + MAC) + opt(81, b"\x00\x00\x00host.example.org")
        + opt(56, b"why not") + opt(3, ip("10.0.0.1") + ip("10.0.0.2"))
    )  # fmt: skip
    msg, o = parse(message(2, 77, options=options, yiaddr="10.0.0.9"))
    assert (msg.op, msg.m_type, msg.xid, msg.yiaddr) == (2, ACK, 77, "10.0.0.9")
    assert msg.chaddr == "00:11:22:33:44:aa"  # 16-byte chaddr shown as 6 when bytes 7-8 are 0
    assert o["lease"] == 3600.0 and o["domain_name"] == "example.org"
    assert o["client_id"] == {"hwtype": 1, "hwaddr": "00:11:22:33:44:aa"}
    assert o["client_fqdn"]["domain_name"] == "host.example.org"
    assert o["message"] == "why not" and o["routers"] == ["10.0.0.1", "10.0.0.2"]


def test_values_are_read_by_type_not_by_length_byte() -> None:
    """Option 50 says 6 bytes but an address is 4: the last 2 start the next option."""
    options = mtype(REQUEST) + bytes([50, 6]) + ip("10.0.0.7") + bytes([12, 1]) + b"x"
    _msg, o = parse(message(options=options))
    assert o["addr_request"] == "10.0.0.7" and o["host_name"] == "x"


def test_options_may_end_without_end_option_but_not_mid_option() -> None:
    _msg, o = parse(message(options=mtype(DISCOVER) + opt(12, b"pc"), end=False))
    assert o["host_name"] == "pc"
    flow = dhcp.DhcpFlow()
    with pytest.raises(dhcp.DhcpParseError):
        dhcp.parse_dhcp(message(options=opt(12, b"leak") + bytes([50, 4, 10]), end=False), flow)
    # What was decoded before the exception stays in the flow, as binpac's options member does.
    _msg, o = parse(message(options=mtype(DISCOVER)), flow)
    assert o["host_name"] == "leak"


def test_missing_message_type_and_bad_cookie_are_reported() -> None:
    _msg, _o, problems = dhcp.parse_dhcp(message(options=opt(12, b"a")), dhcp.DhcpFlow())
    assert problems == ["no DHCP message type option"]
    msg, _o, problems = dhcp.parse_dhcp(message(options=mtype(1), cookie=1), dhcp.DhcpFlow())
    assert not msg.cookie_ok and problems == ["bad cookie (1)"]


def test_domain_name_nul_trimming_quirk() -> None:
    assert parse(message(options=mtype(5) + opt(15, b"a\0")))[1]["domain_name"] == ""
    assert parse(message(options=mtype(5) + opt(15, b"ab\0")))[1]["domain_name"] == "ab"


def test_relay_agent_suboption_counter_is_kept_per_direction() -> None:
    """binpac's sum_len is never reset: a second relay option in the same direction reads
    sub-options until the datagram ends, swallowing the options after it."""
    relay = opt(82, opt(1, b"ab") + opt(2, b"cd"))
    flow = dhcp.DhcpFlow()
    _m, first = parse(message(options=mtype(1) + relay + opt(12, b"one")), flow)
    assert [s["code"] for s in first["sub_opt"]] == [1, 2] and first["host_name"] == "one"
    flow.options = None  # delivered with its message
    _m, second = parse(message(options=mtype(1) + relay + opt(12, b"two"), end=False), flow)
    assert [s["code"] for s in second["sub_opt"]] == [1, 2, 12]
    assert "host_name" not in second


@pytest.mark.parametrize(
    ("raw", "text"),
    [(MAC, "00:11:22:33:44:aa"), (MAC + b"\x01\x02", "00:11:22:33:44:aa:01:02"), (b"\x01", "")],
)
def test_fmt_mac(raw: bytes, text: str) -> None:
    assert dhcp.fmt_mac(raw) == text


# -- aggregation (DHCP::join_data) --------------------------------------------------------------


class Clock:
    """The engine's timer queue driven by hand."""

    def __init__(self, start: float) -> None:
        self.timers = TimerQueue()
        self.now = start
        self.rows: list[dict] = []
        self.join = dhcp.DhcpJoin(lambda log, rec: self.rows.append(rec), self.timers.add, start)

    def at(self, t: float) -> None:
        self.now = t
        self.timers.advance(t)


CLIENT = ("0.0.0.0", 68, "255.255.255.255", 67)
SERVER_REPLY = ("10.0.0.9", 68, "10.0.0.1", 67)  # flipped: the server is the responder


def send(clock: Clock, conn, uid: str, is_orig: bool, data: bytes) -> None:
    clock.at(clock.now)
    msg, options, _ = dhcp.parse_dhcp(data, dhcp.DhcpFlow())
    clock.join.aggregate(clock.now, conn, uid, is_orig, msg, options)


def lease(clock: Clock, xid: int = 5, start: float = 100.0) -> None:
    clock.now = start
    send(clock, CLIENT, "Cb", True, message(1, xid, options=mtype(DISCOVER) + opt(12, b"pc")))
    clock.now = start + 0.5
    offer = mtype(OFFER) + opt(51, struct.pack("!I", 600)) + opt(15, b"lan\0")
    send(clock, SERVER_REPLY, "Cu", False, message(2, xid, options=offer, yiaddr="10.0.0.9"))
    clock.now = start + 1.0
    send(clock, CLIENT, "Cb", True, message(1, xid, options=mtype(REQUEST)))
    clock.now = start + 1.25
    send(clock, SERVER_REPLY, "Cu", False, message(2, xid, options=mtype(ACK), yiaddr="10.0.0.9"))


def test_one_transaction_over_two_connections_is_one_row_after_the_expiry_pass() -> None:
    clock = Clock(100.0)
    lease(clock)
    clock.at(110.0)  # first pass: the entry is not yet 10 s old
    assert clock.rows == []
    clock.at(120.0)  # idle for more than 5 s: written
    [row] = clock.rows
    assert row["ts"] == 100.0 and sorted(row["uids"]) == ["Cb", "Cu"]
    assert row["msg_types"] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert row["duration"] == pytest.approx(1.25)
    assert (row["server_addr"], row["assigned_addr"], row["client_addr"]) == (
        "10.0.0.1", "10.0.0.9", "10.0.0.9",
    )  # fmt: skip
    assert row["mac"] == "00:11:22:33:44:aa" and row["host_name"] == "pc"
    assert row["lease_time"] == 600.0 and row["domain"] == "lan"


def test_busy_transaction_is_written_after_the_watch_time() -> None:
    clock = Clock(100.0)
    for i in range(14):  # a message every 3 s (100 .. 139): never idle for 5 s
        clock.now = 100.0 + 3 * i
        send(clock, CLIENT, "Ca", True, message(1, 9, options=mtype(REQUEST)))
    # Expiry passes run at packet times: 112 (too young), 124 (busy, retry), 136 (36 s old:
    # written before the message of 136, which starts a new entry for the same xid).
    [row] = clock.rows
    assert len(row["msg_types"]) == 12 and row["duration"] == 33.0
    clock.now = 142.0
    send(clock, CLIENT, "Ca", True, message(1, 9, options=mtype(REQUEST)))
    clock.timers.expire_all(150.0)
    assert [len(r["msg_types"]) for r in clock.rows] == [12, 3]
    assert clock.rows[1]["ts"] == 136.0


def test_caps_write_at_once_and_the_end_flushes_the_rest() -> None:
    clock = Clock(100.0)
    for i in range(10):
        send(clock, CLIENT, f"C{i}", True, message(1, 1, options=mtype(DISCOVER)))
    [capped] = clock.rows
    assert len(capped["uids"]) == 10 and capped.get("mac") is None  # Log::write, no chaddr fill
    send(clock, CLIENT, "Cz", True, message(1, 2, options=mtype(DISCOVER)))
    clock.timers.expire_all(clock.now)  # end of trace: zeek_done
    assert clock.rows[-1]["mac"] == "00:11:22:33:44:aa"  # write_log fills mac from chaddr


def test_client_id_other_than_ethernet_leaves_mac_to_chaddr() -> None:
    clock = Clock(1.0)
    options = mtype(DISCOVER) + opt(61, b"\x00client-1")
    send(clock, CLIENT, "Ca", True, message(1, 3, options=options, chaddr=bytes(range(1, 7))))
    clock.timers.expire_all(clock.now)
    assert clock.rows[0]["mac"] == "01:02:03:04:05:06"


# -- through the engine -------------------------------------------------------------------------


def test_engine_flips_a_server_first_reply_and_logs_at_the_end() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    src, dst = "10.0.0.1", "10.0.0.9"
    ack = message(2, 42, options=mtype(ACK) + opt(51, struct.pack("!I", 60)), yiaddr=dst)
    engine.ip(datagram(5.0, src, dst, 17, pb.udp(67, 68, ack, src=src, dst=dst)))
    engine.finish()
    [row] = sink.rows("dhcp")
    [conn] = sink.rows("conn")
    assert (conn["id.orig_h"], conn["id.resp_p"], conn["service"]) == (dst, 67, "dhcp")
    assert row["uids"] == [conn["uid"]] and row["server_addr"] == src
    assert row["client_addr"] == dst and row["lease_time"] == 60.0 and row["msg_types"] == ["ACK"]


def test_analyzer_reports_violations_and_skips_bad_cookies() -> None:
    clock = Clock(1.0)
    ctx = FakeContext(udp_conn(67, resp="10.0.0.1"))
    ctx.shared_state = {"dhcp": clock.join}  # type: ignore[attr-defined]
    analyzer = dhcp.DhcpAnalyzer(ctx)
    analyzer.data(True, message(options=mtype(1), cookie=7), 1.0)
    analyzer.data(True, b"\x01\x01", 1.1)
    assert ctx.violations[0] == "bad cookie (7)" and "Binpac exception" in ctx.violations[1]
    assert ctx.confirmed == [] and clock.join.entries == {}
    analyzer.data(True, message(options=mtype(1)), 1.2)
    assert ctx.confirmed == ["dhcp"] and list(clock.join.entries) == [0x1234]


# -- Zeek's reference cases ---------------------------------------------------------------------

DHCP_CASES = [
    "scripts.base.protocols.dhcp.dhcp-ack-msg-types",
    "scripts.base.protocols.dhcp.dhcp-discover-msg-types",
    "scripts.base.protocols.dhcp.inform",
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", DHCP_CASES)
def test_dhcp_log_matches_zeek_reference(shared, tmp_path, case: str) -> None:
    """Every column but uids, which the scorer compares literally (Zeek's seeded uid strings)."""
    from analyzer_ctx import compare_case

    result = compare_case(shared, case, {"dhcp"}, tmp_path)["dhcp.log"]
    assert result["paired"] == result["base_rows"] == 1, result
    assert set(result["wrong"]) <= {"uids"}, result


def test_config_caps_come_from_the_engine_state() -> None:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    dhcp.configure(engine, dhcp.DhcpConfig(max_msg_types_per_log_entry=2))
    src, dst = "0.0.0.0", "255.255.255.255"
    for i in range(5):
        data = message(1, 8, options=mtype(DISCOVER))
        engine.ip(datagram(1.0 + i, src, dst, 17, pb.udp(68, 67, data, src=src, dst=dst)))
    engine.finish()
    assert [len(r["msg_types"]) for r in sink.rows("dhcp")] == [2, 2, 1]


def test_dpd_signature_finds_dhcp_on_other_ports() -> None:
    data = message(1, 0x0B0B, options=mtype(DISCOVER))
    assert dhcp.sniff(data, b"") and not dhcp.sniff(b"x" * 300, b"")
    assert dhcp.sniff(message(1, 0x0A0A, options=mtype(DISCOVER)), b"")  # '.' takes '\n' too
    assert not dhcp.sniff(message(1, 1, options=mtype(DISCOVER), cookie=0x63825364), b"")
    sink = ListSink()
    engine = Engine(sink, seed=1)
    src, dst = "10.0.0.5", "10.0.0.1"
    engine.ip(datagram(1.0, src, dst, 17, pb.udp(1068, 1067, data, src=src, dst=dst)))
    engine.finish()
    assert sink.rows("dhcp")[0]["msg_types"] == ["DISCOVER"]
    assert sink.rows("conn")[0]["service"] == "dhcp"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 80))
def test_any_option_bytes_parse_or_raise_dhcp_parse_error(options: bytes, cut: int) -> None:
    data = message(options=mtype(DISCOVER) + options, end=False)
    with contextlib.suppress(dhcp.DhcpParseError):
        msg, _options, _problems = dhcp.parse_dhcp(data[: len(data) - cut], dhcp.DhcpFlow())
        assert msg.m_type == (DISCOVER if len(data) - cut >= 243 else 0)
