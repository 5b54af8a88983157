"""The capture details record: what the seed's ``view_pcap_details`` returned, as one JSON value.

Lives on the compacted captures topic (``topics.CAPTURES_TOPIC``), key = the capture's content md5
(ASCII hex), value = UTF-8 JSON of :class:`CaptureDetails`. The newest record per key wins:

* the producer writes ``status="sent"`` when a capture's packets are published (this is also how a
  second send of the same file is recognised);
* the processors write ``status="ok"`` or ``"failed"`` when every partition's stream of that send
  has been analysed.

Fields of the final record:

``md5``, ``name``, ``sensor``, ``send_id``
    capture identity; ``send_id`` tells two sends of one file apart (``--force``).
``status``, ``errors``
    ``ok`` or ``failed`` (input unreadable or ended badly, a processor error); ``errors`` says why.
    A capture that ended badly still has the logs of the packets read before the error.
``capture``
    ``format``, ``linktype``, ``snaplen``, ``packets``, ``bytes_read``, ``first_ts``, ``last_ts``.
``logs``
    ``{log: {"topic": str, "records": int, "offsets": {partition: [first, last]}}}``: where each
    log's records of this capture live (inclusive offset ranges per topic partition; ranges may
    contain other captures' records when captures were processed concurrently).
``files``, ``files_omitted``
    one dict per extracted file (as many as fit in one Kafka record, ~900 kB; the number left
    out is ``files_omitted``, their metadata is on the file-meta topic): ``fuid``, ``filename``,
    ``truncated``, plus
    :func:`wirestream.processors.file_meta.file_metadata` (md5, sha1, sha256, ssdeep, entropy,
    file_size, file_type, mime_type).
``partitions``, ``engine``, ``sent_at``, ``finished_at``
    the pcap-topic partitions the capture was spread over, the engine used, epoch seconds.

Per-partition results (:class:`CapturePart`) go to ``topics.CAPTURE_PARTS_TOPIC`` (key
``<send_id>/<partition>``), in the same Kafka transaction as that partition's log records; the
final record is their merge (:func:`merge_parts`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SENT, OK, FAILED = "sent", "ok", "failed"


@dataclass
class CaptureDetails:
    md5: str
    name: str
    sensor: str
    send_id: str
    status: str
    errors: list[str] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    partitions: int = 0
    engine: str = ""
    sent_at: float | None = None
    finished_at: float | None = None
    files_omitted: int = 0  # files analysed but left out of ``files`` to keep the record in bounds

    @property
    def done(self) -> bool:
        return self.status in (OK, FAILED)

    def to_bytes(self) -> bytes:
        return bounded_json(asdict(self))

    @classmethod
    def from_bytes(cls, value: bytes) -> CaptureDetails:
        data = json.loads(value)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class CapturePart:
    """One (send, partition) stream's analysis, committed atomically with its log records."""

    send_id: str
    md5: str
    name: str
    sensor: str
    partition: int
    partitions: int
    capture: dict[str, Any]
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    engine: str = ""
    finished_at: float | None = None
    processor: str = ""  # the processor instance that analysed this partition
    sent_at: float | None = None
    files_omitted: int = 0

    def key(self) -> bytes:
        return part_key(self.send_id, self.partition)

    def to_bytes(self) -> bytes:
        return bounded_json(asdict(self))

    @classmethod
    def from_bytes(cls, value: bytes) -> CapturePart:
        data = json.loads(value)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# Kafka's default limits (broker max.message.bytes ~1 MiB, librdkafka message.max.bytes 1,000,000)
# bound one record; a capture with thousands of extracted files must still get its record.
MAX_RECORD_BYTES = 900_000
MAX_ERRORS = 100


def bounded_json(record: dict[str, Any], limit: int = MAX_RECORD_BYTES) -> bytes:
    """The record as JSON within ``limit`` bytes: the longest prefix of ``files`` that fits is
    kept (the rest counted in ``files_omitted``), and at most MAX_ERRORS errors."""
    record = dict(record)
    errors = record.get("errors") or []
    if len(errors) > MAX_ERRORS:
        record["errors"] = [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors"]
    raw = json.dumps(record, sort_keys=True).encode()
    if len(raw) <= limit:
        return raw
    files = record["files"]
    omitted_before = record.get("files_omitted", 0)
    low, high = 0, len(files)  # the largest kept count that fits lies in [low, high)
    while low < high:
        mid = (low + high + 1) // 2
        trial = {**record, "files": files[:mid], "files_omitted": omitted_before + len(files) - mid}
        if len(json.dumps(trial, sort_keys=True).encode()) <= limit:
            low = mid
        else:
            high = mid - 1
    record["files"] = files[:low]
    record["files_omitted"] = omitted_before + len(files) - low
    raw = json.dumps(record, sort_keys=True).encode()
    if len(raw) > limit:
        raise ValueError(f"capture record of {len(raw)} bytes exceeds {limit} even without files")
    return raw


def part_key(send_id: str, partition: int) -> bytes:
    return f"{send_id}/{partition}".encode()


def merge_logs(into: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    """Adds one part's per-log counts and offset ranges into ``into``."""
    for log, entry in more.items():
        slot = into.setdefault(log, {"topic": entry["topic"], "records": 0, "offsets": {}})
        slot["records"] += entry["records"]
        for part, (first, last) in entry["offsets"].items():
            have = slot["offsets"].get(str(part))
            slot["offsets"][str(part)] = (
                [first, last] if have is None else [min(have[0], first), max(have[1], last)]
            )


def merge_parts(parts: list[CapturePart], sent_at: float | None = None) -> CaptureDetails:
    """The final details of one send from all its partitions' parts (order does not matter)."""
    if not parts:
        raise ValueError("no parts to merge")
    parts = sorted(parts, key=lambda p: p.partition)
    first = parts[0]
    logs: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    errors: list[str] = []
    for part in parts:
        merge_logs(logs, part.logs)
        files.extend(part.files)
        errors.extend(e for e in part.errors if e not in errors)
    files.sort(key=lambda f: (f.get("fuid") or "", f.get("sha256") or ""))
    return CaptureDetails(
        md5=first.md5,
        name=first.name,
        sensor=first.sensor,
        send_id=first.send_id,
        status=FAILED if errors else OK,
        errors=errors,
        capture=first.capture,
        logs=dict(sorted(logs.items())),
        files=files,
        partitions=first.partitions,
        engine=first.engine,
        sent_at=sent_at if sent_at is not None else first.sent_at,
        finished_at=max((p.finished_at or 0.0) for p in parts) or None,
        files_omitted=sum(p.files_omitted for p in parts),
    )
