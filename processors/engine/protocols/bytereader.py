"""Bounds-checked field reads, shared by the binary protocol parsers (SSL, SSH, SMB, SOCKS, ...).

Zeek's binpac parsers throw when a field runs past its message; the analyzers catch
:class:`ParseError` at the same place and report a protocol violation.
"""

from __future__ import annotations

from typing import ClassVar, Literal


class ParseError(ValueError):
    """A message does not fit its structure (a binpac exception in Zeek)."""


class Reader:
    """Big-endian fields off ``data[pos:end]``; running past ``end`` is a :class:`ParseError`."""

    __slots__ = ("data", "pos", "end")
    order: ClassVar[Literal["big", "little"]] = "big"

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ParseError(f"out of bound: need {n} bytes at {self.pos}, have {self.left}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), self.order)

    def u24(self) -> int:
        return int.from_bytes(self.take(3), self.order)

    def u32(self) -> int:
        return int.from_bytes(self.take(4), self.order)

    def u64(self) -> int:
        return int.from_bytes(self.take(8), self.order)

    def sub(self, n: int) -> Reader:
        """The next ``n`` bytes as their own bounded reader (a ``&length`` field)."""
        start = self.pos
        self.take(n)
        kind = Reader if self.order == "big" else LittleReader
        return kind(self.data, start, start + n)

    def rest(self) -> bytes:
        return self.take(self.left)


class LittleReader(Reader):
    """Little-endian fields (SMB), with binpac's ``padding to``."""

    __slots__ = ()
    order = "little"

    def pad_to(self, start: int, target: int) -> None:
        """Skip to ``start + target``; a target before the current point pads nothing (the next
        read checks the bounds)."""
        if start + target > self.pos:
            self.pos = start + target


def asn1_meta(r: Reader) -> tuple[int, int, int]:
    """binpac's ASN1EncodingMeta: (tag, first length octet, length). A long form's octets read
    big-endian, and more than 8 of them give 0 (``binary_to_int64``)."""
    tag, first = r.u8(), r.u8()
    if first & 0x80:
        more = r.take(first & 0x7F)
        return tag, first, int.from_bytes(more, "big") if len(more) <= 8 else 0
    return tag, first, first


def asn1_encoding(r: Reader) -> bytes:
    """binpac's ASN1Encoding: one element's content, its length taken as written."""
    return r.take(asn1_meta(r)[2])
