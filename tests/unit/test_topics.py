from heatmap.settings.kafka import TopicSettings
from heatmap.topics import Topics, topic_specs


def test_every_product_topic_carries_the_prefix() -> None:
    settings = TopicSettings(prefix="desk1.")
    names = Topics.from_settings(settings)
    assert names.heat_frames == "desk1.heat-frames"
    assert [spec.name for spec in topic_specs(settings)] == [
        "desk1.prices", "desk1.positions", "desk1.accounts", "desk1.heat-frames",
        "desk1.alerts", "desk1.deadletter"]


def test_partition_counts_and_cleanup_policies() -> None:
    specs = {spec.name: spec for spec in topic_specs(TopicSettings(prefix=""))}
    assert {name: spec.partitions for name, spec in specs.items()} == {
        "prices": 6, "positions": 6, "accounts": 6, "heat-frames": 6, "alerts": 3,
        "deadletter": 1}
    assert specs["accounts"].configs["cleanup.policy"] == "compact,delete"
    # Positions are keyed by account but an account holds many positions: never compacted.
    assert specs["positions"].configs["cleanup.policy"] == "delete"


def test_partitions_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HEAT_TOPIC_PRICES_PARTITIONS", "12")
    monkeypatch.setenv("HEAT_TOPIC_PREFIX", "x.")
    specs = {spec.name: spec for spec in topic_specs()}
    assert specs["x.prices"].partitions == 12
