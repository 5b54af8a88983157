"""TCP as Zeek tracks it: endpoint state machine, history letters, sizes from sequence numbers,
reassembly with gap detection, and the close/expire timers that decide when a connection ends.

This follows Zeek's TCPSessionAdapter / TCP_Endpoint / TCP_Reassembler behaviour closely,
because conn.log columns (conn_state, history, orig_bytes, missed_bytes, duration) are all
side effects of those exact rules, including their quirks:
  * sequence numbers are 32-bit with wrap counting; sizes come from the highest seq/ack seen;
  * data is delivered in order; overlapping copies keep the first data seen;
  * gaps are only detected when the peer ACKs beyond missing data, and only counted in
    missed_bytes (and history ``G``) while both sides are established or cleanly closing.
The connection object (sessions.Connection) supplies history, weirds, timers and delivery.
"""

from __future__ import annotations

import bisect
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sessions import Connection

# Endpoint states, numbered as Zeek's TCP_ENDPOINT_* (they are visible in Zeek scripts).
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
_HANDSHAKE = (INACTIVE, SYN_SENT, SYN_ACK_SENT)

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

# History bits (Zeek's TCP_Endpoint HIST_*); the responder's are shifted left by 16.
HIST_SYN_PKT, HIST_FIN_PKT, HIST_RST_PKT, HIST_FIN_RST_PKT = 0x1, 0x2, 0x4, 0x8
HIST_DATA_PKT, HIST_ACK_PKT, HIST_MULTI_FLAG_PKT = 0x10, 0x20, 0x40

TOO_LARGE_SEQ_DELTA = 1048576
# Zeek's defaults (init-bare.zeek).
TCP_SESSION_TIMER = 6.0
TCP_CONNECTION_LINGER = 5.0
TCP_CLOSE_DELAY = 5.0
TCP_RESET_DELAY = 5.0
TCP_ATTEMPT_DELAY = 5.0
TCP_SYN_TIMEOUT = 5.0
TCP_MAX_INITIAL_WINDOW = 16384
TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS = 16384
TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS = 10 * 1024 * 1024
TCP_STORM_THRESH = 1000
TCP_STORM_INTERARRIVAL = 1.0

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_HDR = struct.Struct("!HHIIBBHHH")


def seq_delta(a: int, b: int) -> int:
    """Signed 32-bit difference a - b, as TCP sequence arithmetic needs."""
    d = (a - b) & _U32
    return d - 0x100000000 if d & 0x80000000 else d


def seq_between(seq: int, low: int, high: int) -> bool:
    return seq_delta(seq, low) >= 0 and seq_delta(seq, high) <= 0


class TcpHeader:
    """The fields of a TCP header the state machine reads."""

    __slots__ = ("sport", "dport", "seq", "ack", "hdr_len", "flags", "win")

    def __init__(self, payload: bytes) -> None:
        sport, dport, seq, ack, off, flags, win, _sum, _urp = _HDR.unpack_from(payload)
        self.sport, self.dport, self.seq, self.ack = sport, dport, seq, ack
        self.hdr_len = (off >> 4) * 4
        self.flags = flags
        self.win = win


