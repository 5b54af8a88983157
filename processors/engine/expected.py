"""Expected connections: Zeek's ``Analyzer::schedule_analyzer``.

A protocol that negotiates a second connection (FTP's PORT/PASV/EPRT/EPSV data channels) tells
the engine which analyzer a future connection to ``resp_h:resp_p`` (from ``orig_h``, or from
anywhere) should get. When such a connection starts, it gets the scheduled analyzers instead
of the port-based ones, as in Zeek's ``BuildSessionAnalyzerTree``. Entries expire after their
timeout, so the table stays bounded by what was negotiated recently.
"""

from __future__ import annotations

import heapq
import ipaddress

ExpectKey = tuple[str | None, str, int, str]  # (orig_h or None for any, resp_h, resp_p, transport)


def canonical_addr(addr: str) -> str:
    """The text form the engine uses for addresses (what ``ipaddress`` prints)."""
    return str(ipaddress.ip_address(addr))


class ScheduledAnalyzers:
    """Analyzers promised to future connections, each until its expiry time."""

    def __init__(self) -> None:
        self._entries: dict[ExpectKey, dict[str, float]] = {}
        self._expiry: list[tuple[float, int, ExpectKey, str]] = []  # seq breaks ties
        self._seq = 0

    def schedule(
        self,
        orig_h: str | None,
        resp_h: str,
        resp_p: int,
        transport: str,
        analyzer: str,
        expires: float,
        now: float,
    ) -> None:
        """Promise ``analyzer`` to a connection ``orig_h -> resp_h:resp_p`` until ``expires``;
        scheduling the same again only extends the time (Zeek's ScheduleAnalyzer)."""
        self.expire(now)
        key = (
            canonical_addr(orig_h) if orig_h else None,
            canonical_addr(resp_h),
            resp_p,
            transport,
        )
        names = self._entries.setdefault(key, {})
        if names.get(analyzer, -1.0) < expires:
            names[analyzer] = expires
            self._seq += 1
            heapq.heappush(self._expiry, (expires, self._seq, key, analyzer))

    def lookup(
        self, orig_h: str, resp_h: str, resp_p: int, transport: str, now: float
    ) -> list[str]:
        """Analyzer names scheduled for this connection (exact originator, then any); entries
        stay until they expire, as in Zeek (a reused port gets the analyzer again)."""
        if not self._entries:
            return []
        found: list[str] = []
        for key in ((orig_h, resp_h, resp_p, transport), (None, resp_h, resp_p, transport)):
            for name, expires in self._entries.get(key, {}).items():
                if expires > now and name not in found:
                    found.append(name)
        return found

    def expire(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires, _seq, key, name = heapq.heappop(heap)
            names = self._entries.get(key)
            if names is not None and names.get(name) == expires:
                del names[name]
                if not names:
                    del self._entries[key]

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())
