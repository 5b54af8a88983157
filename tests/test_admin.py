"""Topic administration against a real broker: what is created is read back from Kafka itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from wirestream.admin import (
    CONFIGS_UPDATED,
    CREATED,
    EXISTS,
    TopicError,
    all_topic_specs,
    describe_topics,
    ensure_topics,
)
from wirestream.config import Settings
from wirestream.topics import (
    CAPTURES_TOPIC,
    FILE_META_TOPIC,
    PCAP_MAX_MESSAGE_BYTES,
    PCAP_TOPIC,
    SCHEMAS_TOPIC,
    TopicSpec,
    log_topic,
    log_topic_spec,
    system_topic,
    system_topic_specs,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]


@pytest.fixture
def prefixed(settings: Settings) -> Iterator[Settings]:
    """Settings with a unique topic prefix; every topic under it is deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield settings.with_overrides(topic_prefix=prefix)
    admin = raw_admin(settings)
    names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix)]
    if names:
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            fut.result()


def raw_admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers})


def create_plain(settings: Settings, name: str, partitions: int) -> None:
    """A topic made without wirestream's configs, as auto-creation or another tool would."""
    admin = raw_admin(settings)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while name not in admin.list_topics(timeout=30).topics and time.monotonic() < deadline:
        time.sleep(0.1)  # creation acknowledged by the controller, not yet seen by brokers


def read_configs(settings: Settings, topic: str) -> dict[str, str]:
    """Topic configs as the broker reports them (defaults included)."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = raw_admin(settings)  # kept alive until the future resolves
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {k: str(e.value) for k, e in entries.items()}


def read_layout(settings: Settings, topic: str) -> tuple[int, set[int]]:
    """(partition count, set of replica counts) from cluster metadata."""
    meta = raw_admin(settings).list_topics(topic, timeout=30).topics[topic]
    return len(meta.partitions), {len(p.replicas) for p in meta.partitions.values()}


def test_log_topics_get_partitions_replication_and_forensic_retention(prefixed: Settings) -> None:
    specs = [log_topic_spec(log, prefixed) for log in ("conn", "dns")]
    assert ensure_topics(prefixed, specs) == {s.name: CREATED for s in specs}
    for spec in specs:
        assert read_layout(prefixed, spec.name) == (prefixed.topic_partitions, {1})
        configs = read_configs(prefixed, spec.name)
        assert configs["retention.ms"] == "-1"
        assert configs["retention.bytes"] == str(prefixed.retention_bytes)
        assert configs["message.timestamp.type"] == "CreateTime"


def test_system_topics_compacted_and_large_messages(prefixed: Settings) -> None:
    specs = system_topic_specs(prefixed)
    ensure_topics(prefixed, specs)
    for name in (CAPTURES_TOPIC, SCHEMAS_TOPIC, FILE_META_TOPIC):
        configs = read_configs(prefixed, system_topic(name, prefixed))
        assert configs["cleanup.policy"] == "compact", name
    pcap = read_configs(prefixed, system_topic(PCAP_TOPIC, prefixed))
    assert pcap["max.message.bytes"] == str(PCAP_MAX_MESSAGE_BYTES)
    assert pcap["retention.ms"] == "-1" and pcap["cleanup.policy"] == "delete"
    assert read_layout(prefixed, system_topic(CAPTURES_TOPIC, prefixed))[0] == 1


def test_ensure_topics_is_idempotent(prefixed: Settings) -> None:
    specs = [log_topic_spec("http", prefixed), *system_topic_specs(prefixed)[:2]]
    first = ensure_topics(prefixed, specs)
    assert set(first.values()) == {CREATED}
    assert ensure_topics(prefixed, specs) == {s.name: EXISTS for s in specs}


def test_partition_mismatch_is_an_error(prefixed: Settings) -> None:
    spec = log_topic_spec("ssl", prefixed)
    create_plain(prefixed, spec.name, 1)
    with pytest.raises(TopicError, match=rf"{spec.name}: 1 partitions, wanted {spec.partitions}"):
        ensure_topics(prefixed, [spec])


def test_config_drift_is_reported_then_fixed_on_request(prefixed: Settings) -> None:
    (spec,) = [s for s in system_topic_specs(prefixed) if s.name.endswith(CAPTURES_TOPIC)]
    create_plain(prefixed, spec.name, spec.partitions)
    assert read_configs(prefixed, spec.name)["cleanup.policy"] == "delete"
    with pytest.raises(TopicError, match=r"cleanup.policy=delete \(wanted compact\)"):
        ensure_topics(prefixed, [spec])
    assert ensure_topics(prefixed, [spec], fix_configs=True) == {spec.name: CONFIGS_UPDATED}
    assert read_configs(prefixed, spec.name)["cleanup.policy"] == "compact"
    assert ensure_topics(prefixed, [spec]) == {spec.name: EXISTS}


def test_replication_above_live_brokers_fails_without_creating(prefixed: Settings) -> None:
    brokers = len(raw_admin(prefixed).list_topics(timeout=30).brokers)
    wide = prefixed.with_overrides(topic_replication=brokers + 1)
    spec = log_topic_spec("smtp", wide)
    with pytest.raises(TopicError, match=rf"above the {brokers} live broker"):
        ensure_topics(wide, [spec])
    assert spec.name not in raw_admin(prefixed).list_topics(timeout=30).topics


def test_duplicate_specs_are_refused(prefixed: Settings) -> None:
    spec = TopicSpec(log_topic("x", prefixed), 1, 1, {})
    with pytest.raises(ValueError, match="duplicate"):
        ensure_topics(prefixed, [spec, spec])


def test_describe_topics_reports_overrides_and_isr(prefixed: Settings) -> None:
    spec = log_topic_spec("dhcp", prefixed)
    ensure_topics(prefixed, [spec])
    (info,) = describe_topics(prefixed, [spec.name])
    assert (info.name, info.partitions, info.replication, info.min_in_sync) == (
        spec.name,
        spec.partitions,
        1,
        1,
    )
    assert info.configs == dict(sorted(spec.config.items()))
    with pytest.raises(TopicError, match="no such topic"):
        describe_topics(prefixed, [spec.name + ".absent"])


def test_cli_creates_every_log_topic_and_lists_them(prefixed: Settings) -> None:
    env = {
        **os.environ,
        "WIRESTREAM_BOOTSTRAP_SERVERS": prefixed.bootstrap_servers,
        "WIRESTREAM_TOPIC_PREFIX": prefixed.topic_prefix,
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "wirestream", "topics", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    specs = all_topic_specs(prefixed)
    assert log_topic("conn", prefixed) in {s.name for s in specs}
    created = cli("create")
    assert created.returncode == 0, created.stderr
    assert f"{len(specs)} topics: {len(specs)} created" in created.stdout
    again = cli("create")
    assert f"{len(specs)} topics: {len(specs)} exists" in again.stdout

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    infos = {
        i["name"]: i
        for i in json.loads(listed.stdout)
        if i["name"].startswith(prefixed.topic_prefix)
    }
    assert set(infos) == {s.name for s in specs}
    conn = infos[log_topic("conn", prefixed)]
    assert conn["partitions"] == prefixed.topic_partitions
    assert conn["configs"]["retention.ms"] == "-1"
    table = cli("list")
    assert log_topic("conn", prefixed) in table.stdout and "PARTS  RF" in table.stdout
