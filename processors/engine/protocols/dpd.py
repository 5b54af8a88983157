"""Pieces of Zeek's DPD signatures (dpd.sig) matched without regex backtracking.

Sniffers run on every unattached connection's first chunks, each time over up to 1 KB per
side; a ``.*``-led pattern backtracks over all of it (6-15 us a call). These give the same
verdicts with ``bytes.find`` scans.
"""

from __future__ import annotations


def keyword_starts_line(data: bytes, keywords: tuple[bytes, ...], pad: bytes) -> bool:
    """Zeek's ``/^(|.*[\\n\\r])[pad]*KEYWORD/`` (keywords case-insensitive, given lower case):
    some keyword follows the payload's start or a CR/LF with only ``pad`` bytes between."""
    low = data.lower()  # ASCII only, as the signatures' [uU][sS]... classes
    for keyword in keywords:
        at = low.find(keyword)
        while at >= 0:
            if _after_line_start(data, at, pad):
                return True
            at = low.find(keyword, at + 1)
    return False


def _after_line_start(data: bytes, at: int, pad: bytes) -> bool:
    """Only ``pad`` bytes lie between ``at`` and the payload's start or some CR/LF before it."""
    run_start = len(data[:at].rstrip(pad))
    if run_start == 0:
        return True
    # The pad run with the byte before it: the CR/LF is either that byte or (when CR/LF are
    # pad themselves) inside the run.
    before = data[run_start - 1 : at]
    return b"\n" in before or b"\r" in before
