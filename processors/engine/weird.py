"""weird.log: Zeek's anomaly reports, with the suppression rules of Zeek's weird framework.

Zeek logs a weird unless the same (name, identifier) pair was logged in the last 10 minutes
(identifier = the connection's id string, the flow, or "" for network-wide weirds); checksum
weirds skip that repeat filter but are logged once per originator host instead. A few names are
ignored outright or logged once per connection/originator. Times are network (packet) time.
"""

from __future__ import annotations

from collections.abc import Callable

from .api import Record, id_columns

IGNORE, LOG, LOG_ONCE, LOG_PER_CONN, LOG_PER_ORIG = range(5)

# Zeek's Weird::actions defaults that are not plain ACTION_LOG.
_ACTIONS: dict[str, int] = {
    "unsolicited_SYN_response": IGNORE,
    "FIN_after_reset": IGNORE,
    "spontaneous_FIN": IGNORE,
    "spontaneous_RST": IGNORE,
    "bad_ICMP_checksum": LOG_PER_ORIG,
    "bad_RPC": LOG_PER_ORIG,
    "bad_TCP_checksum": LOG_PER_ORIG,
    "bad_UDP_checksum": LOG_PER_ORIG,
    "bad_IP_checksum": LOG_PER_ORIG,
    "connection_originator_SYN_ack": LOG_PER_ORIG,
    "DNS_label_forward_compress_offset": LOG_PER_ORIG,
    "DNS_label_len_gt_name_len": LOG_PER_ORIG,
    "DNS_label_len_gt_pkt": LOG_PER_ORIG,
    "DNS_label_too_long": LOG_PER_ORIG,
    "excess_RPC": LOG_PER_ORIG,
    "originator_RPC_reply": LOG_PER_ORIG,
    "partial_RPC": LOG_PER_ORIG,
    "responder_RPC_call": LOG_PER_ORIG,
    "SYN_with_data": LOG_PER_ORIG,
    "UDP_datagram_length_mismatch": LOG_PER_ORIG,
    "excessively_small_fragment": LOG_PER_ORIG,
    "fragment_inconsistency": LOG_PER_ORIG,
    "fragment_overlap": LOG_PER_ORIG,
    "fragment_size_inconsistency": LOG_PER_ORIG,
    "SSH_max_packet_length_exceeded": LOG_PER_ORIG,
    "SSH_max_string_length_exceeded": LOG_PER_ORIG,
    "FTP_max_command_length_exceeded": LOG_PER_CONN,
    "FTP_too_many_pending_commands": LOG_PER_CONN,
    "FTP_user_too_long": LOG_PER_CONN,
    "FTP_reply_msg_too_long": LOG_PER_CONN,
    "FTP_arg_too_long": LOG_PER_CONN,
    "FTP_password_too_long": LOG_PER_CONN,
    "simultaneous_open": LOG_PER_CONN,
    "smtp_mail_transaction_invalid": LOG_PER_CONN,
    "smtp_excessive_invalid_mail_transactions": LOG_PER_CONN,
    "smb_tree_connect_andx_response_without_tree": LOG_PER_CONN,
}
_NO_REPEAT_FILTER = frozenset(
    {"bad_IP_checksum", "bad_TCP_checksum", "bad_UDP_checksum", "bad_ICMP_checksum"}
)
IGNORE_REPEATS_FOR = 600.0  # Weird::weird_ignore &create_expire=10min
LIMIT_FOR = 86400.0  # Weird::did_log &create_expire=1day


def id_string(orig_h: str, orig_p: int, resp_h: str, resp_p: int) -> str:
    """Zeek's ``id_string()``: the identifier weirds are deduplicated by."""
    return f"{orig_h}:{orig_p} > {resp_h}:{resp_p}"


class WeirdLog:
    """Filters weirds as Zeek's weird framework does and emits weird.log records."""

    def __init__(self, emit: Callable[[Record], None], *, enabled: bool = True) -> None:
        self._emit = emit
        self.enabled = enabled
        self._ignore_until: dict[tuple[str, str], float] = {}
        self._did_log_until: dict[tuple[str, str], float] = {}
        self._prune_at = 10_000

    def _prune(self, ts: float) -> None:
        """Forget expired suppressions, as Zeek's &create_expire tables do, to bound memory."""
        for table in (self._ignore_until, self._did_log_until):
            for key in [k for k, until in table.items() if until <= ts]:
                del table[key]
        self._prune_at = max(10_000, 2 * len(self._ignore_until))

    def conn_weird(
        self,
        name: str,
        ts: float,
        uid: str,
        conn_id: tuple[str, int, str, int],
        addl: str = "",
        source: str = "",
    ) -> None:
        """A weird scoped to a connection (Zeek's ``conn_weird``)."""
        self._do(ts, name, id_string(*conn_id), uid, conn_id, addl, source)

    def flow_weird(
        self, name: str, ts: float, src: str, dst: str, addl: str = "", source: str = ""
    ) -> None:
        """A weird about an IP flow without a connection (ports logged as 0)."""
        self._do(ts, name, f"{src}:{dst}", None, (src, 0, dst, 0), addl, source)

    def net_weird(self, name: str, ts: float, source: str = "", addl: str = "") -> None:
        """A weird not tied to any flow (e.g. a truncated link-layer frame)."""
        self._do(ts, name, "", None, None, addl, source)

    def _do(
        self,
        ts: float,
        name: str,
        identifier: str,
        uid: str | None,
        conn_id: tuple[str, int, str, int] | None,
        addl: str,
        source: str,
    ) -> None:
        if not self.enabled:
            return
        action = _ACTIONS.get(name, LOG)
        if action == IGNORE or self._ignore_until.get((name, identifier), -1.0) > ts:
            return
        if action in (LOG_ONCE, LOG_PER_CONN, LOG_PER_ORIG):
            limit_id = identifier
            if action == LOG_PER_ORIG and conn_id is not None:
                limit_id = conn_id[0]
            elif action == LOG_ONCE:
                limit_id = ""
            if self._did_log_until.get((name, limit_id), -1.0) > ts:
                return
            self._did_log_until[(name, limit_id)] = ts + LIMIT_FOR
        if name not in _NO_REPEAT_FILTER:
            self._ignore_until[(name, identifier)] = ts + IGNORE_REPEATS_FOR
            if len(self._ignore_until) > self._prune_at:
                self._prune(ts)
        record: Record = {"ts": ts, "uid": uid, **id_columns(conn_id)}
        record.update(
            {
                "name": name,
                "addl": addl or None,
                "notice": False,
                "peer": "zeek",
                "source": source or None,
            }
        )
        self._emit(record)