class Endpoint:
    """One side of a TCP connection: its sequence space, state and history counters."""

    __slots__ = (
        "session",
        "conn",
        "is_orig",
        "peer",
        "state",
        "prev_state",
        "start_seq",
        "last_seq",
        "ack_seq",
        "seq_wraps",
        "ack_wraps",
        "fin_cnt",
        "rst_cnt",
        "fin_seq",
        "did_close",
        "start_time",
        "last_time",
        "hist_last_syn",
        "hist_last_fin",
        "hist_last_rst",
        "counters",
        "reassembler",
    )

    def __init__(self, session: TcpSession, is_orig: bool) -> None:
        self.session = session
        self.conn: Connection = session.conn  # the session's, for good
        self.is_orig = is_orig
        self.peer: Endpoint = self
        self.state = self.prev_state = INACTIVE
        self.start_seq = self.last_seq = self.ack_seq = 0
        self.seq_wraps = self.ack_wraps = 0
        self.fin_cnt = self.rst_cnt = 0
        self.fin_seq = 0
        self.did_close = False
        self.start_time = self.last_time = 0.0
        self.hist_last_syn = self.hist_last_fin = self.hist_last_rst = 0
        # [count, threshold] for the scaled history letters C, T, W, G (made on first use).
        self.counters: dict[str, list[int]] = {}
        self.reassembler = Reassembler(self)

    def set_state(self, new_state: int) -> None:
        if new_state != self.state:
            if (
                new_state not in _HANDSHAKE
                and self.state in _HANDSHAKE
                and self.peer.state in _HANDSHAKE
            ):
                self.conn.set_inactivity_timeout(self.conn.engine.tcp_inactivity_timeout)
            self.prev_state = self.state
            self.state = new_state

    def to_relative(self, seq: int, wraps: int) -> int:
        return ((wraps << 32) + seq - self.start_seq) & _U64

    def no_data_acked(self) -> bool:
        ack = (self.ack_wraps << 32) + self.ack_seq
        return ack == self.start_seq or ack == self.start_seq + 1

    def size(self) -> int:
        if (
            self.prev_state == SYN_SENT
            and self.state == RESET
            and self.peer.state == INACTIVE
            and not self.no_data_acked()
        ):
            return 0
        last64 = (self.seq_wraps << 32) + self.last_seq
        ack64 = (self.ack_wraps << 32) + self.ack_seq
        size = ((last64 if last64 > ack64 else ack64) - self.start_seq) & _U64
        if size:
            size -= 1
        if self.fin_cnt > 0 and size:
            size -= 1
        return size

    def update_last_seq(self, seq: int) -> None:
        if seq < self.last_seq:
            self.seq_wraps += 1
        self.last_seq = seq

    def check_history(self, mask: int, code: str) -> bool:
        conn = self.conn
        if code in "AD" and conn.history == "H":
            # Began with a SYN-ACK and now shows productive traffic: the SYN-ACK sender
            # was the responder after all (Zeek's TCP_Endpoint::CheckHistory).
            conn.flip_roles()
            conn.history = "^h"
            self.session.set_first_packet_seen(True)
        if not self.is_orig:
            mask <<= 16
            code = code.lower()
        return conn.check_history(mask, code)

    def add_history(self, code: str) -> None:
        self.conn.add_history(code if self.is_orig else code.lower())

    def scaled(self, letter: str) -> None:
        counter = self.counters.get(letter)
        if counter is None:
            counter = self.counters[letter] = [0, 1]
        counter[0] += 1
        if counter[0] == counter[1]:
            self.conn.add_history(letter if self.is_orig else letter.lower())
            counter[1] *= 10

    def has_undelivered_data(self) -> bool:
        return bool(self.reassembler.blocks)

    def data_pending(self) -> bool:
        return self.reassembler.data_pending()


