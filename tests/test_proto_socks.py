"""SOCKS analyzer: v4/4a/5 handshakes with and without authentication, socks.log and the
Tunnel::SOCKS registration, the proxied stream handed to the analyzer DPD finds, Zeek's case."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import pytest
from analyzer_ctx import FakeContext, compare_case, tcp_conn
from engine_kit import ListSink, TcpTalk
from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import socks


@dataclass
class SocksContext(FakeContext):
    tunnels: list[tuple[tuple[str, int, str, int], str]] = field(default_factory=list)

    def register_tunnel(self, cid: tuple[str, int, str, int], tunnel_type: str) -> None:
        self.tunnels.append((cid, tunnel_type))


def session() -> tuple[socks.SocksAnalyzer, SocksContext]:
    ctx = SocksContext(tcp_conn(1080))
    return socks.SocksAnalyzer(ctx), ctx


def talk(a: socks.SocksAnalyzer, *steps: tuple[bool, bytes], t: float = 5.0) -> float:
    for is_orig, data in steps:
        t += 0.5
        a.data(is_orig, data, t)
    return t


def v4_request(ip: str, port: int, user: bytes = b"", name: bytes | None = None) -> bytes:
    out = b"\x04\x01" + struct.pack("!H", port) + ipaddress.IPv4Address(ip).packed + user + b"\0"
    return out + (name + b"\0" if name is not None else b"")


def v4_reply(status: int = 0x5A, ip: str = "0.0.0.0", port: int = 0, vn: bytes = b"\x04") -> bytes:
    """A reply as Zeek's grammar reads one: a version byte 4, then RFC's VN 0, CD, port, address."""
    rfc = b"\x00" + bytes([status]) + struct.pack("!H", port) + ipaddress.IPv4Address(ip).packed
    return vn + rfc


def v5_addr(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return b"\x03" + bytes([len(host)]) + host.encode()
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


def v5_request(host: str, port: int, command: int = 1, reserved: int = 0) -> bytes:
    return b"\x05" + bytes([command, reserved]) + v5_addr(host) + struct.pack("!H", port)


def v5_reply(code: int = 0, host: str = "192.168.0.31", port: int = 2688) -> bytes:
    return b"\x05" + bytes([code, 0]) + v5_addr(host) + struct.pack("!H", port)


def test_socks4_connect_is_logged_with_the_reply_status_and_a_tunnel() -> None:
    a, ctx = session()
    t = talk(
        a,
        (True, v4_request("198.51.100.9", 80, b"alice")),
        (False, v4_reply(0x5A, "10.9.9.9", 4242)),
    )
    a.end(t)
    [row] = ctx.logs("socks")
    assert row["ts"] == 5.5 and row["version"] == 4 and row["status"] == "succeeded"
    assert (row["request.host"], row["request.name"], row["request_p"]) == (
        "198.51.100.9",
        None,
        80,
    )
    assert (row["bound.host"], row["bound_p"]) == ("10.9.9.9", 4242)
    assert row["user"] is None  # SOCKS4's user id is not what main.zeek logs as user
    assert ctx.confirmed == ["socks"]
    assert ctx.tunnels == [(("192.0.2.1", 0, "203.0.113.5", 1080), "SOCKS")]


def test_socks4a_carries_the_name_and_a_refusal_is_its_status_text() -> None:
    a, ctx = session()
    t = talk(
        a, (True, v4_request("0.0.0.1", 443, b"", b"www.example.com")), (False, v4_reply(0x5B))
    )
    a.end(t)
    [row] = ctx.logs("socks")
    assert (row["request.host"], row["request.name"]) == ("0.0.0.1", "www.example.com")
    assert row["status"] == "general SOCKS server failure"
    a, ctx = session()
    t = talk(a, (True, v4_request("192.0.2.8", 22)), (False, v4_reply(0x42)))
    a.end(t)
    assert ctx.logs("socks")[0]["status"] == "unknown-66"


def test_socks4_reply_starting_with_vn_0_is_an_unknown_version_to_zeek() -> None:
    a, ctx = session()
    t = talk(a, (True, v4_request("198.51.100.9", 80)), (False, v4_reply(vn=b"")))
    a.end(t)
    assert ctx.violations == ["unsupported/unknown SOCKS version 0"]
    assert ctx.logs("socks") == [] and len(ctx.tunnels) == 1  # the request registered it


def test_socks5_without_authentication_names_and_ipv6() -> None:
    a, ctx = session()
    t = talk(
        a,
        (True, b"\x05\x01\x00"),
        (False, b"\x05\x00"),
        (True, v5_request("www.osnews.com", 80)),
        (False, v5_reply(0, "2001:db8::5", 8080)),
    )
    a.end(t)
    [row] = ctx.logs("socks")
    assert row["version"] == 5 and row["status"] == "succeeded"
    assert (row["request.host"], row["request.name"], row["request_p"]) == (
        None,
        "www.osnews.com",
        80,
    )
    assert (row["bound.host"], row["bound.name"], row["bound_p"]) == ("2001:db8::5", None, 8080)
    assert (row["user"], row["password"]) == (None, None)


def test_socks5_user_password_logs_the_user_but_not_the_password() -> None:
    a, ctx = session()
    t = talk(
        a,
        (True, b"\x05\x02\x00\x02"),
        (False, b"\x05\x02"),
        (True, b"\x01\x05alice\x06s3cret"),
        (False, b"\x01\x00"),
        (True, v5_request("10.1.1.1", 25)),
        (False, v5_reply(5, "0.0.0.0", 0)),
    )
    a.end(t)
    [row] = ctx.logs("socks")
    assert row["user"] == "alice" and row["password"] is None
    assert row["status"] == "Connection refused"  # the reply's status replaces the login's
    assert row["request.host"] == "10.1.1.1" and row["request_p"] == 25


def test_failed_login_without_a_reply_is_never_confirmed_so_not_logged() -> None:
    a, ctx = session()
    t = talk(
        a,
        (True, b"\x05\x01\x02"),
        (False, b"\x05\x02"),
        (True, b"\x01\x03bob\x01x"),
        (False, b"\x01\x01"),
    )
    assert a.info is not None and a.info.status == "general SOCKS server failure"
    a.end(t)
    assert ctx.logs("socks") == [] and ctx.confirmed == []


def test_unsupported_auth_method_is_a_weird() -> None:
    a, ctx = session()
    talk(a, (True, b"\x05\x01\x01"), (False, b"\x05\x01"), (True, b"gssapi-token"))
    assert ctx.weirds == [("socks5_unsupported_authentication_method", "1")]


def test_bad_messages_are_violations() -> None:
    a, ctx = session()
    talk(a, (True, b"\x06\x01\x00"))
    assert ctx.violations == ["unsupported/unknown SOCKS version 6"]
    a, ctx = session()
    talk(
        a, (True, b"\x05\x01\x00"), (False, b"\x05\x00"), (True, v5_request("a.b", 80, reserved=1))
    )
    assert ctx.violations == ["invalid value in reserved field: 1"]
    assert a.skip and ctx.tunnels == []
    a, ctx = session()
    talk(a, (True, b"\x05\x01\x00"), (False, b"\x05\x00"), (True, v5_request("a.b", 80, command=9)))
    assert ctx.violations == ["undefined value in command field: 9"]
    a, ctx = session()
    talk(a, (True, b"\x05\x01\x00"), (False, b"\x05\x00"), (True, b"\x05\x01\x00\x07abc"))
    assert ctx.violations == ["invalid SOCKSv5 addr type: 7"]
    a, ctx = session()
    talk(a, (True, b"\x04\x01\x00\x50\x01\x02"))  # cut inside the address
    assert len(ctx.violations) == 1 and ctx.violations[0].startswith("Binpac exception")


def test_dpd_signatures() -> None:
    assert socks.sniff_socks(b"\x05\x01\x00", b"\x05\x00")
    assert socks.sniff_socks(v4_request("1.2.3.4", 80, b"u"), v4_reply(vn=b""))
    assert socks.sniff_socks(v4_reply(vn=b""), v4_request("1.2.3.4", 80))  # the reverse pair
    assert socks.sniff_socks(b"\x05\x02\x00\x02", b"\x05\x02")  # user/password chosen
    assert not socks.sniff_socks(b"\x05\x01\x04", b"\x05\x00")  # 0x04 is unassigned
    assert not socks.sniff_socks(b"\x05\x01\x00", b"\x05\x04")
    assert not socks.sniff_socks(b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n")


# ----------------------------------------------------------------------------- through the engine


def test_proxied_http_gets_its_analyzer_and_the_connection_both_services() -> None:
    sink = ListSink()
    engine = Engine(sink)
    c = TcpTalk(engine, ("10.0.0.55", 53994), ("10.0.0.9", 8124))  # not 1080: found by DPD
    c.handshake()
    for from_client, data in [
        (True, b"\x05\x01\x00"),
        (False, b"\x05\x00"),
        (True, v5_request("www.example.com", 80)),
        (False, v5_reply()),
        (True, b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
        (False, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ]:
        c.send(from_client, "PA", data)
    c.send(True, "FA")
    c.send(False, "FA")
    c.send(True, "A")
    engine.finish()
    [conn] = sink.rows("conn")
    assert set(conn["service"].split(",")) == {"socks", "http"}
    [row] = sink.rows("socks")
    assert row["uid"] == conn["uid"] and row["request.name"] == "www.example.com"
    [http] = sink.rows("http")
    assert http["uid"] == conn["uid"] and http["host"] == "www.example.com"
    assert http["status_code"] == 200 and http["response_body_len"] == 5
    [tunnel] = sink.rows("tunnel")
    assert tunnel["tunnel_type"] == "Tunnel::SOCKS" and tunnel["action"] == "Tunnel::DISCOVER"
    assert (tunnel["uid"], tunnel["id.orig_p"], tunnel["id.resp_p"]) == (None, 0, 8124)


@pytest.mark.timeout(300)
def test_trace1_matches_zeek(shared, tmp_path) -> None:
    result = compare_case(
        shared, "scripts.base.protocols.socks.trace1", {"socks", "tunnel"}, tmp_path
    )
    assert {log: score["exact"] for log, score in result.items()} == {
        "socks.log": 1,
        "tunnel.log": 1,
    }, result


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=40)), max_size=8))
def test_arbitrary_messages_end_in_records_or_violations_never_exceptions(steps) -> None:
    a, ctx = session()
    t = 1.0
    for is_orig, data in [(True, b"\x05\x01\x00"), (False, b"\x05\x00"), *steps]:
        t += 0.1
        a.data(is_orig, data, t)
    a.end(t)
    assert len(ctx.logs("socks")) <= 1


def test_capture_password_option_logs_the_password() -> None:
    ctx = SocksContext(tcp_conn(1080))
    ctx.shared_state = {socks.CONFIG_KEY: socks.SocksConfig(capture_password=True)}
    a = socks.SocksAnalyzer(ctx)
    t = talk(
        a,
        (True, b"\x05\x01\x02"),
        (False, b"\x05\x02"),
        (True, b"\x01\x03bob\x04pw42"),
        (False, b"\x01\x00"),
        (True, v5_request("example.com", 22)),
        (False, v5_reply()),
    )
    a.end(t)
    [row] = ctx.logs("socks")
    assert (row["user"], row["password"], row["status"]) == ("bob", "pw42", "succeeded")
