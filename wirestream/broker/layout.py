"""Where each node of a local broker lives: its ports and files (pure, no I/O).

Port scheme, from one base port (``Settings.kafka_port``, default 19092):

* single: broker (client) port = base, controller port = base + 1.
* cluster: node i (1..3) gets broker port base + 10*(i-1) and controller port that + 1,
  so 19092/19093, 19102/19103, 19112/19113 by default.

Both modes start at the base port, so with the same base only one of them runs at a time.
State lives in ``<home>/kafka-state/<mode>/``: ``state.json``, ``log4j2.properties`` and one
``node-<id>/`` per node with ``server.properties``, ``data/``, ``kafka.log`` and ``kafka.pid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["single", "cluster"]
MODES: tuple[Mode, ...] = ("single", "cluster")
HOST = "127.0.0.1"
CLUSTER_SIZE = 3
CLUSTER_PORT_STRIDE = 10


@dataclass(frozen=True)
class NodeLayout:
    node_id: int
    broker_port: int
    controller_port: int
    directory: Path

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.broker_port}"

    @property
    def controller_endpoint(self) -> str:
        return f"{HOST}:{self.controller_port}"

    @property
    def ports(self) -> tuple[int, int]:
        return (self.broker_port, self.controller_port)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def properties_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"


@dataclass(frozen=True)
class BrokerLayout:
    mode: Mode
    base_port: int
    state_dir: Path
    nodes: tuple[NodeLayout, ...]

    @property
    def bootstrap(self) -> str:
        """Client bootstrap address: every node's broker listener, comma-separated."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def log4j2_file(self) -> Path:
        return self.state_dir / "log4j2.properties"

    @property
    def lock_file(self) -> Path:
        return self.state_dir.parent / f".{self.mode}.lock"

    def node(self, node_id: int) -> NodeLayout:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise ValueError(f"no node {node_id} in the {self.mode} broker (nodes: {self.node_ids})")

    @property
    def node_ids(self) -> list[int]:
        return [n.node_id for n in self.nodes]


def state_dir(home: Path, mode: Mode) -> Path:
    return home / "kafka-state" / mode


def broker_layout(home: Path, mode: Mode, base_port: int) -> BrokerLayout:
    """Ports and paths of every node of the ``mode`` broker started from ``base_port``."""
    if mode not in MODES:
        raise ValueError(f"unknown broker mode {mode!r}; use one of {', '.join(MODES)}")
    size = 1 if mode == "single" else CLUSTER_SIZE
    highest = base_port + CLUSTER_PORT_STRIDE * (size - 1) + 1
    if base_port < 1024 or highest > 65535:
        raise ValueError(
            f"kafka port {base_port} is out of range: the {mode} broker uses ports "
            f"{base_port}..{highest}, which must lie within 1024..65535"
        )
    root = state_dir(home, mode)
    nodes = tuple(
        NodeLayout(
            node_id=i,
            broker_port=base_port + CLUSTER_PORT_STRIDE * (i - 1),
            controller_port=base_port + CLUSTER_PORT_STRIDE * (i - 1) + 1,
            directory=root / f"node-{i}",
        )
        for i in range(1, size + 1)
    )
    return BrokerLayout(mode, base_port, root, nodes)
