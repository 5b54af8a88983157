"""Metadata of an extracted file, computed from its bytes alone (a pure function).

Extracted files are hostile: they are only ever hashed and sniffed here, never written under
their own names or executed. libmagic sees only the first bytes, so a huge or crafted file cannot
make it work long.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import magic
import numpy as np
import ssdeep

MAGIC_BYTES = 64 * 1024  # libmagic looks at the first bytes only
MAX_NAME = 255
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte over the whole content (0.0 for empty content)."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum()) + 0.0


def file_metadata(data: bytes) -> dict[str, Any]:
    """md5, sha1, sha256, ssdeep, entropy (bits/byte), file_size, file_type (libmagic's
    description) and mime_type of one file's content."""
    head = data[:MAGIC_BYTES]
    return {
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "ssdeep": ssdeep.hash(data),
        "entropy": round(shannon_entropy(data), 6),
        "file_size": len(data),
        "file_type": magic.from_buffer(head) if data else "empty",
        "mime_type": magic.from_buffer(head, mime=True) if data else "application/x-empty",
    }


def safe_name(name: str | None, fallback: str) -> str:
    """A file name safe to show or store: no directories, no control or shell characters, bounded."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE_NAME.sub("_", base).strip(" .")[:MAX_NAME]
    return clean or fallback
