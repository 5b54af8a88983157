"""wirestream: packet captures to Zeek logs on Apache Kafka, and back out as typed DataFrames."""

from __future__ import annotations

__version__ = "0.1.0"
