"""Settings precedence (defaults < file < environment < flags) and the librdkafka pass-through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wirestream.config import ConfigError, Settings, load_settings


def test_precedence_file_env_flags(tmp_path: Path):
    cfg = tmp_path / "ws.toml"
    cfg.write_text(
        'bootstrap_servers = "file:9092"\ntopic_partitions = 6\nsensor = "from-file"\n[kafka]\n"socket.timeout.ms" = 5000\n'
    )
    env = {
        "WIRESTREAM_CONFIG": str(cfg),
        "WIRESTREAM_BOOTSTRAP_SERVERS": "env:9092",
        "WIRESTREAM_TOPIC_PARTITIONS": "9",
    }
    settings = load_settings(env, topic_partitions=12)
    assert settings.bootstrap_servers == "env:9092"
    assert settings.topic_partitions == 12
    assert settings.sensor == "from-file"
    assert settings.kafka_client_config()["socket.timeout.ms"] == "5000"


def test_defaults_mean_local_broker():
    settings = load_settings({})
    assert settings.uses_local_broker
    with pytest.raises(ConfigError, match="no bootstrap servers"):
        settings.kafka_client_config()


def test_security_settings_reach_librdkafka():
    settings = Settings(
        bootstrap_servers="b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password="p",
    )
    conf = settings.kafka_client_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert (conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        "PLAIN",
        "u",
        "p",
    )
    assert "ssl.ca.location" not in conf


def test_bad_values_are_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="topic_partitions"):
        load_settings({"WIRESTREAM_TOPIC_PARTITIONS": "many"})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings({"WIRESTREAM_CONFIG": str(tmp_path / "absent.toml")})
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml = = =")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"WIRESTREAM_CONFIG": str(bad)})
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().with_overrides(no_such_thing=1)


def test_kafka_options_from_env_string():
    settings = load_settings(
        {"WIRESTREAM_KAFKA_OPTIONS": "a=1, b = x", "WIRESTREAM_BOOTSTRAP_SERVERS": "h:1"}
    )
    assert settings.kafka_options == {"a": "1", "b": "x"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("engine", "fast", "not one of auto, builtin, zeek"),
        ("wire_format", "protobuf", "not one of single-object, confluent"),
        ("topic_partitions", "0", "out of range (at least 1)"),
        ("topic_replication", "-1", "out of range (at least 1)"),
        ("kafka_port", "70000", "out of range (from 1 to 65535)"),
        ("retention_bytes", "-2", "out of range (at least -1)"),
    ],
)
def test_values_outside_their_domain_are_refused_when_read(name, value, message):
    with pytest.raises(ConfigError, match=rf"setting {name}: .*{re.escape(message)}"):
        load_settings({f"WIRESTREAM_{name.upper()}": value})
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings().with_overrides(**{name: value})


def test_unknown_tables_are_errors_and_kafka_options_is_a_table_name(tmp_path: Path):
    cfg = tmp_path / "ws.toml"
    cfg.write_text('[kafak]\n"socket.timeout.ms" = 5000\n')
    with pytest.raises(ConfigError, match=r"unknown table\(s\) \[kafak\]"):
        load_settings({"WIRESTREAM_CONFIG": str(cfg)})
    cfg.write_text('[kafka_options]\n"socket.timeout.ms" = 5000\n')
    assert load_settings({"WIRESTREAM_CONFIG": str(cfg)}).kafka_options == {
        "socket.timeout.ms": "5000"
    }
    assert load_settings({"WIRESTREAM_RETENTION_BYTES": "-1"}).retention_bytes == -1
