"""Epochs: the order the engine applied its input in, one compact record per transaction.

An epoch is what the active engine applied between two commits. Its record on
the ``sequence`` topic holds, in applied order, the source (input partition)
of each event as one small integer (msgpack stores 0..127 in one byte, so
about 1 byte per event), and per source the offsets it took as runs of
consecutive offsets. A replay reads each source's records and interleaves them
in the recorded order (:func:`replay_order`), so it repeats the exact order
whatever the fetch timing was. Each record also carries, per source, where a
new owner resumes reading (the sequencer's :class:`SourcePosition`), so the
last epoch alone says where to seek.

Runs: the offsets of one source in applied order, as a flat list
``[start, length, gap, length, ...]`` where each ``gap`` is the next run's
start minus the previous run's end (exclusive); negative when an earlier
offset was applied after a later one (it had a later ts). The usual epoch has
one run per source, ``[first_offset, count]``; records that were rejected
leave positive gaps.

An epoch may also carry an alert configuration (the TOML file's bytes) staged
before its first event: a change of alert thresholds is part of the applied
order, so a new owner re-applying the epoch applies it at the same point.

Format: one msgpack map (:class:`Epoch`) with ``format_version``
(:data:`FORMAT_VERSION`). It changes whenever a field is added, dropped or
changes meaning; a reader accepts its own version and the versions listed in
:data:`READABLE_VERSIONS` (whose records read with the newer fields' defaults),
and says so of any other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

import msgspec

from heatmap.process.sequencer import SourcePosition

# 2: alert_config. Version 1 records read as epochs without an alert configuration.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class EpochError(ValueError):
    """An epoch record cannot be read or replayed (not an epoch, another version, records
    missing)."""


class SourceSlice(msgspec.Struct, frozen=True, array_like=True):
    """What one epoch took from one source, and where that source resumes afterwards.

    Parameters
    ----------
    source_index : int
        The source (input partition) number.
    runs : list of int
        Offsets applied in this epoch, in applied order, as runs (module
        docstring); empty when none were.
    resume_offset : int
        After this epoch a new owner reads the source from this offset...
    done_ahead : list of int
        ...and skips these offsets (ascending, each >= ``resume_offset``): already
        applied or rejected.
    """

    source_index: int
    runs: list[int]
    resume_offset: int
    done_ahead: list[int]

    def offsets(self) -> list[int]:
        """The offsets applied in this epoch, in applied order."""
        return [offset for start, end in self._run_bounds() for offset in range(start, end)]

    @property
    def count(self) -> int:
        """Events applied from this source in this epoch."""
        return sum(self.runs[1::2])

    @property
    def first_offset(self) -> int | None:
        """The lowest offset applied in this epoch (None when none was)."""
        return min((start for start, _ in self._run_bounds()), default=None)

    @property
    def last_offset(self) -> int | None:
        """The highest offset applied in this epoch (None when none was)."""
        return max((end - 1 for _, end in self._run_bounds()), default=None)

    def _run_bounds(self) -> list[tuple[int, int]]:
        """Each run as (first offset, end offset exclusive), in applied order."""
        bounds: list[tuple[int, int]] = []
        end = 0
        for position in range(0, len(self.runs), 2):
            start = self.runs[position] + (end if position else 0)
            end = start + self.runs[position + 1]
            bounds.append((start, end))
        return bounds


class Epoch(msgspec.Struct, frozen=True, kw_only=True):
    """One epoch's applied order.

    Parameters
    ----------
    epoch : int
        Its number: consecutive from 0 over the life of a deployment.
    watermark_ms : int or None
        The sequencer's watermark (epoch ms) when the epoch was cut.
    order : list of int
        The source index of each applied event, in applied order.
    sources : list of SourceSlice
        One per source of the deployment, by source index.
    format_version : int
        :data:`FORMAT_VERSION` of the writer.
    alert_config : bytes or None
        The alert configuration (TOML bytes; empty: the built-in thresholds) staged
        before this epoch's first event (see :meth:`EngineHost.stage_alert_config`);
        None when it brought none.
    """

    format_version: int = FORMAT_VERSION
    epoch: int
    watermark_ms: int | None
    order: list[int]
    sources: list[SourceSlice]
    alert_config: bytes | None = None


class _Header(msgspec.Struct):
    """What is read before anything else (other fields are ignored)."""

    format_version: int


class _Applied(Protocol):
    @property
    def source_index(self) -> int: ...

    @property
    def offset(self) -> int: ...


class _HasOffset(Protocol):
    @property
    def offset(self) -> int: ...


Record = TypeVar("Record", bound=_HasOffset)

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Epoch)


def make_epoch(number: int, watermark_ms: int | None, applied: Iterable[_Applied],
               positions: Sequence[SourcePosition], alert_config: bytes | None = None
               ) -> Epoch:
    """The epoch of the records ``applied`` (in applied order: anything with
    ``source_index`` and ``offset``, e.g. a SourceRecord), with the sequencer's
    ``positions`` (one per source, by source index) afterwards, and the alert
    configuration staged before them, if any."""
    order: list[int] = []
    runs: dict[int, list[int]] = {}
    run_end: dict[int, int] = {}  # exclusive end of each source's current run
    for record in applied:
        index, offset = record.source_index, record.offset
        if not 0 <= index < len(positions):
            raise EpochError(f"source {index} is not one of the {len(positions)} sources")
        order.append(index)
        source_runs = runs.setdefault(index, [])
        end = run_end.get(index)
        if end is None:
            source_runs += [offset, 1]
        elif offset == end:
            source_runs[-1] += 1
        else:
            source_runs += [offset - end, 1]
        run_end[index] = offset + 1
    return Epoch(epoch=number, watermark_ms=watermark_ms, order=order, sources=[
        SourceSlice(index, runs.get(index, []), position.resume_offset,
                    list(position.done_ahead))
        for index, position in enumerate(positions)], alert_config=alert_config)


def encode_epoch(epoch: Epoch) -> bytes:
    """The msgpack bytes of ``epoch`` for the ``sequence`` topic."""
    return _ENCODER.encode(epoch)


def decode_epoch(blob: bytes) -> Epoch:
    """The epoch in ``blob``; raises EpochError when it is not one of this format version."""
    try:
        version = msgspec.msgpack.decode(blob, type=_Header).format_version
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise EpochError(f"not an epoch record ({error})") from error
    if version not in READABLE_VERSIONS:
        raise EpochError(f"epoch record format version {version} is not the supported "
                         f"version {FORMAT_VERSION}: run every worker on the same release")
    try:
        epoch = _DECODER.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise EpochError(f"corrupt epoch record ({error})") from error
    _check(epoch)
    return epoch


def _check(epoch: Epoch) -> None:
    """Every event in ``order`` has exactly one offset in its source's runs."""
    counts = {source.source_index: source.count for source in epoch.sources}
    if len(counts) != len(epoch.sources):
        raise EpochError(f"epoch {epoch.epoch}: a source is listed twice")
    for source in epoch.sources:
        lengths = source.runs[1::2]
        if len(source.runs) % 2 or any(length < 1 for length in lengths):
            raise EpochError(f"epoch {epoch.epoch}: malformed runs of source "
                             f"{source.source_index}")
    ordered = Counter(epoch.order)
    if any(ordered[index] != count for index, count in counts.items()) or (
            ordered.keys() - counts.keys()):
        raise EpochError(f"epoch {epoch.epoch}: the order does not match the sources' runs")


def replay_order(epoch: Epoch, records_by_source: Mapping[int, Iterable[Record]]
                 ) -> list[Record]:
    """The records of ``epoch`` in the exact order they were applied.

    ``records_by_source``: per source index, records (anything with an
    ``offset``) covering at least the offsets the epoch applied from it;
    others (rejected records, neighbours) are ignored. Raises EpochError when
    an applied offset is missing (e.g. deleted by retention).
    """
    queues = {}
    for source in epoch.sources:
        if not source.runs:
            continue
        wanted = source.offsets()
        by_offset = {record.offset: record
                     for record in records_by_source.get(source.source_index, ())}
        missing = [offset for offset in wanted if offset not in by_offset]
        if missing:
            raise EpochError(f"epoch {epoch.epoch}: {len(missing)} records of source "
                             f"{source.source_index} are missing (first offset {missing[0]})")
        queues[source.source_index] = iter([by_offset[offset] for offset in wanted])
    return [next(queues[index]) for index in epoch.order]
