"""Starting, stopping and inspecting the local broker (single node or 3-node cluster).

A node counts as running when the pid in its pid file is alive and is our ``kafka.Kafka``
process for that node; the broker counts as up when it answers a metadata request listing
every node as a registered broker. Each node is formatted once (its ``meta.properties``
marks that); later ``up`` calls reuse the data.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from wirestream.broker import BrokerError
from wirestream.broker.fetch import fetch_kafka_jars
from wirestream.broker.layout import (
    HOST,
    MODES,
    BrokerLayout,
    Mode,
    NodeLayout,
    broker_layout,
    state_dir,
)
from wirestream.broker.nodeconfig import (
    java_command,
    render_properties,
    server_properties,
    storage_tool_command,
)
from wirestream.broker.process import (
    exit_description,
    file_lock,
    log_tail,
    pid_alive,
    port_in_use,
    rss_mib,
    running_pid,
    spawn_detached,
    tcp_answers,
    terminate,
)
from wirestream.broker.toolchain import find_java
from wirestream.config import Settings

log = logging.getLogger(__name__)

START_TIMEOUT_S: dict[str, float] = {"single": 90.0, "cluster": 180.0}
STOP_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 3.0
LOG4J2_RESOURCE = "log4j2.properties"


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    pid: int | None
    broker_port: int
    controller_port: int
    answering: bool
    brokers_registered: int
    rss_mib: float | None
    data_dir: str
    log_file: str

    @property
    def alive(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class BrokerStatus:
    mode: Mode
    bootstrap: str
    cluster_id: str | None
    nodes: tuple[NodeStatus, ...]
    formatted: bool = field(default=False)

    @property
    def running(self) -> bool:
        """Every node alive and answering, and all of them registered as brokers."""
        return all(n.alive and n.answering for n in self.nodes) and self.brokers == len(self.nodes)

    @property
    def any_alive(self) -> bool:
        return any(n.alive for n in self.nodes)

    @property
    def brokers(self) -> int:
        return max((n.brokers_registered for n in self.nodes), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "running": self.running,
            "brokers": self.brokers,
            "nodes": [{**asdict(n), "alive": n.alive} for n in self.nodes],
        }


@dataclass(frozen=True)
class UpResult:
    status: BrokerStatus
    already_running: bool
    started_nodes: tuple[int, ...]
    seconds: float


# ---------------------------------------------------------------------------------------------
# Layout and state


def _read_state(root: Path) -> dict[str, Any] | None:
    path = root / "state.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BrokerError(f"{path} is unreadable ({exc}); remove it or run `down --purge`") from exc


def current_layout(settings: Settings, mode: Mode) -> BrokerLayout:
    """The layout in force: the ports the existing state was made for, else the settings' port."""
    state = _read_state(state_dir(settings.home, mode))
    port = int(state["base_port"]) if state else settings.kafka_port
    return broker_layout(settings.home, mode, port)


def _requested_layout(settings: Settings, mode: Mode) -> BrokerLayout:
    """The layout ``up`` will use; refuses to move existing data to other ports."""
    state = _read_state(state_dir(settings.home, mode))
    if state and int(state["base_port"]) != settings.kafka_port:
        flag = " --cluster" if mode == "cluster" else ""
        running = current_layout(settings, mode)
        if any(_node_pid(n) is not None for n in running.nodes):
            raise BrokerError(
                f"the {mode} broker already runs at {running.bootstrap} (port "
                f"{state['base_port']}, not {settings.kafka_port}); stop it first with "
                f"`wirestream kafka down{flag}`"
            )
        raise BrokerError(
            f"the {mode} broker's data in {state_dir(settings.home, mode)} was made for port "
            f"{state['base_port']}, not {settings.kafka_port}: start it with "
            f"`wirestream kafka up{flag} --port {state['base_port']}`, or drop the data with "
            f"`wirestream kafka down{flag} --purge` first"
        )
    return broker_layout(settings.home, mode, settings.kafka_port)


# ---------------------------------------------------------------------------------------------
# Probing


