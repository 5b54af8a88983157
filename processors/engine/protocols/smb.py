"""SMB -> smb_mapping.log, smb_files.log, SMB file transfers (and ntlm.log for its NTLM
logins), as Zeek's SMB analyzer and scripts.

Three layers, mirroring Zeek so that odd traffic ends up logged the same way:

* :class:`SmbAnalyzer` is Zeek's ``SMB_Analyzer`` (``SMB.cc``): NetBIOS session framing over
  TCP, resynchronisation after a gap (data is dropped until a delivery starts with an SMB
  header), confirmation (service ``smb``) after three deliveries without a parse error, a
  violation and resync on a parse error;
* :mod:`.smb2` and :mod:`.smb1` are the binpac SMB2 and SMB1 parsers (SMB1: the commands
  behind the default logs; see there); SMB3 transform (encrypted) headers are read and
  skipped, as Zeek does;
* :class:`SmbScript` is ``base/protocols/smb`` (``main.zeek``, ``smb1-main.zeek``, ``smb2-main.zeek``,
  ``files.zeek``): the command/tree/file maps keyed on message, tree and file ids, share
  mappings logged at each tree-connect reply, file actions logged (``SMB::logged_file_actions``,
  de-duplicated over ``recent_files``) at create replies, renames, deletes and new file
  transfers, and read/write data handed to the file manager under Zeek's SMB file handle
  (hosts, share path, name and modification time), so repeated reads of one file are one file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import AnalyzerContext, AnalyzerSpec, Record, register
from wirestream.processors.engine.protocols.bytereader import ParseError
from wirestream.processors.engine.protocols.gssapi import gssapi_token_parses
from wirestream.processors.engine.protocols.ntlm import NtlmSession
from wirestream.processors.engine.protocols.smb1 import Smb1Header, Smb1Parser
from wirestream.processors.engine.protocols.smb2 import (
    MAX_PENDING_MESSAGES,
    SMB2_MAGIC,
    STATUS_PENDING,
    MacTimes,
    Smb2Header,
    Smb2Parser,
)
from wirestream.schemas.zeeklog.escape import bytes_text as text

log = logging.getLogger(__name__)

PORTS = frozenset({139, 445})  # SMB::ports
SMB1_MAGIC = b"\xffSMB"
SMB3_TRANSFORM_MAGIC = b"\xfdSMB"
TRANSFORM_HEADER_SIZE = 16 + 16 + 4 + 2 + 2 + 8
NBSS_SESSION_MESSAGE = 0
CONFIRM_AFTER_CHUNKS = 3  # SMB_Analyzer confirms after 3 deliveries without a binpac exception
# binpac's flow buffer doubles from 512 bytes and may not pass 10 MiB (flowbuffer_capacity_max):
# the largest frame it can hold is 8 MiB; a bigger one is a binpac exception.
FLOWBUFFER_LARGEST_FRAME = 8 * 1024 * 1024
RECENT_FILES_EXPIRE = 180.0  # SMB::State$recent_files &read_expire=3min
FILE_DELETE_ON_CLOSE = 0x00001000

ACTIONS = tuple(
    f"{kind}_{op}"
    for kind, ops in (
        ("FILE", ("READ", "WRITE", "OPEN", "CLOSE", "DELETE", "RENAME", "SET_ATTRIBUTE")),
        ("PIPE", ("READ", "WRITE", "OPEN", "CLOSE")),
        ("PRINT", ("READ", "WRITE", "OPEN", "CLOSE")),
    )
    for op in ops
)  # SMB::Action, without the module prefix
# SMB::logged_file_actions
LOGGED_FILE_ACTIONS = frozenset(
    {"FILE_OPEN", "FILE_RENAME", "FILE_DELETE", "PRINT_OPEN", "PRINT_CLOSE"}
)
SHARE_TYPES = {1: "DISK", 2: "PIPE", 3: "PRINT"}  # SMB2::share_types


@dataclass(frozen=True)
class SmbConfig:
    """What Zeek's SMB scripts let a site redef; the default is plain ``zeek -r``."""

    logged_file_actions: frozenset[str] = LOGGED_FILE_ACTIONS  # SMB::logged_file_actions
    max_pending_messages: int = MAX_PENDING_MESSAGES  # SMB::max_pending_messages (0: no limit)
    enable_clear_script_state: bool = True  # SMB::enable_clear_script_state

    def __post_init__(self) -> None:
        unknown = set(self.logged_file_actions) - set(ACTIONS)
        if unknown:
            raise ValueError(
                f"unknown SMB::Action(s) {sorted(unknown)}; known: {', '.join(ACTIONS)}"
            )
        if self.max_pending_messages < 0:
            raise ValueError(f"max_pending_messages must be >= 0, got {self.max_pending_messages}")


