"""Errors a consumer user sees: one short, actionable sentence each, no stack-trace spam.

Notebook users hit these most (typo in a log name, broker not running). IPython renders an
exception through ``_render_traceback_`` when it has one, so these show as a single line there;
plain Python still gets the full traceback for debugging.
"""

from __future__ import annotations

import difflib


class ConsumerError(Exception):
    """Base of every error the consumer library raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class UnknownLogError(ConsumerError, LookupError):
    """The asked-for Zeek log has no topic on the broker."""

    def __init__(self, log: str, topic: str, known: list[str]) -> None:
        close = difflib.get_close_matches(log, known, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        hint = f"; logs on the broker: {', '.join(known)}" if known else "; the broker has no logs"
        super().__init__(f"no topic {topic!r} for log {log!r}{guess}{hint}")
        self.log = log
        self.topic = topic


class BrokerUnreachableError(ConsumerError, ConnectionError):
    """The Kafka bootstrap servers did not answer."""

    def __init__(self, servers: str, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"Kafka broker at {servers} is unreachable{more}; is it running? "
            "(start it with `wirestream kafka up` or set WIRESTREAM_BOOTSTRAP_SERVERS)"
        )
        self.servers = servers


class WindowSpecError(ConsumerError, ValueError):
    """A time, duration or offset range that cannot be understood."""


class CaptureNotFoundError(ConsumerError, LookupError):
    """No capture details record matches the asked-for capture."""
