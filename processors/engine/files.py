"""The file manager: one files.log record per transferred file, as Zeek's file analysis writes it.

Protocol analyzers (HTTP entities now; SMTP attachments, FTP data, SSL certificates later) open
a :class:`FileHandle` per file, feed it the file's bytes in order, report gaps, and close it.
The manager does what Zeek's file framework does with that: a ``F...`` fuid, MIME sniffing of
the first bytes with Zeek's signatures (:mod:`.mime`), the hash analyzers (MD5/SHA1/SHA256 when
configured, as ``hash-all-files`` does), extraction to the sink (size-bounded, never written
under a name the traffic chose, never executed), and the files.log record when the file ends.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wirestream.processors.engine.api import ConnId, ExtractedFile, Record, id_columns
from wirestream.processors.engine.conn_log import LocalNets
from wirestream.processors.engine.mime import BOF_BUFFER_SIZE, sniff_mime
from wirestream.processors.engine.uid import UidGenerator

log = logging.getLogger(__name__)

HASHES = ("MD5", "SHA1", "SHA256")
_HASH_FACTORIES: dict[str, Callable[[], Any]] = {
    "MD5": hashlib.md5,
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
}
DEFAULT_EXTRACT_LIMIT = 104_857_600  # Zeek's FileExtract::default_limit (100 MiB)
FILE_TIMEOUT = 120.0  # Zeek's default_file_timeout_interval: idle files are given up
REASSEMBLY_BUFFER_SIZE = 524_288  # Zeek's Files::reassembly_buffer_size


@dataclass(frozen=True)
class FilesConfig:
    """What Zeek's loaded scripts decide. The default is plain ``zeek -r``: no hashes, no extraction.

    ``hashes`` mirrors ``policy/frameworks/files/hash-all-files`` (e.g. ``("MD5", "SHA1",
    "SHA256")``); ``extract`` mirrors ``FileExtract`` with ``extract_limit`` bytes per file.
    """

    hashes: tuple[str, ...] = ()
    extract: bool = False
    extract_limit: int = DEFAULT_EXTRACT_LIMIT

    def __post_init__(self) -> None:
        unknown = [h for h in self.hashes if h not in _HASH_FACTORIES]
        if unknown:
            raise ValueError(f"unknown hash analyzer(s) {unknown}; known: {', '.join(HASHES)}")
        if self.extract_limit < 0:
            raise ValueError(f"extract_limit must be >= 0, got {self.extract_limit}")


@dataclass
class FileHandle:
    """One file in transfer. Analyzers call :meth:`data`, :meth:`gap`, :meth:`end`."""

    manager: FileManager
    fuid: str
    source: str
    ts: float
    is_orig: bool | None
    uid: str | None
    conn_id: ConnId | None
    depth: int = 0
    filename: str | None = None
    mime_type: str | None = None
    total_bytes: int | None = None
    analyzers: list[str] = field(default_factory=list)
    on_sniff: Callable[[FileHandle, str | None], None] | None = None
    on_end: Callable[[FileHandle], None] | None = None  # Zeek's file_state_remove, any cause
    last_active: float = 0.0
    seen_bytes: int = 0
    missing_bytes: int = 0
    stream_offset: int = 0  # next in-order byte
    pending: dict[int, bytes] = field(default_factory=dict)  # out-of-order data by offset
    pending_bytes: int = 0
    overflow_bytes: int = 0
    bof: bytearray = field(default_factory=bytearray)
    sniffed: bool = False
    bof_broken: bool = False  # the start of the file was never seen: Zeek cannot sniff it
    hashers: dict[str, Any] = field(default_factory=dict)
    hash_valid: bool = True
    extract_buf: bytearray | None = None
    extract_cutoff: bool = False
    done: bool = False
    local_orig: bool | None = None
    log: bool = True  # False: analyzed (hashes, extraction) but kept out of files.log
    more_conns: list[tuple[str | None, ConnId | None]] = field(default_factory=list)
    timedout: bool = False

    def attach(self, uid: str | None, conn_id: ConnId | None) -> None:
        """The file is also seen over another connection (Zeek's file_over_new_connection)."""
        if uid != self.uid and all(uid != u for u, _ in self.more_conns):
            self.more_conns.append((uid, conn_id))

    def set_total(self, size: int) -> None:
        """The file's full size when the protocol announces it (Content-Length ...)."""
        self.total_bytes = size

    def data(self, chunk: bytes, ts: float, offset: int | None = None) -> None:
        """The file's bytes; ``offset`` (when the protocol knows it, e.g. a byte range) may be
        ahead of what was seen: such data waits, as in Zeek's file reassembler, until the hole
        before it fills, the reassembly buffer overflows, or the file ends (the hole is missing)."""
        if self.done or not chunk:
            return
        manager = self.manager
        if ts >= manager.next_expiry_check:  # expire() returns at once otherwise
            manager.expire(ts)
            if self.done:
                return
        self.last_active = ts
        if offset is None:
            offset = self.stream_offset
        if offset + len(chunk) <= self.stream_offset:
            return  # seen before
        if offset < self.stream_offset:
            chunk = chunk[self.stream_offset - offset :]
            offset = self.stream_offset
        if offset > self.stream_offset:
            self.pending[offset] = (
                chunk if len(chunk) > len(self.pending.get(offset, b"")) else self.pending[offset]
            )
            self.pending_bytes = sum(len(c) for c in self.pending.values())
            while self.pending_bytes > REASSEMBLY_BUFFER_SIZE:
                self._skip_to(min(self.pending), overflow=True)
            return
        self._deliver(chunk)
        if self.pending:
            self._drain()

    def gap(self, length: int, ts: float) -> None:
        """``length`` bytes of the file at the current position were never seen."""
        if self.done or length <= 0:
            return
        self.manager.expire(ts)
        if self.done:
            return
        self.last_active = ts
        self._skip_to(self.stream_offset + length)

    def _skip_to(self, offset: int, overflow: bool = False) -> None:
        """Give up on the bytes before ``offset``: missing, or overflow when the buffer ran full."""
        if offset <= self.stream_offset:
            return
        if self.stream_offset == 0 and not self.bof:
            self.bof_broken = True
        if overflow:
            self.overflow_bytes += offset - self.stream_offset
            self.hash_valid = False
        else:
            self._missing(offset - self.stream_offset)
        self.stream_offset = offset
        self._drain()

    def _drain(self) -> None:
        """Deliver waiting out-of-order data that has become contiguous."""
        while self.pending:
            first = min(self.pending)
            if first > self.stream_offset:
                break
            chunk = self.pending.pop(first)
            self.pending_bytes -= len(chunk)
            if first + len(chunk) > self.stream_offset:
                self._deliver(chunk[self.stream_offset - first :])

    def _deliver(self, chunk: bytes) -> None:
        """In-order bytes at stream_offset: count, sniff, hash, extract."""
        self.seen_bytes += len(chunk)
        self.stream_offset += len(chunk)
        if not self.sniffed and not self.bof_broken:
            need = BOF_BUFFER_SIZE - len(self.bof)
            self.bof += chunk[:need]
            if len(self.bof) >= BOF_BUFFER_SIZE:
                self._sniff()
        for h in self.hashers.values():
            h.update(chunk)
        if self.extract_buf is not None and not self.extract_cutoff:
            room = self.manager.config.extract_limit - len(self.extract_buf)
            if len(chunk) > room:
                self.extract_buf += chunk[: max(room, 0)]
                self.extract_cutoff = True
            else:
                self.extract_buf += chunk

    def _missing(self, length: int) -> None:
        self.missing_bytes += length
        self.hash_valid = False
        if not self.sniffed and self.bof:
            self._sniff()  # Zeek sniffs what it has once the BOF stream is interrupted

    def _sniff(self) -> None:
        self.sniffed = True
        self.mime_type = sniff_mime(bytes(self.bof)) if self.bof else None
        self.bof = bytearray()
        if self.on_sniff is not None:
            self.on_sniff(self, self.mime_type)

    def end(self, ts: float | None = None) -> Record:
        """The transfer is over (or the connection went away): write files.log, extract.

        Returns the record of the first connection (every connection gets its row)."""
        if self.done:
            raise RuntimeError(f"file {self.fuid} already ended")
        while self.pending:  # holes that never filled are missing
            self._skip_to(min(self.pending))
        if not self.sniffed and not self.bof_broken and self.bof:
            self._sniff()
        self.done = True
        rec = self.manager._finish(self)
        if self.on_end is not None:
            self.on_end(self)
        return rec


class FileManager:
    """Creates files, fuids and their files.log records; one per engine run."""

    def __init__(
        self,
        emit: Callable[[str, Record], None],
        extracted: Callable[[ExtractedFile], None] | None = None,
        *,
        config: FilesConfig | None = None,
        uids: UidGenerator | None = None,
        local_nets: LocalNets | None = None,
    ) -> None:
        self.emit = emit
        self.extracted = extracted
        self.config = config or FilesConfig()
        self.uids = uids or UidGenerator()
        self.local_nets = local_nets if local_nets is not None else LocalNets()
        self.open_files: dict[str, FileHandle] = {}
        self.keyed: dict[Hashable, FileHandle] = {}
        self.next_expiry_check = 0.0
        if self.config.extract and extracted is None:
            raise ValueError("file extraction is on but no sink receives the extracted files")

    def new_file(
        self,
        *,
        source: str,
        ts: float,
        is_orig: bool | None = None,
        uid: str | None = None,
        conn_id: ConnId | None = None,
        depth: int = 0,
        filename: str | None = None,
        mime_type: str | None = None,
        analyzers: Iterable[str] = (),
        on_sniff: Callable[[FileHandle, str | None], None] | None = None,
        log: bool = True,
        key: Hashable | None = None,
    ) -> FileHandle:
        """Open a file seen over ``conn_id`` (``is_orig``: the originator sends it).

        ``mime_type`` set by the protocol (SSL certificates) skips sniffing; ``analyzers`` adds
        protocol-specific analyzer names (``X509``) to the configured hashes; ``log=False`` keeps
        the file out of files.log (Zeek's default for certificates: X509::log_x509_in_files_log).
        ``key`` is Zeek's file handle for files that span messages or connections (HTTP byte
        ranges of one URL): while a file with that key is open, it is returned, with this
        connection added to it.
        """
        self.expire(ts)
        if key is not None:
            existing = self.keyed.get(key)
            if existing is not None and not existing.done:
                existing.attach(uid, conn_id)
                return existing
        f = FileHandle(
            manager=self,
            fuid=self.uids.file_uid(),
            source=source,
            ts=ts,
            is_orig=is_orig,
            uid=uid,
            conn_id=conn_id,
            depth=depth,
            filename=filename,
            on_sniff=on_sniff,
            last_active=ts,
            log=log,
        )
        if conn_id is not None and is_orig is not None and self.local_nets.configured:
            f.local_orig = self.local_nets.is_local(conn_id.orig_h if is_orig else conn_id.resp_h)
        names = list(self.config.hashes) + [a for a in analyzers if a not in self.config.hashes]
        for name in names:
            factory = _HASH_FACTORIES.get(name)
            if factory is not None:
                f.hashers[name] = factory()
            f.analyzers.append(name)
        if self.config.extract:
            f.extract_buf = bytearray()
            f.analyzers.append("EXTRACT")
        if mime_type is not None:
            f.mime_type = mime_type
            f.sniffed = True
        self.open_files[f.fuid] = f
        if key is not None:
            self.keyed[key] = f
        return f

    def expire(self, now: float) -> None:
        """Give up files idle for FILE_TIMEOUT (Zeek's file_timeout): logged with timedout=T."""
        if now < self.next_expiry_check:
            return
        self.next_expiry_check = now + 1.0
        for f in list(self.open_files.values()):
            if now - f.last_active >= FILE_TIMEOUT:
                f.timedout = True
                f.end(f.last_active)

    def finish(self) -> None:
        """The trace is over: files still open time out (Zeek's file manager at termination)."""
        for f in list(self.open_files.values()):
            f.timedout = True
            f.end(f.last_active)

    def _finish(self, f: FileHandle) -> Record:
        self.open_files.pop(f.fuid, None)
        rec = file_record(f)
        rows = [rec]
        for uid, conn_id in f.more_conns:  # Zeek >= 5.1: one row per connection, same fuid
            rows.append({**rec, "uid": uid, **(conn_id.columns() if conn_id else {})})
        if f.extract_buf is not None:
            name = extraction_name(f)
            rec["extracted"] = name
            rec["extracted_cutoff"] = f.extract_cutoff
            rec["extracted_size"] = self.config.extract_limit if f.extract_cutoff else None
            assert self.extracted is not None
            self.extracted(
                ExtractedFile(
                    fuid=f.fuid,
                    data=bytes(f.extract_buf),
                    filename=f.filename,
                    mime_type=f.mime_type,
                    truncated=f.extract_cutoff,
                    meta={"extracted": name, "source": f.source, "uid": f.uid},
                )
            )
        if f.log:
            for row in rows:
                self.emit("files", row)
        return rec


def extraction_name(f: FileHandle) -> str:
    """Zeek's default ``extract-<last_active>-<source>-<fuid>``, its time taken when extraction
    starts (the file's first byte); never a name from the traffic."""
    source = "".join(c for c in f.source if c.isalnum() or c in "_-") or "unknown"
    return f"extract-{f.ts:.6f}-{source}-{f.fuid}"


def file_record(f: FileHandle) -> Record:
    """The files.log columns (base/frameworks/files, base/files/hash) for a finished file."""
    cid = f.conn_id
    rec: Record = {
        "ts": f.ts,
        "fuid": f.fuid,
        "uid": f.uid,
        **id_columns(cid.id_tuple() if cid else None),
        "source": f.source,
        "depth": f.depth,
        "analyzers": list(f.analyzers),
        "mime_type": f.mime_type,
        "filename": f.filename,
        "duration": max(f.last_active - f.ts, 0.0),
        "local_orig": f.local_orig,
        "is_orig": f.is_orig,
        "seen_bytes": f.seen_bytes,
        "total_bytes": f.total_bytes,
        "missing_bytes": f.missing_bytes,
        "overflow_bytes": f.overflow_bytes,
        "timedout": f.timedout,
        "parent_fuid": None,
    }
    for name, column in (("MD5", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256")):
        h = f.hashers.get(name)
        rec[column] = h.hexdigest() if h is not None and f.hash_valid else None
    return rec
