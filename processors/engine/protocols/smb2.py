"""SMB2/SMB3 message parsing, as Zeek's binpac SMB2 parser (``smb2-protocol.pac``, ``smb2-com-*.pac``).

:class:`Smb2Parser` reads the SMB2 PDUs of one NetBIOS frame (a compound chain), keeps the
parser's own per-connection state (tree ids of requests, which trees are pipes, read offsets)
and reports what it finds to an :class:`Smb2Events` receiver in the order Zeek's parser raises
its events and feeds the file manager. Layout rules follow binpac, not the specification, so
odd traffic fails (a :class:`~.bytereader.ParseError`, a binpac exception in Zeek) where Zeek's
does: offsets are relative to the SMB2 header, ``padding to`` a point already passed pads
nothing, and a chained PDU's padding must not be negative.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from wirestream.processors.engine.protocols.bytereader import LittleReader, ParseError

MASK64 = (1 << 64) - 1
SMB2_MAGIC = b"\xfeSMB"
STATUS_PENDING = 0x00000103
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
STATUS_NOTIFY_ENUM_DIR = 0x0000010C
MAX_PENDING_MESSAGES = 1000  # SMB::max_pending_messages
FILETIME_EPOCH_OFFSET = 11644473600.0  # seconds from 1601-01-01 to 1970-01-01

(
    NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, CREATE, CLOSE, FLUSH, READ,
    WRITE, LOCK, IOCTL, CANCEL, ECHO, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO,
    OPLOCK_BREAK,
) = range(19)  # fmt: skip
SHARE_TYPE_PIPE = 2
CONTEXT_PREAUTH, CONTEXT_ENCRYPTION, CONTEXT_COMPRESSION = 1, 2, 3  # negotiate context types
INFO_FILE = 0x01
INFO_FILESYSTEM = 0x02
FILE_BASIC_INFO, FILE_RENAME_INFO, FILE_DISPOSITION_INFO = 0x04, 0x0A, 0x0D
# The set-info file classes Zeek parses (whose layout can fail): class -> fixed size or None.
_OTHER_FILE_INFO = {0x13: 8, 0x14: 8, 0x10: 4, 0x18: 8, 0x0E: 8, 0x27: 8}  # alloc, eof, mode ...
FILE_FULLEA_INFO, FILE_LINK_INFO, FILE_SHORTNAME_INFO = 0x0F, 0x0B, 0x28
FILE_FSCONTROL_INFO, FILE_FSOBJECTID_INFO = 0x06, 0x08

# SMB::pipe_filenames (base/protocols/smb/consts.zeek): names that reveal a named pipe.
PIPE_FILENAMES = frozenset(
    {"spoolss", "winreg", "samr", "srvsvc", "netdfs", "lsarpc", "wkssvc", "MsFteWds"}
)

_HDR = struct.Struct("<HHIHHIIQIIQ16s")


def filetime_to_time(filetime: int) -> float:
    """Windows FILETIME (100 ns since 1601) as Zeek's time (``filetime2zeektime``)."""
    return filetime / 10000000.0 - FILETIME_EPOCH_OFFSET


def utf16_text(data: bytes) -> bytes:
    """Zeek's ``utf16_to_utf8_val``: UTF-16LE to UTF-8 (lone surrogates kept, as its lenient
    conversion does), cut at the first NUL; the raw bytes when the conversion fails."""
    padded = data + b"\0" if len(data) % 2 else data
    try:
        units = padded.decode("utf-16-le", "surrogatepass")
    except UnicodeDecodeError:
        return data
    if units and 0xD800 <= ord(units[-1]) <= 0xDBFF:
        return data  # a high surrogate at the end: source exhausted, conversion failed
    out = units.encode("utf-8", "surrogatepass")
    nul = out.find(b"\0")
    return out if nul < 0 else out[:nul]


@dataclass(frozen=True, slots=True)
class MacTimes:
    """Zeek's ``SMB::MACTimes``: each time as Zeek's time and as the raw FILETIME."""

    modified_raw: int
    accessed_raw: int
    created_raw: int
    changed_raw: int

    @property
    def modified(self) -> float:
        return filetime_to_time(self.modified_raw)

    @property
    def accessed(self) -> float:
        return filetime_to_time(self.accessed_raw)

    @property
    def created(self) -> float:
        return filetime_to_time(self.created_raw)

    @property
    def changed(self) -> float:
        return filetime_to_time(self.changed_raw)


