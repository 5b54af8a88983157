"""known_services.log (policy/protocols/conn/known-services) through the engine, vs Zeek."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pktbuild as pb
import pytest
from engine_kit import ListSink, TcpTalk, datagram
from test_dns import msg
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols.known import KnownConfig, configure, zeek_service_name

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def engine(**config: object) -> tuple[Engine, ListSink]:
    sink = ListSink()
    eng = Engine(sink, seed=1)
    configure(eng, KnownConfig(loaded=True, **config))  # type: ignore[arg-type]
    return eng, sink


def http_talk(eng: Engine, client_port: int = 40000, server: str = "10.0.0.2") -> TcpTalk:
    talk = TcpTalk(eng, a=("10.0.0.1", client_port), b=(server, 80))
    talk.handshake()
    talk.send(True, "AP", GET)
    talk.send(False, "AP", OK)
    return talk


def dns_exchange(eng: Engine, t: float, answer: bool) -> None:
    query = msg(7, questions=[("example.org", 1)])
    eng.ip(datagram(t, "10.0.0.1", "10.0.0.53", 17, pb.udp(5000, 53, query, dst="10.0.0.53")))
    if answer:
        reply = msg(7, qr=True, questions=[("example.org", 1)])
        seg = pb.udp(53, 5000, reply, src="10.0.0.53", dst="10.0.0.1")
        eng.ip(datagram(t + 0.01, "10.0.0.53", "10.0.0.1", 17, seg))


def test_a_confirmed_service_logs_once_per_host_and_port() -> None:
    eng, sink = engine()
    http_talk(eng)
    [row] = sink.rows("known_services")  # at the confirmation, before the connection ends
    assert (row["host"], row["port_num"], row["port_proto"], row["service"]) == (
        "10.0.0.2",
        80,
        "tcp",
        ["HTTP"],
    )
    http_talk(eng, client_port=40001)
    eng.finish()
    assert len(sink.rows("known_services")) == 1


def test_no_handshake_no_service() -> None:
    eng, sink = engine()
    talk = TcpTalk(eng, b=("10.0.0.2", 8080))
    talk.send(True, "S", ack=0)
    eng.finish()
    assert sink.rows("known_services") == []


def test_dns_needs_the_server_to_answer() -> None:
    eng, sink = engine()
    dns_exchange(eng, 1.0, answer=False)
    eng.finish()
    assert sink.rows("known_services") == []
    eng, sink = engine()
    dns_exchange(eng, 1.0, answer=True)
    eng.finish()
    [row] = sink.rows("known_services")
    assert (row["host"], row["port_num"], row["port_proto"], row["service"]) == (
        "10.0.0.53",
        53,
        "udp",
        ["DNS"],
    )


def test_serviceless_server_waits_five_minutes_for_a_name() -> None:
    eng, sink = engine()
    talk = TcpTalk(eng, b=("10.0.0.2", 9999))
    talk.handshake()
    talk.send(True, "AP", b"\x00\x01\x02")
    talk.send(True, "F")
    talk.send(False, "F")
    talk.send(True, "A")
    eng.remove_connection(next(iter(eng.connections.values())))
    assert sink.rows("known_services") == []  # scheduled, not yet written
    later = TcpTalk(eng, a=("10.0.0.1", 41000), b=("10.0.0.3", 9999))
    later.t = talk.t + 301
    later.send(True, "S", ack=0)  # network time passes the 5 minutes
    [row] = sink.rows("known_services")
    assert (row["host"], row["port_num"], row["service"]) == ("10.0.0.2", 9999, [""])
    eng.finish()
    assert len(sink.rows("known_services")) == 1


def test_tracking_choices() -> None:
    eng, sink = engine()
    http_talk(eng, server="8.8.8.8")  # not local: not tracked by default
    eng.finish()
    assert sink.rows("known_services") == []
    eng, sink = engine(service_tracking="ALL_HOSTS")
    http_talk(eng, server="8.8.8.8")
    eng.finish()
    assert [r["host"] for r in sink.rows("known_services")] == ["8.8.8.8"]
    with pytest.raises(ValueError, match="service_tracking"):
        KnownConfig(service_tracking="SOME_HOSTS")


def test_service_names_as_zeek_spells_them() -> None:
    assert zeek_service_name("ssl") == "SSL"
    assert zeek_service_name("ftp-data") == "ftp-data"  # a script's name stays as it is


@pytest.mark.timeout(300)
def test_teredo_known_services_case_matches_zeek(shared, tmp_path) -> None:
    case = shared / "zeek-ref" / "cases" / "core.tunnels.teredo-known-services"
    cmd = [
        sys.executable, "-m", "wirestream", "analyze", str(case / "Teredo.pcap"),
        "--out", str(tmp_path), "-b", "base/protocols/tunnels", "base/protocols/dns",
        "protocols/conn/known-services", "Tunnel::delay_teredo_confirmation=T",
        "Site::local_nets+={192.168.2.0/24}",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    spec = importlib.util.spec_from_file_location(
        "zeek_compare", shared / "tools" / "zeek_compare.py"
    )
    assert spec is not None and spec.loader is not None
    zc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zc)
    result = zc.compare_dirs(case / "baseline", tmp_path, only={"known_services"})
    rows = result["known_services.log"]
    assert rows["exact"] == rows["base_rows"] == 3, rows


def test_options_without_the_script_loaded_change_nothing() -> None:
    sink = ListSink()
    eng = Engine(sink, seed=1)
    assert configure(eng, KnownConfig(service_tracking="ALL_HOSTS")) is None
    http_talk(eng)
    eng.finish()
    assert sink.rows("known_services") == [] and eng.observers == []
