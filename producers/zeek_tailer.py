"""Tails Zeek log files (TSV or JSON, as a running Zeek writes them) onto the per-log topics.

For sites where Zeek itself runs: each record of ``<log>.log`` becomes one single-object Avro
event on ``zeek.<log>`` (same encoding, keys, timestamps and headers as the Bro processor's).
Lines that do not fit their header (the reader skips and reports them) go to the dead-letter topic
with the reason, so nothing is silently dropped. Delivery is at-least-once (idempotent producer);
the file is read from its start, then followed as it grows, until stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirestream.processors.service import LogEncoder, TopicEnsurer
from wirestream.schemas.avro import avro_schema

from wirestream import topics
from wirestream.config import Settings
from wirestream.kafka import make_producer

log = logging.getLogger(__name__)


class FollowedLines:
    """A file's complete lines as they are written; at EOF waits (calling ``on_idle``) unless
    ``follow`` is off or ``stop()`` says so. A partial last line waits for its newline."""

    def __init__(
        self,
        path: Path,
        *,
        follow: bool,
        stop: Callable[[], bool],
        on_idle: Callable[[], None] = lambda: None,
        poll: float = 0.5,
    ) -> None:
        self.path, self.follow, self.stop, self.on_idle, self.poll = (
            path,
            follow,
            stop,
            on_idle,
            poll,
        )
        self.file = path.open("rb")

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        while True:
            line = self.file.readline()
            if line.endswith(b"\n"):
                yield pending + line
                pending = b""
                continue
            pending += line
            if not self.follow or self.stop():
                if pending:
                    yield pending
                return
            self.on_idle()
            time.sleep(self.poll)

    def read(self, size: int = -1) -> bytes:  # the reader only iterates; kept for file-likeness
        return self.file.read(size)

    def close(self) -> None:
        self.file.close()


@dataclass
class TailResult:
    path: str
    log: str
    records: int = 0
    dead_letters: int = 0
    error: str | None = None


class ZeekLogTailer:
    """Publishes Zeek log files' records; one instance per process, files in threads."""

    def __init__(self, settings: Settings, sensor: str | None = None) -> None:
        self.settings = settings
        self.sensor = sensor or settings.sensor
        from wirestream.processors.bro_processor import LOG_PARTITIONER

        self.producer = make_producer(settings, partitioner=LOG_PARTITIONER)
        from wirestream.schemas.store import SchemaStore

        self.encoder = LogEncoder(settings, self.sensor, SchemaStore(settings).publish)
        self.topics = TopicEnsurer(settings)
        self.dead_letter_topic = topics.system_topic(topics.DEAD_LETTER_TOPIC, settings)
        self.lock = threading.Lock()

    def tail(
        self, path: Path, *, follow: bool = False, stop: Callable[[], bool] = lambda: False
    ) -> TailResult:
        """Publishes every record of one log file (following it if asked); returns counts."""
        from wirestream.schemas.zeeklog.errors import ZeekLogError
        from wirestream.schemas.zeeklog.reader import ZeekLog, zeek_log_header

        result = TailResult(str(path), path.name.split(".")[0])
        sent_problems = 0
        reader: Any = None

        def flush_problems() -> None:
            nonlocal sent_problems
            if reader is None:
                return
            for problem in reader.problems[sent_problems:]:
                self._dead_letter(
                    path, result.log, problem.line_number, problem.reason, problem.text
                )
                result.dead_letters += 1
            sent_problems = len(reader.problems)

        lines = FollowedLines(
            path,
            follow=follow,
            stop=stop,
            on_idle=lambda: (flush_problems(), self.producer.poll(0)),
        )
        try:
            reader = ZeekLog(lines, name=str(path), strict=False)  # type: ignore[arg-type]
            try:  # the header is on disk now (a followed file may have been empty at first)
                zeek_log_header(path)
            except ZeekLogError as exc:  # a README is no log: publish nothing, no topic
                result.error = str(exc)
                log.error("%s: refused: %s", path, exc)
                return result
            result.log = reader.header.path or result.log
            self.encoder.use_schema(result.log, avro_schema(reader.header.schema))
            self.topics.ensure({result.log})
            capture = f"zeeklog:{path.name}"
            for record in reader:
                msg = self.encoder.encode(result.log, record, capture)
                self._produce(
                    topic=msg.topic,
                    key=msg.key,
                    value=msg.value,
                    headers=msg.headers,
                    timestamp=msg.timestamp_ms,
                )
                result.records += 1
                if len(reader.problems) > sent_problems:
                    flush_problems()
            flush_problems()
            if reader.error is not None:
                result.error = str(reader.error)
        except ZeekLogError as exc:
            result.error = str(exc)
            self._dead_letter(path, result.log, 0, f"unreadable log: {exc}", "")
            result.dead_letters += 1
        finally:
            lines.close()
            self.producer.flush(30)
        log.info(
            "%s: %d records, %d dead letters%s",
            path,
            result.records,
            result.dead_letters,
            f" ({result.error})" if result.error else "",
        )
        return result

    def _produce(self, **kwargs: Any) -> None:
        while True:
            try:
                with self.lock:
                    self.producer.produce(**kwargs)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _dead_letter(self, path: Path, log_name: str, line: int, reason: str, text: str) -> None:
        value = {
            "source": str(path),
            "log": log_name,
            "line": line,
            "reason": reason,
            "text": text,
            "sensor": self.sensor,
        }
        self._produce(
            topic=self.dead_letter_topic, key=str(path).encode(), value=json.dumps(value).encode()
        )

    def tail_folder(self, folder: Path, *, stop: Callable[[], bool], scan: float = 2.0) -> None:
        """Follows every ``*.log`` in ``folder`` (new files too), one thread each, until stopped."""
        threads: dict[Path, threading.Thread] = {}
        while not stop():
            for path in sorted(folder.glob("*.log")):
                if path not in threads:
                    t = threading.Thread(
                        target=self.tail,
                        args=(path,),
                        kwargs={"follow": True, "stop": stop},
                        daemon=True,
                    )
                    threads[path] = t
                    t.start()
            time.sleep(scan)
        for t in threads.values():
            t.join(10)