def _node_pid(node: NodeLayout) -> int | None:
    return running_pid(node.pid_file, str(node.properties_file))


def _metadata_brokers(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S) -> int | None:
    """Number of brokers a metadata request reports, or None when nobody answers in time."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: connection-refused noise while a node starts is expected, not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return None


def _node_status(node: NodeLayout) -> NodeStatus:
    pid = _node_pid(node)
    answering, brokers = False, 0
    if pid is not None and tcp_answers(HOST, node.broker_port):
        count = _metadata_brokers(node.bootstrap)
        answering, brokers = count is not None, count or 0
    return NodeStatus(
        node_id=node.node_id,
        pid=pid,
        broker_port=node.broker_port,
        controller_port=node.controller_port,
        answering=answering,
        brokers_registered=brokers,
        rss_mib=None if pid is None else rss_mib(pid),
        data_dir=str(node.data_dir),
        log_file=str(node.log_file),
    )


def _status_of(layout: BrokerLayout) -> BrokerStatus:
    state = _read_state(layout.state_dir)
    return BrokerStatus(
        mode=layout.mode,
        bootstrap=layout.bootstrap,
        cluster_id=state.get("cluster_id") if state else None,
        nodes=tuple(_node_status(n) for n in layout.nodes),
        formatted=all((n.data_dir / "meta.properties").is_file() for n in layout.nodes),
    )


def status(settings: Settings, mode: Mode = "single") -> BrokerStatus:
    """Per-node pid, ports, answering, broker count, memory, data dir and log file."""
    return _status_of(current_layout(settings, mode))


# ---------------------------------------------------------------------------------------------
# Starting


def free_base_port(mode: Mode, *, low: int = 20000, high: int = 32000, tries: int = 200) -> int:
    """A random base port whose whole ``mode`` port block is free now (for tests, parallel runs).

    The range stays below Linux's ephemeral ports (32768+), which outgoing connections take.
    """
    for _ in range(tries):
        base = random.randrange(low, high)
        layout = broker_layout(Path("/nonexistent"), mode, base)
        if not any(port_in_use(HOST, p) for n in layout.nodes for p in n.ports):
            return base
    raise BrokerError(f"no free port block for a {mode} broker in {low}..{high}")


def _check_ports_free(settings: Settings, layout: BrokerLayout, nodes: list[NodeLayout]) -> None:
    for node in nodes:
        for port, role in zip(node.ports, ("broker", "controller"), strict=True):
            if not port_in_use(HOST, port):
                continue
            holder = _wirestream_holder(settings, layout.mode, port)
            raise BrokerError(
                f"port {port} ({role} listener of {layout.mode} node {node.node_id}) is already "
                f"in use{holder}; stop whatever listens there or choose another base port with "
                "`--port` / WIRESTREAM_KAFKA_PORT"
            )


def _wirestream_holder(settings: Settings, mode: Mode, port: int) -> str:
    """' by the wirestream <other> broker (...)' when our other-mode broker holds ``port``."""
    for other in MODES:
        if other == mode or _read_state(state_dir(settings.home, other)) is None:
            continue
        layout = current_layout(settings, other)
        for node in layout.nodes:
            if port in node.ports and _node_pid(node) is not None:
                flag = " --cluster" if other == "cluster" else ""
                return f" by the wirestream {other} broker (stop it: `wirestream kafka down{flag}`)"
    return " by another process"


def _run_storage_tool(cmd: list[str], what: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise BrokerError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _write_configs(settings: Settings, layout: BrokerLayout) -> None:
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    log4j2 = resources.files("wirestream.broker").joinpath(LOG4J2_RESOURCE).read_text()
    layout.log4j2_file.write_text(log4j2)
    for node in layout.nodes:
        node.directory.mkdir(parents=True, exist_ok=True)
        props = server_properties(layout, node, partitions=settings.topic_partitions)
        header = f"wirestream {layout.mode} broker, node {node.node_id}; rewritten by every `up`."
        node.properties_file.write_text(render_properties(props, header))


def _formatted_cluster_id(layout: BrokerLayout) -> str | None:
    """The cluster id already written into a node's ``meta.properties`` (state file lost)."""
    for node in layout.nodes:
        meta = node.data_dir / "meta.properties"
        if meta.is_file():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
    return None


