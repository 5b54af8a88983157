"""The context a child analyzer runs on: an analyzer that hands its stream to another one
(FTP AUTH TLS, RDP negotiating TLS, an HTTP upgrade) gives the child this instead of its own
slot, as Zeek's AddChildAnalyzer does.

The child logs, confirms and reports weirds as part of the parent's connection; its protocol
violation removes just the child (Zeek's DPD disables the failing analyzer, not its parent).
"""

from __future__ import annotations

from typing import Any

from wirestream.processors.engine.analyzer_log import child_violation
from wirestream.processors.engine.api import AnalyzerContext, AppAnalyzer, ConnId, Record


class ChildContext:
    """What a child analyzer sees: its parent's connection, except that a violation marks
    only the child ``removed`` (the parent then stops feeding it)."""

    def __init__(self, parent: AnalyzerContext, name: str | None = None) -> None:
        self.parent = parent
        self.name = name  # the child's analyzer name: its failure is logged (analyzer.log)
        self.removed = False

    @property
    def uid(self) -> str:
        return self.parent.uid

    @property
    def conn_id(self) -> ConnId:
        return self.parent.conn_id

    @property
    def files(self) -> Any:
        return self.parent.files

    def emit(self, log: str, record: Record) -> None:
        self.parent.emit(log, record)

    def confirm(self, service: str) -> None:
        self.parent.confirm(service)

    def violation(self, reason: str, data: bytes | None = None) -> None:
        self.removed = True
        conn = getattr(self.parent, "conn", None)  # the engine's connection (not in bare tests)
        if self.name is not None and conn is not None:
            child_violation(conn, self.name, reason, data)

    def weird(
        self, name: str, addl: str = "", ts: float | None = None, source: str | None = None
    ) -> None:
        if source is None:
            self.parent.weird(name, addl, ts=ts)
        else:  # a script-level weird naming its own source
            self.parent.weird(name, addl, ts=ts, source=source)  # type: ignore[call-arg]

    def __getattr__(self, name: str) -> Any:  # flip_roles, limit_reached_weird ...
        return getattr(self.parent, name)


class ChildAnalyzer:
    """A child analyzer on its :class:`ChildContext`: fed until its violation removes it."""

    def __init__(self, analyzer: AppAnalyzer, ctx: ChildContext) -> None:
        self.analyzer = analyzer
        self.ctx = ctx

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        if not self.ctx.removed:
            self.analyzer.data(is_orig, data, ts)

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        if not self.ctx.removed:
            self.analyzer.gap(is_orig, length, ts)

    def end(self, ts: float) -> None:
        self.analyzer.end(ts)
