"""Three local KRaft nodes (``heatmap.stack.kafka_cluster``) that a test may kill -9 one by
one and start again on the same address, ports and data; who leads what, as the brokers
and the controllers say."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kafka import TopicPartition
from kafka.errors import KafkaError

from heatmap.settings.kafka import KafkaConnection
from heatmap.stack import kafka, kafka_cluster
from heatmap.stack.kafka_cluster import KafkaClusterConfig
from heatmap.stack.settings import StackSettings
from support.waiting import wait_until


class KafkaCluster:
    """The three nodes under ``home``, each with a ``heap_mb`` JVM heap."""

    def __init__(self, home: Path, heap_mb: int = 384) -> None:
        settings = StackSettings()
        port, controller_port = kafka_cluster.free_cluster_ports()
        self.config = KafkaClusterConfig(home, port, controller_port, heap_mb)
        self.java = kafka.java_executable(settings.java_home)
        self.lib_dir = kafka.resolve_jars(settings.cache_dir, settings.maven_command)
        self.pids: dict[int, int] = {}

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    @property
    def node_ids(self) -> list[int]:
        return [node.node_id for node in self.config.nodes()]

    def connection(self, client_id: str = "heat-test") -> KafkaConnection:
        return KafkaConnection(bootstrap_servers=self.bootstrap, client_id=client_id)

    def start(self, timeout_s: float = 120) -> None:
        """Start every node that is not running; return once all three are brokers of the
        cluster and the controllers have a leader."""
        for node_id in self.node_ids:
            if node_id not in self.pids:
                self.pids[node_id] = kafka_cluster.start_node(self.config, node_id, self.java,
                                                              self.lib_dir)
        self.wait_for_brokers(set(self.node_ids), timeout_s)

    def start_node(self, node_id: int, timeout_s: float = 120) -> None:
        """Start one killed node again (same address, ports and data); return once it
        listens and the cluster lists it as a broker again."""
        self.pids[node_id] = kafka_cluster.start_node(self.config, node_id, self.java,
                                                      self.lib_dir)
        node = self.config.node(node_id)
        wait_until(lambda: kafka.accepts_connections(node.bootstrap), timeout_s=timeout_s,
                   interval_s=0.2, message=f"node {node_id} does not listen; see {node.log_path}")
        self.wait_for_brokers(set(self.node_ids), timeout_s)

    def kill(self, node_id: int) -> None:
        """kill -9 of one node."""
        pid = self.pids.pop(node_id)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # our child: reap it

    def close(self) -> None:
        for node_id in list(self.pids):
            self.kill(node_id)

    def brokers(self) -> set[int]:
        """Ids of the brokers the cluster's metadata lists (the unfenced ones)."""
        admin = kafka.admin_client(self.connection(), timeout_s=5)
        try:
            return {broker["broker_id"] for broker in admin.describe_cluster()["brokers"]}
        finally:
            admin.close()

    def wait_for_brokers(self, wanted: set[int], timeout_s: float) -> None:
        def listed() -> bool:
            for node_id, pid in self.pids.items():
                assert kafka.processes.is_alive(pid), \
                    f"node {node_id} exited; see {self.config.node(node_id).log_path}"
            try:
                return self.brokers() == wanted and self.controller_leader() is not None
            except (KafkaError, OSError):  # not answering yet
                return False

        wait_until(listed, timeout_s=timeout_s, interval_s=0.5,
                   message=f"the cluster did not list brokers {sorted(wanted)}")

    def partitions(self, topic: str) -> list[dict]:
        """Each partition of ``topic``: ``leader_id``, ``replica_nodes``, ``isr_nodes``."""
        admin = kafka.admin_client(self.connection(), timeout_s=5)
        try:
            [described] = admin.describe_topics([topic])
        finally:
            admin.close()
        return sorted(described["partitions"], key=lambda p: p["partition_index"])

    def leader_of(self, topic: str, partition: int = 0) -> int:
        return int(self.partitions(topic)[partition]["leader_id"])

    def controller_leader(self) -> int | None:
        return kafka_cluster.quorum_leader(self.config)

    def fully_replicated(self, topics: list[str]) -> bool:
        """Whether every partition of ``topics`` has all its replicas in sync."""
        return all(len(p["isr_nodes"]) == len(p["replica_nodes"])
                   for topic in topics for p in self.partitions(topic))

    def lead(self, topic: str, node_id: int, timeout_s: float = 60) -> None:
        """Make ``node_id`` the leader of ``topic``'s partition 0: first in its replica
        list (the preferred leader), then a preferred-leader election."""
        partition = TopicPartition(topic, 0)
        replicas = self.partitions(topic)[0]["replica_nodes"]
        order = [node_id, *(replica for replica in replicas if replica != node_id)]
        admin = kafka.admin_client(self.connection(), timeout_s=10)
        try:
            admin.alter_partition_reassignments({partition: order})
            wait_until(lambda: self.partitions(topic)[0]["replica_nodes"] == order,
                       timeout_s=timeout_s, interval_s=0.2,
                       message=f"{topic}: replicas not reordered to {order}")
            admin.elect_leaders(0, {topic: [0]})  # 0: the preferred replica
        finally:
            admin.close()
        wait_until(lambda: self.leader_of(topic) == node_id, timeout_s=timeout_s,
                   interval_s=0.2, message=f"node {node_id} did not become leader of {topic}")