class Reassembler:
    """In-order delivery of one endpoint's byte stream (relative sequence numbers from 1).

    Blocks stay buffered until ACKed so that gaps can be detected when an ACK covers data that
    never arrived; new data never overwrites bytes already buffered (the first copy wins).
    """

    __slots__ = (
        "endp",
        "starts",
        "blocks",
        "last_reassem_seq",
        "trim_seq",
        "had_gap",
        "skip_deliveries",
        "did_eof",
        "size",
    )

    def __init__(self, endp: Endpoint) -> None:
        self.endp = endp
        self.starts: list[int] = []  # block start seqs, sorted (parallel to blocks)
        self.blocks: list[tuple[int, int, bytes]] = []  # (seq, upper, data)
        self.last_reassem_seq = 1
        self.trim_seq = 1
        self.had_gap = False
        self.skip_deliveries = False
        self.did_eof = False
        self.size = 0

    # -- block list -------------------------------------------------------------------------
    def _insert_piece(self, seq: int, upper: int, data: bytes) -> int:
        i = bisect.bisect_left(self.starts, seq)
        self.starts.insert(i, seq)
        self.blocks.insert(i, (seq, upper, data))
        self.size += upper - seq
        return i

    def _insert(self, seq: int, upper: int, data: bytes) -> int | None:
        """Add the parts of [seq, upper) not already buffered; index of the first new part."""
        blocks = self.blocks
        if not blocks or seq >= blocks[-1][1]:
            return self._insert_piece(seq, upper, data)
        first_new = None
        i = max(bisect.bisect_right(self.starts, seq) - 1, 0)
        pos = seq
        while pos < upper:
            while i < len(blocks) and blocks[i][1] <= pos:
                i += 1
            if i >= len(blocks) or upper <= blocks[i][0]:
                idx = self._insert_piece(pos, upper, data[pos - seq :])
                return idx if first_new is None else first_new
            b_seq, b_upper, _ = blocks[i]
            if pos < b_seq:
                idx = self._insert_piece(pos, b_seq, data[pos - seq : b_seq - seq])
                if first_new is None:
                    first_new = idx
                i = idx + 1
                pos = b_seq
            pos = min(upper, b_upper)
        return first_new

    def clear(self) -> None:
        self.blocks.clear()
        self.starts.clear()
        self.size = 0

    # -- delivery ---------------------------------------------------------------------------
    def data_sent(self, t: float, seq: int, data: bytes) -> bool:
        endp = self.endp
        if self.skip_deliveries:
            return False
        start_seq = endp.start_seq
        ack64 = (endp.ack_wraps << 32) + endp.ack_seq
        ack = (ack64 - start_seq) & _U64  # endp.to_relative(ack_seq, ack_wraps), inlined
        upper = seq + len(data)
        if seq < ack:
            if upper <= ack:
                return False
            data = data[ack - seq :]
            seq = ack
        self._new_block(t, seq, data)
        blocks = self.blocks
        if (  # (pure tests; the cheap one first: in-order data leaves nothing undelivered)
            blocks  # undelivered_bytes() is 0 without blocks
            and blocks[-1][1] - self.last_reassem_seq > TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS
            and endp.no_data_acked()
        ):
            endp.session.weird("above_hole_data_without_any_acks")
            self.clear()
            self.skip_deliveries = True
        if self.size > TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS:
            endp.session.weird("excessive_data_without_further_acks")
            self.clear()
            self.skip_deliveries = True
        return True

    def undelivered_bytes(self) -> int:
        return self.blocks[-1][1] - self.last_reassem_seq if self.blocks else 0

    def _new_block(self, t: float, seq: int, data: bytes) -> None:
        if not data:
            return
        upper = seq + len(data)
        if upper <= self.trim_seq:
            return
        if seq < self.trim_seq:
            data = data[self.trim_seq - seq :]
            seq = self.trim_seq
        blocks = self.blocks
        if not blocks or seq >= blocks[-1][1]:
            # Past every buffered block (the in-order case): append, no search or split.
            blocks.append((seq, upper, data))
            self.starts.append(seq)
            self.size += upper - seq
            self._block_inserted(len(blocks) - 1)
            return
        idx = self._insert(seq, upper, data)
        if idx is not None:
            self._block_inserted(idx)

    def _block_inserted(self, idx: int) -> None:
        blocks = self.blocks
        b_seq, b_upper, _ = blocks[idx]
        if b_seq > self.last_reassem_seq or b_upper <= self.last_reassem_seq:
            return
        n = len(blocks)
        e = self.endp
        while idx < n:
            b_seq, b_upper, data = blocks[idx]
            if b_seq > self.last_reassem_seq:
                break
            if b_seq == self.last_reassem_seq:
                self.last_reassem_seq += b_upper - b_seq
                if not self.skip_deliveries:
                    e.conn.deliver_stream(e.is_orig, data)
                n = len(blocks)
            idx += 1
        ack = (e.ack_wraps << 32) + e.ack_seq  # e.no_data_acked(), inlined
        if (ack == e.start_seq or ack == e.start_seq + 1) and e.size() > TCP_MAX_INITIAL_WINDOW:
            self.trim_to_seq(self.last_reassem_seq)

    def trim_to_seq(self, seq: int) -> None:
        if seq > self.last_reassem_seq:
            self._undelivered(seq)
        k = freed = 0
        blocks = self.blocks
        n = len(blocks)
        while k < n and blocks[k][1] <= seq:
            b_seq, b_upper, _ = blocks[k]
            freed += b_upper - b_seq
            k += 1
        if k:  # the ACKed blocks go
            self.size -= freed
            del blocks[:k]
            del self.starts[:k]
        if self.blocks and self.blocks[0][0] == self.last_reassem_seq:
            self._block_inserted(0)
        if seq > self.trim_seq:
            self.trim_seq = seq

    def _undelivered(self, up_to_seq: int) -> None:
        session = self.endp.session
        if up_to_seq <= 2 and session.is_partial:
            # A partial connection's faked initial sequence number: nothing really missing.
            return
        if not self.skip_deliveries:
            i = 0
            while i < len(self.blocks):
                b_seq = self.blocks[i][0]
                if b_seq < self.last_reassem_seq:
                    i += 1
                    continue
                if b_seq >= up_to_seq:
                    break
                gap_len = b_seq - self.last_reassem_seq
                self._gap(self.last_reassem_seq, gap_len)
                self.last_reassem_seq += gap_len
                self._block_inserted(i)
                i = 0
            if up_to_seq > self.last_reassem_seq:
                self._gap(self.last_reassem_seq, up_to_seq - self.last_reassem_seq)
        if up_to_seq > self.last_reassem_seq:
            self.last_reassem_seq = up_to_seq

    def _gap(self, seq: int, length: int) -> None:
        endp = self.endp
        conn = endp.conn
        peer = endp.peer
        # both sides established, or cleanly closed from established
        if (
            endp.state == ESTABLISHED or (endp.state == CLOSED and endp.prev_state == ESTABLISHED)
        ) and (
            peer.state == ESTABLISHED or (peer.state == CLOSED and peer.prev_state == ESTABLISHED)
        ):
            endp.scaled("G")
            conn.missed_bytes += length
        conn.deliver_gap(endp.is_orig, length)
        self.had_gap = True

    def ack_received(self, seq: int) -> None:
        endp = self.endp
        if endp.fin_cnt > 0 and seq >= endp.fin_seq:
            seq = endp.fin_seq - 1
        if seq <= self.trim_seq:
            return
        self.trim_to_seq(seq)
        # check_eof's first tests inlined (CLOSED and RESET are the two highest states)
        if not self.did_eof and (endp.fin_cnt > 0 or endp.state >= CLOSED):
            self.check_eof()

    def check_eof(self) -> None:
        endp = self.endp
        if (
            not self.did_eof
            and (endp.fin_cnt > 0 or endp.state in (CLOSED, RESET))
            and not self.data_pending()
        ):
            self.did_eof = True
            endp.session.endpoint_eof(endp)

    def data_pending(self) -> bool:
        if self.skip_deliveries:
            return False
        endp = self.endp
        delivered = endp.start_seq + self.last_reassem_seq
        last = (endp.seq_wraps << 32) + endp.last_seq
        if last < delivered:
            return False
        if delivered != last - 1 and delivered != last:
            return True
        return endp.state != RESET and endp.peer.has_undelivered_data()


