"""A stand-in for the engine's AnalyzerContext, so protocol analyzers can be driven byte by byte.

It records what an analyzer reports (log records, confirmations, violations, weirds) and can
flip the connection's roles as the engine would; files go to a real FileManager whose
files.log records and extracted files are kept too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import ConnId, ExtractedFile, Record
from wirestream.processors.engine.files import FileManager, FilesConfig
from wirestream.processors.engine.uid import UidGenerator


@dataclass
class FakeContext:
    conn_id: ConnId
    uid: str = "CTestUid1"
    files_config: FilesConfig = field(default_factory=FilesConfig)
    records: list[tuple[str, Record]] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    weirds: list[tuple[str, str]] = field(default_factory=list)
    extracted: list[ExtractedFile] = field(default_factory=list)
    flips: int = 0
    files: Any = None

    def __post_init__(self) -> None:
        if self.files is None:  # a test may share one file manager between connections
            sink = self.extracted.append if self.files_config.extract else None
            self.files = FileManager(
                self.emit, sink, config=self.files_config, uids=UidGenerator(7)
            )

    def emit(self, log: str, record: Record) -> None:
        self.records.append((log, record))

    def confirm(self, service: str) -> None:
        self.confirmed.append(service)

    def violation(self, reason: str, data: bytes | None = None) -> None:
        self.violations.append(reason)

    def weird(
        self, name: str, addl: str = "", ts: float | None = None, source: str | None = None
    ) -> None:  # source: a script-level weird names its own (AnalyzerSlot.weird's parameter)
        self.weirds.append((name, addl))

    def flip_roles(self) -> None:
        c = self.conn_id
        self.conn_id = ConnId(c.resp_h, c.resp_p, c.orig_h, c.orig_p, c.proto)
        self.flips += 1

    def logs(self, name: str) -> list[Record]:
        return [r for log, r in self.records if log == name]


def tcp_conn(port: int = 80) -> ConnId:
    return ConnId("192.0.2.1", 40000, "203.0.113.5", port, "tcp")


def udp_conn(port: int = 53, resp: str = "198.51.100.53") -> ConnId:
    return ConnId("192.0.2.1", 40000, resp, port, "udp")


def compare_case(shared: Any, case: str, logs: set[str], out: Any, *extra: str) -> dict[str, dict]:
    """Run ``wirestream analyze`` on a shared Zeek reference case and score it with zeek_compare."""
    import importlib.util
    import json
    import shlex
    import subprocess
    import sys

    cases = shared / "zeek-ref" / "cases"
    spec = importlib.util.spec_from_file_location(
        "zeek_compare", shared / "tools" / "zeek_compare.py"
    )
    assert spec is not None and spec.loader is not None
    zc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zc)
    meta = json.loads((cases / case / "case.json").read_text())
    traces = [str(cases / case / t["file"]) for t in meta["traces"]]
    flags = shlex.split(zc.case_flags(meta))
    cmd = [
        sys.executable,
        "-m",
        "wirestream",
        "analyze",
        *traces,
        "--out",
        str(out),
        *flags,
        *extra,
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    skip = ("service",) if "-b" in meta.get("flags", []) else ()
    return zc.compare_dirs(cases / case / "baseline", out, skip=skip, only=logs)
