"""Three local Kafka nodes in KRaft mode, each broker and controller, as plain processes.

Each node binds its own loopback address (Linux routes all of 127.0.0.0/8 to the
loopback interface), so all three use the same two ports. The three controllers
form the metadata quorum (two of them elect a leader), and the brokers' own topics
(consumer offsets, transaction state) have three replicas of which two must be in
sync: any one node can be lost, killed or restarted while clients keep working.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

from heatmap.stack import kafka, ports, processes
from heatmap.stack.kafka import KafkaBrokerConfig, StackError

CLUSTER_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
# Replicas of the brokers' own topics, and how many must be in sync for a write.
CLUSTER_REPLICATION_FACTOR = 3
CLUSTER_MIN_INSYNC_REPLICAS = 2


@dataclass(frozen=True)
class KafkaClusterConfig:
    """How the three-node cluster runs.

    Parameters
    ----------
    home : Path
        Cluster directory; node ``n`` lives in ``home/node-n``.
    port, controller_port : int
        The client and controller ports, the same on every node's address.
    heap_mb : int
        Fixed JVM heap of each node, in MiB.
    hosts : tuple of str
        One loopback address per node; node ids count from 1 in this order.
    """

    home: Path
    port: int
    controller_port: int
    heap_mb: int
    hosts: tuple[str, ...] = CLUSTER_HOSTS

    @property
    def bootstrap(self) -> str:
        """Every node's client address: clients reach the cluster through any live one."""
        return ",".join(f"{host}:{self.port}" for host in self.hosts)

    @property
    def quorum_voters(self) -> str:
        return ",".join(f"{node_id}@{host}:{self.controller_port}"
                        for node_id, host in enumerate(self.hosts, start=1))

    def nodes(self) -> list[KafkaBrokerConfig]:
        """Each node's own configuration, node ids 1, 2, 3."""
        return [KafkaBrokerConfig(
            self.home / f"node-{node_id}", self.port, self.controller_port, self.heap_mb,
            host=host, node_id=node_id, quorum_voters=self.quorum_voters,
            internal_replication_factor=min(CLUSTER_REPLICATION_FACTOR, len(self.hosts)),
            internal_min_insync_replicas=min(CLUSTER_MIN_INSYNC_REPLICAS, len(self.hosts)))
            for node_id, host in enumerate(self.hosts, start=1)]

    def node(self, node_id: int) -> KafkaBrokerConfig:
        return self.nodes()[node_id - 1]

    @property
    def cluster_id_path(self) -> Path:
        return self.home / "cluster.id"


def free_cluster_ports(hosts: tuple[str, ...] = CLUSTER_HOSTS) -> tuple[int, int]:
    """A client and a controller port free on every one of ``hosts``.

    Raises StackError when an address cannot be bound at all (no loopback route to it).
    """
    for host in hosts:
        if not ports.is_free(0, host):
            raise StackError(f"cannot bind {host}: the cluster needs the loopback addresses "
                             f"{', '.join(hosts)} (all of 127.0.0.0/8 on Linux)")
    chosen: list[int] = []
    while len(chosen) < 2:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        if port not in chosen and all(ports.is_free(port, host) for host in hosts):
            chosen.append(port)
    return chosen[0], chosen[1]


def start_node(config: KafkaClusterConfig, node_id: int, java: str, lib_dir: Path) -> int:
    """Start one node (formatting its storage with the cluster's id when new); its pid."""
    config.home.mkdir(parents=True, exist_ok=True)
    if not config.cluster_id_path.exists():
        config.cluster_id_path.write_text(kafka.kafka_uuid())
    cluster_id = config.cluster_id_path.read_text().strip()
    return kafka.start_broker(config.node(node_id), java, lib_dir, cluster_id=cluster_id)


def node_pid(config: KafkaClusterConfig, node_id: int) -> int | None:
    """The pid of node ``node_id`` while it runs."""
    node = config.node(node_id)
    return processes.running_pid(node.pid_path, str(node.properties_path))


def quorum_leader(config: KafkaClusterConfig) -> int | None:
    """The node id of the metadata quorum's leader, as the nodes last recorded it.

    Each controller writes the epoch it is in, and the leader of that epoch once it
    knows it, to its ``quorum-state`` file. The newest epoch any node recorded is the
    current one; None while no node knows its leader (before the first election, or
    while one runs).
    """
    recorded: list[tuple[int, int]] = []  # (epoch, leader id or -1)
    for node in config.nodes():
        path = node.home / "data" / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        recorded.append((int(state.get("leaderEpoch", -1)), int(state.get("leaderId", -1))))
    if not recorded:
        return None
    newest = max(epoch for epoch, _ in recorded)
    leaders = {leader for epoch, leader in recorded if epoch == newest and leader > 0}
    return leaders.pop() if len(leaders) == 1 else None
