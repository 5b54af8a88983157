"""SMB1 (CIFS) message parsing, as Zeek's binpac SMB1 parser (``smb1-protocol.pac``, ``smb1-com-*.pac``).

Only the commands whose events feed Zeek's default logs are read field by field: tree
connect, NT create, read, write and close (smb_mapping.log, smb_files.log, files) and session
setup (its security blob goes to GSSAPI). Other commands are taken whole, as binpac's
``unknown_msg`` would take them, so they never fail; Zeek parses some of them (negotiate,
transactions, locking) and may raise violations there that this parser does not.

binpac's layout rules are kept: an AndX chain is read where the previous command ends (the
AndX offset only decides whether to go on, with Zeek's depth and not-advancing checks and
their weirds), a chained command's events come before its parent's (``&let`` fields are
evaluated after the nested command), Unicode strings are aligned relative to their record.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from wirestream.processors.engine.protocols.bytereader import LittleReader, ParseError
from wirestream.processors.engine.protocols.smb2 import PIPE_FILENAMES, MacTimes, utf16_text

HEADER_LENGTH = 32  # SMB_Header_length: offsets in SMB1 messages count from the protocol id
NO_MESSAGE_LENGTH = 35  # a NetBIOS length of 35: header plus an empty word and byte count
MAX_ANDX_DEPTH = 10  # SMB::max_andx_depth
NO_FURTHER_COMMANDS = 0xFF

COM_CLOSE = 0x04
COM_NEGOTIATE = 0x72
EXTENDED_SECURITY = 0x80000000  # negotiate capability: the reply carries a GSSAPI blob
COM_READ_ANDX, COM_WRITE_ANDX = 0x2E, 0x2F
COM_TREE_DISCONNECT = 0x71
COM_SESSION_SETUP_ANDX, COM_LOGOFF_ANDX, COM_TREE_CONNECT_ANDX = 0x73, 0x74, 0x75
COM_NT_CREATE_ANDX = 0xA2

_HDR = struct.Struct("<BIBHH8sHHHHH")


@dataclass(frozen=True, slots=True)
class Smb1Header:
    """``SMB1::Header`` (the parts the scripts and the parser use)."""

    command: int
    status: int
    flags: int
    flags2: int
    tid: int
    pid: int
    uid: int
    mid: int

    @property
    def unicode(self) -> bool:
        return bool(self.flags2 >> 15 & 1)


class Smb1Events(Protocol):
    """What the SMB1 parser reports (Zeek's smb1_* events and file-manager calls), in order."""

    def smb1_message(self, hdr: Smb1Header, is_orig: bool) -> None: ...
    def smb1_tree_connect_request(self, hdr: Smb1Header, path: bytes, service: bytes) -> None: ...
    def smb1_tree_connect_response(self, hdr: Smb1Header, service: bytes, fs: bytes) -> None: ...
    def pipe_connect_heuristic(self) -> None: ...
    def smb1_create_request(self, hdr: Smb1Header, name: bytes) -> None: ...
    def smb1_create_response(
        self, hdr: Smb1Header, fid: int, size: int, times: MacTimes
    ) -> None: ...
    def smb1_read_request(self, hdr: Smb1Header, fid: int) -> None: ...
    def smb1_write_request(self, hdr: Smb1Header, fid: int) -> None: ...
    def smb1_close_request(self, hdr: Smb1Header, fid: int) -> None: ...
    def file_data(self, is_orig: bool, data: bytes, offset: int) -> None: ...
    def end_of_file(self, is_orig: bool) -> None: ...
    def security_blob(self, blob: bytes, is_orig: bool) -> None: ...
    def andx_weird(self, name: str) -> None: ...


class _R(LittleReader):
    """Reads over one frame; positions are frame indexes, ``base`` is the protocol id."""

    __slots__ = ("base",)

    def __init__(self, data: bytes, pos: int, end: int, base: int) -> None:
        super().__init__(data, pos, end)
        self.base = base

    @property
    def rel(self) -> int:
        """Where we are counted from the SMB header, as the AndX offsets count."""
        return self.pos - self.base

    def string(self, unicode: bool, record_start: int) -> bytes:
        """``SMB_string``: NUL-terminated ASCII (the NUL dropped), or UTF-16 aligned to the
        record and ended by a NUL unit, converted as Zeek's ``utf16_to_utf8_val``. Like
        binpac's ``&until`` arrays, a string without its terminator ends with the data."""
        if not unicode:
            nul = self.data.find(b"\0", self.pos, self.end)
            out = self.data[self.pos : self.end if nul < 0 else nul]
            self.pos = self.end if nul < 0 else nul + 1
            return out
        if (self.pos - record_start) & 1:
            self.take(1)
        start = self.pos
        while self.pos < self.end:
            b = self.data[self.pos]
            self.pos += 1
            n = self.pos - start
            if b == 0 and n % 2 == 0 and self.data[self.pos - 2] == 0:
                break
        return utf16_text(self.data[start : self.pos])


class Smb1Parser:
    """SMB1 parsing state of one connection, reporting to ``events``; ``tree_is_pipe`` is the
    set the SMB2 parser keeps too (one binpac connection parses both)."""

    def __init__(self, events: Smb1Events, tree_is_pipe: set[int]) -> None:
        self.events = events
        self.tree_is_pipe = tree_is_pipe
        self.read_offsets: dict[int, int] = {}

    def pdu(self, data: bytes, pos: int, end: int, is_orig: bool, msg_len: int) -> None:
        """One SMB1 message at ``pos`` (its ``\\xffSMB``); always the end of the chain."""
        r = _R(data, pos + 4, end, pos)
        f = _HDR.unpack(r.take(_HDR.size))
        command, status, flags, flags2, pid_high, _sec, _res, tid, pid_low, uid, mid = f
        hdr = Smb1Header(command, status, flags, flags2, tid, pid_high << 16 | pid_low, uid, mid)
        is_pipe = tid in self.tree_is_pipe
        self.events.smb1_message(hdr, is_orig)
        if msg_len == NO_MESSAGE_LENGTH:
            r.take(3)  # SMB_No_Message: an empty response or an error
            return
        self._message(r, hdr, is_orig, is_pipe, command, 0)

    def _message(
        self, r: _R, hdr: Smb1Header, is_orig: bool, is_pipe: bool, command: int, depth: int
    ) -> None:
        start = r.pos
        if command in _ANDX_COMMANDS:
            _ANDX_COMMANDS[command](self, r, start, hdr, is_orig, is_pipe, depth)
        elif command == COM_CLOSE:
            if is_orig:
                r.take(1)
                fid = r.u16()
                r.take(4 + 2)
                self.events.smb1_close_request(hdr, fid)
                self.events.end_of_file(True)
            else:
                r.take(3)  # SMB_empty_response
        elif command == COM_TREE_DISCONNECT:
            r.take(3)
        elif command == COM_NEGOTIATE:
            self._negotiate(r, start, hdr, is_orig)
        else:
            r.pos = r.end  # unknown_msg: bytestring &restofdata

    def _negotiate(self, r: _R, start: int, hdr: Smb1Header, is_orig: bool) -> None:
        word_count = r.u8()
        if is_orig:  # dialects: SMB_dialect[] &length=byte_count
            byte_count = r.u16()
            first = r.pos
            r.take(byte_count)
            dialects = _R(r.data, first, first + byte_count, r.base)
            while dialects.pos < dialects.end:
                dialects.u8()
                dialects.string(False, start)
            return
        r.take(2)  # dialect index
        if word_count == 0x01:
            r.take(2)
        elif word_count == 0x0D:  # LANMAN
            r.take(2 * 5 + 4 + 2 * 3)
            key_length = r.u16()
            r.take(2 + 2)
            r.take(key_length)
            r.string(hdr.unicode, start + 3)
        elif word_count == 0x11:  # NT LM 0.12
            r.take(1 + 2 + 2 + 4 + 4 + 4)
            capabilities = r.u32()
            r.take(8 + 2)
            key_length = r.u8()
            byte_count = r.u16()
            if capabilities & EXTENDED_SECURITY:
                r.take(16)  # server GUID
                self.events.security_blob(r.take(byte_count - 16), False)
            else:
                r.take(key_length)
                r.string(hdr.unicode, start + 3)
        else:
            raise ParseError(f"negotiate reply with word count {word_count}")

    # -- AndX commands: fields, then the chained command, then this command's &let -----------

    def _chain(
        self, r: _R, record_offset: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool,
        andx: tuple[int, int], depth: int,
    ) -> None:  # fmt: skip
        """``extra_byte_parameters`` and ``andx_command``, then the AndX checks' weirds."""
        next_command, andx_offset = andx
        here = r.rel
        if andx_offset != 0 and andx_offset < here + 2:
            r.take(andx_offset - here)  # negative: a binpac exception
        go_on = not (
            (MAX_ANDX_DEPTH > 0 and depth > MAX_ANDX_DEPTH) or andx_offset <= record_offset
        )
        if next_command != NO_FURTHER_COMMANDS and go_on:
            self._message(r, hdr, is_orig, is_pipe, next_command, depth + 1)
        if next_command != NO_FURTHER_COMMANDS and andx_offset <= record_offset:
            self.events.andx_weird("smb_andx_offset_not_advancing")
        if next_command != NO_FURTHER_COMMANDS and MAX_ANDX_DEPTH > 0 and depth >= MAX_ANDX_DEPTH:
            self.events.andx_weird("smb_andx_depth_exceeded")

    @staticmethod
    def _andx(r: _R) -> tuple[int, int]:
        command = r.u8()
        r.take(1)
        return command, r.u16()

    @classmethod
    def _andx_head(cls, r: _R) -> tuple[int, int, tuple[int, int]]:
        """An AndX record's prologue: its offset from the header (what ``_chain`` checks the
        next offset against), its word count, and the ``andx`` block."""
        offset = r.rel
        word_count = r.u8()
        return offset, word_count, cls._andx(r)

    def _tree_connect(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        offset, word_count, andx = self._andx_head(r)
        if is_orig:
            r.take(2)
            password_length = r.u16()
            r.take(2)
            r.take(password_length)
            path = r.string(hdr.unicode, start)
            service = r.string(False, start)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            self.events.smb1_tree_connect_request(hdr, path, service)
            return
        if word_count >= 3:
            r.take(2 + (word_count - 3) * 2)
        byte_count = r.u16()
        service_start = r.pos
        service = r.string(False, start)
        fs = b""
        if byte_count > r.pos - service_start:
            fs = r.string(hdr.unicode, start)
        self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
        if service.startswith(b"IPC"):
            self.tree_is_pipe.add(hdr.tid)
        self.events.smb1_tree_connect_response(hdr, service, fs)

    def _nt_create(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        offset, _, andx = self._andx_head(r)
        if is_orig:
            r.take(1 + 2 + 4 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 1 + 2)
            name = r.string(hdr.unicode, start)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            text_name = name.decode("utf-8", "surrogateescape")
            if not is_pipe and text_name in PIPE_FILENAMES:
                self.tree_is_pipe.add(hdr.tid)
                self.events.pipe_connect_heuristic()
            self.events.smb1_create_request(hdr, name)
            return
        r.take(1)
        fid = r.u16()
        r.take(4)
        created, accessed, modified, changed = r.u64(), r.u64(), r.u64(), r.u64()
        r.take(4 + 8)
        size = r.u64()
        r.take(2 + 2 + 1 + 2)
        self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
        self.events.smb1_create_response(
            hdr, fid, size, MacTimes(modified, accessed, created, changed)
        )

    def _read(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        offset, word_count, andx = self._andx_head(r)
        if is_orig:
            fid = r.u16()
            offset_low = r.u32()
            r.take(2 + 2 + 4 + 2)
            offset_high = 0
            if word_count == 0x0C:
                high = r.u32()
                offset_high = 0 if high == 0xFFFFFFFF else high
            r.take(2)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            self.events.smb1_read_request(hdr, fid)
            self.read_offsets[hdr.mid] = offset_high * 0x10000 + offset_low  # (sic) as Zeek
            return
        r.take(2 + 2 + 2)
        data_len_low, data_offset, data_len_high = r.u16(), r.u16(), r.u16()
        r.take(8 + 2)
        r.pad_to(start, data_offset - HEADER_LENGTH)
        data_len = (data_len_high << 16) + data_len_low
        data = r.take(data_len)
        self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
        if not is_pipe and data_len > 0:
            file_offset = self.read_offsets.pop(hdr.mid, 0)
            self.events.file_data(False, data, file_offset)

    def _write(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        offset, word_count, andx = self._andx_head(r)
        if not is_orig:
            r.take(2 + 2 + 2 + 2 + 2)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            return
        fid = r.u16()
        offset_low = r.u32()
        r.take(4 + 2 + 2)
        data_len_high, data_len_low, data_offset = r.u16(), r.u16(), r.u16()
        offset_high = r.u32() if word_count == 0x0E else 0
        r.take(2)
        r.pad_to(start, data_offset - HEADER_LENGTH)
        data = r.take((data_len_high << 16) + data_len_low)
        self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
        self.events.smb1_write_request(hdr, fid)
        if not is_pipe and data:
            # (offset_high * 0x10000 + offset_low) in 32-bit arithmetic, as Zeek computes it
            self.events.file_data(True, data, (offset_high * 0x10000 + offset_low) & 0xFFFFFFFF)

    def _logoff(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        offset, _, andx = self._andx_head(r)
        r.take(2)
        self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)

    def _session_setup(
        self, r: _R, start: int, hdr: Smb1Header, is_orig: bool, is_pipe: bool, depth: int
    ) -> None:
        word_count = r.u8()
        offset = start - r.base + 1  # the forms are records after the word count
        u = hdr.unicode
        if is_orig:
            if word_count not in (0x0A, 0x0C, 0x0D):
                raise ParseError(f"session setup request with word count {word_count}")
            andx = self._andx(r)
            r.take(2 + 2 + 2 + 4)
            if word_count == 0x0A:  # LANMAN
                password_length = r.u16()
                r.take(4 + 2)
                r.take(password_length)
                for _ in range(4):  # account, domain, native OS, native LAN manager
                    r.string(u, start)
                self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            elif word_count == 0x0C:  # NTLM with extended security: a GSSAPI blob
                blob_length = r.u16()
                r.take(4 + 4 + 2)
                blob = r.take(blob_length)
                r.string(u, start)
                r.string(u, start)
                self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
                self.events.security_blob(blob, True)
            else:  # NTLM without extended security
                insensitive, sensitive = r.u16(), r.u16()
                r.take(4 + 4 + 2)
                r.take(insensitive + sensitive)
                for _ in range(4):
                    r.string(u, start)
                self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            return
        if word_count == 0x03:  # LANMAN reply
            andx = self._andx(r)
            r.take(2)
            byte_count = r.u16()
            if byte_count:
                for _ in range(3):
                    r.string(u, start)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
        elif word_count == 0x04:  # NTLM reply
            andx = self._andx(r)
            r.take(2)
            blob_length = r.u16()
            r.take(2)
            blob = r.take(blob_length)
            r.string(u, start)
            r.string(u, start)
            self._chain(r, offset, hdr, is_orig, is_pipe, andx, depth)
            self.events.security_blob(blob, False)
        else:
            r.take(2)  # error: uint16


_ANDX_COMMANDS = {
    COM_TREE_CONNECT_ANDX: Smb1Parser._tree_connect,
    COM_NT_CREATE_ANDX: Smb1Parser._nt_create,
    COM_READ_ANDX: Smb1Parser._read,
    COM_WRITE_ANDX: Smb1Parser._write,
    COM_LOGOFF_ANDX: Smb1Parser._logoff,
    COM_SESSION_SETUP_ANDX: Smb1Parser._session_setup,
}