@dataclass(frozen=True, slots=True)
class Smb2Header:
    """``SMB2::Header`` (the async form's async id is read as process and tree id, as Zeek does)."""

    head_length: int
    credit_charge: int
    status: int
    command: int
    credits: int
    flags: int
    next_command: int
    message_id: int
    process_id: int
    tree_id: int
    session_id: int


def file_id(persistent: int, volatile: int) -> int:
    """The fid the scripts key files on: persistent + volatile, a 64-bit sum that wraps."""
    return (persistent + volatile) & MASK64


class Smb2Events(Protocol):
    """What the SMB2 parser reports (Zeek's smb2_* events and file-manager calls), in order."""

    def smb2_message(self, hdr: Smb2Header, is_orig: bool) -> None: ...
    def tree_connect_request(self, hdr: Smb2Header, path: bytes) -> None: ...
    def tree_connect_response(self, hdr: Smb2Header, share_type: int) -> None: ...
    def tree_disconnect_request(self, hdr: Smb2Header) -> None: ...
    def pipe_connect_heuristic(self) -> None: ...
    def create_request(self, hdr: Smb2Header, filename: bytes, create_options: int) -> None: ...
    def create_response(self, hdr: Smb2Header, fid: int, size: int, times: MacTimes) -> None: ...
    def read_request(self, hdr: Smb2Header, fid: int) -> None: ...
    def write_request(self, hdr: Smb2Header, fid: int) -> None: ...
    def close_request(self, hdr: Smb2Header, fid: int) -> None: ...
    def file_sattr(self, hdr: Smb2Header, fid: int) -> None: ...
    def file_rename(self, hdr: Smb2Header, fid: int, new_name: bytes) -> None: ...
    def file_delete(self, hdr: Smb2Header, fid: int, delete_pending: bool) -> None: ...
    def file_data(self, is_orig: bool, data: bytes, offset: int) -> None: ...
    def end_of_file(self, is_orig: bool) -> None: ...
    def discarded_messages_state(self, state: str) -> None: ...
    def security_blob(self, blob: bytes, is_orig: bool) -> None: ...


class _LE(LittleReader):
    """Reads over one NetBIOS frame, plus SMB2's GUIDs."""

    __slots__ = ()

    def skip(self, n: int) -> None:
        self.take(n)

    def guid(self) -> int:
        return file_id(self.u64(), self.u64())


