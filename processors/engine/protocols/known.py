"""known_services.log, as Zeek's ``policy/protocols/conn/known-services.zeek`` (module Known).

Not a protocol analyzer: a policy script watching connections. A connection's responder is an
active service once the TCP server did a handshake (or was seen mid-stream or closed), or the
UDP server answered (``Known::service_udp_requires_response``). It is checked when an analyzer
confirms (the services then known) and again when the connection ends if it was not done
yet. Each (host, port) logs each service once per run (``Known::services``, expiring after a
day); a service-less one waits five minutes (``schedule 5min``) before it logs with the empty
service, so that another connection may name it first. Only responders matching
``Known::service_tracking`` (LOCAL_HOSTS by default) are tracked.

Loading the script (``@load protocols/conn/known-services``) makes zeek_script pass a
:class:`KnownConfig`, and :func:`configure` attaches the tracker to the engine's connection
observers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wirestream.processors.engine import tcp

if TYPE_CHECKING:
    from wirestream.processors.engine.engine import Engine
    from wirestream.processors.engine.sessions import Connection

log = logging.getLogger(__name__)

UNKNOWN_SERVICE_DELAY = 300.0  # schedule 5min { service_info_commit(info) }
SERVICES_EXPIRE = 86400.0  # Known::services &create_expire=1day
HOST_CHOICES = ("LOCAL_HOSTS", "REMOTE_HOSTS", "ALL_HOSTS", "NO_HOSTS")
# Services scripts add under their own lower-case names (the rest are analyzer names, which
# Zeek keeps as Analyzer::name: upper case).
SCRIPT_SERVICES = frozenset({"ftp-data", "gridftp", "gridftp-data", "irc-dcc-data"})
_ACTIVE_TCP_STATES = frozenset({tcp.ESTABLISHED, tcp.CLOSED, tcp.PARTIAL})


@dataclass(frozen=True)
class KnownConfig:
    """The script's options: ``Known::service_tracking`` (a ``Host`` choice) and
    ``Known::service_udp_requires_response``."""

    service_tracking: str = "LOCAL_HOSTS"
    service_udp_requires_response: bool = True
    loaded: bool = False  # the script is loaded (a Known:: redef alone does not load it)

    def __post_init__(self) -> None:
        check_host_choice("Known::service_tracking", self.service_tracking)


def check_host_choice(option: str, choice: str) -> None:
    """A ``Host`` option's value must be one of the enum's names."""
    if choice not in HOST_CHOICES:
        raise ValueError(f"{option} must be one of {', '.join(HOST_CHOICES)}, not {choice!r}")


def addr_matches_host(local_nets: Any, host: str, choice: str) -> bool:
    """Zeek's addr_matches_host: is ``host`` one of the hosts a ``Host`` choice names."""
    if choice in ("ALL_HOSTS", "NO_HOSTS"):
        return choice == "ALL_HOSTS"
    local = local_nets.is_local(host)
    return local if choice == "LOCAL_HOSTS" else not local


def zeek_service_name(service: str) -> str:
    """c$service's spelling of an engine service name (Analyzer::name, or a script's name)."""
    return service if service in SCRIPT_SERVICES else service.upper()


class KnownServices:
    """The script's state and handlers for one engine."""

    def __init__(self, engine: Engine, config: KnownConfig) -> None:
        self.engine = engine
        self.config = config
        self.services: dict[tuple[str, int], tuple[float, set[str]]] = {}  # Known::services
        self.done: set[str] = set()  # uids with c$known_services_done

    # -- connection observer ----------------------------------------------------------------
    def analyzer_confirmed(self, conn: Connection, service: str) -> None:
        """analyzer_confirmation_info at priority -5 (after dpd.zeek added the service)."""
        self._done(conn)

    def connection_removed(self, conn: Connection) -> None:
        """connection_state_remove at priority -5."""
        if conn.uid in self.done:
            self.done.discard(conn.uid)
            return
        self._done(conn)

    # -- the script -----------------------------------------------------------------------------
    def _tracked(self, host: str) -> bool:
        """addr_matches_host(host, Known::service_tracking)."""
        return addr_matches_host(self.engine.local_nets, host, self.config.service_tracking)

    def _active(self, conn: Connection) -> bool:
        """has_active_service: by the responder's transport state."""
        if conn.transport == "tcp":
            return conn.adapter.resp.state in _ACTIVE_TCP_STATES or "h" in conn.history
        if conn.transport == "udp":
            if self.config.service_udp_requires_response:
                return conn.adapter.active()[1]  # the responder sent something: UDP_ACTIVE
            return True
        return False  # ICMP and other transports are no services

    def _done(self, conn: Connection) -> None:
        """known_services_done."""
        if not self._tracked(conn.resp_h):
            return
        services = [zeek_service_name(s) for s in conn.services]
        if len(services) == 1:
            if services[0] == "ftp-data":
                return
            if services[0] == "DNS" and conn.adapter.sizes()[1] == 0:
                return  # DNS: the server has to talk
        if not self._active(conn):
            return
        self.done.add(conn.uid)
        now = self.engine.now
        info = (now, conn.resp_h, conn.resp_p, conn.transport)
        kept = [s for s in services if not s.startswith("-")]
        if not conn.services:
            # No protocol yet: give other connections five minutes to name one.
            # Scheduled while the trace's last connections are flushed, after the end-of-trace
            # timer expiry, it never fires (as in Zeek).
            self.engine.timers.add(
                now + UNKNOWN_SERVICE_DELAY, lambda _t: self._commit(info, [""]), True
            )
        else:
            self._commit(info, kept)

    def _commit(self, info: tuple[float, str, int, str], services: list[str]) -> None:
        """service_info_commit / known_service_add: log the services new for (host, port)."""
        ts, host, port, proto = info
        key = (host, port)
        entry = self.services.get(key)
        if entry is not None and self.engine.now - entry[0] >= SERVICES_EXPIRE:
            entry = None  # &create_expire: the whole (host, port) entry is forgotten
        if entry is not None and all(s in entry[1] for s in services):
            return  # check(info)
        if entry is None:
            entry = self.services[key] = (self.engine.now, set())
        new = [s for s in dict.fromkeys(services) if s not in entry[1]]
        entry[1].update(new)
        record: dict[str, Any] = {
            "ts": ts,
            "host": host,
            "port_num": port,
            "port_proto": proto,
            "service": new,
        }
        self.engine.sink.log("known_services", record)


def configure(engine: Engine, config: KnownConfig) -> KnownServices | None:
    """Load the script into ``engine``: its handlers join the engine's connection observers.
    Options set without the script loaded change nothing (Zeek would not know them)."""
    if not config.loaded:
        log.warning("Known:: options given but protocols/conn/known-services is not loaded")
        return None
    known = KnownServices(engine, config)
    engine.observers.append(known)
    return known
