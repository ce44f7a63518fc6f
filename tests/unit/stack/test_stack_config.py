import json
import subprocess
from pathlib import Path

from heatmap.stack import ports
from heatmap.stack.kafka import KafkaBrokerConfig, pom_path
from heatmap.stack.kafka_cluster import (
    KafkaClusterConfig,
    free_cluster_ports,
    quorum_leader,
)
from heatmap.stack.local import StackState, _is_external, _redact
from heatmap.stack.postgres import cluster_root


def _properties(config: KafkaBrokerConfig) -> dict[str, str]:
    return dict(line.split("=", 1) for line in config.server_properties().splitlines())


def test_broker_is_a_single_kraft_node_on_loopback(tmp_path: Path) -> None:
    properties = _properties(KafkaBrokerConfig(tmp_path, 19092, 19093, 512))
    assert properties["process.roles"] == "broker,controller"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"


def test_the_pom_pins_kafka_4_0_and_a_log4j2_backend() -> None:
    pom = pom_path().read_text()
    assert "<kafka.version>4.0." in pom
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<artifactId>log4j-core</artifactId>" in pom


def test_env_lines_survive_a_shell_round_trip() -> None:
    state = StackState(kafka_bootstrap="127.0.0.1:9092", kafka_external=False, kafka_port=9092,
                       kafka_controller_port=9093,
                       database_url="postgresql://heat_admin:p'a$s@127.0.0.1:5432/heat",
                       database_external=False, postgres_port=5432, postgres_root="/x",
                       topic_prefix="heat.")
    script = "\n".join(state.env_lines()) + '\nprintf %s "$HEAT_DATABASE_URL"'
    printed = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout
    assert printed == state.database_url


def test_our_own_endpoints_in_the_environment_are_not_external() -> None:
    assert not _is_external(None, None)
    assert not _is_external("127.0.0.1:9092", "127.0.0.1:9092")
    assert _is_external("kafka:9092", "127.0.0.1:9092")
    assert _is_external("kafka:9092", None)


def test_password_is_redacted_for_display() -> None:
    assert _redact("postgresql://u:secret@h:1/db") == "postgresql://u:***@h:1/db"
    assert _redact("postgresql://h:1/db") == "postgresql://h:1/db"


def test_cluster_lives_where_the_server_user_can_reach_it(tmp_path: Path) -> None:
    assert cluster_root(tmp_path, None) == tmp_path / "postgres"
    as_root = cluster_root(tmp_path, "postgres")
    assert as_root.parent == Path("/var/tmp")
    assert as_root == cluster_root(tmp_path, "postgres")


def test_cluster_nodes_share_a_quorum_on_their_own_addresses(tmp_path: Path) -> None:
    cluster = KafkaClusterConfig(tmp_path, 19092, 19093, 384)
    assert cluster.bootstrap == "127.0.0.2:19092,127.0.0.3:19092,127.0.0.4:19092"
    nodes = [_properties(node) for node in cluster.nodes()]
    voters = "1@127.0.0.2:19093,2@127.0.0.3:19093,3@127.0.0.4:19093"
    assert [node["node.id"] for node in nodes] == ["1", "2", "3"]
    assert {node["controller.quorum.voters"] for node in nodes} == {voters}
    assert nodes[1]["listeners"] == "PLAINTEXT://127.0.0.3:19092,CONTROLLER://127.0.0.3:19093"
    assert nodes[1]["advertised.listeners"] == "PLAINTEXT://127.0.0.3:19092"
    assert len({node["log.dirs"] for node in nodes}) == 3
    # One lost node loses neither committed offsets nor transactions, nor stops them.
    for node in nodes:
        assert node["offsets.topic.replication.factor"] == "3"
        assert node["transaction.state.log.replication.factor"] == "3"
        assert node["transaction.state.log.min.isr"] == "2"
        assert node["min.insync.replicas"] == "2"


def test_a_single_broker_keeps_one_replica_of_everything(tmp_path: Path) -> None:
    properties = _properties(KafkaBrokerConfig(tmp_path, 19092, 19093, 512))
    assert properties["node.id"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["min.insync.replicas"] == "1"


def test_the_quorum_leader_is_the_one_of_the_newest_epoch(tmp_path: Path) -> None:
    cluster = KafkaClusterConfig(tmp_path, 19092, 19093, 384)
    assert quorum_leader(cluster) is None  # no election yet
    states = [node.home / "data" / "__cluster_metadata-0" / "quorum-state"
              for node in cluster.nodes()]

    def record(*leaders_and_epochs: tuple[int, int]) -> int | None:
        for state, (leader, epoch) in zip(states, leaders_and_epochs, strict=True):
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"leaderId": leader, "leaderEpoch": epoch}))
        return quorum_leader(cluster)

    assert record((2, 4), (2, 4), (1, 3)) == 2  # node 3 has not heard of epoch 4 yet
    # Node 3 started an election (epoch 5): no leader is known until it ends.
    assert record((2, 4), (2, 4), (-1, 5)) is None
    assert record((3, 5), (2, 4), (3, 5)) == 3


def test_cluster_addresses_are_bindable_loopback_addresses() -> None:
    port, controller_port = free_cluster_ports()
    assert port != controller_port
    assert all(ports.is_free(port, host) for host in ("127.0.0.2", "127.0.0.3", "127.0.0.4"))


def test_a_tls_only_cluster_has_hostssl_lines_and_no_host_line(tmp_path: Path) -> None:
    from heatmap.stack.postgres import PostgresClusterConfig, hba_lines, write_hba

    def kinds(tls_only: bool) -> set[str]:
        config = PostgresClusterConfig(root=tmp_path, port=5432, bin_dir=tmp_path,
                                       os_user=None, fsync=False, database="heat", tls=True,
                                       tls_only=tls_only)
        return {line.split()[0] for line in hba_lines(config).splitlines()
                if not line.startswith("#")}

    assert kinds(tls_only=True) == {"local", "hostssl"}
    assert kinds(tls_only=False) == {"local", "host"}
    config = PostgresClusterConfig(root=tmp_path, port=5432, bin_dir=tmp_path, os_user=None,
                                   fsync=False, database="heat", tls_only=True)
    config.data_dir.mkdir()
    assert write_hba(config) and not write_hba(config)  # unchanged: no reload needed
