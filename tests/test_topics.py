"""Topic names and configs come from one place; forensic retention never deletes by age."""

from __future__ import annotations

from wirestream.config import Settings
from wirestream.topics import (
    CAPTURES_TOPIC,
    PCAP_MAX_MESSAGE_BYTES,
    log_of_topic,
    log_topic,
    log_topic_spec,
    system_topic_specs,
)


def test_log_topic_names_round_trip():
    settings = Settings(topic_prefix="site1.")
    assert log_topic("conn", settings) == "site1.zeek.conn"
    assert log_of_topic("site1.zeek.conn", settings) == "conn"
    assert log_of_topic("zeek.conn", settings) is None
    assert log_topic("dns") == "zeek.dns"


def test_log_topics_keep_old_event_time_records():
    spec = log_topic_spec(
        "conn", Settings(retention_bytes=10**9, topic_partitions=6, topic_replication=3)
    )
    assert spec.config["retention.ms"] == "-1"
    assert spec.config["retention.bytes"] == str(10**9)
    assert (spec.partitions, spec.replication) == (6, 3)


def test_system_topics():
    specs = {s.name: s for s in system_topic_specs(Settings())}
    assert specs[CAPTURES_TOPIC].config["cleanup.policy"] == "compact"
    assert int(specs["wirestream.pcap"].config["max.message.bytes"]) == PCAP_MAX_MESSAGE_BYTES
    assert all(s.config.get("retention.ms") == "-1" for s in specs.values())
