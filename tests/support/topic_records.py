"""What a topic holds, read as a test checks it."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
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


async def read_briefly(connection: KafkaConnection, topic: str, group: str | None,
                       wait_ms: int = 5000) -> int:
    """How many records of ``topic`` one read from the start gets within ``wait_ms``,
    its offsets committed to ``group``. A client refused the topic or the group raises
    aiokafka's ``TopicAuthorizationFailedError`` or ``GroupAuthorizationFailedError``."""
    consumer = AIOKafkaConsumer(topic, **connection.aiokafka(), group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=wait_ms)
        if group is not None:
            await consumer.commit()
        return sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
