"""What a new owner re-reads: per input partition, from where the checkpoint resumes it
to the last offset the committed epochs applied."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from heatmap.engine.params import EngineParams
from heatmap.process.epochs import make_epoch
from heatmap.process.host import EngineHost, HostConfig, RawRecord
from heatmap.process.recovery import RecoveryError, input_ranges, raw_records
from heatmap.process.sequencer import SourcePosition, SourceRecord
from heatmap.schema import Account, Position, Price, ms_to_datetime

SOURCES = [TopicPartition("prices", 0), TopicPartition("prices", 1),
           TopicPartition("accounts", 0), TopicPartition("positions", 0)]
CONFIG = HostConfig(params=EngineParams(), source_kinds=[Price, Price, Account, Position])
T0 = 1_767_323_040_000


def _applied(source: int, offset: int) -> SourceRecord:
    price = Price(symbol="BTCUSDT", ts=ms_to_datetime(T0), price=1.0, source="test")
    return SourceRecord.of(source, offset, price)


def test_without_a_checkpoint_every_partition_is_read_from_its_start() -> None:
    epoch = make_epoch(0, T0, [_applied(0, 0), _applied(0, 1), _applied(3, 4)],
                       [SourcePosition(2, ()), SourcePosition(0, ()), SourcePosition(0, ()),
                        SourcePosition(5, ())])
    assert input_ranges(SOURCES, None, [epoch]) == {SOURCES[0]: (0, 2), SOURCES[3]: (0, 5)}
    assert input_ranges(SOURCES, None, []) == {}


def test_with_a_checkpoint_reading_starts_where_it_resumes() -> None:
    host = EngineHost(CONFIG, positions=[SourcePosition(10, ()), SourcePosition(3, ()),
                                         SourcePosition(0, ()), SourcePosition(7, (9,))])
    host.cut_epoch()
    checkpoint = host.checkpoint()
    later = make_epoch(1, T0, [_applied(0, 12), _applied(3, 8)],
                       [SourcePosition(13, ()), SourcePosition(3, ()), SourcePosition(0, ()),
                        SourcePosition(10, ())])
    assert input_ranges(SOURCES, checkpoint, [later]) == {SOURCES[0]: (10, 13),
                                                          SOURCES[3]: (7, 9)}


def test_a_checkpoint_of_other_partitions_is_refused() -> None:
    host = EngineHost(HostConfig(params=EngineParams(), source_kinds=[Price]))
    host.cut_epoch()
    with pytest.raises(RecoveryError, match="input partitions changed"):
        input_ranges(SOURCES, host.checkpoint(), [])


def test_fetched_records_become_raw_records_by_source() -> None:
    record = ConsumerRecord(topic="positions", partition=0, offset=8, timestamp=T0,
                            timestamp_type=0, key=b"acct-1", value=None, checksum=None,
                            serialized_key_size=6, serialized_value_size=0, headers=())
    assert raw_records(SOURCES, {SOURCES[3]: [record]}) == {
        3: [RawRecord(3, 8, b"acct-1", b"", T0)]}