CONFIG_KEY = "smb_config"


def configure(engine: Any, config: SmbConfig) -> None:
    """Use ``config`` for the SMB connections ``engine`` analyses from now on."""
    engine.analyzer_state[CONFIG_KEY] = config


def share_type_name(share_type: int) -> str:
    return SHARE_TYPES.get(share_type, f"unknown-{share_type}")


def action_for(share_type: str, kind: str) -> str:
    """The SMB::Action of an open/read/write/close on a tree of ``share_type`` (smb2-main.zeek)."""
    if share_type == "PIPE":
        return f"PIPE_{kind}"
    if share_type == "PRINT":
        return f"PRINT_{kind}"
    return f"FILE_{kind}"


def sniff_smb(orig: bytes, resp: bytes) -> bool:
    """Zeek's ``dpd_smb`` signature: ``/^....[\\xfe\\xff]SMB/`` on either side's first bytes."""
    return (orig[5:8] == b"SMB" and orig[4] in (0xFE, 0xFF)) or (
        resp[5:8] == b"SMB" and resp[4] in (0xFE, 0xFF)
    )


def has_smb_header(data: bytes) -> bool:
    """``SMB_Analyzer::HasSMBHeader``: a delivery that may start a NetBIOS-framed SMB message."""
    return len(data) >= 8 and data[4:8] in (SMB1_MAGIC, SMB2_MAGIC)


# ----------------------------------------------------------------------------- script records


@dataclass(eq=False)
class FileInfo:
    """``SMB::FileInfo`` (shared by reference between the command, fid map and current file)."""

    ts: float
    fuid: str | None = None
    action: str | None = None
    path: str | None = None
    name: str | None = None
    size: int = 0
    prev_name: str | None = None
    times: MacTimes | None = None
    fid: int | None = None


@dataclass(eq=False)
class TreeInfo:
    """``SMB::TreeInfo``."""

    ts: float
    path: str | None = None
    service: str | None = None
    native_file_system: str | None = None
    share_type: str = "DISK"


@dataclass(eq=False)
class CmdInfo:
    """The parts of ``SMB::CmdInfo`` the logs depend on."""

    ts: float
    referenced_file: FileInfo | None = None
    referenced_tree: TreeInfo | None = None
    status: str | None = None
    create_options: int = 0


@dataclass
class ScriptState:
    """``SMB::State`` of one connection."""

    current_cmd: CmdInfo | None = None
    current_file: FileInfo | None = None
    current_tree: TreeInfo | None = None
    pending_cmds: dict[int, CmdInfo] = field(default_factory=dict)
    fid_map: dict[int, FileInfo] = field(default_factory=dict)
    tid_map: dict[int, TreeInfo] = field(default_factory=dict)
    recent_files: dict[tuple, float] = field(default_factory=dict)  # ident -> last access


def times_columns(times: MacTimes | None) -> Record:
    if times is None:
        return dict.fromkeys(("times.modified", "times.accessed", "times.created", "times.changed"))
    return {
        "times.modified": times.modified,
        "times.accessed": times.accessed,
        "times.created": times.created,
        "times.changed": times.changed,
    }


