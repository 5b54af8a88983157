"""A notebook overview of the log topics: partitions, records, time span and consumer-group lag.

``TopicsView()`` takes a snapshot when made (``refresh()`` takes another); Jupyter shows it as
an HTML table (``_repr_html_``), ``to_frame()`` gives the same as a DataFrame. Record counts are
offset spans (high - low watermark), so transaction markers count too: an upper bound. The span
runs from the ts of the first record of each partition (by offset) to the largest ts among the
newest records of each partition (Zeek's ts is nearly monotonic per partition).
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass, field

import pandas as pd
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from wirestream.consumers import session
from wirestream.consumers.errors import BrokerUnreachableError

from wirestream.config import Settings
from wirestream.kafka import make_admin

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
TAIL_RECORDS = 50  # the span's end is the largest ts among this many newest offsets


@dataclass
class TopicRow:
    log: str
    topic: str
    partitions: int
    records: int
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    high: dict[int, int] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> records behind


def _edge_timestamps(
    settings: Settings, spans: dict[tuple[str, int], tuple[int, int]]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per topic, the smallest ts among the first record of each partition and the largest ts
    among the last ``TAIL_RECORDS`` offsets of each partition (data records only: transaction
    markers carry wall-clock time, so the broker's max-timestamp lookup would report those)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    if not spans:
        return first, last
    consumer = session.open_consumer(settings)
    try:
        for phase in ("first", "last"):
            todo = {}
            for (topic, p), (low, high) in spans.items():
                begin = low if phase == "first" else max(low, high - TAIL_RECORDS)
                todo[(topic, p)] = (begin, high)
            consumer.assign([TopicPartition(t, p, b) for (t, p), (b, _h) in todo.items()])
            deadline = time.monotonic() + TIMEOUT_S
            while todo and time.monotonic() < deadline:
                for msg in consumer.consume(1000, timeout=0.2):
                    key = (msg.topic(), msg.partition())
                    if msg.error() is not None or key not in todo:
                        continue
                    ts = msg.timestamp()[1]
                    if phase == "first":
                        first[key[0]] = min(first.get(key[0], ts), ts)
                        del todo[key]
                        continue
                    last[key[0]] = max(last.get(key[0], ts), ts)
                    if msg.offset() + 1 >= todo[key][1]:
                        del todo[key]
                for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                    if tp.offset >= todo[(tp.topic, tp.partition)][1]:
                        del todo[(tp.topic, tp.partition)]  # only markers were left
            consumer.unassign()
    finally:
        consumer.close()
    return first, last


def _group_offsets(
    admin: AdminClient, topic_names: set[str]
) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets on the given topics, per consumer group."""
    try:
        groups = admin.list_consumer_groups().result(TIMEOUT_S).valid
    except KafkaException as exc:
        log.debug("listing consumer groups: %s", exc)
        return {}
    out: dict[str, dict[tuple[str, int], int]] = {}
    for group in groups:
        request = [ConsumerGroupTopicPartitions(group.group_id)]
        try:
            result = admin.list_consumer_group_offsets(request)[group.group_id].result(TIMEOUT_S)
        except KafkaException as exc:
            log.debug("offsets of group %s: %s", group.group_id, exc)
            continue
        mine = {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.topic in topic_names and tp.offset >= 0
        }
        if mine:
            out[group.group_id] = mine
    return out


class TopicsView:
    """Snapshot of every log topic on the broker, for notebooks (HTML) and DataFrames."""

    def __init__(self, settings: Settings | None = None, *, groups: bool = True) -> None:
        self.settings = session.resolved(settings)
        self.with_groups = groups
        self.rows: list[TopicRow] = []
        self.taken: pd.Timestamp | None = None
        self.refresh()

    def refresh(self) -> TopicsView:
        consumer = session.open_consumer(self.settings)
        try:
            logs = session.log_topics(consumer, self.settings)
            meta = session.list_topics(consumer, self.settings)
            rows, spans = [], {}
            for name, topic in logs.items():
                parts = sorted(meta[topic].partitions)
                marks = session.watermarks(consumer, topic, parts)
                row = TopicRow(
                    name,
                    topic,
                    len(parts),
                    sum(h - lo for lo, h in marks.values()),
                    None,
                    None,
                    {p: h for p, (_lo, h) in marks.items()},
                )
                rows.append(row)
                for p, (low, high) in marks.items():
                    if high > low:
                        spans[(topic, p)] = (low, high)
        finally:
            consumer.close()
        admin = make_admin(self.settings)
        try:
            firsts, lasts = _edge_timestamps(self.settings, spans)
            offsets = _group_offsets(admin, {r.topic for r in rows}) if self.with_groups else {}
        except KafkaException as exc:
            raise BrokerUnreachableError(self.settings.bootstrap_servers, str(exc)) from None
        for row in rows:
            if row.topic in firsts:
                row.first_ts = pd.Timestamp(firsts[row.topic], unit="ms", tz="UTC")
            if row.topic in lasts:
                row.last_ts = pd.Timestamp(lasts[row.topic], unit="ms", tz="UTC")
            for group, committed in offsets.items():
                behind = [row.high[p] - off for (t, p), off in committed.items() if t == row.topic]
                if behind:
                    row.lag[group] = max(0, sum(behind))
        self.rows = rows
        self.taken = pd.Timestamp.now(tz="UTC")
        return self

    def to_frame(self) -> pd.DataFrame:
        """One row per log topic; ``lag`` maps consumer group -> records not yet committed."""
        return pd.DataFrame(
            [
                {
                    "log": r.log,
                    "topic": r.topic,
                    "partitions": r.partitions,
                    "records": r.records,
                    "first_ts": r.first_ts,
                    "last_ts": r.last_ts,
                    "lag": dict(r.lag),
                }
                for r in self.rows
            ],
            columns=["log", "topic", "partitions", "records", "first_ts", "last_ts", "lag"],
        )

    @staticmethod
    def _lag_text(lag: dict[str, int]) -> str:
        return ", ".join(f"{g}: {n:,}" for g, n in sorted(lag.items())) or "-"

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>{len(self.rows)} log topics</b> on {html.escape(self.settings.bootstrap_servers)}"
            f" at {self.taken:%Y-%m-%d %H:%M:%S} UTC</p>"
        )
        cells = ["log", "topic", "partitions", "records", "from", "to", "group lag"]
        out = [head, "<table><thead><tr>"]
        out += [f"<th>{c}</th>" for c in cells]
        out.append("</tr></thead><tbody>")
        for r in self.rows:
            values = [
                r.log,
                r.topic,
                str(r.partitions),
                f"{r.records:,}",
                "" if r.first_ts is None else f"{r.first_ts:%Y-%m-%d %H:%M:%S}",
                "" if r.last_ts is None else f"{r.last_ts:%Y-%m-%d %H:%M:%S}",
                self._lag_text(r.lag),
            ]
            out.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def __repr__(self) -> str:
        lines = [f"{len(self.rows)} log topics on {self.settings.bootstrap_servers}"]
        for r in self.rows:
            span = (
                ""
                if r.first_ts is None
                else f" {r.first_ts:%Y-%m-%d %H:%M} .. {r.last_ts:%Y-%m-%d %H:%M}"
            )
            lines.append(
                f"  {r.log:<16} {r.partitions}p {r.records:>12,} records{span}"
                f"  lag: {self._lag_text(r.lag)}"
            )
        return "\n".join(lines)
