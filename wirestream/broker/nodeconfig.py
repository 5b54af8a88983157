"""What a node is started with: its ``server.properties`` and its ``java`` command line (pure).

Both modes run combined broker+controller nodes (KRaft) on loopback with PLAINTEXT listeners.

* single: one node, dynamic quorum (formatted with ``--standalone``), every replication factor 1.
* cluster: three nodes with static voters, replication factor 3 and ``min.insync.replicas=2``,
  for the internal topics too, so one node may stop while ``acks=all`` producers keep working.

Retention: ``log.retention.ms=-1``. Records carry their capture (event) time as the Kafka
timestamp, often months old; under Kafka's default 7-day time retention, a topic created without
the per-topic configs of ``wirestream.topics`` (e.g. auto-created) would lose such records at the
next retention check. A local broker therefore keeps everything unless a topic says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from wirestream.broker.layout import BrokerLayout, NodeLayout

# Heap per node (-Xms, -Xmx): modest, since several test brokers may share a small machine.
HEAP: Mapping[str, tuple[str, str]] = {"single": ("256m", "1g"), "cluster": ("128m", "512m")}
# Kafka's own start script's G1 settings (kafka-run-class.sh).
JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
# Fewer partitions than Kafka's 50 for the internal topics: a local broker has few groups and
# transactional producers, and 50 x 3 replicas on a laptop slow down the first group join.
INTERNAL_TOPIC_PARTITIONS = 10


def server_properties(layout: BrokerLayout, node: NodeLayout, *, partitions: int) -> dict[str, str]:
    """Every ``server.properties`` entry of ``node``; ``partitions`` is the default per topic."""
    if partitions < 1:
        raise ValueError(f"default partitions must be >= 1, got {partitions}")
    clustered = layout.mode == "cluster"
    replicas = str(len(layout.nodes)) if clustered else "1"
    min_isr = "2" if clustered else "1"
    listeners = f"PLAINTEXT://{node.bootstrap},CONTROLLER://{node.controller_endpoint}"
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.ms": "-1",
        "auto.create.topics.enable": "true",
    }
    if clustered:
        # Static voters: every node knows the whole quorum; formatted without --standalone.
        props["controller.quorum.voters"] = ",".join(
            f"{n.node_id}@{n.controller_endpoint}" for n in layout.nodes
        )
        props["advertised.listeners"] = f"PLAINTEXT://{node.bootstrap}"
    else:
        # Dynamic quorum (KIP-853): the node bootstraps the quorum alone (format --standalone).
        props["controller.quorum.bootstrap.servers"] = node.controller_endpoint
        props["advertised.listeners"] = listeners
    return props


def render_properties(props: Mapping[str, str], header: str = "") -> str:
    """Java properties text; values here never need escaping (paths, numbers, endpoints)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in props.items():
        if "\n" in value or "\\" in value:
            raise ValueError(f"property {key}={value!r} would need escaping")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def java_command(java: Path, libs: Path, log4j2: Path, node: NodeLayout, mode: str) -> list[str]:
    """The command line of one node: ``java ... -cp 'libs/*' kafka.Kafka server.properties``."""
    xms, xmx = HEAP[mode]
    return [
        str(java),
        f"-Xms{xms}",
        f"-Xmx{xmx}",
        *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(node.properties_file),
    ]


def storage_tool_command(java: Path, libs: Path, log4j2: Path, *args: str) -> list[str]:
    """``kafka.tools.StorageTool`` (random-uuid, format) on the same classpath."""
    return [
        str(java),
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={log4j2}",
        "-cp",
        f"{libs}/*",
        "kafka.tools.StorageTool",
        *args,
    ]
