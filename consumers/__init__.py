"""Consumers: Kafka log topics straight into typed DataFrames.

In a notebook::

    import wirestream as ws

    ws.TopicsView()                                   # topics, records, time span, group lag
    conn = ws.read("conn", "-15min", "now")           # a time window, pandas with Zeek dtypes
    dns = ws.read("dns", "2024-05-01 10:00", "2024-05-01 11:00", index="ts")
    ws.read("conn", offsets={0: (100, 200)})          # offset ranges per partition
    ws.tail("http", 20)                               # the newest records
    logs = ws.frames("capture.pcap")                  # {log: DataFrame} of one capture
    ws.details("capture.pcap")                        # its details record

    with ws.windows("conn", every="1min", group="dashboards") as stream:
        for start, end, df in stream:                 # event-time windows as they close
            ...

``output="polars"`` or ``"arrow"`` instead of pandas. Errors a user can fix raise a
:class:`ConsumerError` with one readable sentence. Heavy imports load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "read": "wirestream.consumers.reader",
    "tail": "wirestream.consumers.reader",
    "windows": "wirestream.consumers.windowing",
    "Windows": "wirestream.consumers.windowing",
    "frames": "wirestream.consumers.captures",
    "details": "wirestream.consumers.captures",
    "TopicsView": "wirestream.consumers.topics_view",
    "BatchDecoder": "wirestream.consumers.decode",
    "decode_frame": "wirestream.consumers.decode",
    "ConsumerError": "wirestream.consumers.errors",
    "UnknownLogError": "wirestream.consumers.errors",
    "BrokerUnreachableError": "wirestream.consumers.errors",
    "WindowSpecError": "wirestream.consumers.errors",
    "CaptureNotFoundError": "wirestream.consumers.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wirestream.consumers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
