"""Live capture on the loopback interface (needs root / CAP_NET_RAW; skipped otherwise)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from wirestream.processors.engine.pcapio import read_packets
from wirestream.producers.live_capture import LiveCaptureError, capture_chunks, open_interface


def _can_capture() -> str | None:
    try:
        open_interface("lo").close()
    except LiveCaptureError as exc:
        return str(exc)
    return None


@pytest.mark.timeout(60)
def test_loopback_chunks_hold_each_datagram_once(tmp_path: Path) -> None:
    reason = _can_capture()
    if reason:
        pytest.skip(reason)
    stop = threading.Event()
    chunks: list[Path] = []

    def run() -> None:
        chunks.extend(
            capture_chunks("lo", tmp_path / "spool", stop=stop.is_set, rotate_seconds=1.5)
        )

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    marks = [f"wirestream-live-{i}".encode() for i in range(20)]
    for m in marks:
        sender.sendto(m, ("127.0.0.1", port))
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    thread.join(10)
    assert len(chunks) >= 2, "rotation did not cut the capture into chunks"
    payloads = [
        p.data[-len(m) :]
        for c in chunks
        for p in read_packets(c)
        for m in marks
        if p.data.endswith(m)
    ]
    assert sorted(payloads) == sorted(marks)
    first = next(read_packets(chunks[0]))
    assert first.linktype == 1 and abs(first.ts - time.time()) < 60


def test_unknown_interface_is_a_clear_error() -> None:
    if _can_capture():
        pytest.skip("no capture permission here")
    with pytest.raises(LiveCaptureError, match="cannot capture on no-such-if0"):
        open_interface("no-such-if0")
