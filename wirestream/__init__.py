"""wirestream: packet captures to Zeek logs on Apache Kafka, and back out as typed DataFrames."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Lazy top-level access to the consumer API (``wirestream.read``...), loaded on first use."""
    import importlib

    if name == "read_zeek_log":  # Zeek log file -> typed DataFrame (pandas loaded on first use)
        return importlib.import_module("wirestream.schemas.zeeklog.dataframe").read_zeek_log
    if name in ("submit", "connect"):  # send captures through the pipeline (wirestream/session.py)
        return getattr(importlib.import_module("wirestream.session"), name)
    consumers = importlib.import_module("wirestream.consumers")
    if name in consumers.__all__:
        return getattr(consumers, name)
    raise AttributeError(f"module 'wirestream' has no attribute {name!r}")
