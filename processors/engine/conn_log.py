"""The conn.log record of a finished connection, column for column as Zeek 9 writes it.

Zeek fills most columns only when they mean something: bytes and duration only when the
connection lasted (> 0 s), history only when non-empty, local_orig/local_resp only when
Site::local_nets is non-empty (by default it holds the private address space).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import tcp
from .api import id_columns
from .linklayer import mac_text

if TYPE_CHECKING:
    from .sessions import Connection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Zeek's Site::private_address_space (which Site::local_nets defaults to).
PRIVATE_ADDRESS_SPACE: tuple[str, ...] = (
    "0.0.0.0/8",
    "2002::/24",
    "10.0.0.0/8",
    "2002:a00::/24",
    "100.64.0.0/10",
    "2002:6440::/26",
    "127.0.0.0/8",
    "2002:7f00::/24",
    "169.254.0.0/16",
    "2002:a9fe::/32",
    "172.16.0.0/12",
    "2002:ac10::/28",
    "192.0.0.0/24",
    "2002:c000::/40",
    "192.0.2.0/24",
    "2002:c000:200::/40",
    "192.168.0.0/16",
    "2002:c0a8::/32",
    "198.18.0.0/15",
    "2002:c612::/31",
    "198.51.100.0/24",
    "2002:c633:6400::/40",
    "203.0.113.0/24",
    "2002:cb00:7100::/40",
    "224.0.0.0/24",
    "2002:e000::/40",
    "239.0.0.0/8",
    "2002:ef00::/24",
    "240.0.0.0/4",
    "2002:f000::/20",
    "255.255.255.255/32",
    "2002:ffff:ffff::/48",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:2::/48",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
)

_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")


@lru_cache(maxsize=32)
def _parse_nets(nets: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of ``nets`` (parsed once per list: every engine run builds a LocalNets)."""
    try:
        return tuple(ipaddress.ip_network(n, strict=False) for n in nets)
    except ValueError as exc:
        raise ValueError(f"bad local network: {exc}") from exc


class LocalNets:
    """Site::local_nets: which addresses count as local for local_orig/local_resp."""

    def __init__(self, nets: Iterable[str] | None = None) -> None:
        nets = PRIVATE_ADDRESS_SPACE if nets is None else tuple(nets)
        parsed = _parse_nets(nets)
        self.v4 = [n for n in parsed if n.version == 4]
        self.v6 = [n for n in parsed if n.version == 6]
        self.configured = bool(parsed)
        self._cache: dict[str, bool] = {}

    def is_local(self, addr: str) -> bool:
        hit = self._cache.get(addr)
        if hit is None:
            ip = ipaddress.ip_address(addr)
            hit = any(ip in n for n in (self.v4 if ip.version == 4 else self.v6))
            if len(self._cache) < 100_000:
                self._cache[addr] = hit
        return hit


def _mac(mac: bytes) -> str | None:
    """Zeek's MAC text; an all-zero address (tunnelled packets) counts as absent."""
    return mac_text(mac) if any(mac) else None


def tcp_conn_state(
    orig_state: int, resp_state: int, orig_size: int, resp_size: int, history: str
) -> str:
    """Zeek's conn_state() for TCP (base/protocols/conn/main.zeek)."""
    os_, rs = orig_state, resp_state
    o_inactive = os_ in (tcp.INACTIVE, tcp.PARTIAL)
    r_inactive = rs in (tcp.INACTIVE, tcp.PARTIAL)
    if rs == tcp.RESET:
        if os_ in (tcp.SYN_SENT, tcp.SYN_ACK_SENT) or (
            os_ == tcp.RESET and orig_size == 0 and resp_size == 0
        ):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os_ == tcp.RESET:
        if r_inactive:
            return "RSTOS0" if _RSTOS0.fullmatch(history) else "OTH"
        return "RSTO"
    if rs == tcp.CLOSED and os_ == tcp.CLOSED:
        return "SF"
    if os_ == tcp.CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == tcp.CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == tcp.SYN_SENT and rs == tcp.INACTIVE:
        return "S0"
    if os_ == tcp.ESTABLISHED and rs == tcp.ESTABLISHED:
        return "S1"
    return "OTH"


def udp_conn_state(orig_active: bool, resp_active: bool) -> str:
    if orig_active:
        return "SF" if resp_active else "S0"
    return "SHR" if resp_active else "OTH"


def conn_record(conn: Connection, local_nets: LocalNets) -> dict[str, Any]:
    """The conn.log record for ``conn`` at the moment it is removed."""
    adapter = conn.adapter
    orig_size, resp_size = adapter.sizes()
    if conn.transport == "tcp":
        os_, rs = adapter.endpoint_states()
        state = tcp_conn_state(os_, rs, orig_size, resp_size, conn.history)
    elif conn.transport == "udp":
        state = udp_conn_state(*adapter.active())
    else:
        state = "OTH"
    local_here = local_nets.configured or conn.flipped_late
    duration = conn.last_time - conn.start_time
    lasted = duration > 0
    record: dict[str, Any] = {
        "ts": conn.start_time,
        "uid": conn.uid,
        **id_columns(conn.id_tuple()),
        "proto": conn.transport,
        "service": ",".join(conn.services).lower() if conn.services else None,
        "duration": duration if lasted else None,
        "orig_bytes": orig_size if lasted else None,
        "resp_bytes": resp_size if lasted else None,
        "conn_state": state,
        # Zeek sets these only with Site::local_nets configured, but its connection_flipped
        # handler sets them regardless (to F/F when no nets are configured).
        "local_orig": local_nets.is_local(conn.orig_h) if local_here else None,
        "local_resp": local_nets.is_local(conn.resp_h) if local_here else None,
        "missed_bytes": conn.missed_bytes,
        "history": conn.history or None,
        "orig_pkts": conn.orig_pkts,
        "orig_ip_bytes": conn.orig_ip_bytes,
        "resp_pkts": conn.resp_pkts,
        "resp_ip_bytes": conn.resp_ip_bytes,
        "tunnel_parents": list(conn.tunnel_parents) if conn.tunnel_parents else None,
        "ip_proto": conn.ip_proto,
    }
    if conn.engine.conn_l2_columns:
        l2 = conn.l2
        record["orig_l2_addr"] = _mac(l2[0]) if l2 else None
        record["resp_l2_addr"] = _mac(l2[1]) if l2 else None
    if conn.engine.conn_vlan_columns:
        record["vlan"] = conn.vlan
        record["inner_vlan"] = conn.inner_vlan
    return record