class Smb2Parser:
    """SMB2 parsing state of one connection (both directions), reporting to ``events``."""

    def __init__(self, events: Smb2Events, max_pending: int = MAX_PENDING_MESSAGES) -> None:
        self.events = events
        self.max_pending = max_pending  # 0: no limit
        self.request_tree_ids: dict[int, int] = {}
        self.tree_is_pipe: set[int] = set()
        self.read_offsets: dict[int, int] = {}
        self.read_fids: dict[int, int] = {}
        self.ioctl_fids: dict[int, int] = {}

    def pdu(self, data: bytes, pos: int, end: int, is_orig: bool) -> tuple[int, bool]:
        """One SMB2 PDU at ``pos`` (its ``\\xfeSMB``): returns where the next one starts and
        whether the chain ends here."""
        r = _LE(data, pos + 4, end)
        fields = _HDR.unpack(r.take(_HDR.size))
        hdr = Smb2Header(*fields[:11])
        # SMB2_Header's &let: the request's tree id (read before the reply forgets it).
        request_tree_id = self.request_tree_ids.get(hdr.message_id, 0)
        is_pipe = (hdr.tree_id if is_orig else request_tree_id) in self.tree_is_pipe
        self._message_seen(hdr, is_orig)
        msg_start = r.pos
        if not is_orig and is_error_response(hdr):
            r.skip(4)
            r.skip(r.u32())
        elif is_orig:
            self._request(r, msg_start, hdr, is_pipe)
        else:
            self._response(r, msg_start, hdr, is_pipe)
        if hdr.next_command == 0:
            return r.pos, True
        pad = hdr.next_command - hdr.head_length - (r.pos - msg_start)
        if pad < 0:
            raise ParseError(f"negative chain padding {pad}")
        r.skip(pad)
        return r.pos, False

    def _full(self, *maps: dict[int, int]) -> bool:
        """A parser map reached SMB::max_pending_messages: it is dropped (and reported)."""
        return self.max_pending > 0 and any(len(m) >= self.max_pending for m in maps)

    def _message_seen(self, hdr: Smb2Header, is_orig: bool) -> None:
        """``proc_smb2_message``: remember a request's tree id; raise smb2_message."""
        if is_orig:
            if self._full(self.request_tree_ids):
                self.events.discarded_messages_state("tree")
                self.request_tree_ids.clear()
            self.request_tree_ids[hdr.message_id] = hdr.tree_id
        elif hdr.status != STATUS_PENDING:
            self.request_tree_ids.pop(hdr.message_id, None)
        self.events.smb2_message(hdr, is_orig)

    # -- requests ---------------------------------------------------------------------------

    def _request(self, r: _LE, start: int, hdr: Smb2Header, is_pipe: bool) -> None:
        cmd = hdr.command
        ev = self.events
        if cmd == NEGOTIATE:
            r.skip(2)
            count = r.u16()
            r.skip(2 + 2 + 4 + 16 + 8)
            r.skip(2 * count)
        elif cmd == SESSION_SETUP:
            r.skip(2 + 1 + 1 + 4 + 4)
            offset, length = r.u16(), r.u16()
            r.pad_to(start, offset - hdr.head_length)
            ev.security_blob(r.take(length), True)
        elif cmd == TREE_CONNECT:
            r.skip(4)
            offset, length = r.u16(), r.u16()
            r.pad_to(start, offset - hdr.head_length)
            ev.tree_connect_request(hdr, utf16_text(r.take(length)))
        elif cmd == TREE_DISCONNECT:
            r.skip(4)
            self.tree_is_pipe.discard(hdr.tree_id)
            ev.tree_disconnect_request(hdr)
        elif cmd == CREATE:
            self._create_request(r, start, hdr, is_pipe)
        elif cmd == CLOSE:
            r.skip(2 + 2 + 4)
            fid = r.guid()
            ev.close_request(hdr, fid)
            ev.end_of_file(True)
        elif cmd == FLUSH:
            r.skip(2 + 2 + 4 + 16)
        elif cmd == READ:
            r.skip(2 + 1 + 1)
            r.skip(4)  # read length
            offset = r.u64()
            fid = r.guid()
            r.skip(4 + 4 + 4)
            info_offset, info_len = r.u16(), r.u16()
            r.pad_to(start, info_offset - hdr.head_length)
            r.skip(info_len)
            ev.read_request(hdr, fid)
            if self._full(self.read_offsets, self.read_fids):
                ev.discarded_messages_state("read")
                self.read_offsets.clear()
                self.read_fids.clear()
            self.read_offsets[hdr.message_id] = offset
            self.read_fids[hdr.message_id] = fid
        elif cmd == WRITE:
            r.skip(2)
            data_offset, data_len = r.u16(), r.u32()
            offset = r.u64()
            fid = r.guid()
            r.skip(4 + 4 + 2 + 2 + 4)
            r.pad_to(start, data_offset - hdr.head_length)
            data = r.take(data_len)
            ev.write_request(hdr, fid)
            if not is_pipe and data:
                ev.file_data(True, data, offset)
        elif cmd == LOCK:
            r.skip(2)
            count = r.u16()
            r.skip(4 + 16 + 20 * count)
        elif cmd == IOCTL:
            self._ioctl(r, start, hdr, request=True)
        elif cmd in (CANCEL, ECHO):
            r.skip(4)
        elif cmd == QUERY_DIRECTORY:
            r.skip(2 + 1 + 1 + 4 + 16)
            offset, length = r.u16(), r.u16()
            r.skip(4)
            r.pad_to(start, offset - hdr.head_length)
            r.skip(length)
        elif cmd == CHANGE_NOTIFY:
            r.skip(2 + 2 + 4 + 16 + 4 + 4)
        elif cmd == QUERY_INFO:
            r.skip(2 + 1 + 1 + 4)
            offset = r.u16()
            r.skip(2)
            length = r.u32()
            r.skip(4 + 4 + 16)
            r.pad_to(start, offset - hdr.head_length)
            r.skip(length)
        elif cmd == SET_INFO:
            self._set_info(r, start, hdr)
        elif cmd == OPLOCK_BREAK:
            r.skip(2 + 1 + 1 + 4 + 16)

    def _create_request(self, r: _LE, start: int, hdr: Smb2Header, is_pipe: bool) -> None:
        r.skip(2 + 1 + 1 + 4 + 8 + 8 + 4 + 4 + 4)
        r.skip(4)  # disposition
        create_options = r.u32()
        name_offset, name_len = r.u16(), r.u16()
        context_offset, context_len = r.u32(), r.u32()
        r.pad_to(start, name_offset - hdr.head_length)
        filename = utf16_text(r.take(name_len))
        r.pad_to(start, 0 if context_offset == 0 else context_offset - hdr.head_length)
        r.skip(context_len)
        if not is_pipe and filename.decode("utf-8", "surrogateescape") in PIPE_FILENAMES:
            self.tree_is_pipe.add(hdr.tree_id)
            self.events.pipe_connect_heuristic()
        self.events.create_request(hdr, filename, create_options)

    def _set_info(self, r: _LE, start: int, hdr: Smb2Header) -> None:
        r.skip(2)
        info_class, info_level = r.u8(), r.u8()
        r.skip(4)  # buffer length
        offset = r.u16()
        r.skip(2 + 4)
        fid = r.guid()
        r.pad_to(start, offset - hdr.head_length)
        ev = self.events
        if info_class == INFO_FILE:
            if info_level == FILE_BASIC_INFO:
                r.skip(8 * 4 + 4)
                ev.file_sattr(hdr, fid)
            elif info_level in (FILE_RENAME_INFO, FILE_LINK_INFO):
                r.skip(1 + 7 + 8)
                name = utf16_text(r.take(r.u32()))
                if info_level == FILE_RENAME_INFO:
                    ev.file_rename(hdr, fid, name)
            elif info_level == FILE_DISPOSITION_INFO:
                ev.file_delete(hdr, fid, r.u8() > 0)
            elif info_level in _OTHER_FILE_INFO:
                r.skip(_OTHER_FILE_INFO[info_level])
            elif info_level == FILE_SHORTNAME_INFO:
                r.skip(r.u32())
            elif info_level == FILE_FULLEA_INFO:
                while True:  # SMB2_file_fullea_info_element[] until next_entry_offset == 0
                    element = r.pos
                    next_offset = r.u32()
                    r.skip(1)
                    name_len, value_len = r.u8(), r.u16()
                    r.skip(name_len + value_len)
                    r.pad_to(element, next_offset)
                    if next_offset == 0:
                        break
        elif info_class == INFO_FILESYSTEM:
            if info_level == FILE_FSCONTROL_INFO:
                r.skip(8 * 5 + 4 + 4)
            elif info_level == FILE_FSOBJECTID_INFO:
                r.skip(16 + 48)

    def _ioctl(self, r: _LE, start: int, hdr: Smb2Header, request: bool) -> None:
        r.skip(2 + 2 + 4)
        fid = r.guid()
        input_offset, input_count = r.u32(), r.u32()
        if request:
            r.skip(4)  # max input response
        output_offset, output_count = r.u32(), r.u32()
        r.skip(4 + 4 + 4 if request else 4 + 4)
        # binpac's pad fields are (field offset + head_length - buffer offset) bytes long.
        if input_offset:
            r.skip(r.pos - start + hdr.head_length - input_offset)
        r.skip(input_count)
        if output_offset not in (0, input_offset):
            r.skip(r.pos - start + hdr.head_length - output_offset)
        r.skip(output_count)
        if not request:
            self.ioctl_fids.pop(hdr.message_id, None)
            return
        if self._full(self.ioctl_fids):
            self.events.discarded_messages_state("ioctl")
            self.ioctl_fids.clear()
        self.ioctl_fids[hdr.message_id] = fid

    # -- responses --------------------------------------------------------------------------

    def _response(self, r: _LE, start: int, hdr: Smb2Header, is_pipe: bool) -> None:
        cmd = hdr.command
        ev = self.events
        if cmd == NEGOTIATE:
            self._negotiate_response(r, start, hdr)
        elif cmd == SESSION_SETUP:
            r.skip(2 + 2)
            offset, length = r.u16(), r.u16()
            r.pad_to(start, offset - hdr.head_length)
            ev.security_blob(r.take(length), False)
        elif cmd == TREE_CONNECT:
            r.skip(2)
            share_type = r.u8()
            r.skip(1 + 4 + 4 + 4)
            if share_type == SHARE_TYPE_PIPE:
                self.tree_is_pipe.add(hdr.tree_id)
            ev.tree_connect_response(hdr, share_type)
        elif cmd in (TREE_DISCONNECT, ECHO, FLUSH):
            r.skip(4)
        elif cmd == CREATE:
            r.skip(2 + 1 + 1 + 4)
            created, accessed, modified, changed = r.u64(), r.u64(), r.u64(), r.u64()
            r.skip(8)  # allocation size
            eof = r.u64()
            r.skip(4 + 4)
            fid = r.guid()
            context_offset, context_len = r.u32(), r.u32()
            r.pad_to(start, 0 if context_offset == 0 else context_offset - hdr.head_length)
            r.skip(context_len)
            ev.create_response(hdr, fid, eof, MacTimes(modified, accessed, created, changed))
        elif cmd == CLOSE:
            r.skip(2 + 2 + 4 + 8 * 4 + 8 + 8 + 4)
        elif cmd == READ:
            r.skip(2)
            data_offset = r.u8()
            r.skip(1)
            data_len = r.u32()
            r.skip(4 + 4)
            r.pad_to(start, data_offset - hdr.head_length)
            data = r.take(data_len)
            if hdr.status != STATUS_PENDING:
                self.read_fids.pop(hdr.message_id, None)
            offset = self.read_offsets.setdefault(hdr.message_id, 0)
            if hdr.status != STATUS_PENDING:
                del self.read_offsets[hdr.message_id]
            if not is_pipe and data_len > 0:
                ev.file_data(False, data, offset)
        elif cmd == WRITE:
            r.skip(2 + 2 + 4 + 4 + 2 + 2)
        elif cmd == LOCK:
            r.skip(4)
        elif cmd == IOCTL:
            self._ioctl(r, start, hdr, request=False)
        elif cmd in (QUERY_DIRECTORY, QUERY_INFO):
            r.skip(2)
            offset, length = r.u16(), r.u32()
            r.pad_to(start, offset - hdr.head_length)
            r.skip(length)
        elif cmd == CHANGE_NOTIFY:
            r.skip(2)
            offset, length = r.u16(), r.u32()
            r.pad_to(start, offset - hdr.head_length)
            buf = _LE(r.data, r.pos, r.pos + length)
            r.skip(length)
            while buf.pos < buf.end:  # SMB2_File_Notify_Information[] &length=...
                buf.skip(8)
                buf.skip(buf.u32())
        elif cmd == SET_INFO:
            r.skip(2)
        elif cmd == OPLOCK_BREAK:
            r.skip(2 + 1 + 1 + 4 + 16)

    def _negotiate_response(self, r: _LE, start: int, hdr: Smb2Header) -> None:
        r.skip(2 + 2)
        dialect = r.u16()
        context_count = r.u16()
        r.skip(16 + 4 + 4 + 4 + 4 + 8 + 8)
        r.skip(2)  # security offset: binpac reads the blob right after the fixed part
        security_length = r.u16()
        context_offset = r.u32()
        blob = r.take(security_length)
        if dialect == 0x0311:
            self._negotiate_contexts(r, start, hdr, context_offset, context_count)
        self.events.security_blob(blob, False)  # forward_gssapi runs after the whole reply

    def _negotiate_contexts(
        self, r: _LE, start: int, hdr: Smb2Header, context_offset: int, context_count: int
    ) -> None:
        r.pad_to(start, context_offset - hdr.head_length)
        for i in range(context_count):  # NegotiateContextList: padded values, then the last
            ctx_start = r.pos
            context_type, length = r.u16(), r.u16()
            r.skip(4)
            if context_type == CONTEXT_PREAUTH:
                count, salt_length = r.u16(), r.u16()
                r.skip(2 * count + salt_length)
            elif context_type == CONTEXT_ENCRYPTION:
                r.skip(2 * r.u16())
            elif context_type == CONTEXT_COMPRESSION:
                count = r.u16()
                r.skip(2 + 4 + 2 * count)
            else:
                r.skip(length)
            if i < context_count - 1:
                r.skip(-(r.pos - ctx_start) % 8)


def is_error_response(hdr: Smb2Header) -> bool:
    """``is_error_response``: a reply whose status makes it an SMB2 ERROR structure."""
    status = hdr.status
    if status == 0:
        return False
    if status == STATUS_BUFFER_OVERFLOW:
        return hdr.command not in (IOCTL, QUERY_INFO, READ)
    if status == STATUS_INVALID_PARAMETER:
        return hdr.command != IOCTL
    if status == STATUS_MORE_PROCESSING_REQUIRED:
        return hdr.command != SESSION_SETUP
    if status == STATUS_NOTIFY_ENUM_DIR:
        return hdr.command != CHANGE_NOTIFY
    return True
