"""The project's own Apache Kafka broker, run from Maven Central jars (no tarball, no Docker).

``fetch`` gets the jars, ``layout``/``properties`` decide ports, paths and configuration (pure),
``process`` handles OS processes, ``runtime`` ties them into up/down/status, ``cli`` exposes it.
"""

from __future__ import annotations


class BrokerError(RuntimeError):
    """The local broker cannot be fetched, started, reached or stopped; the message says why."""
