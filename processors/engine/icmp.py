"""ICMP and ICMPv6 as Zeek makes connections of them: the type is the originator "port", the
counterpart type (echo request <-> reply, ...) or, for one-way messages, the code is the
responder "port"; one-way messages are keyed by direction so they never pair up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sessions import Connection

_ICMP4_PAIRS = {0: 8, 8: 0, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    130: 131,
    131: 130,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def counterpart(ip_proto: int, icmp_type: int, icmp_code: int) -> tuple[int, bool]:
    """(responder "port", is_one_way) for an ICMP (proto 1) or ICMPv6 (proto 58) message."""
    pairs = _ICMP4_PAIRS if ip_proto == 1 else _ICMP6_PAIRS
    if icmp_type in pairs:
        return pairs[icmp_type], False
    return icmp_code, True


class IcmpSession:
    """Zeek's ICMPSessionAdapter: payload bytes per direction (-1 = nothing sent)."""

    __slots__ = ("conn", "request_len", "reply_len")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.request_len = -1
        self.reply_len = -1

    def flip(self) -> None:
        """Zeek's ICMP adapter keeps its lengths on a flip (only ConnSize swaps)."""

    def message(self, is_orig: bool, length: int) -> None:
        """One ICMP message with ``length`` bytes after the 8-byte ICMP header."""
        if is_orig:
            self.request_len = length if self.request_len < 0 else self.request_len + length
        else:
            self.reply_len = length if self.reply_len < 0 else self.reply_len + length

    def sizes(self) -> tuple[int, int]:
        return max(self.request_len, 0), max(self.reply_len, 0)


@dataclass(frozen=True, slots=True)
class NdWeird:
    name: str
    addl: str = ""
    conn_scoped: bool = True  # the session adapter's weird; else the packet analyzer's (no flow)


@dataclass(frozen=True, slots=True)
class NdMessage:
    """An ICMPv6 Neighbor Discovery message as Zeek's ICMP analyzer reads it."""

    event: str  # Zeek reads the message (and its options) only when this event has a handler
    short: str  # the weird name's part: icmp6_<short>_bad_opt_offset
    options_at: int  # where the options start, after the 8-byte ICMP header


ND_MESSAGES: dict[int, NdMessage] = {
    133: NdMessage("icmp_router_solicitation", "rs", 0),
    134: NdMessage("icmp_router_advertisement", "ra", 8),  # reachable + retrans timers
    135: NdMessage("icmp_neighbor_solicitation", "ns", 16),  # target address
    136: NdMessage("icmp_neighbor_advertisement", "na", 16),  # target address
    137: NdMessage("icmp_redirect", "redirect", 32),  # target + destination addresses
}


def nd_weirds(icmp_type: int, body: bytes, handled_events: frozenset[str]) -> list[NdWeird]:
    """The weirds Zeek raises reading an ICMPv6 ND message (``body``: the captured bytes after
    the 8-byte ICMP header). Zeek reads one only when a script handles its event, so without
    such a handler there are none."""
    message = ND_MESSAGES.get(icmp_type)
    if message is None or message.event not in handled_events:
        return []
    caplen = len(body)
    if caplen < message.options_at:
        addl = f"{message.options_at} (length {caplen})"
        return [NdWeird(f"icmp6_{message.short}_bad_opt_offset", addl, conn_scoped=False)]
    out = []
    pos = message.options_at
    remaining = caplen - pos
    while remaining > 0:  # Zeek's BuildNDOptionsVal walk over type/length/value options
        if remaining < 2:
            out.append(NdWeird("truncated_ICMPv6_ND_options"))
            break
        length = body[pos + 1]
        if length == 0:
            out.append(NdWeird("zero_length_ICMPv6_ND_option"))
            break
        pos += length * 8
        remaining -= length * 8
    return out
