"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked statically."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
import yaml

from wirestream.cli import cli
from wirestream.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _wirestream_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if "build" in s}


def test_kafka_is_the_official_kraft_image(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    advertised = {item.split("://")[0] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    protocol_map = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert advertised <= listeners <= set(protocol_map)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert str(env["KAFKA_LOG_RETENTION_MS"]) == "-1", (
        "old capture timestamps must not expire at once"
    )


def test_services_share_settings_that_wirestream_knows(compose):
    fields = {f.name for f in dataclasses.fields(Settings)}
    services = _wirestream_services(compose)
    assert {"processor", "producer", "file-analysis", "stats", "topics"} <= set(services)
    kafka_env = compose["services"]["kafka"]["environment"]
    internal = next(
        a
        for a in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if a.startswith("PLAINTEXT://")
    )
    for name, service in services.items():
        env = service["environment"]
        for key in env:
            assert key.startswith(ENV_PREFIX), f"{name}: {key}"
            assert key[len(ENV_PREFIX) :].lower() in fields, (
                f"{name}: {key} is not a wirestream setting"
            )
        assert env["WIRESTREAM_BOOTSTRAP_SERVERS"] == internal.split("://")[1]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_dockerfiles_exist_and_processor_runs_real_zeek(compose):
    for name, service in _wirestream_services(compose).items():
        dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
    processor = compose["services"]["processor"]
    text = (ROOT / processor["build"]["dockerfile"]).read_text()
    assert "FROM zeek/zeek" in text
    assert processor["environment"]["WIRESTREAM_ENGINE"] == "zeek"


def test_service_commands_are_wirestream_verbs(compose):
    ctx = click.Context(cli)
    verbs = set(cli.list_commands(ctx))
    for name, service in _wirestream_services(compose).items():
        command = service["command"]
        assert command[0] == "wirestream", name
        assert command[1] in verbs, f"{name}: 'wirestream {command[1]}' is not a verb"
        group = cli.get_command(ctx, command[1])
        if isinstance(group, click.Group) and len(command) > 2 and not command[2].startswith("-"):
            assert command[2] in group.list_commands(ctx), (
                f"{name}: no 'wirestream {command[1]} {command[2]}'"
            )
