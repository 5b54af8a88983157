"""The contracts between the engine's parts: packets, sinks, and application analyzers.

The connection core (decoding, reassembly, conn.log) and the protocol analyzers (dns, http,
files ...) meet only here, so either side can change without the other knowing. Records follow
the project's record contract: ``dict`` keyed by Zeek column names, Python values per Zeek type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Record = dict[str, Any]


@dataclass(slots=True)
class Packet:
    """One captured frame as the pcap/pcapng reader delivers it. Read-only by convention: not
    ``frozen`` (nor hashable), as a frozen dataclass takes 0.64 us to build instead of 0.27 us
    and every packet of a trace is built once."""

    ts: float  # seconds since the epoch, as Zeek's network_time (sec + usec/1e6)
    data: bytes  # captured bytes, starting at the link layer
    linktype: int  # DLT_* of the interface that captured it
    wirelen: int  # length on the wire (>= len(data) when snaplen truncated it)


@dataclass(slots=True)
class IPDatagram:
    """An IP packet after link-layer decapsulation and fragment reassembly: what conn tracking sees."""

    ts: float
    src: str  # canonical text form (ipaddress' str), as Zeek logs it
    dst: str
    proto: int  # IP protocol number of the transport: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...
    payload: bytes  # transport header + data as captured (may be shorter than the wire length)
    ip_len: int  # IP total length on the wire, header included (Zeek's *_ip_bytes add this)
    version: int = 4
    ttl: int = 0
    captured_all: bool = (
        True  # False when snaplen cut the packet (payload shorter than the IP says)
    )
    # Encapsulations outside this datagram (outermost first), e.g. ("vlan", 10); tunnels add theirs.
    encap: tuple[tuple[str, Any], ...] = ()
    vlan: int | None = None
    inner_vlan: int | None = None


@dataclass(frozen=True, slots=True)
class ConnId:
    """Zeek's ``conn_id``: originator and responder as Zeek decided them."""

    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str  # "tcp", "udp", "icmp" (Zeek's transport_proto enum; ICMPv6 also logs as "icmp")

    def id_tuple(self) -> tuple[str, int, str, int]:
        return (self.orig_h, self.orig_p, self.resp_h, self.resp_p)

    def columns(self) -> Record:
        """The ``id.*`` columns every connection-scoped log starts with."""
        return id_columns(self.id_tuple())


ID_COLUMNS = ("id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")


def id_columns(endpoints: tuple[str, int, str, int] | None) -> Record:
    """The ``id.*`` columns of ``(orig_h, orig_p, resp_h, resp_p)``; with no connection (a
    weird or a file outside any), all four present and unset (None), as Zeek logs them."""
    if endpoints is None:
        return dict.fromkeys(ID_COLUMNS)
    orig_h, orig_p, resp_h, resp_p = endpoints
    return {"id.orig_h": orig_h, "id.orig_p": orig_p, "id.resp_h": resp_h, "id.resp_p": resp_p}


@dataclass(slots=True)
class ExtractedFile:
    """A file's content carved from traffic; hostile by definition: never executed, size-bounded."""

    fuid: str
    data: bytes
    filename: str | None = None
    mime_type: str | None = None
    truncated: bool = False  # content cut at the extraction size limit
    meta: Record = field(default_factory=dict)


class Sink(Protocol):
    """Where the engine's output goes: a Zeek log folder, the Kafka publisher, a test list."""

    def log(self, log: str, record: Record) -> None: ...

    def file(self, extracted: ExtractedFile) -> None: ...


class AnalyzerContext(Protocol):
    """What the engine offers a protocol analyzer attached to one connection."""

    @property
    def uid(self) -> str: ...

    @property
    def conn_id(self) -> ConnId: ...

    def emit(self, log: str, record: Record) -> None:
        """Hand a finished log record to the sink (the engine keeps Zeek's log order)."""

    def confirm(self, service: str) -> None:
        """Protocol confirmed: adds ``service`` to conn.log's service column (Zeek's confirmation)."""

    def violation(self, reason: str, data: bytes | None = None) -> None:
        """Protocol violation: the engine detaches the analyzer as Zeek's DPD would (``data``:
        the input that failed, for analyzer.log's failure_data, when the analyzer has it)."""

    def weird(self, name: str, addl: str = "", ts: float | None = None) -> None:
        """Report an anomaly to weird.log, scoped to this connection."""

    @property
    def files(self) -> Any:
        """The engine's file manager (files.log, hashing, MIME sniffing, extraction)."""


class AppAnalyzer(Protocol):
    """One instance per connection: gets in-order stream bytes (TCP) or datagrams (UDP)."""

    def data(self, is_orig: bool, data: bytes, ts: float) -> None: ...

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """``length`` bytes of the stream were never seen (counted in missed_bytes)."""

    def end(self, ts: float) -> None:
        """The connection ended, timed out, or the trace ended: flush pending records."""


@dataclass(frozen=True)
class AnalyzerSpec:
    """How the engine decides to attach an analyzer: well-known ports, or content (Zeek's DPD)."""

    name: str  # Zeek's analyzer name, lower case: "dns", "http", ...
    transports: frozenset[str]  # {"tcp"}, {"udp"} or both
    ports: frozenset[int]  # responder ports that attach it at once (Zeek's likely_server_ports)
    factory: Callable[[AnalyzerContext], AppAnalyzer]
    # Content detection for other ports: first payload bytes of (orig, resp) -> True if it is this protocol.
    sniff: Callable[[bytes, bytes], bool] | None = None


REGISTRY: dict[str, AnalyzerSpec] = {}
# Key of ``engine.analyzer_state`` (an analyzer's ``ctx.shared_state``): log -> the optional
# columns (wirestream.schemas.optional_columns) the sink writes, which records then carry.
OPTIONAL_COLUMNS_STATE = "optional_columns"


def register(spec: AnalyzerSpec) -> AnalyzerSpec:
    """Protocol modules call this at import; ``protocols/__init__`` imports them all."""
    REGISTRY[spec.name] = spec
    return spec


def analyzers_for(
    transport: str, resp_port: int, registry: Mapping[str, AnalyzerSpec] = REGISTRY
) -> Iterable[AnalyzerSpec]:
    return [s for s in registry.values() if transport in s.transports and resp_port in s.ports]
