"""What ensuring a topic reports, from the brokers' description of it."""

from heatmap.stack.kafka_topics import created, found, missing, refused
from heatmap.topics import TopicSpec

SPEC = TopicSpec("heat.prices", 6, {"cleanup.policy": "delete"}, replication_factor=3)


def described(partitions: int, replicas: int) -> dict:
    return {"name": SPEC.name, "partitions": [
        {"partition_index": index, "replica_nodes": list(range(1, replicas + 1))}
        for index in range(partitions)]}


def test_a_topic_as_configured_exists() -> None:
    outcome = found(SPEC, described(6, 3))
    assert (outcome.outcome, outcome.ok) == ("exists", True)
    assert outcome.line() == "exists  heat.prices: 6 partitions, replication 3"


def test_more_partitions_than_configured_is_accepted() -> None:
    assert found(SPEC, described(12, 3)).outcome == "exists"


def test_fewer_partitions_or_another_replication_differs() -> None:
    fewer = found(SPEC, described(3, 3))
    assert (fewer.outcome, fewer.ok) == ("differs", False)
    assert fewer.line() == ("differs heat.prices: 3 partitions, replication 3 "
                            "(configured 6 partitions)")
    both = found(SPEC, described(1, 1))
    assert both.detail == "configured 6 partitions; configured replication 3"
    assert found(SPEC, described(6, 5)).outcome == "differs"
    assert found(SPEC, described(1, 3)).line() == ("differs heat.prices: 1 partition, "
                                                   "replication 3 (configured 6 partitions)")


def test_created_missing_and_refused_topics() -> None:
    assert created(SPEC).line() == "created heat.prices: 6 partitions, replication 3"
    assert not missing(SPEC).ok
    assert missing(SPEC).line() == ("missing heat.prices: 0 partitions, replication 0 "
                                    "(configured 6 partitions, replication 3)")
    line = refused(SPEC, "Replication factor: 3 larger than available brokers: 1.").line()
    assert line.startswith("failed  heat.prices: 6 partitions, replication 3 (Replication")
    assert "\n" not in line
