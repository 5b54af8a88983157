"""GridFTP data channels, as Zeek's ``base/protocols/ftp/gridftp.zeek`` finds them (the control
channel's "gridftp" label lives in ftp.py).

Not an analyzer: a script watching SSL connections. When TLS is established with both a client
and a server certificate and a NULL bulk cipher (``data_channel_initial_criteria``), the script
sets a byte threshold of ``GridFTP::size_threshold`` on each direction (ConnThreshold, counted
by Zeek's ConnSize analyzer in IP bytes, checked after every packet and at once when set). The
first crossing within ``GridFTP::max_time`` adds the "gridftp-data" service, raises
``GridFTP::data_channel_detected`` and, with ``GridFTP::skip_data``, calls
``skip_further_processing``: the connection's later packets are not looked at by anything, so
its conn.log row keeps the duration, sizes, state, history and packet counts it had then.

How the engine is reached without a core hook: the watch wraps the connection's session
adapter (every packet passes ``process``) and joins the engine's connection observers, which
run before the conn.log row is made: there it puts back the packet counters the engine kept
adding for skipped packets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from wirestream.processors.engine import notice

log = logging.getLogger(__name__)

CONFIG_KEY = "gridftp_config"
DETECTED_EVENT = "GridFTP::data_channel_detected"
WATCHES_KEY = "gridftp_watches"
SERVICE = "gridftp-data"
_COUNTERS = ("orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes")


@dataclass(frozen=True)
class GridftpConfig:
    """The script's options (Zeek's defaults)."""

    size_threshold: int = 1073741824  # GridFTP::size_threshold (bytes)
    max_time: float = 120.0  # GridFTP::max_time
    skip_data: bool = True  # GridFTP::skip_data

    def __post_init__(self) -> None:
        if self.size_threshold < 1:
            raise ValueError("GridFTP::size_threshold must be at least 1 byte")


def configure(engine: Any, config: GridftpConfig) -> None:
    """Use ``config`` for the SSL connections ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


def initial_criteria(cipher: str | None, subject: str | None, client_subject: str | None) -> bool:
    """``data_channel_initial_criteria``: mutual certificates and a NULL bulk cipher."""
    return (
        subject is not None
        and client_subject is not None
        and cipher is not None
        and "WITH_NULL" in cipher
    )


def ssl_established(
    conn: Any, cipher: str | None, subject: str | None, client_subject: str | None
) -> None:
    """gridftp.zeek's ``ssl_established`` handler (priority -3): start polling ``conn``'s sizes
    when the connection looks like a data channel. Needs base/protocols/ftp (gridftp) loaded."""
    engine = conn.engine
    if "ftp" not in engine.analyzers or not initial_criteria(cipher, subject, client_subject):
        return
    if conn.transport != "tcp":  # DTLS: the watch sees TCP segments only; not followed
        log.debug("%s: GridFTP data channel criteria on %s not followed", conn.uid, conn.transport)
        return
    config = engine.analyzer_state.get(CONFIG_KEY) or GridftpConfig()
    watches = engine.analyzer_state.get(WATCHES_KEY)
    if watches is None:
        watches = engine.analyzer_state[WATCHES_KEY] = RemovalWatcher()
        engine.observers.append(watches)
    watch = DataChannelWatch(conn, config, engine.now)
    conn.adapter = watch
    watches.by_conn[id(conn)] = watch


class RemovalWatcher:
    """The engine observer of every watched connection: checks once more and puts the frozen
    counters back before the conn.log row is made."""

    def __init__(self) -> None:
        self.by_conn: dict[int, DataChannelWatch] = {}

    def analyzer_confirmed(self, conn: Any, service: str) -> None:
        """Not interested."""

    def connection_removed(self, conn: Any) -> None:
        watch = self.by_conn.pop(id(conn), None)
        if watch is not None:
            watch.removed()


class DataChannelWatch:
    """The thresholds on one connection, wrapped around its session adapter (see the module
    docstring); every attribute but ``process`` is the adapter's own."""

    def __init__(self, conn: Any, config: GridftpConfig, now: float) -> None:
        self._session = conn.adapter
        self._conn = conn
        self._config = config
        self._armed_until = now + config.max_time  # gridftp_possibility_timeout
        self._last_ts = now  # network time after the last packet the session saw
        self._frozen: tuple[int, ...] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def process(self, is_orig: bool, *segment: Any) -> bool:
        if self._frozen is not None:
            return is_orig  # skip_further_processing: nothing looks at it
        self._check()  # the sizes after the previous packet (ConnSize checks after each)
        if self._frozen is not None:
            return is_orig
        self._last_ts = segment[-1]
        return self._session.process(is_orig, *segment)

    def _check(self) -> None:
        if self._armed_until is None:
            return
        conn = self._conn
        if self._last_ts > self._armed_until and SERVICE not in conn.services:
            self._armed_until = None  # the thresholds are deleted
            return
        threshold = self._config.size_threshold
        if conn.orig_ip_bytes < threshold and conn.resp_ip_bytes < threshold:
            return
        self._armed_until = None  # ConnThreshold clears a crossed threshold
        if conn.last_time - conn.start_time > self._config.max_time:
            return
        conn.confirm(SERVICE)  # add c$service["gridftp-data"]
        notice.raise_event(conn.engine, DETECTED_EVENT, conn, self._last_ts)
        if self._config.skip_data:
            self._frozen = tuple(getattr(conn, name) for name in _COUNTERS)

    def removed(self) -> None:
        conn = self._conn
        self._check()  # a threshold crossed by the connection's last packet
        if self._frozen is not None:
            for name, value in zip(_COUNTERS, self._frozen, strict=True):
                setattr(conn, name, value)