def _is_active(e: Endpoint) -> bool:
    return e.state != INACTIVE and not e.did_close


def _segment_len(payload_len: int, flags: int) -> int:
    n = payload_len
    if flags & SYN:
        n += 1
    if flags & FIN:
        n += 1
    if flags & RST:
        n -= payload_len
    return n


class TcpSession:
    """Zeek's TCPSessionAdapter for one connection."""

    __slots__ = (
        "conn",
        "orig",
        "resp",
        "first_packet_seen",
        "is_partial",
        "is_active",
        "close_deferred",
        "deferred_gen_event",
        "analyzer_timers",
        "pair_sum",
    )

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.orig = Endpoint(self, True)
        self.resp = Endpoint(self, False)
        self.orig.peer, self.resp.peer = self.resp, self.orig
        self.first_packet_seen = 0  # bit 1 orig, bit 2 resp
        self.is_partial = False
        self.is_active = True
        self.close_deferred = False
        self.deferred_gen_event = False
        self.analyzer_timers: list = []
        self.pair_sum: int | None = None  # checksum.flow_pair_sum, set by the first segment
        self._add_timer(conn.start_time + TCP_SYN_TIMEOUT, self._expire_timer)

    # -- plumbing to the connection ---------------------------------------------------------
    def weird(self, name: str, addl: str = "", source: str = "TCP") -> None:
        """Adapter weirds carry source TCP; those Zeek raises on the connection itself, none."""
        self.conn.weird(name, addl, source)

    def _add_timer(self, when: float, callback, do_expire: bool = False) -> None:
        timers = self.analyzer_timers
        if len(timers) > 8:  # forget fired ones so long connections stay small
            now = self.conn.engine.now
            timers[:] = [t for t in timers if t.when > now and not t.cancelled]
        timers.append(self.conn.engine.timers.add(when, callback, do_expire))

    def _cancel_timers(self) -> None:
        for timer in self.analyzer_timers:
            timer.cancelled = True
        self.analyzer_timers.clear()

    def flip(self) -> None:
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig = not self.orig.is_orig
        self.resp.is_orig = not self.resp.is_orig
        fps = self.first_packet_seen
        self.first_packet_seen = (2 if fps & 1 else 0) | (1 if fps & 2 else 0)
        self.is_partial = False

    def set_first_packet_seen(self, is_orig: bool) -> None:
        self.first_packet_seen |= 1 if is_orig else 2

    # -- per packet -----------------------------------------------------------------------
    def checksum_error(self, is_orig: bool) -> None:
        (self.orig if is_orig else self.resp).scaled("C")

    def process(
        self,
        is_orig: bool,
        flags: int,
        base_seq: int,
        ack_seq: int,
        win: int,
        data: bytes,
        payload_len: int,
        t: float,
    ) -> bool:
        """One segment (after checksum validation), its header fields as TcpHeader names them.
        Returns the possibly flipped is_orig."""
        endpoint = self.orig if is_orig else self.resp
        peer = endpoint.peer
        length = payload_len

        # SetPartialStatus
        if is_orig:
            if not self.first_packet_seen & 1:
                self.is_partial = not (flags & SYN) or bool(flags & ACK)
        elif not self.first_packet_seen & 2 and not self.is_partial:
            self.is_partial = not (flags & SYN)

        seg_len = _segment_len(length, flags) if flags & (SYN | FIN | RST) else length
        seq_one_past = (base_seq + seg_len) & _U32
        if flags & SYN or endpoint.state == INACTIVE:  # otherwise _init_endpoint does nothing
            self._init_endpoint(endpoint, flags, base_seq, seq_one_past, t)

        last = endpoint.last_seq
        if endpoint.seq_wraps == 0 and (base_seq >= last or (base_seq - last) & 0x80000000):
            # _relative_seq when no wrap was counted and none is now (the common case), inlined
            rel_seq = (base_seq - endpoint.start_seq) & _U32
            underflow = rel_seq >= 0x80000000
            if underflow:
                rel_seq = (rel_seq - 0x100000000) & _U64
        else:
            rel_seq, underflow = _relative_seq(endpoint, base_seq, last, endpoint.seq_wraps)
        if underflow and not flags & RST:
            self.weird("TCP_seq_underflow_or_misorder")

        if flags & (SYN | FIN | RST) or not (length or flags & ACK):
            self._update_history(flags, endpoint, rel_seq, length)
        else:  # _update_history's data/pure-ACK case, inlined
            mask = HIST_DATA_PKT if length else HIST_ACK_PKT
            conn = self.conn
            if not conn.hist_seen & (mask if endpoint.is_orig else mask << 16) or (
                conn.history == "H"
            ):
                endpoint.check_history(mask, "D" if length else "A")
        # update_window: only zero windows matter for the log (history W).
        if (
            win == 0
            and not flags & RST
            and endpoint.peer.state != CLOSED
            and endpoint.state != RESET
        ):
            endpoint.scaled("W")

        if not self.orig.did_close or not self.resp.did_close:
            self.conn.last_time = t

        if flags & SYN:
            if flags & RST:
                self.weird("TCP_christmas")
            if flags & URG:
                self.weird("baroque_SYN")
            if length > 0:
                self.weird("SYN_with_data")

        if flags & FIN:
            endpoint.fin_cnt += 1
            if (
                endpoint.fin_cnt >= TCP_STORM_THRESH
                and t < endpoint.last_time + TCP_STORM_INTERARRIVAL
            ):
                self.weird("FIN_storm")
            endpoint.fin_seq = rel_seq + seg_len

        if flags & RST:
            endpoint.rst_cnt += 1
            if (
                endpoint.rst_cnt >= TCP_STORM_THRESH
                and t < endpoint.last_time + TCP_STORM_INTERARRIVAL
            ):
                self.weird("RST_storm")

        rel_ack = 0
        if flags & ACK:
            if peer.state == INACTIVE:
                rel_ack = 1
                self._init_peer(peer, endpoint, flags, ack_seq)
            else:
                last = peer.ack_seq
                if peer.ack_wraps == 0 and (ack_seq >= last or (ack_seq - last) & 0x80000000):
                    # _relative_seq's common case, inlined as for the sequence number above
                    rel_ack = (ack_seq - peer.start_seq) & _U32
                    ack_underflow = rel_ack >= 0x80000000
                else:
                    rel_ack, ack_underflow = _relative_seq(peer, ack_seq, last, peer.ack_wraps)
                if ack_underflow:
                    rel_ack = 0
                    self.weird("TCP_ack_underflow_or_misorder")
                elif not flags & RST:
                    delta_ack = (ack_seq - last) & _U32  # seq_delta(ack_seq, last), inlined
                    if delta_ack & 0x80000000:
                        delta_ack -= 0x100000000
                    if not (ack_seq == 0 and delta_ack > TOO_LARGE_SEQ_DELTA) and delta_ack > 0:
                        if ack_seq < last:  # the ACK number wrapped
                            peer.ack_wraps += 1
                        peer.ack_seq = ack_seq

        if flags & (SYN | FIN | RST) or endpoint.state == RESET:
            delta_last = self._update_last_seq(endpoint, seq_one_past, flags, length)
        else:  # _update_last_seq without SYN/FIN/RST, inlined
            delta_last = (seq_one_past - endpoint.last_seq) & _U32
            if delta_last & 0x80000000:
                delta_last -= 0x100000000
            if delta_last > 0:
                if seq_one_past < endpoint.last_seq:  # endpoint.update_last_seq, inlined
                    endpoint.seq_wraps += 1
                endpoint.last_seq = seq_one_past
            elif length > 0:
                endpoint.scaled("T")
        endpoint.last_time = t

        if flags & (SYN | FIN | RST) or endpoint.state not in (ESTABLISHED, PARTIAL):
            do_close, gen_event = self._update_state_machine(
                t, endpoint, peer, base_seq, ack_seq, length, delta_last, is_orig, flags
            )
        else:  # _update_established without SYN/FIN/RST changes nothing
            do_close = gen_event = False
        # The state machine may have flipped the roles; endpoint objects stay the same.
        if flags & ACK:
            peer_reassembler = peer.reassembler
            # ack_received returns at once for an ACK at or below trim_seq (no FIN to clamp to)
            if peer.fin_cnt > 0 or rel_ack > peer_reassembler.trim_seq:
                peer_reassembler.ack_received(rel_ack)

        # Zeek's CheckPIA_FirstPacket uses the is_orig the packet arrived with.
        self.first_packet_seen |= 1 if is_orig else 2

        reassembler = endpoint.reassembler
        if length > 0 and not flags & RST and not underflow:
            if len(data) >= length:
                rel_data_seq = rel_seq + 1 if flags & SYN else rel_seq
                reassembler.data_sent(t, rel_data_seq, data[:length])
            else:
                self.weird("truncated_tcp_payload")

        # check_eof's first tests inlined (CLOSED and RESET are the two highest states)
        if not reassembler.did_eof and (endpoint.fin_cnt > 0 or endpoint.state >= CLOSED):
            reassembler.check_eof()
        if do_close:
            self._connection_closed(endpoint, peer, gen_event)
        return endpoint.is_orig

    # -- Zeek's helper functions ------------------------------------------------------------
    def _init_endpoint(
        self, endpoint: Endpoint, flags: int, first_seg_seq: int, last_seq: int, t: float
    ) -> None:
        state = endpoint.state
        if state == INACTIVE:
            if flags & SYN:
                endpoint.ack_seq = first_seg_seq
                endpoint.start_seq = first_seg_seq
            else:
                endpoint.ack_seq = (first_seg_seq - 1) & _U32
                endpoint.start_seq = (first_seg_seq - 1) & _U32
                last_seq = first_seg_seq
            endpoint.last_seq = last_seq
            endpoint.start_time = t
        elif state in (SYN_SENT, SYN_ACK_SENT):
            if flags & SYN and first_seg_seq != endpoint.start_seq:
                self.weird("SYN_seq_jump", source="")
                endpoint.start_seq = endpoint.ack_seq = first_seg_seq
                endpoint.last_seq = last_seq
        elif state in (ESTABLISHED, PARTIAL):
            if flags & SYN:
                if endpoint.size() > 0:
                    self.weird("SYN_inside_connection", source="")
                if first_seg_seq != endpoint.start_seq:
                    self.weird("SYN_seq_jump", source="")
                endpoint.start_seq = endpoint.ack_seq = first_seg_seq
                endpoint.last_seq = last_seq
        elif state == RESET and flags & SYN and endpoint.prev_state == INACTIVE:
            endpoint.start_seq = endpoint.ack_seq = first_seg_seq
            endpoint.last_seq = last_seq

    def _update_history(self, flags: int, endpoint: Endpoint, rel_seq: int, length: int) -> None:
        if not flags & (SYN | FIN | RST):
            # Data or a pure ACK, most segments: nothing to do once the letter is in the history
            # (unless a SYN-ACK start may flip the roles, which check_history handles).
            if length:
                mask, code = HIST_DATA_PKT, "D"
            elif flags & ACK:
                mask, code = HIST_ACK_PKT, "A"
            else:
                return
            conn = self.conn
            seen = conn.hist_seen & (mask if endpoint.is_orig else mask << 16)
            if not seen or conn.history == "H":
                endpoint.check_history(mask, code)
            return
        bits = bool(flags & SYN) + bool(flags & FIN) + bool(flags & RST)
        if bits > 1:
            if flags & FIN and flags & RST:
                endpoint.check_history(HIST_FIN_RST_PKT, "I")
            else:
                endpoint.check_history(HIST_MULTI_FLAG_PKT, "Q")
        else:  # exactly one of SYN, FIN, RST
            if flags & SYN:
                code = "H" if flags & ACK else "S"
                if endpoint.check_history(HIST_SYN_PKT, code) and rel_seq != endpoint.hist_last_syn:
                    endpoint.add_history(code)
                endpoint.hist_last_syn = rel_seq
            if flags & FIN:
                if (
                    endpoint.check_history(HIST_FIN_PKT, "F")
                    and rel_seq + length != endpoint.hist_last_fin
                ):
                    endpoint.add_history("F")
                endpoint.hist_last_fin = rel_seq + length
            if flags & RST:
                if endpoint.check_history(HIST_RST_PKT, "R") and rel_seq != endpoint.hist_last_rst:
                    endpoint.add_history("R")
                endpoint.hist_last_rst = rel_seq

    def _init_peer(self, peer: Endpoint, endpoint: Endpoint, flags: int, ack_seq: int) -> None:
        if (
            not flags & (SYN | FIN | RST)
            and endpoint.state
            in (
                SYN_SENT,
                SYN_ACK_SENT,
                ESTABLISHED,
            )
            and not self.conn.did_weird
        ):
            self.weird("possible_split_routing", source="")
        v = (ack_seq - 1) & _U32
        peer.start_seq = peer.ack_seq = peer.last_seq = v

    def _update_last_seq(self, endpoint: Endpoint, last_seq: int, flags: int, length: int) -> int:
        delta_last = seq_delta(last_seq, endpoint.last_seq)
        if flags & (SYN | RST) and (
            delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA
        ):
            pass
        elif flags & FIN and endpoint.last_seq == endpoint.start_seq + 1:
            endpoint.update_last_seq(last_seq)
        elif endpoint.state == RESET:
            pass
        elif delta_last > 0:
            endpoint.update_last_seq(last_seq)
        elif delta_last <= 0 and length > 0:
            endpoint.scaled("T")
        return delta_last

    def _update_state_machine(
        self,
        t: float,
        endpoint: Endpoint,
        peer: Endpoint,
        base_seq: int,
        ack_seq: int,
        length: int,
        delta_last: int,
        is_orig: bool,
        flags: int,
    ) -> tuple[bool, bool]:
        state = endpoint.state
        if state == INACTIVE:
            return self._update_inactive(
                t, endpoint, peer, base_seq, ack_seq, length, is_orig, flags
            )
        if state in (SYN_SENT, SYN_ACK_SENT):
            return self._update_syn_sent(endpoint, peer, length, is_orig, flags)
        if state in (ESTABLISHED, PARTIAL):
            return self._update_established(endpoint, peer, flags)
        if state == CLOSED:
            return self._update_closed(t, endpoint, delta_last, flags)
        # RESET
        if flags & SYN:
            self.weird("SYN_after_reset")
        if flags & FIN:
            self.weird("FIN_after_reset")
        if length > 0 and not flags & RST:
            self.weird("data_after_reset")
        return False, False

    def _update_inactive(
        self,
        t: float,
        endpoint: Endpoint,
        peer: Endpoint,
        base_seq: int,
        ack_seq: int,
        length: int,
        is_orig: bool,
        flags: int,
    ) -> tuple[bool, bool]:
        do_close = gen_event = False
        if flags & SYN:
            if is_orig:
                if flags & ACK:
                    self.weird("connection_originator_SYN_ack")
                    endpoint.set_state(SYN_ACK_SENT)
                else:
                    endpoint.set_state(SYN_SENT)
                self._add_timer(t + TCP_ATTEMPT_DELAY, self._attempt_timer, True)
            else:
                if flags & ACK:
                    if peer.state not in (INACTIVE, PARTIAL) and not seq_between(
                        ack_seq, peer.start_seq & _U32, peer.last_seq
                    ):
                        self.weird("bad_SYN_ack")
                elif peer.state == SYN_ACK_SENT and base_seq == endpoint.start_seq:
                    # SYN and SYN-ACK seen in reverse order: flip and establish.
                    self.is_partial = False
                    self.conn.flip_roles()
                    peer.set_state(ESTABLISHED)
                    self.set_first_packet_seen(True)
                else:
                    self.weird("simultaneous_open")
                if peer.state == SYN_SENT:
                    peer.set_state(ESTABLISHED)
                elif peer.state == INACTIVE:
                    self.weird("unsolicited_SYN_response")
                endpoint.set_state(ESTABLISHED)

        if flags & FIN:
            endpoint.set_state(CLOSED)
            do_close = gen_event = True
            if peer.state != PARTIAL and not flags & SYN:
                self.weird("spontaneous_FIN")

        if flags & RST:
            endpoint.set_state(RESET)
            if is_orig:
                is_reject = peer.state == ESTABLISHED
            else:
                is_reject = peer.state in (SYN_SENT, SYN_ACK_SENT)
            do_close = True
            gen_event = not is_reject
            if not is_reject and peer.state == INACTIVE:
                self.weird("spontaneous_RST")

        if endpoint.state == INACTIVE:
            if not is_orig and length == 0 and self.orig.state == SYN_SENT:
                pass
            elif flags & ACK and peer.state == ESTABLISHED:
                endpoint.set_state(ESTABLISHED)
                self.is_partial = False
                self.set_first_packet_seen(is_orig)
            else:
                endpoint.set_state(PARTIAL)
        return do_close, gen_event

    def _update_syn_sent(
        self, endpoint: Endpoint, peer: Endpoint, length: int, is_orig: bool, flags: int
    ) -> tuple[bool, bool]:
        do_close = gen_event = False
        if flags & SYN:
            if is_orig:
                if flags & ACK and not flags & (FIN | RST) and endpoint.state != SYN_ACK_SENT:
                    self.weird("repeated_SYN_with_ack")
            elif not flags & ACK and endpoint.state != SYN_SENT:
                self.weird("repeated_SYN_reply_wo_ack")
        if flags & FIN:
            if peer.state in (INACTIVE, SYN_SENT):
                self.weird("inappropriate_FIN")
            endpoint.set_state(CLOSED)
            do_close = gen_event = True
        if flags & RST:
            endpoint.set_state(RESET)
            self.is_active = False
            do_close = True
        elif length > 0:
            self.weird("data_before_established")
        return do_close, gen_event

    def _update_established(
        self, endpoint: Endpoint, peer: Endpoint, flags: int
    ) -> tuple[bool, bool]:
        do_close = gen_event = False
        if flags & SYN and endpoint.state == PARTIAL and peer.state == INACTIVE and not flags & ACK:
            self.weird("SYN_after_partial")
            endpoint.set_state(SYN_SENT)
        if flags & FIN and not flags & RST:
            endpoint.set_state(CLOSED)
            if peer.state == RESET and peer.prev_state == CLOSED:
                peer.set_state(CLOSED)
            do_close = gen_event = True
        if flags & RST:
            endpoint.set_state(RESET)
            do_close = True
            if peer.state != RESET or peer.prev_state != ESTABLISHED:
                self.is_active = False
        return do_close, gen_event

    def _update_closed(
        self, t: float, endpoint: Endpoint, delta_last: int, flags: int
    ) -> tuple[bool, bool]:
        do_close = False
        if flags & SYN:
            self.weird("SYN_after_close")
        if flags & FIN and delta_last > 0:
            self.weird("FIN_advanced_last_seq")
        if flags & RST and endpoint.peer.state != CLOSED:
            endpoint.set_state(RESET)
            if not endpoint.did_close:
                do_close = True
            self._add_timer(t + TCP_RESET_DELAY, self._reset_timer, True)
        return do_close, False

    # -- closing ----------------------------------------------------------------------------
    def both_closed(self) -> bool:
        return self.orig.did_close and self.resp.did_close

    def is_closed(self) -> bool:
        return self.orig.did_close or self.resp.did_close

    def endpoint_eof(self, endp: Endpoint) -> None:
        if self.close_deferred:
            if endp.data_pending() and self.both_closed():
                self.weird("pending_data_when_closed")
            self._connection_closed(endp, endp.peer, self.deferred_gen_event)
            self.close_deferred = False

    def _connection_closed(self, endpoint: Endpoint, peer: Endpoint, gen_event: bool) -> None:
        if endpoint.data_pending():
            self.close_deferred = True
            if not self.deferred_gen_event:
                self.deferred_gen_event = gen_event
            return
        self.close_deferred = False
        if endpoint.did_close:
            return
        endpoint.did_close = True
        close_complete = endpoint.state == RESET or peer.did_close or peer.state == INACTIVE
        if close_complete:
            if endpoint.prev_state != INACTIVE or peer.state != INACTIVE:
                if self.deferred_gen_event:
                    gen_event = True
                    self.deferred_gen_event = False
                if gen_event:
                    self.is_active = False
            self._cancel_timers()
            conn = self.conn
            self._add_timer(conn.last_time + TCP_CLOSE_DELAY, lambda _t: conn.remove())
        elif endpoint.prev_state != INACTIVE:
            self._add_timer(self.conn.last_time + TCP_SESSION_TIMER, self._expire_timer)

    # -- timers ---------------------------------------------------------------------------
    def _attempt_timer(self, t: float) -> None:
        if not self.is_active:
            return
        if self.orig.state in (SYN_SENT, SYN_ACK_SENT) and self.resp.state == INACTIVE:
            self.is_active = False
            self.conn.remove()

    def _expire_timer(self, t: float) -> None:
        if not self.is_active:
            return
        conn = self.conn
        orig, resp = self.orig, self.resp
        if conn.last_time + TCP_CONNECTION_LINGER < t:
            if (orig.did_close or resp.did_close) and (
                (orig.did_close and resp.did_close)
                or RESET in (orig.state, resp.state)
                or INACTIVE in (orig.state, resp.state)
            ):
                self.is_active = False
                conn.remove()
                return
            if resp.state == INACTIVE and orig.state == INACTIVE:
                conn.remove()
                return
        self._add_timer(t + TCP_SESSION_TIMER, self._expire_timer)

    def _reset_timer(self, t: float) -> None:
        if not self.is_active:
            return
        self.conn.remove()

    # -- connection reuse -----------------------------------------------------------------
    def is_reuse(self, t: float, tp: TcpHeader) -> bool:
        if tp.hdr_len < 20 or not tp.flags & SYN:
            return False
        conn_orig = self.orig
        if tp.flags & ACK:
            if self.orig.state != INACTIVE:
                return False
            conn_orig = self.resp
        if not self.is_closed():
            if tp.seq == conn_orig.start_seq:
                return False
            if (
                not tp.flags & ACK
                and conn_orig.state == SYN_ACK_SENT
                and self.resp.state == INACTIVE
                and tp.seq == self.resp.start_seq
            ):
                return False
            self.weird("SYN_seq_jump" if conn_orig.state == SYN_SENT else "active_connection_reuse")
        elif (_is_active(self.orig) or _is_active(self.resp)) and RESET not in (
            self.orig.state,
            self.resp.state,
        ):
            self.weird("active_connection_reuse")
        elif t - self.conn.last_time < TCP_CONNECTION_LINGER and RESET not in (
            self.orig.state,
            self.resp.state,
        ):
            self.weird("premature_connection_reuse")
        return True

    # -- conn.log views -------------------------------------------------------------------
    def endpoint_states(self) -> tuple[int, int]:
        return self.orig.state, self.resp.state

    def sizes(self) -> tuple[int, int]:
        return self.orig.size(), self.resp.size()


def _relative_seq(endpoint: Endpoint, cur_base: int, last: int, wraps: int) -> tuple[int, bool]:
    """Zeek's get_relative_seq: 64-bit relative sequence number and whether it underflowed."""
    # seq_delta inlined: the sign bit of the 32-bit difference is "negative".
    delta = (cur_base - last) & _U32
    if delta & 0x80000000:
        if wraps and cur_base > last:
            wraps -= 1
    elif delta and cur_base < last:
        wraps += 1
    if wraps == 0:
        d = (cur_base - endpoint.start_seq) & _U32
        if d & 0x80000000:
            return (d - 0x100000000) & _U64, True
        return d, False
    return endpoint.to_relative(cur_base, wraps), False
