"""ICMP and ICMPv6 as Zeek makes connections of them: the type is the originator "port", the
counterpart type (echo request <-> reply, ...) or, for one-way messages, the code is the
responder "port"; one-way messages are keyed by direction so they never pair up.
"""

from __future__ import annotations

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
