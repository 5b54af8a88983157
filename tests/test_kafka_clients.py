"""Client factories and the watermark read that must survive a just-created topic."""

from __future__ import annotations

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from wirestream.kafka import make_admin, make_consumer, make_producer, watermark_offsets


def test_watermarks_right_after_creation(settings, topic_name):
    admin = make_admin(settings)
    admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(30)
    consumer = make_consumer(settings, f"{topic_name}-g")
    try:
        # Asked immediately: leadership may still be settling; the helper waits it out.
        assert [watermark_offsets(consumer, TopicPartition(topic_name, p)) for p in range(3)] == [
            (0, 0)
        ] * 3
        producer = make_producer(settings)
        producer.produce(topic_name, b"x", partition=1)
        assert producer.flush(30) == 0
        assert watermark_offsets(consumer, TopicPartition(topic_name, 1)) == (0, 1)
    finally:
        consumer.close()


def test_consumers_read_committed_by_default(settings, topic_name):
    producer = make_producer(settings, **{"transactional.id": f"{topic_name}-tx"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic_name, b"aborted")
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic_name, b"committed")
    producer.commit_transaction(30)
    consumer = make_consumer(settings, f"{topic_name}-g")
    consumer.subscribe([topic_name])
    seen = []
    try:
        for _ in range(100):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                seen.append(msg.value())
            if seen:
                break
    finally:
        consumer.close()
    assert seen == [b"committed"]


UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: every connect is refused


def test_admin_on_an_unreachable_bootstrap_fails_quietly_naming_it(capfd) -> None:
    """librdkafka printed a connect-failure line per retry for the whole 60 s admin timeout;
    now the probe gives up once all brokers are down, with one error and no stderr chatter."""
    import pytest

    from wirestream.config import Settings
    from wirestream.kafka import KafkaUnreachable

    with pytest.raises(KafkaUnreachable, match=r"cannot reach Kafka at 127\.0\.0\.1:1: .*refused"):
        make_admin(Settings().with_overrides(bootstrap_servers=UNREACHABLE))
    assert "rdkafka" not in capfd.readouterr().err


def test_topics_list_on_an_unreachable_bootstrap_is_one_error_line() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "wirestream", "-b", UNREACHABLE, "topics", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach Kafka at {UNREACHABLE}: ")


def test_admin_probe_passes_on_a_live_broker(settings) -> None:
    admin = make_admin(settings, probe_s=30)
    assert admin.list_topics(timeout=10).brokers
