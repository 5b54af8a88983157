"""Zeek's string escaping, byte for byte, and its inverse.

Zeek strings are byte strings. In memory they are ``str``; bytes that are not valid UTF-8 are
carried as lone surrogates (Python's ``surrogateescape``), so any Zeek string survives a
read/write round trip. Use :func:`text_bytes` to get the raw bytes back.

The rules follow Zeek's ``ODesc::AddBytes`` (TSV fields), ``util::escape_utf8`` (its UTF-8
mode and the JSON "hex" policy) and ``util::escape_string_for_json`` (the JSON "pua" policy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from json.encoder import encode_basestring

_BACKSLASH = 0x5C
_JSON_SHORT = {
    0x22: b'\\"',
    0x5C: b"\\\\",
    0x08: b"\\b",
    0x0C: b"\\f",
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
}
_JSON_ALLOWED_CONTROLS = frozenset(b"\b\f\n\r\t")
_HEX = [b"\\x%02x" % i for i in range(256)]
_UNESCAPE_RE = re.compile(rb"\\(\\|x[0-9a-fA-F]{2})")
_HEADER_UNESCAPE_RE = re.compile(rb"\\x([0-9a-fA-F]{2})")
# Zeek's STRING_ESCAPE_POLICY_PUA writes byte b as code point U+F0000 + b (plane 15 private use).
PUA_BYTE_BASE = 0xF0000
_PUA_RE = re.compile(f"[{chr(PUA_BYTE_BASE)}-{chr(PUA_BYTE_BASE + 0xFF)}]")


def text_bytes(text: str) -> bytes:
    """The Zeek bytes behind an in-memory string (inverse of :func:`bytes_text`)."""
    return text.encode("utf-8", "surrogateescape")


def bytes_text(data: bytes) -> str:
    """Zeek bytes as an in-memory string; invalid UTF-8 survives as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def display_text(text: str) -> str:
    """Valid UTF-8 text for places that cannot hold surrogates (Arrow, pandas): bad bytes as ``\\xNN``."""
    if text.isascii():
        return text
    return text_bytes(text).decode("utf-8", "backslashreplace")


def _ok_codepoint(cp: int) -> bool:
    """Zeek's ``check_ok_utf8``: control characters, private use and specials are not OK."""
    return not (
        cp <= 0x1F
        or cp == 0x7F
        or 0x80 <= cp <= 0x9F
        or 0xE000 <= cp <= 0xF8FF
        or 0xFFF0 <= cp <= 0xFFFF
    )


def _hex_all(data: bytes, keep: frozenset[int] = frozenset()) -> bytes:
    """Every byte outside printable ASCII (and ``keep``) as ``\\xNN``."""
    return b"".join(bytes((b,)) if 0x20 <= b < 0x7F or b in keep else _HEX[b] for b in data)


