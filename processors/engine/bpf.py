"""Capture filters (``-f 'BPF'``) with libpcap's own compiler, as Zeek applies them.

Zeek hands ``-f`` to libpcap, so the only faithful filter is libpcap's: this module loads
``libpcap.so`` through ctypes, compiles the expression once per link type with
``pcap_compile`` on a dead handle, and runs ``pcap_offline_filter`` on each packet (the same
BPF interpreter ``tcpdump -r`` uses). Without libpcap there is no filter: :class:`BpfError`
says so rather than letting every packet through.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

from wirestream.processors.engine.api import Packet, Record

log = logging.getLogger(__name__)

PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
_SNAPLEN = 262_144
_LIBRARY_NAMES = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")
# File LINKTYPE_* values whose in-memory DLT_* differs (libpcap maps them when opening a file).
_LINKTYPE_TO_DLT = {100: 11, 101: 12}


class BpfError(ValueError):
    """The filter cannot be used: libpcap is missing, or the expression does not compile."""


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


_lib: Any = None


def libpcap() -> Any:
    """The loaded libpcap (Debian: ``apt-get install libpcap0.8``), or BpfError."""
    global _lib
    if _lib is not None:
        return _lib
    names = list(_LIBRARY_NAMES)
    found = ctypes.util.find_library("pcap")
    if found:
        names.insert(0, found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(_BpfProgram),
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_uint32,
        ]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_offline_filter.restype = ctypes.c_int
        lib.pcap_offline_filter.argtypes = [
            ctypes.POINTER(_BpfProgram),
            ctypes.POINTER(_PktHdr),
            ctypes.c_char_p,
        ]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        _lib = lib
        return lib
    raise BpfError(
        "capture filters need libpcap, which is not installed "
        "(Debian/Ubuntu: apt-get install libpcap0.8; ./dev setup installs it)"
    )


class _Compiled:
    """One expression compiled for one link type."""

    def __init__(self, expression: str, linktype: int) -> None:
        lib = libpcap()
        self._lib = lib
        handle = lib.pcap_open_dead(_LINKTYPE_TO_DLT.get(linktype, linktype), _SNAPLEN)
        if not handle:
            raise BpfError(f"libpcap cannot open a handle for link type {linktype}")
        self.program = _BpfProgram()
        try:
            rc = lib.pcap_compile(
                handle, ctypes.byref(self.program), expression.encode(), 1, PCAP_NETMASK_UNKNOWN
            )
            if rc != 0:
                reason = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
                raise BpfError(f"bad capture filter {expression!r}: {reason}")
        finally:
            lib.pcap_close(handle)
        self.header = _PktHdr()
        self._header_ref = ctypes.byref(self.header)
        self._program_ref = ctypes.byref(self.program)

    def matches(self, packet: Packet) -> bool:
        header = self.header
        header.caplen = len(packet.data)
        header.len = packet.wirelen
        return bool(self._lib.pcap_offline_filter(self._program_ref, self._header_ref, packet.data))

    def __del__(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is not None and self.program.bf_insns:
            lib.pcap_freecode(ctypes.byref(self.program))


class CaptureFilter:
    """A BPF expression applied to packets of any link type (compiled per link type on demand).

    The expression is compiled for Ethernet at once, so a bad filter fails before any packet.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._by_linktype: dict[int, _Compiled] = {1: _Compiled(expression, 1)}
        self.passed = 0
        self.dropped = 0

    def matches(self, packet: Packet) -> bool:
        compiled = self._by_linktype.get(packet.linktype)
        if compiled is None:
            compiled = self._by_linktype[packet.linktype] = _Compiled(
                self.expression, packet.linktype
            )
        if compiled.matches(packet):
            self.passed += 1
            return True
        self.dropped += 1
        return False


def packet_filter_record(
    ts: float, expression: str, *, success: bool = True, failure_reason: str | None = None
) -> Record:
    """The packet_filter.log row Zeek's PacketFilter framework writes when it installs a filter.

    Zeek's default filter (no ``-f``) is ``ip or not ip``.
    """
    return {
        "ts": ts,
        "node": "zeek",
        "filter": expression,
        "init": True,
        "success": success,
        "failure_reason": failure_reason,
    }


DEFAULT_FILTER = "ip or not ip"