def _format_storage(settings: Settings, layout: BrokerLayout, java: Path, libs: Path) -> str:
    """The cluster id, formatting every node that has no ``meta.properties`` yet."""
    state = _read_state(layout.state_dir)
    if state is None:
        cluster_id = _formatted_cluster_id(layout)
        if cluster_id is None:
            cmd = storage_tool_command(java, libs, layout.log4j2_file, "random-uuid")
            cluster_id = _run_storage_tool(cmd, "kafka.tools.StorageTool random-uuid").strip()
        state = {
            "mode": layout.mode,
            "base_port": layout.base_port,
            "cluster_id": cluster_id,
            "kafka_version": settings.kafka_version,
        }
        layout.state_file.write_text(json.dumps(state, indent=2) + "\n")
    cluster_id = str(state["cluster_id"])
    for node in layout.nodes:
        if (node.data_dir / "meta.properties").is_file():
            continue
        # Single node: dynamic quorum bootstrapped by this node alone. Cluster: static voters
        # (Kafka rejects --standalone when controller.quorum.voters is set).
        args = ["format", "-t", cluster_id, "-c", str(node.properties_file)]
        if layout.mode == "single":
            args.append("--standalone")
        cmd = storage_tool_command(java, libs, layout.log4j2_file, *args)
        _run_storage_tool(cmd, f"formatting {layout.mode} node {node.node_id}")
        log.info("formatted %s node %d in %s", layout.mode, node.node_id, node.data_dir)
    return cluster_id


