"""The root command's error contract: known operational errors end as one ``Error:`` line."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wirestream.cli import VERBS, cli


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No configured broker and an empty wirestream home: nothing local is running."""
    for name in ("WIRESTREAM_BOOTSTRAP_SERVERS", "WIRESTREAM_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WIRESTREAM_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_missing_broker_is_one_line_not_a_traceback(isolated_env: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "some-capture"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Error: the local Kafka broker is not running" in result.output
    assert "Traceback" not in result.output


def test_bad_config_file_is_a_usage_error(isolated_env: Path) -> None:
    bad = isolated_env / "bad.toml"
    bad.write_text("a = [\n")
    result = CliRunner().invoke(cli, ["--config", str(bad), "topics", "list"])
    assert result.exit_code == 2
    assert "not valid TOML" in result.output
    assert "Traceback" not in result.output


@click.command("boom")
@click.argument("kind")
def _boom(kind: str) -> None:
    """Raise the error named by KIND."""
    from confluent_kafka import KafkaError, KafkaException

    if kind == "kafka":
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker went away"))
    if kind == "os":
        open("/nonexistent-dir/out.log", "w")  # noqa: SIM115 - raises FileNotFoundError
    raise ValueError("a bug")


@pytest.fixture
def boom_verb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(VERBS, "boom", f"{__name__}:_boom")


def test_kafka_errors_are_one_line(isolated_env: Path, boom_verb: None) -> None:
    result = CliRunner().invoke(cli, ["boom", "kafka"])
    assert result.exit_code == 1
    assert "Error: " in result.output and "broker went away" in result.output


def test_file_system_errors_are_one_line(isolated_env: Path, boom_verb: None) -> None:
    result = CliRunner().invoke(cli, ["boom", "os"])
    assert result.exit_code == 1
    assert "Error: [Errno 2] No such file or directory: '/nonexistent-dir/out.log'" in result.output


def test_unexpected_errors_keep_their_traceback(isolated_env: Path, boom_verb: None) -> None:
    """Only known error kinds are shortened; a bug still raises."""
    result = CliRunner().invoke(cli, ["boom", "bug"])
    assert isinstance(result.exception, ValueError)


def test_demo_refuses_a_non_capture_before_looking_for_a_broker(isolated_env: Path) -> None:
    junk = isolated_env / "junk.pcap"
    junk.write_bytes(b"not a capture")
    result = CliRunner().invoke(cli, ["demo", "--pcap", str(junk), "--out", "d"])
    assert result.exit_code == 1
    assert "unknown file format" in result.output and "broker" not in result.output
