"""The project's own broker: config rendering (pure), toolchain errors, and a real start/stop.

Live tests run ``wirestream kafka ...`` in a temporary WIRESTREAM_HOME on free ports, so they
never touch the developer's broker; they need Java 17+ and Maven (skipped, saying so, without).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from wirestream.broker import BrokerError
from wirestream.broker.fetch import fetch_kafka_jars, libs_dir
from wirestream.broker.layout import broker_layout
from wirestream.broker.nodeconfig import java_command, render_properties, server_properties
from wirestream.broker.runtime import down, ensure_local_broker, free_base_port, status, up
from wirestream.broker.toolchain import parse_java_major
from wirestream.config import Settings

HAVE_TOOLS = bool(shutil.which("java") and shutil.which("mvn"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="needs `java` (17+) and `mvn` on PATH")


def parse_properties(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


def run_cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wirestream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_env(home: Path, path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRESTREAM_")}
    env["WIRESTREAM_HOME"] = str(home)
    if path is not None:
        env["PATH"] = path
        env.pop("JAVA_HOME", None)
    return env


# ---------------------------------------------------------------------------------------------
# Pure: layout and configuration


def test_single_node_properties(tmp_path: Path) -> None:
    layout = broker_layout(tmp_path, "single", 31000)
    (node,) = layout.nodes
    props = parse_properties(render_properties(server_properties(layout, node, partitions=5)))
    assert layout.bootstrap == "127.0.0.1:31000"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:31000,CONTROLLER://127.0.0.1:31001"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:31001"
    assert "controller.quorum.voters" not in props
    assert props["process.roles"] == "broker,controller"
    assert props["num.partitions"] == "5"
    assert props["log.retention.ms"] == "-1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["log.dirs"] == str(tmp_path / "kafka-state" / "single" / "node-1" / "data")


def test_cluster_properties(tmp_path: Path) -> None:
    layout = broker_layout(tmp_path, "cluster", 31000)
    assert [n.ports for n in layout.nodes] == [(31000, 31001), (31010, 31011), (31020, 31021)]
    assert layout.bootstrap == "127.0.0.1:31000,127.0.0.1:31010,127.0.0.1:31020"
    rendered = [server_properties(layout, n, partitions=3) for n in layout.nodes]
    voters = "1@127.0.0.1:31001,2@127.0.0.1:31011,3@127.0.0.1:31021"
    for node, props in zip(layout.nodes, rendered, strict=True):
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.voters"] == voters
        assert "controller.quorum.bootstrap.servers" not in props
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.broker_port}"
        assert props["default.replication.factor"] == "3"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["share.coordinator.state.topic.min.isr"] == "2"
    assert len({p["log.dirs"] for p in rendered}) == 3


def test_layout_rejects_ports_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="65535"):
        broker_layout(tmp_path, "cluster", 65520)
    with pytest.raises(ValueError, match="out of range"):
        broker_layout(tmp_path, "single", 80)
    with pytest.raises(ValueError, match="unknown broker mode"):
        broker_layout(tmp_path, "triple", 31000)  # type: ignore[arg-type]


def test_render_properties_refuses_values_needing_escapes() -> None:
    assert render_properties({"a": "1"}, "head") == "# head\na=1\n"
    with pytest.raises(ValueError, match="escaping"):
        render_properties({"log.dirs": "C:\\data"})


def test_java_command_has_modest_heap_and_wildcard_classpath(tmp_path: Path) -> None:
    single = broker_layout(tmp_path, "single", 31000)
    cluster = broker_layout(tmp_path, "cluster", 31000)
    libs, log4j2 = tmp_path / "libs", tmp_path / "log4j2.properties"
    cmd = java_command(Path("/j/java"), libs, log4j2, single.nodes[0], "single")
    assert cmd[0] == "/j/java" and "-Xmx1g" in cmd
    assert cmd[cmd.index("-cp") + 1] == f"{libs}/*"
    assert cmd[-2:] == ["kafka.Kafka", str(single.nodes[0].properties_file)]
    assert f"-Dlog4j2.configurationFile={log4j2}" in cmd
    assert "-Xmx512m" in java_command(Path("java"), libs, log4j2, cluster.nodes[2], "cluster")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
    ],
)
def test_parse_java_major(output: str, major: int) -> None:
    assert parse_java_major(output) == major


def test_parse_java_major_rejects_garbage() -> None:
    with pytest.raises(BrokerError, match="cannot read the Java version"):
        parse_java_major("command not found")


def test_kafka_3_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="Kafka 4.x"):
        fetch_kafka_jars(Settings(home=tmp_path, kafka_version="3.9.0"))


# ---------------------------------------------------------------------------------------------
# Toolchain and port errors, through the CLI


def test_missing_java_says_what_to_install(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    port = free_base_port("single")
    done = run_cli("kafka", "up", "--port", str(port), env=cli_env(tmp_path, str(empty_bin)))
    assert done.returncode == 1
    assert "no `java` on PATH" in done.stderr
    assert "Java 17" in done.stderr and "Maven" in done.stderr


def test_old_java_is_refused(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    fake.chmod(0o755)
    done = run_cli("kafka", "fetch", env=cli_env(tmp_path, str(fake_bin)))
    assert done.returncode == 1
    assert "Java 11" in done.stderr and "needs Java 17+" in done.stderr


@pytest.mark.skipif(not shutil.which("java"), reason="needs `java` on PATH")
def test_missing_maven_says_what_to_install(tmp_path: Path) -> None:
    java_only = tmp_path / "bin"
    java_only.mkdir()
    (java_only / "java").symlink_to(Path(shutil.which("java") or "").resolve())
    done = run_cli("kafka", "fetch", env=cli_env(tmp_path, str(java_only)))
    assert done.returncode == 1
    assert "no `mvn` on PATH" in done.stderr and "Maven" in done.stderr
    assert not libs_dir(Settings(home=tmp_path)).exists()


def _bin_with_java_and_fake_mvn(tmp_path: Path, mvn_script: str) -> str:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "java").symlink_to(Path(shutil.which("java") or "").resolve())
    (tools / "mvn").write_text("#!/bin/sh\n" + mvn_script)
    (tools / "mvn").chmod(0o755)
    return f"{tools}:/bin"  # /bin for the script's shell utilities


@pytest.mark.skipif(not shutil.which("java"), reason="needs `java` on PATH")
def test_failed_fetch_leaves_no_partial_cache(tmp_path: Path) -> None:
    path = _bin_with_java_and_fake_mvn(
        tmp_path, "echo 'Could not resolve dependencies' >&2\nexit 1\n"
    )
    done = run_cli("kafka", "fetch", env=cli_env(tmp_path, path))
    assert done.returncode == 1
    assert "Maven could not fetch Kafka 4.1.1 (exit 1)" in done.stderr
    assert "Could not resolve dependencies" in done.stderr
    version_dir = libs_dir(Settings(home=tmp_path)).parent
    assert sorted(p.name for p in version_dir.iterdir()) == [".fetch.lock"]


@pytest.mark.skipif(not shutil.which("java"), reason="needs `java` on PATH")
def test_fetch_that_brings_no_kafka_jar_is_an_error(tmp_path: Path) -> None:
    # Maven "succeeds" but copies only an unrelated jar (e.g. a wrong pom): not a classpath.
    script = (
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) touch "${a#*=}/x-1.jar";; esac; done\n'
    )
    done = run_cli(
        "kafka", "fetch", env=cli_env(tmp_path, _bin_with_java_and_fake_mvn(tmp_path, script))
    )
    assert done.returncode == 1 and "no kafka_2.13 jar" in done.stderr
    assert not libs_dir(Settings(home=tmp_path)).exists()


def test_port_taken_is_named(tmp_path: Path) -> None:
    port = free_base_port("single")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        done = run_cli("kafka", "up", "--port", str(port), env=cli_env(tmp_path))
    assert done.returncode == 1
    assert f"port {port + 1} (controller listener" in done.stderr
    assert "already in use" in done.stderr


def test_status_of_a_broker_never_started(tmp_path: Path) -> None:
    done = run_cli("kafka", "status", "--json", env=cli_env(tmp_path))
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["running"] is False and report["nodes"][0]["pid"] is None
    with pytest.raises(BrokerError, match="not running"):
        ensure_local_broker(Settings(home=tmp_path), start=False)


# ---------------------------------------------------------------------------------------------
# A real broker


def _round_trip(bootstrap: str, topic: str, values: list[bytes], expect: int) -> list[bytes]:
    """Produce ``values``, then read the topic from the start with a new group until ``expect``."""
    from wirestream.kafka import make_consumer, make_producer

    settings = Settings(bootstrap_servers=bootstrap)
    producer = make_producer(settings)
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = make_consumer(settings, f"g-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(120):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
            if len(got) >= expect:
                break
    finally:
        consumer.close()
    return got


@needs_tools
@pytest.mark.timeout(300)
def test_single_broker_lifecycle(tmp_path: Path) -> None:
    port = free_base_port("single")
    env = cli_env(tmp_path)
    settings = Settings(home=tmp_path, kafka_port=port)
    bootstrap = f"127.0.0.1:{port}"
    try:
        started = run_cli("kafka", "up", "--port", str(port), env=env)
        assert started.returncode == 0, started.stderr
        assert f"broker up at {bootstrap}" in started.stdout

        report = run_cli("kafka", "status", "--json", env=env)
        assert report.returncode == 0, report.stdout + report.stderr
        state = json.loads(report.stdout)
        assert state["running"] and state["brokers"] == 1 and state["bootstrap"] == bootstrap
        assert state["nodes"][0]["rss_mib"] > 50

        again = run_cli("kafka", "up", "--port", str(port), env=env)
        assert again.returncode == 0 and "already running" in again.stdout
        assert ensure_local_broker(settings, start=False) == bootstrap

        values = [f"event-{i}".encode() for i in range(50)]
        assert sorted(_round_trip(bootstrap, "lifecycle", values, 50)) == sorted(values)

        # Cached jars: a second fetch needs no Maven at all.
        java_only = tmp_path / "javabin"
        java_only.mkdir()
        (java_only / "java").symlink_to(Path(shutil.which("java") or "").resolve())
        cached = run_cli("kafka", "fetch", env=cli_env(tmp_path, str(java_only)))
        assert cached.returncode == 0, cached.stderr
        assert f"jars in {libs_dir(settings)}" in cached.stdout

        stopped = run_cli("kafka", "down", env=env)
        assert stopped.returncode == 0 and "stopped Kafka single node(s) 1" in stopped.stdout
        assert run_cli("kafka", "status", env=env).returncode == 1
        with pytest.raises(BrokerError, match="not running"):
            ensure_local_broker(settings, start=False)

        # A restart keeps the data: the records written before are still there.
        restarted = up(settings, "single")
        assert not restarted.already_running and restarted.started_nodes == (1,)
        more = [b"after-restart"]
        assert sorted(_round_trip(bootstrap, "lifecycle", more, 51)) == sorted(values + more)

        # Moving a running broker, or its data, to other ports is refused, naming both ports.
        elsewhere = settings.with_overrides(kafka_port=port + 100)
        with pytest.raises(BrokerError, match=rf"already runs at {bootstrap} \(port {port}, not"):
            up(elsewhere, "single")
    finally:
        down(settings, "single")
    with pytest.raises(BrokerError, match=f"made for port {port}, not {port + 100}"):
        up(elsewhere, "single")

    # A node that dies while starting: the error carries the end of its log.
    meta = tmp_path / "kafka-state" / "single" / "node-1" / "data" / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    try:
        with pytest.raises(BrokerError, match=r"exit code \d+ while starting") as failure:
            up(settings, "single")
        assert "last lines of" in str(failure.value) and "node" in str(failure.value).lower()
        assert not status(settings, "single").any_alive
    finally:
        down(settings, "single", purge=True)
    assert not (tmp_path / "kafka-state" / "single").exists()
