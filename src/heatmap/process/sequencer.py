"""Event-time merge of every input partition, held back by a watermark.

The engine needs one stream in time order; Kafka gives one ordered stream per
partition. The caller numbers the input partitions ("sources") ``0..n-1``,
feeds each decoded record as a :class:`SourceRecord` and, after each fetch,
says which sources are caught up (position >= high-water mark: nothing more
to read right now). The sequencer buffers records on one heap keyed
``(ts_ms, source_index, offset)`` and releases, in that order, every record
before the watermark:

- **watermark** = the minimum, over the sources that are not caught up, of
  the newest ``ts_ms`` seen on each. A caught-up source does not hold it back;
  when every source is caught up, everything buffered is released. A source
  not caught up that has shown nothing yet holds it where it is. Records at
  the watermark itself wait (a source still reading may send more at that
  time, from a lower source index) unless every source is caught up, so a
  backlog whose sources are each in time order merges into one order, however
  the fetches were cut. The watermark never moves back and never advances on
  the wall clock: only records and the caller's caught-up flags move it.
- **settling**: a caught-up source only vouches for what had reached Kafka when it
  was last seen at its end. A producer writing several partitions in time order may
  append one partition's record a little after another's later ones (batches leave
  per partition), so a record passes a caught-up source only once that source was
  seen at its end ``settle`` after the record arrived: the caller gives each record
  its arrival time and :meth:`Sequencer.release` the latest arrival time every
  caught-up source has vouched for (``settled_before``); later arrivals wait, in
  order. Without that bound, a record of a quiet partition (a position change) that
  arrives a moment after the prices following it would be applied after them.
- **alignment** (:meth:`Sequencer.alignment`): a source whose newest ts is more
  than ``align_ms`` ahead of the slowest source that is not caught up is to be
  paused (the caller stops fetching it), every other source resumed, so a
  catch-up does not buffer the whole backlog of the fast sources.

**Rejections** (the caller sends them to the dead-letter topic with the reason):

- *late for its key*: a record whose ts is before the last ts already released
  for its key. Applying it would put older state over newer (a position, an
  equity) or be ignored (a price). The key is the record's Kafka key on its
  topic: the symbol on ``prices``, the account on ``positions`` and, apart from
  it, the account on ``accounts``. A record below the watermark that is not late
  for its key is accepted and released by the next :meth:`Sequencer.release`
  (after records with later ts released before it arrived).
- *a jump over a year*: a record more than ``max_gap_ms`` (a year) after the
  newest ts accepted so far on any key, i.e. the stream's clock: the engine
  would close every bar in between, and a mistyped year is the usual cause.
  Measured against the stream, not the key, so an account or a symbol that
  comes back after a year of silence is not refused (forever).

**Progress** (:meth:`Sequencer.positions`): per source, where a new owner
resumes reading: the lowest offset neither released nor rejected, and the
offsets above it already done (the heap releases a later offset before an
earlier one that has a later ts). A sequencer built from those positions
(``start_offsets``, ``done_ahead``) skips the done offsets when they are fed
again.

Pure: no Kafka, asyncio or clock; the caller owns fetching, decoding and time.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from heatmap.schema import Account, Position, Price, datetime_to_ms, ms_to_rfc3339
from heatmap.sources.csv_files import MAX_GAP_MS

Message = Price | Position | Account
EventKey = tuple[str, str]  # (topic, Kafka key): ("prices", symbol), ("positions", account), ...


def event_key(message: Message) -> EventKey:
    """The key a record is ordered under: its topic and its Kafka key."""
    if isinstance(message, Price):
        return ("prices", message.symbol)
    if isinstance(message, Position):
        return ("positions", message.account)
    return ("accounts", message.account)


class SourceRecord(NamedTuple):
    """One decoded input record: its source (input partition), offset and event time (epoch
    ms); ``appended_ms``: when it reached Kafka (epoch ms, -1 unknown), for latency only."""

    source_index: int
    offset: int
    ts_ms: int
    message: Message
    appended_ms: int = -1

    @classmethod
    def of(cls, source_index: int, offset: int, message: Message,
           appended_ms: int = -1) -> SourceRecord:
        """The record of ``message`` with its event time in epoch ms."""
        return cls(source_index, offset, datetime_to_ms(message.ts), message, appended_ms)


class Rejection(NamedTuple):
    """A record the sequencer refused, with the reason for the dead-letter topic."""

    record: SourceRecord
    reason: str


class SourcePosition(NamedTuple):
    """Where to resume one source: seek to ``resume_offset``, skip ``done_ahead`` (ascending)."""

    resume_offset: int
    done_ahead: tuple[int, ...]


class Alignment(NamedTuple):
    """Source indices to pause and to resume (together: every source)."""

    pause: frozenset[int]
    resume: frozenset[int]


class _Source:
    """What the sequencer knows of one input partition."""

    __slots__ = ("buffered", "done_ahead", "lowest", "max_ts_ms", "next_offset")

    def __init__(self, start_offset: int, done_ahead: Iterable[int]) -> None:
        self.next_offset = start_offset  # one past the highest offset fed
        self.max_ts_ms: int | None = None  # newest ts accepted (or already done) here
        self.buffered: set[int] = set()  # offsets accepted, not yet released
        # Every offset buffered, ascending (offsets are fed increasing), pruned lazily.
        self.lowest: deque[int] = deque()
        # Offsets done (released or rejected) while a lower offset is still buffered.
        self.done_ahead: set[int] = set(done_ahead)

    def fed(self, source_index: int, offset: int) -> None:
        if offset < self.next_offset:
            raise ValueError(f"source {source_index}: offset {offset} fed after "
                             f"{self.next_offset - 1}; offsets of a source must increase")
        self.next_offset = offset + 1

    def lowest_buffered(self) -> int | None:
        lowest, buffered = self.lowest, self.buffered
        while lowest and lowest[0] not in buffered:
            lowest.popleft()
        return lowest[0] if lowest else None

    def done(self, offset: int) -> None:
        self.buffered.discard(offset)
        if self.done_ahead:  # usually empty: a takeover or an out-of-order release fills it
            self.done_ahead.discard(offset)
        lowest = self.lowest_buffered()
        if lowest is not None and lowest < offset:
            self.done_ahead.add(offset)

    def position(self) -> SourcePosition:
        lowest = self.lowest_buffered()
        resume = self.next_offset if lowest is None else lowest
        self.done_ahead = {offset for offset in self.done_ahead if offset >= resume}
        return SourcePosition(resume, tuple(sorted(self.done_ahead)))


class Sequencer:
    """Merges the records of every source into event-time order (see the module docstring).

    Parameters
    ----------
    start_offsets : sequence of int
        Per source (index = source index), the offset reading starts at; the
        number of sources is its length.
    align_ms : int
        How far (ms) a source may run ahead of the slowest one before it is paused.
    max_gap_ms : int
        A record more than this (ms) after the newest accepted ts is refused.
    done_ahead : mapping of source index to offsets, optional
        Offsets at or after a source's start offset that were already applied
        or rejected (from the last epoch's positions): skipped when fed.
    applied_ts_by_key : mapping of key to epoch ms, optional
        The last ts applied per key (:attr:`applied_ts_by_key` of the previous
        owner), so lateness continues across a takeover.
    """

    def __init__(self, start_offsets: Sequence[int], *, align_ms: int = 1000,
                 max_gap_ms: int = MAX_GAP_MS,
                 done_ahead: Mapping[int, Iterable[int]] | None = None,
                 applied_ts_by_key: Mapping[EventKey, int] | None = None) -> None:
        done_ahead = done_ahead or {}
        self._sources = [_Source(offset, done_ahead.get(index, ()))
                         for index, offset in enumerate(start_offsets)]
        self.align_ms = align_ms
        self.max_gap_ms = max_gap_ms
        # (ts_ms, source_index, offset, key, record, arrived): the first three are unique.
        self._heap: list[tuple[int, int, int, EventKey, SourceRecord, float]] = []
        self._applied_ms: dict[EventKey, int] = dict(applied_ts_by_key or {})
        self._newest_ms: int | None = max(self._applied_ms.values(), default=None)
        self._bound: tuple[int, int] | None = None  # see _next_bound
        self._caught_up: frozenset[int] = frozenset()

    @property
    def watermark_ms(self) -> int | None:
        """Everything before this (epoch ms) has been released, and everything at it too
        once every source was caught up; None before the first release."""
        return None if self._bound is None else self._bound[0]

    @property
    def buffered(self) -> int:
        """Records accepted and not yet released."""
        return len(self._heap)

    @property
    def applied_ts_by_key(self) -> Mapping[EventKey, int]:
        """The last released (or remembered) ts per key, epoch ms: save it with a checkpoint."""
        return MappingProxyType(self._applied_ms)

    # -- input ---------------------------------------------------------------------------------

    def add(self, record: SourceRecord, arrived: float = 0.0) -> Rejection | None:
        """Buffer one record; returns its rejection, or None when accepted (or already done).

        Offsets of a source must increase from call to call (ValueError otherwise).
        ``arrived``: when the caller received it (the caller's clock and unit; see
        ``settled_before`` of :meth:`release`).
        """
        rejections = self.add_all(record.source_index, (record,), arrived)
        return rejections[0] if rejections else None

    def add_all(self, source_index: int, records: Iterable[SourceRecord],
                arrived: float = 0.0) -> list[Rejection]:
        """:meth:`add` for several records of one source (offsets increasing), in one pass:
        the per-record path of every tick. Returns the rejections, in offset order."""
        source = self._sources[source_index]
        done_ahead, buffered, lowest = source.done_ahead, source.buffered, source.lowest
        heap, applied, max_gap_ms = self._heap, self._applied_ms, self.max_gap_ms
        push = heapq.heappush
        rejections: list[Rejection] = []
        for record in records:
            offset, ts_ms = record.offset, record.ts_ms
            source.fed(source_index, offset)
            if done_ahead and offset in done_ahead:  # done before a takeover: never again
                # Not seen: it may have been refused a year ahead, and a time it would
                # show is never beyond the lower offset still to be released, fed before it.
                source.done(offset)
                continue
            message = record.message
            key = (("prices", message.symbol) if type(message) is Price
                   else event_key(message))
            applied_ms = applied.get(key)
            if applied_ms is not None and ts_ms < applied_ms:
                source.done(offset)
                rejections.append(Rejection(
                    record, f"late for its key: {key[0]} {key[1]!r} at "
                            f"{ms_to_rfc3339(ts_ms)} is before "
                            f"{ms_to_rfc3339(applied_ms)}, already applied"))
                continue
            newest_ms = self._newest_ms
            if newest_ms is not None and ts_ms - newest_ms > max_gap_ms:
                source.done(offset)
                rejections.append(Rejection(record, f"more than a year after the newest "
                                                    f"event ({ms_to_rfc3339(newest_ms)})"))
                continue
            if source.max_ts_ms is None or ts_ms > source.max_ts_ms:
                source.max_ts_ms = ts_ms
            buffered.add(offset)
            lowest.append(offset)
            if newest_ms is None or ts_ms > newest_ms:
                self._newest_ms = ts_ms
            push(heap, (ts_ms, source_index, offset, key, record, arrived))
        return rejections

    def skip(self, source_index: int, offset: int) -> bool:
        """Count a record the caller refused itself (e.g. undecodable) as done.

        Returns False when it was done already (one of the ``done_ahead`` offsets of a
        takeover): it was dead-lettered before and must not be again.
        """
        source = self._sources[source_index]
        source.fed(source_index, offset)
        already_done = offset in source.done_ahead
        source.done(offset)
        return not already_done

    def remember(self, record: SourceRecord) -> None:
        """Note a record applied before this sequencer existed (replayed from the epochs
        after a checkpoint), so lateness and the year rule continue from it."""
        key = event_key(record.message)
        self._applied_ms[key] = max(record.ts_ms, self._applied_ms.get(key, record.ts_ms))
        self._note_newest(record.ts_ms)

    def _note_newest(self, ts_ms: int) -> None:
        if self._newest_ms is None or ts_ms > self._newest_ms:
            self._newest_ms = ts_ms

    # -- output --------------------------------------------------------------------------------

    def release(self, caught_up: Collection[int], max_records: int | None = None,
                settled_before: float | None = None) -> list[SourceRecord]:
        """Advance the watermark and return every buffered record before it (at or before
        it when every source is caught up), in ``(ts_ms, source_index, offset)`` order.

        ``caught_up``: indices of the sources whose position has reached their
        high-water mark; :meth:`alignment` uses the latest given. ``max_records``:
        return at most this many; the rest come first from the next call (the order
        is the same however the releases are cut). ``settled_before``: release only
        records that arrived at or before it (every caught-up source was seen at its
        end long enough after them; None: no bound); the release stops at the first
        record in order that arrived later.
        """
        self._caught_up = frozenset(caught_up)
        bound = self._next_bound()
        if bound is None:
            return []
        self._bound = bound
        released: list[SourceRecord] = []
        heap, sources, applied_ms = self._heap, self._sources, self._applied_ms
        # (ts, 0) < bound exactly when ts < watermark + 1 for an inclusive bound, else
        # ts < watermark: one integer comparison per record.
        release_below_ms = bound[0] + bound[1]
        remaining = len(heap) if max_records is None else max_records
        settled = math.inf if settled_before is None else settled_before
        pop = heapq.heappop
        while remaining > 0 and heap and heap[0][0] < release_below_ms \
                and heap[0][5] <= settled:
            ts_ms, source_index, offset, key, record, _ = pop(heap)
            sources[source_index].done(offset)
            applied_ms[key] = ts_ms
            released.append(record)
            remaining -= 1
        return released

    def _next_bound(self) -> tuple[int, int] | None:
        """(watermark, 1 if records at it are released too else 0), never below the last.

        Records at the watermark itself wait while a source not caught up may still
        send more at that time: they may belong before it (a lower source index).
        """
        behind = [source.max_ts_ms for index, source in enumerate(self._sources)
                  if index not in self._caught_up]
        candidate: tuple[int, int] | None = None
        if behind:
            if all(ts_ms is not None for ts_ms in behind):
                candidate = (min(ts_ms for ts_ms in behind if ts_ms is not None), 0)
            # else a source not caught up has shown nothing yet: it holds the watermark
        else:  # every source is caught up: release everything buffered
            newest = max((source.max_ts_ms for source in self._sources
                          if source.max_ts_ms is not None), default=None)
            candidate = None if newest is None else (newest, 1)
        if candidate is None or self._bound is None:
            return candidate or self._bound
        return max(candidate, self._bound)

    def alignment(self) -> Alignment:
        """Which sources to pause (more than ``align_ms`` ahead of the slowest source not
        caught up) and which to resume (all others)."""
        everything = frozenset(range(len(self._sources)))
        behind = [source.max_ts_ms for index, source in enumerate(self._sources)
                  if index not in self._caught_up and source.max_ts_ms is not None]
        if not behind:
            return Alignment(frozenset(), everything)
        limit_ms = min(behind) + self.align_ms
        pause = frozenset(index for index, source in enumerate(self._sources)
                          if source.max_ts_ms is not None and source.max_ts_ms > limit_ms)
        return Alignment(pause, everything - pause)

    def newest_ts_ms(self) -> list[int | None]:
        """Per source (index = source index), the newest ts accepted there (epoch ms)."""
        return [source.max_ts_ms for source in self._sources]

    def positions(self) -> list[SourcePosition]:
        """Per source (index = source index), where a new owner resumes reading."""
        return [source.position() for source in self._sources]
