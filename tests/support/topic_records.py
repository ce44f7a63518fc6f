"""What a topic holds, read as a test checks it."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from heatmap.settings.kafka import KafkaConnection


def record_count(connection: KafkaConnection, topic: str) -> int:
    """How many records ``topic`` holds (the sum of its partitions' end offsets)."""
    consumer = KafkaConsumer(**connection.kafka_python(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()
