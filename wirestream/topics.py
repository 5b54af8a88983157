"""Every topic name and topic configuration of the system, decided here once.

Zeek records carry their capture time as the Kafka timestamp, which may be years old. Under
Kafka's default time-based retention such records would be deleted at once, so log topics use
``retention.ms=-1`` (no time limit) and a size bound from the settings instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirestream.config import Settings

LOG_TOPIC_PREFIX = "zeek."
PCAP_TOPIC = "wirestream.pcap"
CAPTURES_TOPIC = "wirestream.captures"
# Per-partition analysis results of a capture, merged into its CAPTURES_TOPIC record.
CAPTURE_PARTS_TOPIC = "wirestream.capture-parts"
SCHEMAS_TOPIC = "wirestream.schemas"
FILE_CHUNKS_TOPIC = "wirestream.files"
FILE_META_TOPIC = "wirestream.file-meta"
DEAD_LETTER_TOPIC = "wirestream.dead-letter"
# The stats processor's internal re-keying topics (faust creates and owns them).
STATS_BY_HOST_TOPIC = "wirestream-stats-by-host"
STATS_BY_SERVICE_TOPIC = "wirestream-stats-by-service"
STATS_BY_QUERY_TOPIC = "wirestream-stats-by-query"
STATS_HOSTS_TOPIC = "wirestream-stats-hosts"

# Kafka's default max.message.bytes is ~1 MiB; the pcap hand-off topic allows 8 MiB batches.
PCAP_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str]


def log_topic(log: str, settings: Settings | None = None) -> str:
    """Topic of one Zeek log, e.g. ``conn`` -> ``zeek.conn``."""
    prefix = settings.topic_prefix if settings else ""
    return f"{prefix}{LOG_TOPIC_PREFIX}{log}"


def log_of_topic(topic: str, settings: Settings | None = None) -> str | None:
    """Inverse of :func:`log_topic`; None for topics that are not log topics."""
    head = (settings.topic_prefix if settings else "") + LOG_TOPIC_PREFIX
    return topic[len(head) :] if topic.startswith(head) else None


def system_topic(name: str, settings: Settings | None = None) -> str:
    return f"{settings.topic_prefix if settings else ''}{name}"


def _forensic(settings: Settings) -> dict[str, str]:
    return {
        "retention.ms": "-1",
        "retention.bytes": str(settings.retention_bytes),
        "message.timestamp.type": "CreateTime",
    }


def log_topic_spec(log: str, settings: Settings) -> TopicSpec:
    return TopicSpec(
        log_topic(log, settings),
        settings.topic_partitions,
        settings.topic_replication,
        _forensic(settings),
    )


def system_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics the pipeline needs besides the per-log topics."""
    parts, rf = settings.topic_partitions, settings.topic_replication
    compacted = {"cleanup.policy": "compact", "retention.ms": "-1"}
    return [
        TopicSpec(
            system_topic(PCAP_TOPIC, settings),
            parts,
            rf,
            {**_forensic(settings), "max.message.bytes": str(PCAP_MAX_MESSAGE_BYTES)},
        ),
        TopicSpec(system_topic(CAPTURES_TOPIC, settings), 1, rf, compacted),
        TopicSpec(system_topic(CAPTURE_PARTS_TOPIC, settings), 1, rf, compacted),
        TopicSpec(system_topic(SCHEMAS_TOPIC, settings), 1, rf, compacted),
        TopicSpec(
            system_topic(FILE_CHUNKS_TOPIC, settings),
            parts,
            rf,
            {**_forensic(settings), "max.message.bytes": str(PCAP_MAX_MESSAGE_BYTES)},
        ),
        TopicSpec(system_topic(FILE_META_TOPIC, settings), parts, rf, {**compacted}),
        TopicSpec(system_topic(DEAD_LETTER_TOPIC, settings), 1, rf, _forensic(settings)),
    ]
