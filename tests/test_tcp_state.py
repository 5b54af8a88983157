"""TCP as Zeek tracks it: conn_state, history letters, sizes, gaps, reassembly, timers."""

from __future__ import annotations

import pytest
from engine_kit import ListSink, TcpTalk, only_conn
from wirestream.processors.engine import api
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.tcp import seq_delta


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def engine(sink: ListSink) -> Engine:
    return Engine(sink, seed=7)


def test_seq_delta_is_signed_32_bit() -> None:
    assert seq_delta(5, 3) == 2
    assert seq_delta(3, 5) == -2
    assert seq_delta(2, 0xFFFFFFFE) == 4
    assert seq_delta(0xFFFFFFFE, 2) == -4


def test_normal_close_is_sf_with_sizes_and_history(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    talk.send(True, "PA", b"GET / HTTP/1.0\r\n\r\n")
    talk.send(False, "A")
    talk.send(False, "PA", b"x" * 300)
    talk.send(True, "A")
    talk.send(True, "FA")
    talk.send(False, "FA")
    talk.send(True, "A")
    engine.finish()
    c = only_conn(sink)
    assert (c["conn_state"], c["history"]) == ("SF", "ShADadFf")
    assert (c["orig_bytes"], c["resp_bytes"]) == (18, 300)
    assert (c["orig_pkts"], c["resp_pkts"]) == (6, 4)
    assert c["orig_ip_bytes"] == 6 * 40 + 18
    assert c["missed_bytes"] == 0
    # The last ACK comes after both FINs: Zeek no longer extends the connection's last time.
    assert c["duration"] == pytest.approx(0.8)


def test_syn_only_is_s0_and_ends_after_the_attempt_delay(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.send(True, "S", ack=0)
    assert sink.rows("conn") == []
    # Another connection's packet 6 s later advances network time past tcp_attempt_delay.
    TcpTalk(engine, a=("10.0.0.9", 1234)).send(True, "S", ack=0, dt=6.1)
    rows = sink.rows("conn")
    assert len(rows) == 1
    assert (rows[0]["conn_state"], rows[0]["history"]) == ("S0", "S")
    assert rows[0]["duration"] is None and rows[0]["orig_bytes"] is None


def test_rejected_syn_is_rej(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.send(True, "S", ack=0)
    talk.send(False, "RA")
    engine.finish()
    c = only_conn(sink)
    assert (c["conn_state"], c["history"]) == ("REJ", "Sr")


@pytest.mark.parametrize(
    ("from_a", "state", "history"), [(True, "RSTO", "ShADaR"), (False, "RSTR", "ShADar")]
)
def test_reset_after_establishment(
    engine: Engine, sink: ListSink, from_a: bool, state: str, history: str
) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    talk.send(True, "PA", b"hello")
    talk.send(False, "A")
    talk.send(from_a, "R", ack=0)
    engine.finish()
    c = only_conn(sink)
    assert (c["conn_state"], c["history"]) == (state, history)


def test_syn_then_rst_from_originator_is_rstos0(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.send(True, "S", ack=0)
    talk.send(True, "R", ack=0)
    engine.finish()
    c = only_conn(sink)
    assert (c["conn_state"], c["history"]) == ("RSTOS0", "SR")


def test_syn_ack_first_from_server_port_flips(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.send(False, "SA", ack=1001)
    talk.send(True, "A", seq=1001)
    engine.finish()
    c = only_conn(sink)
    assert (c["id.orig_h"], c["id.resp_p"]) == ("10.0.0.1", 80)
    assert c["history"].startswith("^h")


def test_missing_syn_data_from_server_port_flips(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.send(False, "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    talk.send(True, "A")
    engine.finish()
    c = only_conn(sink)
    assert (c["id.orig_p"], c["id.resp_p"]) == (40000, 80)
    assert c["history"] == "^dA"
    assert c["conn_state"] == "OTH"


def test_sizes_survive_sequence_wraparound(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine, a_isn=0xFFFFFF00)
    talk.handshake()
    for _ in range(4):
        talk.send(True, "PA", b"z" * 100)
        talk.send(False, "A")
    talk.send(True, "FA")
    talk.send(False, "FA")
    talk.send(True, "A")
    engine.finish()
    c = only_conn(sink)
    assert c["orig_bytes"] == 400
    assert c["conn_state"] == "SF"


def test_retransmission_history_scales_by_ten(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    start = talk.seq[True]
    talk.send(True, "PA", b"abc")
    for _ in range(10):
        talk.send(True, "PA", b"abc", seq=start)
    engine.finish()
    c = only_conn(sink)
    assert c["history"] == "ShADTT"  # 1st and 10th retransmission
    assert c["orig_bytes"] == 3


def test_gap_acknowledged_counts_missed_bytes(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    start = talk.seq[True]
    talk.send(True, "PA", b"a" * 100)
    talk.send(True, "PA", b"c" * 100, seq=start + 200)  # 100 bytes never captured
    talk.send(False, "A", ack=start + 300)
    engine.finish()
    c = only_conn(sink)
    assert c["missed_bytes"] == 100
    assert "G" in c["history"]
    assert c["orig_bytes"] == 300


def test_zero_window_and_bad_checksum_letters(engine: Engine, sink: ListSink) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    talk.send(False, "A", window=0)
    talk.send(True, "PA", b"data", checksum=0x1234)  # corrupt: only history C, not counted
    engine.finish()
    c = only_conn(sink)
    assert c["history"] == "ShAawC"  # the ACK itself (a), then its zero window (w)
    assert c["orig_pkts"] == 2
    assert [w["name"] for w in sink.rows("weird")] == ["bad_TCP_checksum"]


def test_close_delay_then_port_reuse_starts_a_new_connection(
    engine: Engine, sink: ListSink
) -> None:
    talk = TcpTalk(engine)
    talk.handshake()
    talk.send(True, "FA")
    talk.send(False, "FA")
    talk.send(True, "A")
    talk.send(True, "S", ack=0, seq=777777, dt=10.0)  # after tcp_close_delay: a fresh connection
    engine.finish()
    rows = sink.rows("conn")
    assert [r["conn_state"] for r in rows] == ["SF", "S0"]
    assert rows[0]["uid"] != rows[1]["uid"]


class _Recorder:
    def __init__(self, ctx: api.AnalyzerContext, store: list) -> None:
        self.ctx, self.store = ctx, store

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.store.append((is_orig, data))

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.store.append((is_orig, ("gap", length)))

    def end(self, ts: float) -> None:
        self.store.append("end")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list:
    store: list = []
    spec = api.AnalyzerSpec(
        "testrec", frozenset({"tcp"}), frozenset({7777}), lambda ctx: _Recorder(ctx, store)
    )
    monkeypatch.setitem(api.REGISTRY, "testrec", spec)
    return store


def test_out_of_order_and_overlap_delivered_in_order_first_copy_wins(
    engine: Engine, sink: ListSink, recorder: list
) -> None:
    talk = TcpTalk(engine, b=("10.0.0.2", 7777))
    talk.handshake()
    s = talk.seq[True]
    talk.send(True, "PA", b"CCCC", seq=s + 8)
    talk.send(True, "PA", b"AAAA", seq=s)
    talk.send(True, "PA", b"XXXXBBBB", seq=s)  # overlaps AAAA: the first copy is kept
    talk.send(False, "A", ack=s + 12)
    engine.finish()
    assert recorder[:3] == [(True, b"AAAA"), (True, b"BBBB"), (True, b"CCCC")]
    assert recorder[-1] == "end"
    assert only_conn(sink)["orig_bytes"] == 12


def test_gap_is_reported_to_the_analyzer(engine: Engine, sink: ListSink, recorder: list) -> None:
    talk = TcpTalk(engine, b=("10.0.0.2", 7777))
    talk.handshake()
    s = talk.seq[True]
    talk.send(True, "PA", b"one", seq=s)
    talk.send(True, "PA", b"three", seq=s + 8)
    talk.send(False, "A", ack=s + 13)
    engine.finish()
    assert recorder[:3] == [(True, b"one"), (True, ("gap", 5)), (True, b"three")]


def test_reassembly_property_first_copy_wins_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the order and overlap of segments, the analyzer gets each byte once, in order,
    as the first segment that carried it had it."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    segments = st.lists(
        st.tuples(st.integers(0, 400), st.integers(1, 120), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(segs=segments)
    def run(segs: list[tuple[int, int, int]]) -> None:
        store: list = []
        spec = api.AnalyzerSpec(
            "testrec", frozenset({"tcp"}), frozenset({7777}), lambda ctx: _Recorder(ctx, store)
        )
        monkeypatch.setitem(api.REGISTRY, "testrec", spec)
        sink = ListSink()
        engine = Engine(sink)
        talk = TcpTalk(engine, b=("10.0.0.2", 7777))
        talk.handshake()
        base = talk.seq[True]
        model: dict[int, int] = {}
        for off, length, fill in segs:
            talk.send(True, "PA", bytes([fill]) * length, seq=base + off)
            for i in range(off, off + length):
                model.setdefault(i, fill)
        covered = 0
        while covered in model:
            covered += 1
        delivered = b"".join(d for o, d in store if isinstance(d, bytes))
        assert delivered == bytes(model[i] for i in range(covered))
        # An ACK past everything makes the holes gaps: every byte is then accounted for once.
        end = max(model) + 1
        talk.send(False, "A", ack=base + end)
        engine.finish()
        events = [e for e in store if e != "end"]
        delivered = b"".join(d for o, d in events if isinstance(d, bytes))
        gaps = sum(d[1] for o, d in events if isinstance(d, tuple))
        assert delivered == bytes(model[i] for i in sorted(model))
        assert gaps == end - len(model)
        assert only_conn(sink)["missed_bytes"] == gaps

    run()
