"""kafka-python against the real broker: keyed produce, group consume, committed offsets."""

from __future__ import annotations

import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from heatmap.stack.local import StackState


def _consume(bootstrap: str, topic: str, group: str, limit: int) -> list[tuple[bytes, bytes]]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", consumer_timeout_ms=10_000, max_poll_records=7,
    )
    received: list[tuple[bytes, bytes]] = []
    try:
        for record in consumer:
            received.append((record.key, record.value))
            if len(received) == limit:
                break
        consumer.commit()
    finally:
        consumer.close()
    return received


def test_group_resumes_from_committed_offsets(stack: StackState, make_topic) -> None:
    topic = make_topic(partitions=3)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", linger_ms=5)
    sent = [(f"acct-{n % 5}".encode(), f"record-{n}".encode()) for n in range(100)]
    partition_of_key: dict[bytes, set[int]] = {}
    for key, value in sent:
        metadata = producer.send(topic, key=key, value=value).get(timeout=30)
        partition_of_key.setdefault(key, set()).add(metadata.partition)
    producer.close()
    # Every key lands on exactly one partition.
    assert all(len(partitions) == 1 for partitions in partition_of_key.values())

    group = f"group-{uuid.uuid4().hex[:8]}"
    first = _consume(stack.kafka_bootstrap, topic, group, limit=40)
    # A new consumer of the same group (a restart) continues where the first committed.
    second = _consume(stack.kafka_bootstrap, topic, group, limit=1000)
    assert len(first) == 40
    assert sorted(first + second) == sorted(sent)

    check = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group,
                          enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in range(3)]
        committed = sum(check.committed(tp) or 0 for tp in partitions)
    finally:
        check.close()
    assert committed == 100
