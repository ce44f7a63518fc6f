from heatmap.settings.kafka import TopicSettings
from heatmap.topics import Topics, topic_specs


def test_every_product_topic_carries_the_prefix() -> None:
    settings = TopicSettings(prefix="desk1.")
    names = Topics.from_settings(settings)
    assert names.heat_frames == "desk1.heat-frames"
    assert [spec.name for spec in topic_specs(settings)] == [
        "desk1.prices", "desk1.positions", "desk1.accounts", "desk1.heat-frames",
        "desk1.alerts", "desk1.deadletter", "desk1.sequence", "desk1.checkpoints",
        "desk1.correlations", "desk1.alert-levels"]


def test_partition_counts_and_cleanup_policies() -> None:
    specs = {spec.name: spec for spec in topic_specs(TopicSettings(prefix=""))}
    assert {name: spec.partitions for name, spec in specs.items()} == {
        "prices": 6, "positions": 6, "accounts": 6, "heat-frames": 6, "alerts": 3,
        "deadletter": 1, "sequence": 1, "checkpoints": 1, "correlations": 1,
        "alert-levels": 1}
    assert specs["accounts"].configs["cleanup.policy"] == "compact,delete"
    # Positions are keyed by account but an account holds many positions: never compacted.
    assert specs["positions"].configs["cleanup.policy"] == "delete"


def test_partitions_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HEAT_TOPIC_PRICES_PARTITIONS", "12")
    monkeypatch.setenv("HEAT_TOPIC_PREFIX", "x.")
    specs = {spec.name: spec for spec in topic_specs()}
    assert specs["x.prices"].partitions == 12


def test_the_processors_topics() -> None:
    specs = {spec.name: spec for spec in topic_specs(TopicSettings(prefix=""))}
    # The applied order lives as long as the inputs it points at.
    assert specs["sequence"].configs["cleanup.policy"] == "delete"
    assert specs["sequence"].configs["retention.ms"] == specs["prices"].configs["retention.ms"]
    # The latest engine state per engine; a checkpoint is several MB.
    assert specs["checkpoints"].configs["cleanup.policy"] == "compact"
    assert specs["checkpoints"].configs["max.message.bytes"] == str(16 * 1024 * 1024)
    assert specs["correlations"].configs["cleanup.policy"] == "delete"
    assert specs["correlations"].configs["retention.ms"] == str(7 * 86_400_000)
    assert specs["correlations"].configs["max.message.bytes"] == str(16 * 1024 * 1024)
    # The thresholds in effect per desk: only the latest matters.
    assert specs["alert-levels"].configs["cleanup.policy"] == "compact"



def test_every_topic_has_the_configured_replication() -> None:
    assert {(spec.replication_factor, spec.configs["min.insync.replicas"])
            for spec in topic_specs(TopicSettings(prefix=""))} == {(1, "1")}
    cluster = TopicSettings(prefix="", replication_factor=3, min_insync_replicas=2)
    specs = topic_specs(cluster)
    assert {(spec.replication_factor, spec.configs["min.insync.replicas"])
            for spec in specs} == {(3, "2")}
    # Replication adds to each topic's own configs, it replaces none.
    by_name = {spec.name: spec for spec in specs}
    assert by_name["checkpoints"].configs["cleanup.policy"] == "compact"
