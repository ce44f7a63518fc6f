"""Whether the engine applies everything its input partitions hold.

A live engine whose input is all in Kafka must, sooner or later, have applied every
record: per input partition ("source"), the lowest offset not yet applied (or refused)
reaches the partition's end. Two rules say when it has not:

- **caught up, yet short**: every source is read to its end, nothing is buffered and no
  backlog waits, yet a source's applied offset is below its end;
- **not moving**: a source's applied offset stayed below its end, unchanged, for
  ``stall_s`` while the source was not deliberately paused.

Either makes the source a *suspect*. Offsets between the applied one and the end can
legitimately hold no record (the commit markers of a transactional producer, records of
aborted transactions): the caller reads that range once and, when it is empty,
:meth:`InputProgress.vouch`\\ es for it; a range that holds records is a breach.

Pure: the caller passes offsets, ends and its monotonic clock (s).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


class InputNotAppliedError(RuntimeError):
    """Records are in an input partition that the engine has not applied and will not."""


@dataclass
class _Source:
    applied: int = -1  # the lowest offset not yet applied or refused, as last seen
    since_s: float = 0.0  # when ``applied`` last moved (or a reason to wait began)
    vouched_end: int = -1  # an end up to which the offsets after ``applied`` hold no record


class InputProgress:
    """Tracks, per source, the applied offset against the log end (see module docstring).

    Parameters
    ----------
    source_count : int
        Number of input partitions.
    stall_s : float
        How long (s) an applied offset may stay unchanged below the end of a source
        that is not paused before the source is a suspect.
    """

    def __init__(self, source_count: int, stall_s: float) -> None:
        self._sources = [_Source() for _ in range(source_count)]
        self.stall_s = stall_s

    def _short(self, index: int, applied: int, end: int) -> bool:
        """Whether records may lie between ``applied`` and ``end`` (none vouched for)."""
        source = self._sources[index]
        return applied < end and not (source.applied == applied and source.vouched_end >= end)

    def short_when_caught_up(self, applied: Sequence[int], ends: Sequence[int | None]
                             ) -> list[int]:
        """The sources short of their end although every source is caught up and nothing
        is buffered (call only then). ``ends``: each source's end as last fetched."""
        return [index for index, (offset, end) in enumerate(zip(applied, ends, strict=True))
                if end is not None and self._short(index, offset, end)]

    def not_moving(self, now_s: float, applied: Sequence[int], ends: Sequence[int],
                   paused: Collection[int]) -> list[int]:
        """Note the applied offsets and fresh log ends at ``now_s``; returns the sources
        whose applied offset stayed below the end, unchanged, for ``stall_s`` while not
        paused (a paused source waits for the others on purpose)."""
        suspects = []
        for index, (offset, end) in enumerate(zip(applied, ends, strict=True)):
            source = self._sources[index]
            if offset != source.applied:
                source.applied, source.since_s = offset, now_s
            if index in paused or not self._short(index, offset, end):
                source.since_s = now_s
            elif now_s - source.since_s >= self.stall_s:
                suspects.append(index)
        return suspects

    def vouch(self, index: int, applied: int, end: int) -> None:
        """The offsets from ``applied`` up to ``end`` hold no record to apply (read back)."""
        source = self._sources[index]
        source.applied, source.vouched_end = applied, end
