"""One capture's logs as DataFrames, via its details record on the compacted captures topic.

The processors write, per capture, :class:`~wirestream.processors.capture_details.CaptureDetails`
with each log's topic and inclusive offset ranges per partition. Ranges may also hold records
of captures processed at the same time, so records are also matched on their ``capture`` header
(the capture's md5).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wirestream.consumers import session
from wirestream.consumers.decode import Output
from wirestream.consumers.errors import CaptureNotFoundError, ConsumerError
from wirestream.consumers.reader import Ranges, read_ranges
from wirestream.processors.capture_details import CaptureDetails
from wirestream.processors.capture_store import read_captures
from wirestream.schemas.headers import CAPTURE

from wirestream.config import Settings


def find_capture(captures: dict[str, CaptureDetails], capture: str) -> CaptureDetails:
    """The capture named by md5, send id or file name (the newest send if a name repeats)."""
    if capture in captures:
        return captures[capture]
    matches = [d for d in captures.values() if capture in (d.send_id, d.name)]
    if not matches:
        known = ", ".join(sorted(f"{d.name} ({d.md5[:8]})" for d in captures.values())[:10])
        raise CaptureNotFoundError(
            f"no capture {capture!r} (by md5, send id or name); known: {known or 'none'}"
        )
    return max(matches, key=lambda d: d.finished_at or d.sent_at or 0.0)


def details(capture: str, *, settings: Settings | None = None) -> CaptureDetails:
    """The details record of one capture: status, packet counts, files, logs and their offsets."""
    settings = session.resolved(settings)
    return find_capture(read_captures(settings), capture)


def frames(
    capture: str | CaptureDetails,
    logs: Iterable[str] | None = None,
    *,
    settings: Settings | None = None,
    output: Output = "pandas",
    index: str | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """``{log: DataFrame}`` of one capture (all its logs, or those named in ``logs``)."""
    settings = session.resolved(settings)
    info = capture if isinstance(capture, CaptureDetails) else details(capture, settings=settings)
    if not info.done:
        raise ConsumerError(
            f"capture {info.name} ({info.md5[:8]}) is not analysed yet (status {info.status!r})"
        )
    wanted = list(info.logs) if logs is None else list(logs)
    missing = [name for name in wanted if name not in info.logs]
    if missing:
        raise ConsumerError(
            f"capture {info.name} has no {', '.join(missing)} log; it has {', '.join(info.logs)}"
        )
    out: dict[str, Any] = {}
    consumer = session.open_consumer(settings)
    try:
        for name in wanted:
            entry = info.logs[name]
            topic, parts = session.log_partitions(consumer, name, settings)
            spans = {int(p): (first, last + 1) for p, (first, last) in entry["offsets"].items()}
            ranges = Ranges(
                {p: s[0] for p, s in spans.items()}, {p: s[1] for p, s in spans.items()}
            )
            if not set(spans) <= set(parts):
                raise ConsumerError(f"{topic}: capture offsets name partitions {sorted(spans)}")
            out[name], _stats = read_ranges(
                name,
                settings,
                consumer,
                topic,
                ranges,
                output=output,
                index=index,
                progress=progress,
                headers_filter=(CAPTURE, info.md5.encode()),
            )
    finally:
        consumer.close()
    return out
