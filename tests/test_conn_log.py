"""conn.log columns as Zeek computes them."""

from __future__ import annotations

import pytest
from engine_kit import ListSink, TcpTalk, only_conn
from wirestream.processors.engine import tcp
from wirestream.processors.engine.conn_log import LocalNets, tcp_conn_state, udp_conn_state
from wirestream.processors.engine.engine import Engine
from wirestream.schemas.zeek_types import zeek_log_schemas


@pytest.mark.parametrize(
    ("orig", "resp", "sizes", "history", "state"),
    [
        (tcp.SYN_SENT, tcp.INACTIVE, (0, 0), "S", "S0"),
        (tcp.ESTABLISHED, tcp.ESTABLISHED, (5, 5), "ShAD", "S1"),
        (tcp.CLOSED, tcp.CLOSED, (5, 5), "ShADFf", "SF"),
        (tcp.SYN_SENT, tcp.RESET, (0, 0), "Sr", "REJ"),
        (tcp.RESET, tcp.RESET, (0, 0), "SR", "REJ"),
        (tcp.CLOSED, tcp.ESTABLISHED, (5, 5), "ShADF", "S2"),
        (tcp.ESTABLISHED, tcp.CLOSED, (5, 5), "ShADf", "S3"),
        (tcp.RESET, tcp.ESTABLISHED, (5, 5), "ShADR", "RSTO"),
        (tcp.ESTABLISHED, tcp.RESET, (5, 5), "ShADr", "RSTR"),
        (tcp.RESET, tcp.INACTIVE, (0, 0), "SR", "RSTOS0"),
        (tcp.RESET, tcp.INACTIVE, (0, 0), "R", "OTH"),
        (tcp.PARTIAL, tcp.RESET, (0, 0), "^r", "RSTRH"),
        (tcp.CLOSED, tcp.INACTIVE, (0, 0), "F", "SH"),
        (tcp.PARTIAL, tcp.CLOSED, (0, 0), "^f", "SHR"),
        (tcp.PARTIAL, tcp.PARTIAL, (5, 5), "Dd", "OTH"),
    ],
)
def test_tcp_conn_state_table(
    orig: int, resp: int, sizes: tuple[int, int], history: str, state: str
) -> None:
    assert tcp_conn_state(orig, resp, *sizes, history) == state


def test_udp_conn_state() -> None:
    assert udp_conn_state(True, True) == "SF"
    assert udp_conn_state(True, False) == "S0"
    assert udp_conn_state(False, True) == "SHR"
    assert udp_conn_state(False, False) == "OTH"


def test_local_nets_default_to_zeeks_private_space() -> None:
    nets = LocalNets()
    assert (
        nets.is_local("192.168.1.1") and nets.is_local("fe80::1") and nets.is_local("2001:0:1::5")
    )
    assert not nets.is_local("8.8.8.8") and not nets.is_local("ff02::1")
    assert LocalNets(["125.190.109.0/24"]).is_local("125.190.109.199")
    with pytest.raises(ValueError, match="bad local network"):
        LocalNets(["not-a-net"])


def test_record_has_every_zeek_column_and_unsets_what_zeek_leaves_unset() -> None:
    sink = ListSink()
    engine = Engine(sink, local_nets=[])
    TcpTalk(engine).send(True, "S", ack=0)
    engine.finish()
    c = only_conn(sink)
    assert list(c) == zeek_log_schemas()["conn"].names
    assert c["duration"] is None and c["orig_bytes"] is None and c["resp_bytes"] is None
    assert c["local_orig"] is None and c["local_resp"] is None  # Site::local_nets empty
    assert c["service"] is None and c["tunnel_parents"] is None
    assert (c["proto"], c["ip_proto"], c["missed_bytes"]) == ("tcp", 6, 0)


def test_vlan_columns_on_request() -> None:
    sink = ListSink()
    engine = Engine(sink, conn_vlan_columns=True)
    TcpTalk(engine).send(True, "S", ack=0)
    engine.finish()
    c = only_conn(sink)
    assert "vlan" in c and "inner_vlan" in c and c["vlan"] is None


def test_late_flip_sets_local_columns_even_without_local_nets() -> None:
    sink = ListSink()
    engine = Engine(sink, local_nets=[])
    talk = TcpTalk(engine, a=("10.0.0.1", 40000), b=("10.0.0.2", 40001))
    talk.send(False, "SA", ack=1001)  # a SYN-ACK between two unlikely ports: no flip yet
    talk.send(True, "A", seq=1001)  # productive traffic: Zeek flips now (^h)
    TcpTalk(engine, a=("10.0.0.3", 1), b=("10.0.0.4", 2)).send(True, "S", ack=0)
    engine.finish()
    flipped, plain = sorted(sink.rows("conn"), key=lambda r: r["id.orig_h"])
    assert flipped["history"].startswith("^h")
    assert (flipped["local_orig"], flipped["local_resp"]) == (False, False)
    assert (plain["local_orig"], plain["local_resp"]) == (None, None)


def test_history_flip_case_with_mac_logging_and_local_nets(shared) -> None:  # noqa: ANN001
    """core.history-flip: Zeek's row, given the case's redefs (mac-logging, local_nets)."""
    from wirestream.processors.engine.pcapio import read_packets

    sink = ListSink()
    engine = Engine(
        sink, ignore_checksums=True, conn_l2_columns=True, local_nets=["125.190.109.0/24"]
    )
    for packet in read_packets(shared / "zeek-ref/cases/core.history-flip/missing-syn.pcap"):
        engine.process(packet)
    engine.finish()
    c = only_conn(sink)
    assert (c["history"], c["conn_state"], c["local_orig"], c["local_resp"]) == (
        "^hADdFaf",
        "SF",
        False,
        True,
    )
    assert (c["orig_l2_addr"], c["resp_l2_addr"]) == ("00:d0:03:3b:f4:00", "00:b0:c2:86:ec:00")
    assert (c["orig_bytes"], c["resp_bytes"], c["orig_pkts"], c["resp_ip_bytes"]) == (
        98,
        9417,
        11,
        9945,
    )
