"""analyzer.log: confirmed protocol analyzers removed by DPD on a violation, vs Zeek."""

from __future__ import annotations

import pytest
from engine_kit import ListSink, TcpTalk
from test_proto_websocket import frame, upgrade_reply, upgrade_request
from wirestream.processors.engine.analyzer_log import FAILURE_DATA_MAX_SIZE, failure_record
from wirestream.processors.engine.engine import Engine
from wirestream.schemas.zeeklog.escape import bytes_text

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


def conversation(*steps: tuple[bool, bytes]) -> ListSink:
    sink = ListSink()
    engine = Engine(sink, seed=1)
    talk = TcpTalk(engine, b=("10.0.0.2", 80))
    talk.handshake()
    for from_client, payload in steps:
        talk.send(from_client, "AP", payload)
    engine.finish()
    return sink


def test_confirmed_http_failing_is_logged_and_loses_its_service() -> None:
    sink = conversation((True, GET), (False, OK), (True, b"\x00\x01 not http at all\r\n"))
    [row] = sink.rows("analyzer")
    assert (row["analyzer_kind"], row["analyzer_name"], row["proto"]) == ("protocol", "HTTP", "tcp")
    assert row["failure_reason"] == "not a http request line"
    assert row["failure_data"] is None and row["fuid"] is None
    [conn] = sink.rows("conn")
    assert row["uid"] == conn["uid"] and row["id.resp_p"] == 80
    assert conn["service"] is None  # dpd.zeek deletes the failed service


def test_violation_before_confirmation_logs_nothing() -> None:
    sink = conversation((True, b"\x00\x01 not http at all\r\n"), (False, OK))
    assert sink.rows("analyzer") == []


def test_child_analyzer_failure_is_logged_with_its_data() -> None:
    bad = frame(b"x" * 60, opcode=0)  # a continuation frame with no message under way
    sink = conversation(
        (True, upgrade_request()),
        (False, upgrade_reply()),
        (True, frame(b"hello", mask=b"abcd")),  # a whole message: WebSocket confirmed
        (False, bad),
    )
    [row] = sink.rows("analyzer")
    assert row["analyzer_name"] == "WEBSOCKET"
    assert row["failure_reason"] == (
        "binpac exception: &enforce violation : WebSocket_FrameHeader:first2"
    )
    assert row["failure_data"] == bytes_text(bad[:FAILURE_DATA_MAX_SIZE])
    [conn] = sink.rows("conn")
    assert conn["service"] == "http"


def test_failure_record_escapes_and_cuts_the_data() -> None:
    row = failure_record(
        5.0, "ssl", "C1", ("10.0.0.1", 1, "10.0.0.2", 443), "tcp", "bad", b"\x16\x03" + b"a" * 50
    )
    assert row["analyzer_name"] == "SSL" and row["ts"] == 5.0
    assert row["failure_data"] == "\x16\x03" + "a" * 38  # escaped by the log writer


@pytest.mark.timeout(300)
def test_http_11_request_then_cruft_case_matches_zeek(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    case = "scripts.base.protocols.http.http-11-request-then-cruft"
    result = compare_case(shared, case, {"analyzer"}, tmp_path)["analyzer.log"]
    assert result["exact"] == result["base_rows"] == 1, result
