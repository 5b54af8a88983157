"""Consumers: topic windows and captures straight into DataFrames.

``read`` (a time window or offset ranges), ``tail``, ``windows`` (event-time windows in a
consumer group), ``frames``/``details`` (one capture), ``TopicsView`` (notebook overview) and the
batch decoder behind them. Heavy imports load on first use.
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
    "topics_view": "wirestream.consumers.topics_view",
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
