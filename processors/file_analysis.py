"""File analysis: extracted files travel as content-addressed chunks; a faust agent turns them into
metadata records joined to files.log by fuid.

Chunks topic (``topics.FILE_CHUNKS_TOPIC``), key = the content's sha256 (hex), headers:
``ws.kind`` (``chunk`` or ``ref``), ``ws.fuid``, ``ws.capture`` (md5), ``ws.chunk`` (index),
``ws.chunks`` (count). A file's content is stored once: the first sighting sends its chunks,
later sightings (same sha256, another fuid) send only a ``ref``. Keying by sha256 puts a
content's chunks and refs in one partition, in order, so the agent always has assembled the
content (or its metadata) before a ref to it arrives.

Metadata topic (``topics.FILE_META_TOPIC``), key = fuid, value = JSON: ``fuid``, ``capture`` and
:func:`file_metadata`'s fields. The agent runs with faust's exactly-once guarantee (it reads
read_committed), so chunks of an aborted processor transaction are never analysed.

Extracted files are hostile: the agent never writes them to disk or runs them, and refuses to
assemble more than ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from wirestream.processors.file_meta import file_metadata

from wirestream import topics
from wirestream.config import Settings

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
KIND, FUID, CAPTURE, CHUNK, CHUNKS = "ws.kind", "ws.fuid", "ws.capture", "ws.chunk", "ws.chunks"
Headers = list[tuple[str, bytes]]


def chunk_messages(
    data: bytes, sha256: str, fuid: str, capture: str, *, stored: bool, chunk: int
) -> Iterator[tuple[bytes, bytes, Headers]]:
    """(key, value, headers) of one file sighting: its chunks, or a ref if already stored."""
    base = [(FUID, fuid.encode()), (CAPTURE, capture.encode())]
    if stored:
        yield sha256.encode(), b"", [(KIND, b"ref"), *base]
        return
    count = max(1, -(-len(data) // chunk))
    for i in range(count):
        part = data[i * chunk : (i + 1) * chunk]
        headers = [(KIND, b"chunk"), *base, (CHUNK, str(i).encode()), (CHUNKS, str(count).encode())]
        yield sha256.encode(), part, headers


class Assembler:
    """Reassembles chunked contents; pure state machine (the faust agent drives it).

    ``add`` returns the finished metadata record when a sighting completes, else None.
    """

    def __init__(self) -> None:
        self.partial: dict[str, list[bytes | None]] = {}
        self.sizes: dict[str, int] = {}
        self.meta: dict[str, dict[str, Any]] = {}  # sha256 -> metadata (kept for refs)
        self.refused: set[str] = set()  # contents over MAX_FILE_BYTES: their chunks are ignored

    def add(self, sha256: str, value: bytes, headers: dict[str, bytes]) -> dict[str, Any] | None:
        kind = headers.get(KIND, b"").decode()
        fuid = headers.get(FUID, b"").decode()
        capture = headers.get(CAPTURE, b"").decode()
        if kind == "ref":
            meta = self.meta.get(sha256)
            if meta is None:
                log.warning("file %s refers to content %s never seen", fuid, sha256)
                return None
            return {"fuid": fuid, "capture": capture, **meta}
        if kind != "chunk":
            log.warning("skipping chunks-topic message of kind %r", kind)
            return None
        if sha256 in self.refused:
            return None
        index, count = int(headers[CHUNK]), int(headers[CHUNKS])
        if not 0 <= index < count:
            log.warning("file %s: chunk %d of %d out of range", fuid, index, count)
            return None
        slots = self.partial.setdefault(sha256, [None] * count)
        if len(slots) != count:
            slots = self.partial[sha256] = [None] * count
            self.sizes[sha256] = 0
        self.sizes[sha256] = self.sizes.get(sha256, 0) + len(value)
        if self.sizes[sha256] > MAX_FILE_BYTES:
            log.warning("file %s (%s) over %d bytes; dropped", fuid, sha256, MAX_FILE_BYTES)
            self.partial.pop(sha256, None)
            self.sizes.pop(sha256, None)
            self.refused.add(sha256)
            return None
        slots[index] = value
        if any(s is None for s in slots):
            return None
        data = b"".join(s for s in slots if s is not None)
        del self.partial[sha256]
        self.sizes.pop(sha256, None)
        meta = file_metadata(data)
        if meta["sha256"] != sha256:
            log.warning(
                "file %s: content hash %s differs from its key %s", fuid, meta["sha256"], sha256
            )
        self.meta[sha256] = meta
        return {"fuid": fuid, "capture": capture, **meta}


def faust_broker(settings: Settings) -> str:
    return ";".join(
        f"kafka://{hp.strip()}" for hp in settings.bootstrap_servers.split(",") if hp.strip()
    )


def make_app(settings: Settings, app_id: str = "wirestream-files", **conf: Any):
    """The faust app of the file-analysis agent (``faust -A`` style apps are built from Settings)."""
    import faust

    app = faust.App(
        settings.topic_prefix + app_id,
        broker=faust_broker(settings),
        value_serializer="raw",
        key_serializer="raw",
        processing_guarantee="exactly_once",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_enabled=conf.pop("web_enabled", False),
        **conf,
    )
    chunks = app.topic(
        topics.system_topic(topics.FILE_CHUNKS_TOPIC, settings),
        key_type=bytes,
        value_type=bytes,
        internal=False,
    )
    meta_topic = app.topic(
        topics.system_topic(topics.FILE_META_TOPIC, settings),
        key_type=bytes,
        value_type=bytes,
        internal=False,
    )
    assembler = Assembler()

    @app.agent(chunks)
    async def analyse_files(stream):  # noqa: ANN001 - faust's stream type
        async for event in stream.events():
            headers = (
                {k: v for k, v in (event.headers or {}).items()}
                if isinstance(event.headers, dict)
                else dict(event.headers or [])
            )
            sha = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            record = assembler.add(sha, event.value or b"", headers)
            if record is not None:
                await meta_topic.send(
                    key=record["fuid"].encode(), value=json.dumps(record).encode()
                )

    app.assembler = assembler  # type: ignore[attr-defined]
    return app