def _utf8_ok(data: bytes, keep_controls: bool) -> bool:
    """True when ``escape_utf8`` would pass ``data`` through unchanged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for ch in text:
        cp = ord(ch)
        if 0x20 <= cp < 0x7F or (keep_controls and cp in _JSON_ALLOWED_CONTROLS):
            continue
        if not _ok_codepoint(cp):
            return False
    return True


def escape_utf8(data: bytes, *, keep_controls: bool = False) -> bytes:
    """Zeek's ``util::escape_utf8``: valid UTF-8 passes; one bad sequence hex-escapes the lot.

    ``keep_controls`` keeps ``\\b \\f \\n \\r \\t`` raw (JSON hex policy); the TSV writer escapes them.
    """
    if data.isascii() and all(0x20 <= b < 0x7F for b in data):
        return data
    if _utf8_ok(data, keep_controls):
        return data
    return _hex_all(data, _JSON_ALLOWED_CONTROLS if keep_controls else frozenset())


def _escape_loc(data: bytes, i: int, sequences: Sequence[bytes], utf8: bool) -> int:
    """Length of the escape that starts at ``data[i]`` (0 if none): ODesc::FirstEscapeLoc."""
    b = data[i]
    if (not utf8 and not 0x20 <= b < 0x7F) or b == _BACKSLASH:
        return 1
    for seq in sequences:
        if data.startswith(seq, i):
            return len(seq)
    return 0


def escape_field_bytes(data: bytes, sequences: Sequence[bytes] = (), utf8: bool = True) -> bytes:
    """Escape bytes as Zeek's ASCII writer does (``ODesc::AddBytes`` with escaping on).

    Backslashes become ``\\\\``; separator ``sequences`` (sorted, as Zeek keeps them) and, without
    UTF-8, every non-printable byte become ``\\xNN``; with UTF-8 each run between escapes goes
    through :func:`escape_utf8`.
    """
    out: list[bytes] = []
    start = i = 0
    n = len(data)
    while i < n:
        length = _escape_loc(data, i, sequences, utf8)
        if not length:
            i += 1
            continue
        if i > start:
            chunk = data[start:i]
            out.append(escape_utf8(chunk) if utf8 else chunk)
        out.extend(b"\\\\" if b == _BACKSLASH else _HEX[b] for b in data[i : i + length])
        i += length
        start = i
    if start < n:
        chunk = data[start:]
        out.append(escape_utf8(chunk) if utf8 else chunk)
    return b"".join(out)


def escape_field(text: str, sequences: Sequence[str] = (), utf8: bool = True) -> str:
    """:func:`escape_field_bytes` for in-memory strings, with a fast path for plain ASCII."""
    if (
        text.isascii()
        and text.isprintable()
        and "\\" not in text
        and not any(seq in text for seq in sequences)
    ):
        return text
    escaped = escape_field_bytes(text_bytes(text), sorted(text_bytes(s) for s in sequences), utf8)
    return bytes_text(escaped)


def unescape_field(text: str) -> str:
    """Inverse of :func:`escape_field`: ``\\\\`` -> ``\\`` and ``\\xNN`` -> byte NN.

    (Zeek's own reader only undoes ``\\xNN``; undoing ``\\\\`` too is what makes it an inverse.)
    """
    if "\\" not in text:
        return text
    data = _UNESCAPE_RE.sub(
        lambda m: b"\\" if m.group(1) == b"\\" else bytes((int(m.group(1)[1:], 16),)),
        text_bytes(text),
    )
    return bytes_text(data)


def escape_header_value(text: str) -> str:
    """``util::get_escaped_string(s, false)``: whitespace and non-printables as ``\\xNN``."""
    data = text_bytes(text)
    return "".join(chr(b) if 0x21 <= b < 0x7F else _HEX[b].decode("ascii") for b in data)


def unescape_header_value(text: str) -> str:
    """Zeek's ``get_unescaped_string``: only ``\\xNN`` (header values keep raw backslashes)."""
    if "\\x" not in text:
        return text
    return bytes_text(
        _HEADER_UNESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 16),)), text_bytes(text))
    )


# --- JSON ------------------------------------------------------------------------------------


def json_string(text: str) -> str:
    """A JSON string literal as rapidjson writes it (no ``\\u`` for non-ASCII, ``/`` raw)."""
    return encode_basestring(text)


def json_string_hex(text: str) -> str:
    """A Zeek string in JSON under the default ``STRING_ESCAPE_POLICY_HEX``."""
    if not (text.isascii() and text.isprintable()):
        text = bytes_text(escape_utf8(text_bytes(text), keep_controls=True))
    return encode_basestring(text)


def json_string_tsv(text: str) -> str:
    """``STRING_ESCAPE_POLICY_TSV``: TSV field escaping (UTF-8 on, no separators), then JSON."""
    return encode_basestring(escape_field(text, (), True))


def _utf8_char_len(lead: int) -> int:
    """``getNumBytesForUTF8``: sequence length announced by a lead byte."""
    if lead < 0xC0:
        return 1
    if lead < 0xE0:
        return 2
    if lead < 0xF0:
        return 3
    if lead < 0xF8:
        return 4
    return 5 if lead < 0xFC else 6


def json_string_pua(text: str) -> str:
    """``STRING_ESCAPE_POLICY_PUA``: bad bytes as ``\\udb80\\udcNN`` (one JSON code point each)."""
    data = text_bytes(text)
    out = [b'"']
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b in _JSON_SHORT:
            out.append(_JSON_SHORT[b])
            i += 1
        elif 0x20 <= b < 0x7F:
            out.append(bytes((b,)))
            i += 1
        else:
            size = _utf8_char_len(b)
            chunk = data[i : i + size]
            try:
                ok = len(chunk) == size and _ok_codepoint(ord(chunk.decode("utf-8")))
            except (UnicodeDecodeError, TypeError):
                ok = False
            if ok:
                out.append(chunk)
                i += size
            else:
                out.append(b"\\udb80\\udc%02x" % b)
                i += 1
    out.append(b'"')
    return b"".join(out).decode("utf-8")


def undo_pua(text: str) -> str:
    """Map the PUA policy's U+F00NN code points back to the bytes they stand for."""
    if not _PUA_RE.search(text):
        return text
    mapped = _PUA_RE.sub(lambda m: bytes_text(bytes((ord(m.group(0)) - PUA_BYTE_BASE,))), text)
    return bytes_text(text_bytes(mapped))  # adjacent bytes may form valid UTF-8 again