def _wait_ready(layout: BrokerLayout, started: dict[int, int], timeout_s: float) -> None:
    """Until a metadata request lists every node as a broker; fail fast when a node dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        for node_id, pid in started.items():
            node = layout.node(node_id)
            if not pid_alive(pid):  # our own child: no pid-file or command-line check needed
                raise BrokerError(
                    f"Kafka {layout.mode} node {node_id} (pid {pid}) "
                    f"{exit_description(pid)} while starting; "
                    f"last lines of {node.log_file}:\n{log_tail(node.log_file) or '(empty)'}"
                )
        if any(tcp_answers(HOST, n.broker_port, 0.5) for n in layout.nodes):
            brokers = _metadata_brokers(layout.bootstrap)
            if brokers == len(layout.nodes):
                return
        if time.monotonic() > deadline:
            first = layout.node(next(iter(started), layout.nodes[0].node_id))
            raise BrokerError(
                f"the {layout.mode} broker did not answer with {len(layout.nodes)} broker(s) "
                f"within {timeout_s:.0f}s; last lines of {first.log_file}:\n"
                f"{log_tail(first.log_file)}"
            )
        time.sleep(0.5)


def _start_nodes(
    settings: Settings, layout: BrokerLayout, nodes: list[NodeLayout]
) -> dict[int, int]:
    """Check ports, fetch jars, write configs, format, and spawn ``nodes``; returns their pids."""
    _check_ports_free(settings, layout, nodes)
    java = find_java()
    libs = fetch_kafka_jars(settings)
    _write_configs(settings, layout)
    _format_storage(settings, layout, java, libs)
    started: dict[int, int] = {}
    for node in nodes:
        cmd = java_command(java, libs, layout.log4j2_file, node, layout.mode)
        with node.log_file.open("a") as out:  # marks where this start's output begins
            out.write(
                f"==== wirestream: starting {layout.mode} node {node.node_id}: {' '.join(cmd)}\n"
            )
        pid = spawn_detached(cmd, node.log_file, node.directory)
        node.pid_file.write_text(f"{pid}\n")
        started[node.node_id] = pid
        log.info(
            "started %s node %d (pid %d) on %s", layout.mode, node.node_id, pid, node.bootstrap
        )
    return started


def up(settings: Settings, mode: Mode = "single", *, timeout_s: float | None = None) -> UpResult:
    """Start the ``mode`` broker (jars fetched and storage formatted as needed) and wait for it.

    Idempotent: a running broker is reported as such; nodes of a partly running cluster that
    are down are started again.
    """
    began = time.monotonic()
    layout = _requested_layout(settings, mode)
    with file_lock(layout.lock_file):
        pids = {n.node_id: _node_pid(n) for n in layout.nodes}
        missing = [n for n in layout.nodes if pids[n.node_id] is None]
        if not missing:
            current = _status_of(layout)
            if current.running:
                return UpResult(current, True, (), time.monotonic() - began)
        started = _start_nodes(settings, layout, missing) if missing else {}
        try:
            _wait_ready(layout, started, timeout_s or START_TIMEOUT_S[mode])
        except BrokerError:
            terminate(started.values(), timeout_s=10)
            for node_id in started:
                layout.node(node_id).pid_file.unlink(missing_ok=True)
            raise
        seconds = time.monotonic() - began
        log.info("%s broker ready at %s in %.1fs", mode, layout.bootstrap, seconds)
        return UpResult(_status_of(layout), False, tuple(started), seconds)


# ---------------------------------------------------------------------------------------------
# Stopping


def stop_node(
    settings: Settings, mode: Mode, node_id: int, *, timeout_s: float = STOP_TIMEOUT_S
) -> bool:
    """Stop one node (SIGTERM, SIGKILL after ``timeout_s``); False when it was not running."""
    node = current_layout(settings, mode).node(node_id)
    pid = _node_pid(node)
    if pid is None:
        return False
    killed = terminate([pid], timeout_s)
    if killed:
        log.warning("%s node %d did not stop within %.0fs; killed", mode, node_id, timeout_s)
    node.pid_file.unlink(missing_ok=True)
    return True


def down(
    settings: Settings,
    mode: Mode = "single",
    *,
    purge: bool = False,
    timeout_s: float = STOP_TIMEOUT_S,
) -> list[int]:
    """Stop every node of the ``mode`` broker; ``purge`` also deletes its data and logs.

    Returns the ids of the nodes that were running. All nodes get SIGTERM at once: a combined
    node shuts its broker down first, which needs a controller quorum; stopping nodes one by one
    leaves the last ones without a quorum, waiting out the timeout.
    """
    layout = current_layout(settings, mode)
    with file_lock(layout.lock_file):
        pids = {n.node_id: _node_pid(n) for n in layout.nodes}
        running = {node_id: pid for node_id, pid in pids.items() if pid is not None}
        killed = terminate(running.values(), timeout_s)
        if killed:
            log.warning("%s pid(s) %s did not stop within %.0fs; killed", mode, killed, timeout_s)
        for node in layout.nodes:
            node.pid_file.unlink(missing_ok=True)
        stopped = sorted(running)
        if purge and layout.state_dir.exists():
            shutil.rmtree(layout.state_dir)
            log.info("removed %s", layout.state_dir)
        return sorted(stopped)


# ---------------------------------------------------------------------------------------------
# The one entry point the rest of the project uses


def ensure_local_broker(settings: Settings, start: bool = True) -> str:
    """Bootstrap address of the local broker, starting the single-node one when needed.

    A running local cluster (``wirestream kafka up --cluster``) is used as it is; otherwise the
    single-node broker on ``settings.kafka_port`` is started (``start=True``) or required.
    """
    for mode in MODES:
        if _read_state(state_dir(settings.home, mode)) is None:
            continue
        layout = current_layout(settings, mode)
        # A cluster with a node down still serves (min ISR 2): any answering node will do.
        answering = [
            n for n in layout.nodes if _node_pid(n) is not None and tcp_answers(HOST, n.broker_port)
        ]
        if answering:
            log.debug("using the local %s broker at %s", mode, layout.bootstrap)
            return layout.bootstrap
    if not start:
        raise BrokerError(
            "the local Kafka broker is not running: start it with `wirestream kafka up`, "
            "or point wirestream at a broker with WIRESTREAM_BOOTSTRAP_SERVERS / --bootstrap-servers"
        )
    return up(settings, "single").status.bootstrap
