"""analyzer.log: protocol analyzers that fail after they were confirmed (Zeek 8+'s
``base/frameworks/analyzer/logging.zeek`` with ``dpd.zeek``'s ``analyzer_failed``).

DPD removes an analyzer on a protocol violation within ``DPD::ignore_violations_after``; the
removal is logged, and the analyzer's service taken off the connection, only when that
service had been confirmed (an analyzer that never confirmed fails
silently). The analyzer framework is loaded in every mode (bare mode too), so the log is not
gated by scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wirestream.schemas.zeeklog.escape import bytes_text as text

from .api import Record, id_columns

if TYPE_CHECKING:
    from .sessions import Connection

FAILURE_DATA_MAX_SIZE = 40  # Analyzer::Logging::failure_data_max_size


def failure_record(
    ts: float,
    analyzer: str,
    uid: str,
    endpoints: tuple[str, int, str, int],
    transport: str,
    reason: str,
    data: bytes | None = None,
) -> Record:
    """One analyzer.log row for protocol analyzer ``analyzer`` (its registry name; Zeek logs
    Analyzer::name, the upper-case tag name) failing on a connection."""
    return {
        "ts": ts,
        "analyzer_kind": "protocol",
        "analyzer_name": analyzer.upper(),
        "uid": uid,
        "fuid": None,
        **id_columns(endpoints),
        "proto": transport,
        "failure_reason": reason,
        "failure_data": None if data is None else text(data[:FAILURE_DATA_MAX_SIZE]),
    }


def analyzer_failed(
    conn: Connection, analyzer: str, reason: str, data: bytes | None = None
) -> None:
    """analyzer_failed's handlers for a removed analyzer: when its service was confirmed, log
    the failure and take the service off the connection. (Zeek also skips the row when the
    same analyzer already failed on this connection and was confirmed again since: the
    engine never re-attaches a removed analyzer, so that case does not arise here.)"""
    if analyzer not in conn.services:
        return
    engine: Any = conn.engine
    engine.sink.log(
        "analyzer",
        failure_record(
            engine.now, analyzer, conn.uid, conn.id_tuple(), conn.transport, reason, data
        ),
    )
    conn.services.remove(analyzer)


def child_violation(
    conn: Connection, analyzer: str, reason: str, data: bytes | None = None
) -> None:
    """dpd.zeek's analyzer_violation_info for a child analyzer (SSL under RDP, WebSocket under
    HTTP): within DPD::ignore_violations_after bytes it is disabled, so analyzer_failed runs."""
    from .sessions import DPD_IGNORE_VIOLATIONS_AFTER

    orig_size, resp_size = conn.adapter.sizes()
    if orig_size + resp_size <= DPD_IGNORE_VIOLATIONS_AFTER:
        analyzer_failed(conn, analyzer, reason, data)
