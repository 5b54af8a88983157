"""The processor's Zeek engine session with a FAKE zeek (no Zeek here): the stream's packets are
spooled to a valid pcap that Zeek reads, and Zeek's logs come back through the sink."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pktbuild as pb
from wirestream.processors.bro_processor import EngineUnavailable, resolve_engine
from wirestream.processors.engine.api import Packet
from wirestream.processors.engine.pcapio import read_packets

from wirestream.config import Settings

FAKE_ZEEK = """#!{python}
import shutil, sys
args = sys.argv[1:]
shutil.copy(args[args.index("-r") + 1], "{keep}")
with open("conn.log", "w") as f:
    f.write("#separator \\\\x09\\n#set_separator\\t,\\n#empty_field\\t(empty)\\n#unset_field\\t-\\n#path\\tconn\\n")
    f.write("#fields\\tts\\tuid\\tproto\\n#types\\ttime\\tstring\\tenum\\n1.500000\\tCfake\\tudp\\n")
"""


class _Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def log(self, name: str, record: dict) -> None:
        self.records.append((name, record))

    def file(self, extracted) -> None:
        pass


def test_zeek_session_spools_packets_and_collects_logs(tmp_path: Path) -> None:
    keep = tmp_path / "seen.pcap"
    zeek = tmp_path / "zeek"
    zeek.write_text(FAKE_ZEEK.replace("{python}", sys.executable).replace("{keep}", str(keep)))
    zeek.chmod(zeek.stat().st_mode | stat.S_IXUSR)
    name, factory = resolve_engine("zeek", Settings(zeek_path=str(zeek)))
    assert name == "zeek"
    sink = _Sink()
    session = factory(sink)
    frames = [pb.udp4_frame(1000 + i, 53, b"q" * i) for i in range(5)]
    packets = [
        Packet(ts=1 + (250_000 + i) / 1e6, data=f, linktype=1, wirelen=len(f) + 4)
        for i, f in enumerate(frames)
    ]
    for p in packets:
        session.process(p)
    session.finish()
    assert sink.records == [("conn", {"ts": 1.5, "uid": "Cfake", "proto": "udp"})]
    assert list(read_packets(keep)) == packets


def test_zeek_engine_missing_is_a_clear_error(tmp_path: Path) -> None:
    try:
        resolve_engine("zeek", Settings(zeek_path=str(tmp_path / "none")))
    except EngineUnavailable as exc:
        assert "no zeek binary" in str(exc)
    else:
        raise AssertionError("expected EngineUnavailable")
    assert resolve_engine("auto", Settings(zeek_path=str(tmp_path / "none")))[0] == "builtin"
