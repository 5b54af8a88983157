"""SNMP (UDP 161/162) -> snmp.log, as Zeek's SNMP analyzer and ``base/protocols/snmp/main.zeek``.

:func:`parse_snmp` reads one datagram the way Zeek's binpac grammar does: BER elements one
after another (a SEQUENCE contributes only its tag and length, nothing is bounded by it), each
typed element checked for its tag (a wrong one ends the parse, as the analyzer's check_tag
throws), and the variable bindings running to the end of the datagram. It returns the events
the analyzer would raise, in order: for SNMPv3 an encrypted or unknown scoped PDU is reported
before the user-security parameters are read, so its header carries none, as in Zeek.

:class:`SnmpAnalyzer` is main.zeek: one record per connection, created by the first message,
counting the bindings of each request/response kind, keeping the first community (or v3 user
name), sysDescr and sysUpTime from responses, written when the connection is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.schemas.zeeklog.escape import bytes_text

log = logging.getLogger(__name__)

PORTS = frozenset({161, 162})  # SNMP::ports
VERSION_MAP = {0: "1", 1: "2c", 3: "3"}  # SNMP::version_map (&default="unknown")

SEQUENCE, INTEGER, OCTET_STRING, OBJECT_ID = 0x30, 0x02, 0x04, 0x06
APP_IPADDRESS, APP_TIMETICKS = 0x40, 0x43
UNSIGNED_TAGS = frozenset({0x41, 0x42, 0x43, 0x46})  # Counter32, Unsigned32, TimeTicks, Counter64
NULL_TAGS = frozenset({0x05, 0x80, 0x81, 0x82})  # unSpecified, noSuchObject/Instance, endOfMibView
SYS_DESCR, SYS_UPTIME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0"

# PDU choice tag -> event name (snmp-protocol.pac)
COMMON_PDUS = {
    0xA0: "get_request",
    0xA1: "get_next_request",
    0xA2: "response",
    0xA3: "set_request",
    0xA6: "inform_request",
    0xA7: "trapV2",
    0xA8: "report",
}
TRAP_PDU, BULK_PDU = 0xA4, 0xA5

Weird = Callable[[str, str], None]


class SnmpParseError(ValueError):
    """The datagram does not fit the grammar (binpac's exception -> analyzer violation)."""


def binary_to_int64(data: bytes, weird: Weird) -> int:
    """asn1.pac's binary_to_int64: big-endian, no sign extension below 8 bytes, more than 8
    bytes is a weird and 0."""
    if len(data) > 8:
        weird("asn_binary_to_int64_shift_too_large", str(len(data)))
        return 0
    value = int.from_bytes(data, "big")
    return value - 2**64 if value >= 2**63 else value


def oid_text(data: bytes, weird: Weird) -> str:
    """asn1_oid_to_val: dotted sub-identifiers (the first split into two by 40); a truncated
    encoding gives "", a sub-identifier over 10 bytes a weird and ""."""
    groups: list[list[int]] = []
    current: list[int] = []
    for b in data:
        current.append(b & 0x7F)
        if not b & 0x80:
            groups.append(current)
            current = []
    if current or not groups:
        return ""
    values = []
    for group in groups:
        if len(group) > 10:
            weird("asn_oid_subidentifier_too_long", str(len(group)))
            return ""
        value = 0
        for part in group:
            value = (value << 7) | part
        values.append(value & (2**64 - 1))
    first = values[0] & 0xFFFFFFFF  # std::div on the value narrowed to a C int
    if first >= 2**31:
        first -= 2**32
    quot = abs(first) // 40 * (1 if first >= 0 else -1)  # C division truncates toward zero
    rem = first - 40 * quot
    return ".".join([f"{quot}.{rem}"] + [str(v) for v in values[1:]])


@dataclass
class Binding:
    oid: str
    tag: int
    value: Any  # octets (str), unsigned/signed (int), address (str) or None


@dataclass
class SnmpEvent:
    """One event the analyzer raises: its name, the header and the bindings it carries."""

    name: str
    version: int
    community: str | None = None  # v1/v2 community
    user_name: str | None = None  # v3 USM user name (None when not read yet)
    bindings: list[Binding] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes, weird: Weird) -> None:
        self.data = data
        self.pos = 0
        self.weird = weird

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.left():
            raise SnmpParseError(f"need {n} bytes at {self.pos}, have {self.left()}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def meta(self) -> tuple[int, int]:
        tag, first = self.take(1)[0], self.take(1)[0]
        if first & 0x80:
            return tag, binary_to_int64(self.take(first & 0x7F), self.weird)
        return tag, first

    def encoding(self) -> tuple[int, bytes]:
        tag, length = self.meta()
        return tag, self.take(length)

    def expect(self, tag: int, want: int) -> None:
        if tag != want:
            raise SnmpParseError(f"Got ASN.1 tag {tag}, expect {want}")

    def sequence(self) -> None:
        self.expect(self.meta()[0], SEQUENCE)

    def integer(self) -> int:
        tag, content = self.encoding()
        self.expect(tag, INTEGER)
        if len(content) > 9:
            raise SnmpParseError(f"ASN.1 integer width overflow: {len(content)}")
        return binary_to_int64(content, self.weird)

    def typed(self, want: int) -> bytes:
        tag, content = self.encoding()
        self.expect(tag, want)
        return content

    def bindings(self) -> list[tuple[bytes, int, bytes]]:
        """VarBindList: a SEQUENCE header, then VarBinds until the datagram ends."""
        self.sequence()
        out = []
        while self.left() > 0:
            self.sequence()
            oid = self.typed(OBJECT_ID)
            tag, value = self.encoding()
            out.append((oid, tag, value))
        return out


def _binding_value(tag: int, content: bytes, weird: Weird) -> Any:
    """asn1_obj_to_val: which of the ObjectValue fields the tag fills."""
    if tag in NULL_TAGS:
        return None
    if tag == OBJECT_ID:
        return oid_text(content, weird)
    if tag == INTEGER or tag in UNSIGNED_TAGS:
        return binary_to_int64(content, weird)
    if tag == APP_IPADDRESS:
        return ".".join(str(b) for b in content) if len(content) == 4 else "::"
    return bytes_text(content)  # octets: OCTET STRING, Opaque and any other tag


def parse_snmp(data: bytes, weird: Weird) -> tuple[list[SnmpEvent], list[str]]:
    """Events of one datagram plus non-fatal violations ("Invalid v3 HeaderData msgFlags").

    Raises :class:`SnmpParseError` where binpac throws; events listed before that point were
    already raised in Zeek and are attached to the exception as ``exc.events``."""
    events: list[SnmpEvent] = []
    problems: list[str] = []
    try:
        _parse(_Reader(data, weird), events, problems)
    except SnmpParseError as exc:
        exc.events = events  # type: ignore[attr-defined]
        exc.problems = problems  # type: ignore[attr-defined]
        raise
    return events, problems


def _parse(rd: _Reader, events: list[SnmpEvent], problems: list[str]) -> None:
    rd.sequence()
    version = rd.integer()
    head = SnmpEvent(name="", version=version)
    plaintext = True
    if version in (0, 1):
        head.community = bytes_text(rd.typed(OCTET_STRING))
    elif version == 3:
        plaintext = _v3_header(rd, head, events, problems)
    else:  # UnknownVersionHeader: the rest is skipped (main.zeek handles no event for it)
        rd.take(rd.left())
        plaintext = False
    events.append(SnmpEvent(name="header", version=version))  # marks proc_header's place
    if not plaintext:
        return
    choice, _length = rd.meta()
    name = COMMON_PDUS.get(choice)
    enterprise = None
    if name is not None:
        rd.integer(), rd.integer(), rd.integer()  # request_id, error_status, error_index
    elif choice == TRAP_PDU:
        name = "trap"
        enterprise = rd.typed(OBJECT_ID)
        rd.typed(APP_IPADDRESS)  # agent_addr
        rd.integer(), rd.integer()  # generic_trap, specific_trap
        rd.typed(APP_TIMETICKS)  # time_stamp
    elif choice == BULK_PDU:
        name = "get_bulk_request"
        rd.integer(), rd.integer(), rd.integer()  # request_id, non_repeaters, max_repetitions
    else:
        rd.take(rd.left())
        events.append(_with(head, "unknown_pdu"))
        return
    raw = rd.bindings()
    event = _with(head, name)
    if enterprise is not None:  # build_trap_pdu converts it (a weird is all it can leave)
        oid_text(enterprise, rd.weird)
    for oid, tag, value in raw:
        event.bindings.append(
            Binding(oid_text(oid, rd.weird), tag, _binding_value(tag, value, rd.weird))
        )
    events.append(event)


def _with(head: SnmpEvent, name: str) -> SnmpEvent:
    return SnmpEvent(name=name, version=head.version, community=head.community,
                     user_name=head.user_name)  # fmt: skip


def _v3_header(rd: _Reader, head: SnmpEvent, events: list[SnmpEvent], problems: list[str]) -> bool:
    """v3Header; True when a plaintext scoped PDU follows."""
    rd.sequence()  # v3HeaderData
    rd.integer(), rd.integer()  # msgID, msgMaxSize
    flags = rd.typed(OCTET_STRING)
    security_model = rd.integer()
    if len(flags) != 1:
        problems.append("Invalid v3 HeaderData msgFlags")
    security_params = rd.typed(OCTET_STRING)
    next_tag, _length = rd.meta()
    plaintext = next_tag == SEQUENCE
    if plaintext:
        rd.typed(OCTET_STRING), rd.typed(OCTET_STRING)  # contextEngineID, contextName
    else:  # reported now, before the v3Header's USM parameters are read
        rd.take(rd.left())
        kind = "encrypted_pdu" if next_tag == OCTET_STRING else "unknown_scoped_pdu"
        events.append(_with(head, kind))
    if security_model == 3:
        usm = _Reader(security_params, rd.weird)
        usm.sequence()
        usm.typed(OCTET_STRING)  # msgAuthoritativeEngineID
        usm.integer(), usm.integer()  # engine boots, engine time
        head.user_name = bytes_text(usm.typed(OCTET_STRING))
        usm.typed(OCTET_STRING), usm.typed(OCTET_STRING)  # authentication, privacy parameters
    return plaintext


class SnmpAnalyzer:
    """Zeek's SNMP_Analyzer plus main.zeek for one UDP connection."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        self.info: Record | None = None  # c$snmp

    def _net_weird(self, name: str, addl: str) -> None:
        conn = getattr(self.ctx, "conn", None)
        if conn is None:  # a context without the engine (unit tests): keep it on the connection
            self.ctx.weird(name, addl)
            return
        engine = conn.engine
        engine.weirds.net_weird(name, engine.now, source="", addl=addl)

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        try:
            events, problems = parse_snmp(data, self._net_weird)
            failure = None
        except SnmpParseError as exc:
            events, problems, failure = exc.events, exc.problems, exc  # type: ignore[attr-defined]
        for problem in problems:
            self.ctx.violation(problem)
        for event in events:
            if event.name == "header":
                if not is_orig:
                    self.ctx.confirm("snmp")
            else:
                self._event(event, ts)
        if failure is not None:
            self.ctx.violation(f"Binpac exception: binpac exception: {failure}")

    def _state(self, event: SnmpEvent, ts: float) -> Record:
        """init_state."""
        if self.info is None:
            self.info = {
                "ts": ts,
                "uid": self.ctx.uid,
                **self.ctx.conn_id.columns(),
                "duration": 0.0,
                "version": VERSION_MAP.get(event.version, "unknown"),
                "get_requests": 0,
                "get_bulk_requests": 0,
                "get_responses": 0,
                "set_requests": 0,
            }
        info = self.info
        if info.get("community") is None:
            if event.version in (0, 1):
                info["community"] = event.community
            elif event.version == 3 and event.user_name:
                info["community"] = event.user_name
        info["duration"] = ts - info["ts"]
        return info

    def _event(self, event: SnmpEvent, ts: float) -> None:
        info = self._state(event, ts)
        count = len(event.bindings)
        if event.name in ("get_request", "get_next_request"):
            info["get_requests"] += count
        elif event.name == "get_bulk_request":
            info["get_bulk_requests"] += count
        elif event.name == "set_request":
            info["set_requests"] += count
        elif event.name == "response":
            info["get_responses"] += count
            for binding in event.bindings:
                if binding.oid == SYS_DESCR and _is_octets(binding.tag):
                    info["display_string"] = binding.value
                elif binding.oid == SYS_UPTIME and binding.tag in UNSIGNED_TAGS:
                    info["up_since"] = ts - (binding.value % 2**64) / 100.0

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        """UDP has no gaps."""

    def end(self, ts: float) -> None:
        """finalize_snmp: the connection's record is written when it is removed."""
        if self.info is not None:
            self.ctx.emit("snmp", dict(self.info))
            self.info = None


def _is_octets(tag: int) -> bool:
    """ObjectValue$octets is set for OCTET STRING, Opaque and every tag not given another field."""
    return (
        tag not in NULL_TAGS
        and tag not in (OBJECT_ID, INTEGER, APP_IPADDRESS)
        and (tag not in UNSIGNED_TAGS)
    )


SPEC = register(
    AnalyzerSpec(
        name="snmp",
        transports=frozenset({"udp"}),
        ports=PORTS,
        factory=SnmpAnalyzer,
    )
)
