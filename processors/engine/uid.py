"""Zeek-style unique ids: ``C`` + base62 of 96 random bits for connections, ``F...`` for files.

Zeek draws uids from its seeded RNG; tests compare how records link, never the strings, so we
only need the same shape and a seedable source for reproducible output.
"""

from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # 0..3843 as two digits


def base62(value: int) -> str:
    """Base62 digits of a non-negative integer (``0`` for zero), most significant first."""
    if value < 0:
        raise ValueError(f"base62 needs a non-negative integer, got {value}")
    pairs = []  # two digits per step: half the big-int divisions of a 96-bit uid
    while value >= 62:
        value, rem = divmod(value, 3844)
        pairs.append(_PAIRS[rem])
    text = "".join(reversed(pairs))
    if value:
        return _ALPHABET[value] + text
    return text.lstrip("0") or "0"


class UidGenerator:
    """Hands out connection and file uids; the same seed gives the same sequence."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def _uid(self, prefix: str) -> str:
        return prefix + base62(self._rng.getrandbits(96))

    def conn_uid(self) -> str:
        return self._uid("C")

    def file_uid(self) -> str:
        return self._uid("F")
