"""What a new owner reads before it goes live: the latest checkpoint, the epochs committed
after it, and the input records those epochs applied.

Everything is read ``read_committed`` with one group-less consumer: an epoch or
checkpoint of a transaction the previous owner never committed (it was aborted
when this owner's producer fenced it) is invisible, so the state rebuilt here is
exactly the committed one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from heatmap.process.epochs import Epoch, decode_epoch
from heatmap.process.host import RawRecord, decode_checkpoint

log = logging.getLogger(__name__)

# A range that makes no progress this long is missing (deleted by retention, or the
# broker is gone): recovery fails and is retried from scratch.
STALL_S = 30.0
_CHECKPOINT_WINDOW = 4  # records read back from the end at first; grows 4x per miss
_POLL_MS = 50


class RecoveryError(RuntimeError):
    """The committed state cannot be read back (records missing, broker gone)."""


@dataclass(frozen=True)
class Committed:
    """The committed state of one engine.

    ``checkpoint``: the latest checkpoint (None: none yet); ``epochs``: the
    committed epochs after it, in order; ``next_sequence_offset``: where the
    sequence topic ends.
    """

    checkpoint: bytes | None
    epochs: list[Epoch]
    next_sequence_offset: int


async def read_ranges(consumer: AIOKafkaConsumer,
                      ranges: Mapping[TopicPartition, tuple[int, int]],
                      on_progress: Callable[[], None] = lambda: None
                      ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """Every committed record with ``start <= offset < stop`` of each partition.

    Reading stops at ``stop`` or at the partition's end (its last stable offset),
    whichever comes first. Raises RecoveryError when a range stalls for STALL_S.
    """
    pending = {tp for tp, (start, stop) in ranges.items() if start < stop}
    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {
        tp: [] for tp in ranges}
    if not pending:
        return records
    consumer.assign(list(pending))
    for tp in pending:
        consumer.seek(tp, ranges[tp][0])
    ends = await consumer.end_offsets(list(pending))  # the LSO under read_committed
    last_progress_s = time.monotonic()
    while pending:
        # Short polls: a range of a transactional topic ends with a commit marker, which
        # moves the position but yields no record, so a long poll would wait it out.
        fetched = await consumer.getmany(*pending, timeout_ms=_POLL_MS)
        for tp, batch in fetched.items():
            stop = ranges[tp][1]
            records[tp].extend(record for record in batch if record.offset < stop)
        if fetched:
            last_progress_s = time.monotonic()
            on_progress()
        for tp in list(pending):
            if await consumer.position(tp) >= min(ranges[tp][1], ends[tp]):
                pending.discard(tp)
        if pending and time.monotonic() - last_progress_s > STALL_S:
            names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(pending))
            raise RecoveryError(f"no records from {names} for {STALL_S:.0f} s")
    return records


async def read_committed_state(consumer: AIOKafkaConsumer, sequence: TopicPartition,
                               checkpoints: TopicPartition, engine_name: str,
                               on_progress: Callable[[], None] = lambda: None) -> Committed:
    """The engine's latest checkpoint and the epochs committed after it. Engines sharing
    the desks share the topics too: only records keyed with this engine's name count."""
    key = engine_name.encode()
    found = await _latest_checkpoint(consumer, checkpoints, key, on_progress)
    start = (await consumer.beginning_offsets([sequence]))[sequence]
    end = (await consumer.end_offsets([sequence]))[sequence]
    checkpoint: bytes | None = None
    last_epoch = -1
    if found is not None:
        checkpoint, sequence_offset = found
        last_epoch = decode_checkpoint(checkpoint).epoch
        if sequence_offset < start:
            raise RecoveryError(f"the checkpoint's epoch (offset {sequence_offset}) is gone "
                                f"from {sequence.topic} (it starts at {start})")
        start = sequence_offset
    fetched = await read_ranges(consumer, {sequence: (start, end)}, on_progress)
    epochs = [epoch for epoch in (decode_epoch(record.value or b"")
                                  for record in fetched[sequence] if record.key == key)
              if epoch.epoch > last_epoch]
    return Committed(checkpoint, epochs, end)


async def _latest_checkpoint(consumer: AIOKafkaConsumer, tp: TopicPartition, key: bytes,
                             on_progress: Callable[[], None]) -> tuple[bytes, int] | None:
    """(checkpoint, sequence offset of its epoch) of the last record keyed ``key``.

    Reads back from the end in growing windows: checkpoints are large, and the last
    one is near the end.
    """
    start = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    window = _CHECKPOINT_WINDOW
    while True:
        first = max(start, end - window)
        fetched = await read_ranges(consumer, {tp: (first, end)}, on_progress)
        for record in reversed(fetched[tp]):
            if record.key == key and record.value:
                headers = dict(record.headers)
                return record.value, int(headers["heat-sequence-offset"])
        if first == start:
            return None
        window *= 4


def input_ranges(sources: Sequence[TopicPartition], checkpoint: bytes | None,
                 epochs: Sequence[Epoch]) -> dict[TopicPartition, tuple[int, int]]:
    """Per input partition, the offsets the epochs after the checkpoint applied:
    from where the checkpoint resumes it to one past the last offset applied."""
    starts = [0] * len(sources)
    if checkpoint is not None:
        starts = [saved.resume_offset for saved in decode_checkpoint(checkpoint).sources]
        if len(starts) != len(sources):
            raise RecoveryError(f"the checkpoint has {len(starts)} input partitions, the "
                                f"topics now {len(sources)}: the input partitions changed; "
                                "start afresh under a new HEAT_ENGINE_NAME")
    stops = list(starts)
    for epoch in epochs:
        for source in epoch.sources:
            last = source.last_offset
            if last is not None:
                stops[source.source_index] = max(stops[source.source_index], last + 1)
    return {tp: (starts[index], stops[index]) for index, tp in enumerate(sources)
            if stops[index] > starts[index]}


def raw_records(sources: Sequence[TopicPartition],
                fetched: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
                ) -> dict[int, list[RawRecord]]:
    """The fetched records as the host takes them, by source index."""
    index_of = {tp: index for index, tp in enumerate(sources)}
    return {index_of[tp]: [RawRecord(index_of[tp], record.offset, record.key,
                                     record.value or b"", record.timestamp)
                           for record in records]
            for tp, records in fetched.items()}