# ----------------------------------------------------------------------------- the scripts


class SmbScript:
    """``base/protocols/smb``: receives both parsers' events, writes the logs, feeds files."""

    def __init__(self, ctx: AnalyzerContext, config: SmbConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or SmbConfig()
        self.state: ScriptState | None = None
        self.ts = 0.0
        # fuids this connection has seen (file_over_new_connection fires once per connection)
        self.announced: set[str] = set()
        self.ntlm = NtlmSession(ctx)  # the NTLM analyzer and base/protocols/ntlm

    # -- helpers from main.zeek ---------------------------------------------------------------

    def _state(self) -> ScriptState:
        if self.state is None:
            self.state = ScriptState()
        return self.state

    def set_current_file(self, fid: int) -> FileInfo:
        """SMB::set_current_file; returns the file it makes current."""
        st = self._state()
        cmd = st.current_cmd
        assert cmd is not None
        if fid not in st.fid_map:
            assert cmd.referenced_file is not None
            st.fid_map[fid] = cmd.referenced_file
            cmd.referenced_file.fid = fid
        f = cmd.referenced_file = st.current_file = st.fid_map[fid]
        return f

    def write_file_log(self) -> None:
        st = self._state()
        f = st.current_file
        if f is None or f.name is None or f.action not in self.config.logged_file_actions:
            return
        if f.times is not None:
            # Repeated opens of one file log once: the access time is left out of the identity.
            t = f.times
            ident = (f.action, f.fuid or "", f.name, f.path or "", f.size,
                     t.modified_raw, t.created_raw, t.changed_raw)  # fmt: skip
            for key, seen in list(st.recent_files.items()):
                if self.ts - seen >= RECENT_FILES_EXPIRE:
                    del st.recent_files[key]
            if ident in st.recent_files:
                st.recent_files[ident] = self.ts
                return
            st.recent_files[ident] = self.ts
        self.ctx.emit("smb_files", self.file_record(f))

    def file_record(self, f: FileInfo) -> Record:
        return {
            "ts": f.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "fuid": f.fuid,
            "action": None if f.action is None else f"SMB::{f.action}",
            "path": f.path,
            "name": f.name,
            "size": f.size,
            "prev_name": f.prev_name,
            **times_columns(f.times),
        }

    def tree_record(self, t: TreeInfo) -> Record:
        return {
            "ts": t.ts,
            "uid": self.ctx.uid,
            **self.ctx.conn_id.columns(),
            "path": t.path,
            "service": t.service,
            "native_file_system": t.native_file_system,
            "share_type": t.share_type,
        }

    def _action(self, f: FileInfo, kind: str) -> None:
        """The action of an open/read/write/close by the tree's share type; with no current
        tree the script's switch fails on the unset field and the action stays as it was."""
        tree = self._state().current_tree
        if tree is not None:
            f.action = action_for(tree.share_type, kind)

    # -- smb2-main.zeek -----------------------------------------------------------------------

    def smb2_message(self, hdr: Smb2Header, is_orig: bool) -> None:
        st = self._state()
        mid, tid = hdr.message_id, hdr.tree_id
        cmd = st.pending_cmds.get(mid)
        if cmd is None:
            cmd = CmdInfo(ts=self.ts, referenced_file=FileInfo(ts=self.ts))
            st.pending_cmds[mid] = cmd
        st.current_cmd = cmd
        if tid > 0:
            if cmd.referenced_tree is not None:
                st.tid_map[tid] = cmd.referenced_tree
            elif tid not in st.tid_map:
                st.tid_map[tid] = TreeInfo(ts=self.ts)
            cmd.referenced_tree = st.tid_map[tid]
        else:
            cmd.referenced_tree = TreeInfo(ts=self.ts)
        st.current_file = cmd.referenced_file
        st.current_tree = cmd.referenced_tree
        if not is_orig:
            cmd.status = "PENDING" if hdr.status == STATUS_PENDING else "other"
            if cmd.status != "PENDING":  # the priority -5 handler
                st.pending_cmds.pop(mid, None)

    def tree_connect_request(self, hdr: Smb2Header, path: bytes) -> None:
        tree = self._state().current_tree
        if tree is not None:
            tree.path = text(path)

    def tree_connect_response(self, hdr: Smb2Header, share_type: int) -> None:
        tree = self._state().current_tree
        if tree is None:
            return
        tree.share_type = share_type_name(share_type)
        self.ctx.emit("smb_mapping", self.tree_record(tree))

    def tree_disconnect_request(self, hdr: Smb2Header) -> None:
        st = self._state()
        if hdr.tree_id in st.tid_map:
            del st.tid_map[hdr.tree_id]
            st.current_tree = None
            if st.current_cmd is not None:
                st.current_cmd.referenced_tree = None

    def pipe_connect_heuristic(self) -> None:
        tree = self._state().current_tree
        if tree is not None:
            tree.path = "<unknown>"
            tree.share_type = "PIPE"

    def create_request(self, hdr: Smb2Header, filename: bytes, create_options: int) -> None:
        st = self._state()
        f, cmd = st.current_file, st.current_cmd
        assert f is not None and cmd is not None
        f.name = text(filename) if filename else "<share_root>"
        cmd.create_options = create_options
        self._action(f, "OPEN")

    def create_response(self, hdr: Smb2Header, fid: int, size: int, times: MacTimes) -> None:
        st = self._state()
        f = self.set_current_file(fid)
        f.fid = fid
        f.size = size
        if st.current_tree is not None and st.current_tree.path is not None:
            f.path = st.current_tree.path
        if times.modified > 0.0:  # "I'm seeing negative data from IPC tree transfers"
            f.times = times
        st.fid_map[fid] = f
        self.write_file_log()
        cmd = st.current_cmd
        if hdr.status == 0 and cmd is not None and cmd.create_options & FILE_DELETE_ON_CLOSE:
            self.file_delete(hdr, fid, True)

    def read_request(self, hdr: Smb2Header, fid: int) -> None:
        self._file_action(fid, "READ")

    def write_request(self, hdr: Smb2Header, fid: int) -> None:
        self._file_action(fid, "WRITE")

    def _file_action(self, fid: int, kind: str) -> None:
        f = self.set_current_file(fid)
        self._action(f, kind)
        self.write_file_log()

    def file_sattr(self, hdr: Smb2Header, fid: int) -> None:
        f = self.set_current_file(fid)
        f.action = "FILE_SET_ATTRIBUTE"
        self.write_file_log()

    def file_rename(self, hdr: Smb2Header, fid: int, new_name: bytes) -> None:
        f = self.set_current_file(fid)
        if f.name is not None:
            f.prev_name = f.name
        f.name = text(new_name)
        f.action = "FILE_RENAME"
        self.write_file_log()

    def file_delete(self, hdr: Smb2Header, fid: int, delete_pending: bool) -> None:
        f = self.set_current_file(fid)
        if delete_pending:
            f.action = "FILE_DELETE"
        self.write_file_log()

    def close_request(self, hdr: Smb2Header, fid: int) -> None:
        st = self._state()
        f = self.set_current_file(fid)
        self._action(f, "CLOSE")
        if fid in st.fid_map:
            closed = st.fid_map.pop(fid)
            if st.current_tree is not None and st.current_tree.path is not None:
                closed.path = st.current_tree.path
            self.write_file_log()

    def discarded_messages_state(self, state: str) -> None:
        st = self.state
        if st is None:
            return
        addl = (
            f"state={state} fid_map={len(st.fid_map)} tid_map={len(st.tid_map)} "
            f"pending_cmds={len(st.pending_cmds)} pipe_map=0"
        )
        conn = getattr(self.ctx, "conn", None)  # the engine's: the weird's source is SMB2
        if conn is not None:
            conn.weird("SMB_discarded_messages_state", addl, source="SMB2")
        else:
            self.ctx.weird("SMB_discarded_messages_state", addl)
        if self.config.enable_clear_script_state:
            st.fid_map = {}
            st.pending_cmds = {}

    def security_blob(self, blob: bytes, is_orig: bool) -> None:
        """``forward_gssapi``: blobs of 8 bytes or more go to Zeek's GSSAPI analyzer, raw
        NTLMSSP to its NTLM analyzer; a GSSAPI blob that parses confirms ``gssapi`` (after the
        NTLM token inside it, which the NTLM analyzer parses and confirms first)."""
        if len(blob) < 8:
            return
        if blob.startswith(b"NTLMSSP"):
            self.ntlm.token(blob, self.ts)
        elif gssapi_token_parses(blob, self._ntlm_token, self.ntlm.neg_result):
            self.ctx.confirm("gssapi")

    def _ntlm_token(self, token: bytes) -> None:
        self.ntlm.token(token, self.ts)

    # -- smb1-main.zeek -----------------------------------------------------------------------

    def smb1_message(self, hdr: Smb1Header, is_orig: bool) -> None:
        st = self._state()
        tree = st.tid_map.get(hdr.tid)
        if tree is None:
            tree = st.tid_map[hdr.tid] = TreeInfo(ts=self.ts)
        st.current_tree = tree
        cmd = st.pending_cmds.get(hdr.mid)
        if cmd is None:
            cmd = CmdInfo(ts=self.ts, referenced_file=FileInfo(ts=self.ts), referenced_tree=tree)
            st.pending_cmds[hdr.mid] = cmd
        st.current_cmd = cmd
        if not is_orig:
            del st.pending_cmds[hdr.mid]  # the priority -5 handler (no PENDING replies in SMB1)

    def smb1_tree_connect_request(self, hdr: Smb1Header, path: bytes, service: bytes) -> None:
        cmd = self._state().current_cmd
        assert cmd is not None
        cmd.referenced_tree = TreeInfo(ts=self.ts, path=text(path), service=text(service))

    def smb1_tree_connect_response(self, hdr: Smb1Header, service: bytes, fs: bytes) -> None:
        st = self._state()
        cmd = st.current_cmd
        assert cmd is not None
        tree = cmd.referenced_tree
        if tree is None:
            self.ctx.weird("smb_tree_connect_andx_response_without_tree")
            return
        tree.service = text(service)
        if service == b"IPC":
            tree.share_type = "PIPE"
        if fs:
            tree.native_file_system = text(fs)
        st.current_tree = st.tid_map[hdr.tid] = tree
        self.ctx.emit("smb_mapping", self.tree_record(tree))

    def smb1_create_request(self, hdr: Smb1Header, name: bytes) -> None:
        st = self._state()
        cmd = st.current_cmd
        assert cmd is not None
        f = FileInfo(ts=self.ts, name=text(name), action="FILE_OPEN")
        cmd.referenced_file = st.current_file = f

    def smb1_create_response(self, hdr: Smb1Header, fid: int, size: int, times: MacTimes) -> None:
        st = self._state()
        cmd = st.current_cmd
        assert cmd is not None and cmd.referenced_file is not None
        f = cmd.referenced_file
        f.action, f.fid, f.size = "FILE_OPEN", fid, size
        if times.modified > 0.0:
            f.times = times
        st.fid_map[fid] = st.current_file = f
        self.write_file_log()

    def _smb1_fill_path(self) -> FileInfo:
        """The priority -5 read/write handlers: the file takes the tree's path if it has none."""
        st = self._state()
        f = st.current_file
        assert f is not None
        if st.current_tree is not None and st.current_tree.path is not None and f.path is None:
            f.path = st.current_tree.path
        return f

    def smb1_read_request(self, hdr: Smb1Header, fid: int) -> None:
        self.set_current_file(fid)
        self._smb1_fill_path().action = "FILE_READ"
        self.write_file_log()

    def smb1_write_request(self, hdr: Smb1Header, fid: int) -> None:
        self.set_current_file(fid)
        self._smb1_fill_path().action = "FILE_WRITE"  # writes are not logged (smb1-main.zeek)

    def smb1_close_request(self, hdr: Smb1Header, fid: int) -> None:
        st = self._state()
        f = self.set_current_file(fid)
        f.action = "FILE_CLOSE"
        closed = st.fid_map.pop(fid, None)
        if closed is not None:
            if st.current_tree is not None and st.current_tree.path is not None:
                closed.path = st.current_tree.path
            self.write_file_log()

    def andx_weird(self, name: str) -> None:
        """An AndX chain limit: a weird plus history X (Zeek's analyzer Weird + CheckHistory)."""
        limit = getattr(self.ctx, "limit_reached_weird", None)
        if limit is not None:
            limit(name)
        else:
            self.ctx.weird(name)

    # -- files.zeek and the file manager ------------------------------------------------------

    def _file_handle(self) -> tuple | None:
        """``SMB::get_file_handle``: None where Zeek's is empty (no file to attach data to)."""
        f = self._state().current_file
        if f is None or (f.name is None and f.path is None):
            return None
        cid = self.ctx.conn_id
        last_mod = f.times.modified_raw if f.times is not None else 0
        return ("SMB", cid.orig_h, cid.resp_h, f.path or "", f.name or "", last_mod)

    def file_data(self, is_orig: bool, data: bytes, offset: int) -> None:
        key = self._file_handle()
        if key is None:
            return
        ctx = self.ctx
        handle = ctx.files.new_file(
            source="SMB", ts=self.ts, is_orig=is_orig, uid=ctx.uid, conn_id=ctx.conn_id, key=key
        )
        if handle.on_end is None:  # file_state_remove goes to the file's first connection
            handle.on_end = self._file_state_remove
        if handle.fuid not in self.announced:
            # file_over_new_connection is drained at once (File::FileEvent), before the data.
            self.announced.add(handle.fuid)
            self._file_over_new_connection(handle)
        handle.data(data, self.ts, offset=offset)
        # File::IsComplete after each chunk: the size the create reply announced has been seen.
        total = handle.total_bytes
        if total is not None and handle.stream_offset >= total and not handle.done:
            self._end_file(handle)

    def _file_over_new_connection(self, handle: Any) -> None:
        f = self._state().current_file
        if f is None:
            return
        f.fuid = handle.fuid
        if f.size > 0:
            handle.set_total(f.size)
        if f.name is not None:
            handle.filename = f.name
        self.write_file_log()

    def end_of_file(self, is_orig: bool) -> None:
        """``file_mgr->EndOfFile`` at a close request: the current file's transfer is over."""
        key = self._file_handle()
        if key is None:
            return
        handle = self.ctx.files.keyed.get(key)
        if handle is not None and not handle.done:
            self._end_file(handle)

    def _end_file(self, handle: Any) -> None:
        handle.end(self.ts)

    def _file_state_remove(self, handle: Any) -> None:
        """main.zeek's file_state_remove (priority -5): the file ended (closed, complete, timed
        out or the trace ended): the connection's current file is logged if it qualifies."""
        if self.state is not None and self.state.current_file is not None:
            self.write_file_log()


# ----------------------------------------------------------------------------- the analyzer


class SmbAnalyzer:
    """Zeek's SMB analyzer on one TCP connection."""

    def __init__(self, ctx: AnalyzerContext) -> None:
        self.ctx = ctx
        state = getattr(ctx, "shared_state", None) or {}
        config: SmbConfig = state.get(CONFIG_KEY) or SmbConfig()
        self.script = SmbScript(ctx, config)
        self.smb2 = Smb2Parser(self.script, config.max_pending_messages)
        self.smb1 = Smb1Parser(self.script, self.smb2.tree_is_pipe)
        self.buffers = {True: bytearray(), False: bytearray()}
        # A direction whose frame was cut by a resync keeps binpac's half-parsed flow unit:
        # its next delivery fails to parse against the discarded buffer (one more violation).
        self.stale = {True: False, False: False}
        self.need_sync = True
        self.chunks = 0

    def data(self, is_orig: bool, data: bytes, ts: float) -> None:
        self.script.ts = ts
        if self.need_sync:
            if not has_smb_header(data):
                return
            self.need_sync = False
        try:
            if self.stale[is_orig]:
                self.stale[is_orig] = False
                raise ParseError("flow unit resumed over discarded data")
            self._frames(is_orig, data)
            self.chunks += 1
            if self.chunks == CONFIRM_AFTER_CHUNKS:
                self.ctx.confirm("smb")
        except ParseError as exc:
            self.buffers[is_orig].clear()  # binpac's flow drops its own unit on the exception
            self.ctx.violation(f"Binpac exception: {exc}")
            self.need_resync()

    def gap(self, is_orig: bool, length: int, ts: float) -> None:
        self.need_resync()

    def end(self, ts: float) -> None:
        self.buffers[True].clear()
        self.buffers[False].clear()
        self.script.ntlm.finish()  # NTLM's connection removal hook

    def need_resync(self) -> None:
        """``NeedResync``: both directions' buffered data dropped, wait for an SMB header."""
        for is_orig, buf in self.buffers.items():
            if buf:
                self.stale[is_orig] = True
                buf.clear()
        self.need_sync = True

    def _frames(self, is_orig: bool, data: bytes) -> None:
        """NetBIOS session framing (binpac's SMB_TCP flow unit): whole frames are parsed."""
        buf = self.buffers[is_orig]
        buf += data
        pos = 0
        while len(buf) - pos >= 4:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if length + 4 > FLOWBUFFER_LARGEST_FRAME:
                raise ParseError(f"NetBIOS frame of {length} bytes exceeds the flow buffer")
            end = pos + 4 + length
            if len(buf) < end:
                break
            message_type = buf[pos]
            frame = bytes(buf[pos:end])
            pos = end
            if message_type == NBSS_SESSION_MESSAGE:
                self._frame(frame, is_orig)  # a ParseError resyncs: both buffers are dropped
        del buf[:pos]

    def _frame(self, frame: bytes, is_orig: bool) -> None:
        """``SMB_Protocol_Identifier[] &until(end_of_chain)`` over one frame's body."""
        pos, end = 4, len(frame)
        while True:
            if pos + 4 > end:
                raise ParseError("SMB protocol identifier past the end of the frame")
            magic = frame[pos : pos + 4]
            if magic == SMB2_MAGIC:
                pos, last = self.smb2.pdu(frame, pos, end, is_orig)
                if last:
                    return
            elif magic == SMB3_TRANSFORM_MAGIC:
                if pos + 4 + TRANSFORM_HEADER_SIZE > end:
                    raise ParseError("SMB3 transform header past the end of the frame")
                return
            elif magic == SMB1_MAGIC:
                self.smb1.pdu(frame, pos, end, is_orig, end - 4)
                return
            else:
                return  # an unknown protocol: binpac's empty case, the chain ends


def _factory(ctx: AnalyzerContext) -> SmbAnalyzer:
    return SmbAnalyzer(ctx)


SPEC = register(
    AnalyzerSpec(
        name="smb",
        transports=frozenset({"tcp"}),
        ports=PORTS,
        factory=_factory,
        sniff=sniff_smb,
    )
)
