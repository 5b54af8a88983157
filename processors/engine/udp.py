"""UDP connections as Zeek tracks them: payload sizes from the UDP length field, ``D``/``d``
history, bad-checksum packets counted only as history ``C``/``c``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sessions import Connection

HIST_ORIG_DATA_PKT = 0x1
HIST_RESP_DATA_PKT = 0x2


class UdpSession:
    """Zeek's UDPSessionAdapter: request/reply lengths (-1 = endpoint never sent)."""

    __slots__ = ("conn", "request_len", "reply_len", "chk")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.request_len = -1
        self.reply_len = -1
        self.chk = {True: [0, 1], False: [0, 1]}  # scaled C/c counters

    def flip(self) -> None:
        """Zeek's UDP adapter keeps its lengths and counters on a flip (only ConnSize swaps)."""

    def bad_checksum(self, is_orig: bool) -> None:
        self.conn.weird("bad_UDP_checksum", source="UDP")
        counter = self.chk[is_orig]
        counter[0] += 1
        if counter[0] == counter[1]:
            self.conn.add_history("C" if is_orig else "c")
            counter[1] *= 10

    def datagram(self, is_orig: bool, ulen: int) -> None:
        """One good datagram: history and sizes (``ulen`` is the UDP length minus its header)."""
        conn = self.conn
        if is_orig:
            conn.check_history(HIST_ORIG_DATA_PKT, "D")
            self.request_len = ulen if self.request_len < 0 else self.request_len + ulen
        else:
            conn.check_history(HIST_RESP_DATA_PKT, "d")
            self.reply_len = ulen if self.reply_len < 0 else self.reply_len + ulen

    def sizes(self) -> tuple[int, int]:
        return max(self.request_len, 0), max(self.reply_len, 0)

    def active(self) -> tuple[bool, bool]:
        return self.request_len >= 0, self.reply_len >= 0
