"""The demo reads frames, alerts and alert levels as a bot would: from the Kafka output topics,
committed transactions only (``read_committed``), with no consumer group."""

from __future__ import annotations

import msgspec
from kafka import KafkaConsumer, TopicPartition

from heatmap.demo.board import Board
from heatmap.schema import Alert, AlertLevels, Frame
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.topics import Topics

_decode_frame = msgspec.json.Decoder(Frame).decode
_decode_alert = msgspec.json.Decoder(Alert).decode
_decode_levels = msgspec.json.Decoder(AlertLevels).decode


class OutputFeed:
    """A ``read_committed`` reader of ``heat-frames``, ``alerts`` and ``alert-levels`` from
    their start."""

    def __init__(self, connection: KafkaConnection, settings: TopicSettings) -> None:
        topics = Topics.from_settings(settings)
        self._topics = topics
        self._consumer = KafkaConsumer(
            **connection.named("heat-demo").kafka_python(), group_id=None,
            enable_auto_commit=False, isolation_level="read_committed",
            auto_offset_reset="earliest")
        # The run created these topics: their partitions are known (the consumer's own
        # metadata may not list a topic yet this early).
        partitions = [
            *(TopicPartition(topics.heat_frames, p)
              for p in range(settings.heat_frames_partitions)),
            *(TopicPartition(topics.alerts, p) for p in range(settings.alerts_partitions)),
            TopicPartition(topics.alert_levels, 0)]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)

    def read_into(self, board: Board, timeout_ms: int = 100, max_records: int = 5000) -> int:
        """Read what is committed now (waiting up to ``timeout_ms``) into ``board``;
        returns the number of records read. Undecodable records are counted in
        ``board.undecodable`` and skipped (the sink stores them as dead letters)."""
        fetched = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        count = 0
        for partition, records in fetched.items():
            topic = partition.topic
            for record in records:
                count += 1
                try:
                    if topic == self._topics.heat_frames:
                        board.add_frame(_decode_frame(record.value))
                    elif topic == self._topics.alert_levels:
                        board.add_levels(_decode_levels(record.value))
                    else:
                        board.add_alert(_decode_alert(record.value))
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                    board.undecodable += 1
        return count

    def close(self) -> None:
        self._consumer.close()
