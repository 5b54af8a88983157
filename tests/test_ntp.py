"""NTP analyzer: message parsing (modes 1-7, extensions, MACs), flips, what each message logs."""

from __future__ import annotations

import struct

import pytest
from analyzer_ctx import FakeContext, udp_conn
from wirestream.processors.engine.protocols import ntp

NTP_1900 = 2208988800


def std_packet(
    *,
    mode: int = 3,
    version: int = 4,
    stratum: int = 2,
    poll: int = 6,
    precision: int = -20,
    root_delay: tuple[int, int] = (0, 0x0BD9),
    ref_id: bytes = bytes([85, 199, 214, 99]),
    xmt: tuple[int, int] = (1559246614 + NTP_1900, 1 << 31),
    tail: bytes = b"",
) -> bytes:
    first = (version << 3) | mode
    head = struct.pack("!BBbb", first, stratum, poll, precision)
    head += struct.pack("!hH", *root_delay) + struct.pack("!hH", 0, 0x8000)
    head += ref_id + struct.pack("!II", 0, 0) * 3 + struct.pack("!II", *xmt)
    return head + tail


def extension(length: int = 28, value: bytes = b"abcd", sig: bytes = b"") -> bytes:
    body = struct.pack("!BBHHIII", 0, 2, length, 0, 0, 0, len(value)) + value
    body += struct.pack("!I", len(sig)) + sig
    return body + b"\0" * (length - len(body))


def analyzer(port: int = 123) -> tuple[ntp.NtpAnalyzer, FakeContext]:
    ctx = FakeContext(udp_conn(port, resp="192.0.2.123"))
    return ntp.NtpAnalyzer(ctx), ctx


def test_standard_message_fields_as_zeek_computes_them() -> None:
    msg = ntp.parse_ntp(std_packet())
    assert (msg.version, msg.mode) == (4, 3)
    std = msg.std
    assert std is not None
    assert std["poll"] == 64.0 and std["precision"] == 2.0**-20
    assert std["root_delay"] == pytest.approx(0x0BD9 / 65536)
    assert std["root_disp"] == pytest.approx(-0.5)  # Zeek reads the fraction as signed 16-bit
    assert std["ref_id"] == "85.199.214.99"
    assert std["ref_time"] == 0.0 and std["org_time"] == 0.0  # all-zero timestamps stay 0
    assert std["xmt_time"] == pytest.approx(1559246614.5)
    assert std["num_exts"] is None


@pytest.mark.parametrize(
    ("stratum", "ref", "expected"),
    [(0, b"RATE", "RATE"), (1, b"GPS\0", "GPS\0"), (3, bytes([10, 0, 0, 1]), "10.0.0.1")],
)
def test_reference_id_by_stratum(stratum: int, ref: bytes, expected: str) -> None:
    std = ntp.parse_ntp(std_packet(stratum=stratum, ref_id=ref)).std
    assert std is not None and std["ref_id"] == expected


def test_extension_fields_are_counted_and_mac_follows() -> None:
    mac = struct.pack("!I", 7) + b"D" * 16
    msg = ntp.parse_ntp(std_packet(tail=extension() + extension(32) + mac))
    assert msg.std is not None
    assert msg.std["num_exts"] == 2 and msg.std["key_id"] == 7
    only_mac = ntp.parse_ntp(std_packet(tail=struct.pack("!I", 9) + b"E" * 20)).std
    assert only_mac is not None and only_mac["num_exts"] is None and only_mac["key_id"] == 9


def test_bad_extension_length_is_a_parse_error() -> None:
    with pytest.raises(ntp.NtpParseError):
        ntp.parse_ntp(std_packet(tail=extension(length=12) + b"\0" * 20))


def test_control_and_private_messages() -> None:
    control = bytes([(2 << 3) | 6, 0x82]) + struct.pack("!HHHHH", 5, 0x0615, 0, 0, 3) + b"abc"
    msg = ntp.parse_ntp(control + struct.pack("!I", 1) + b"12345678")
    assert msg.control is not None
    assert msg.control["op_code"] == 2 and msg.control["resp_bit"] is True
    assert msg.control["data"] == "abc" and msg.control["key_id"] == 1
    private = bytes([(2 << 3) | 7, 0x05, 3, 42]) + struct.pack("!H", 0x1004) + b"wxyz"
    msg7 = ntp.parse_ntp(private)
    assert msg7.mode7 == {
        "req_code": 42,
        "auth_bit": False,
        "sequence": 5,
        "implementation": 3,
        "err": 1,
        "data": "wxyz",
    }


def test_authenticated_private_message_needs_its_mac() -> None:
    private = bytes([(2 << 3) | 7, 0x85, 3, 42]) + struct.pack("!H", 0x0004) + b"wxyz"
    with pytest.raises(ntp.NtpParseError):
        ntp.parse_ntp(private)
    msg = ntp.parse_ntp(private + b"M" * 20)
    assert msg.mode7 is not None and msg.mode7["auth_bit"] is True and msg.mode7["err"] == 0


def test_short_datagram_is_a_violation_and_logs_nothing() -> None:
    a, ctx = analyzer()
    a.data(True, std_packet()[:30], 1.0)
    assert ctx.violations and not ctx.records and not ctx.confirmed


def test_client_request_then_server_reply_logs_each_and_confirms() -> None:
    a, ctx = analyzer()
    a.data(True, std_packet(mode=3), 1.0)
    a.data(False, std_packet(mode=4, stratum=1, ref_id=b"GPSs"), 1.5)
    rows = ctx.logs("ntp")
    assert [(r["mode"], r["ts"], r["ref_id"]) for r in rows] == [
        (3, 1.0, "85.199.214.99"),
        (4, 1.5, "GPSs"),
    ]
    assert ctx.confirmed == ["ntp", "ntp"] and ctx.flips == 0
    assert rows[0]["id.orig_h"] == "192.0.2.1" and rows[0]["num_exts"] == 0


def test_server_message_first_flips_the_connection_once_per_flow() -> None:
    a, ctx = analyzer()
    a.data(True, std_packet(mode=4), 1.0)  # the server's reply seen first
    assert ctx.flips == 1
    assert ctx.logs("ntp")[0]["id.orig_h"] == "192.0.2.123"
    a.data(True, std_packet(mode=3), 1.1)  # the client, now the originator: no flip
    a.data(True, std_packet(mode=4), 1.2)  # the same flow never flips twice
    assert ctx.flips == 1


def test_earlier_records_are_written_again_with_later_messages() -> None:
    """main.zeek keeps c$ntp and writes every record the connection holds after each message."""
    a, ctx = analyzer()
    a.data(True, std_packet(mode=3), 1.0)
    control = bytes([(2 << 3) | 6, 0x02]) + struct.pack("!HHHHH", 1, 0, 0, 0, 0)
    a.data(True, control, 2.0)
    assert [log for log, _ in ctx.records] == ["ntp", "ntp", "ntp_control"]
    assert ctx.logs("ntp")[1]["ts"] == 1.0


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "case", ["scripts.base.protocols.ntp.ntp", "scripts.base.protocols.ntp.misordered-ntp"]
)
def test_ntp_logs_match_zeek_reference(shared, tmp_path, case: str) -> None:
    from analyzer_ctx import compare_case

    result = compare_case(shared, case, {"ntp", "conn"}, tmp_path)
    for log, score in result.items():
        assert score["exact"] == score["base_rows"], (log, score)
