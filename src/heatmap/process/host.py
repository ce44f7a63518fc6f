"""The engine host: input records in, epochs of frames, alerts and dead letters out.

The pure core of ``heat process``'s active worker (the Faust worker drives it
and owns Kafka, time and threads). The caller numbers the input partitions
("sources") ``0..n-1`` and tells the host each one's message type; it feeds
every fetched record (:meth:`EngineHost.step`) with the sources that are caught
up, and cuts an epoch (:meth:`EngineHost.cut_epoch`) whenever it commits a
transaction. Inside, records are decoded, merged by the sequencer
(:mod:`heatmap.process.sequencer`) and applied in its released order exactly
as ``heat replay`` applies a merged file: advance the engine to the event's
time (bars close, change frames fall due), then apply the event. Every frame
goes through the alert monitor; every bar close snapshots the correlations.

An epoch's :class:`EpochOutput` is one transaction: the epoch record (the
applied order, :mod:`heatmap.process.epochs`), its frames, alerts,
correlation snapshots and dead letters, and optionally a checkpoint of the
state after it. A new owner rebuilds the host with :meth:`EngineHost.resume`
from the last checkpoint and the epochs committed after it, then seeks every
source to :meth:`EngineHost.seek_offsets`.

Alert thresholds change through the applied order too: the caller stages a new
alert configuration (:meth:`EngineHost.stage_alert_config`, the TOML file's
bytes) between two epochs; the next epoch record carries it, and it takes effect
at the next bar boundary (the first frames judged with it are that bar's). A
fresh host stages the configuration it starts with into its first epoch, and a
checkpoint holds the configuration in effect and the one waiting, so a new owner
re-applying the epochs judges every frame with the thresholds the first owner
used, whatever the file says by then.

Source numbering: at equal timestamps the sequencer applies lower source
indices first. ``heat replay`` applies prices, then account terms, then
positions; numbering the partitions of ``prices`` first, then ``accounts``,
then ``positions`` gives the same order.

Pure: no Kafka, asyncio, clock or environment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import msgspec

from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.checkpoint import export_state, restore_state
from heatmap.engine.engine import HeatEngine
from heatmap.engine.envelope import Envelope
from heatmap.engine.params import EngineParams
from heatmap.engine.share import BookShare
from heatmap.process.alert_config import AlertConfig, AlertConfigError, parse_alert_config
from heatmap.process.epochs import Epoch, EpochError, make_epoch, replay_order
from heatmap.process.sequencer import (
    Alignment,
    EventKey,
    Message,
    Sequencer,
    SourcePosition,
    SourceRecord,
)
from heatmap.schema import (
    Account,
    Alert,
    AlertLevels,
    CorrelationSnapshot,
    Frame,
    InvalidMessageError,
    Position,
    Price,
    decode,
)

MessageKind = type[Price] | type[Position] | type[Account]
CHECKPOINT_FORMAT = "heatmap.process.host"
# 2: the alert configuration in effect and the one waiting for the next bar boundary.
CHECKPOINT_VERSION = 2


class HostError(ValueError):
    """A host checkpoint or epoch log cannot be resumed from."""


class RawRecord(NamedTuple):
    """One input record as fetched: its source (input partition), offset, key and value
    bytes, and its Kafka timestamp (epoch ms; -1 when unknown), which only measures
    latency (:attr:`EpochOutput.released_by_ms`)."""

    source_index: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = -1

    @property
    def timestamp(self) -> int:
        """The Kafka timestamp (epoch ms), under the name a Kafka client's record uses."""
        return self.timestamp_ms


class FetchedRecord(Protocol):
    """What the host reads of a record a Kafka client fetched (a RawRecord, or aiokafka's
    ConsumerRecord as it is): offset, key, value bytes (None: empty) and Kafka timestamp
    (epoch ms; -1 when unknown)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> int: ...


class DeadLetter(NamedTuple):
    """An input record refused (undecodable, late for its key, a year ahead), with the reason."""

    source_index: int
    offset: int
    key: bytes | None
    value: bytes
    reason: str

    @classmethod
    def of(cls, source_index: int, raw: FetchedRecord, reason: str) -> DeadLetter:
        return cls(source_index, raw.offset, raw.key, raw.value or b"", reason)


@dataclass(frozen=True)
class EpochOutput:
    """What one epoch wrote: its record and outputs, in the order they were made.

    ``checkpoint``: the host state after this epoch (:meth:`EngineHost.checkpoint`),
    when one was asked for. Epochs re-applied by :meth:`EngineHost.resume` carry no
    dead letters (the epoch record does not list refused records) and no checkpoint.
    ``released_by_ms``: per frame, the Kafka timestamp (epoch ms, -1 unknown) of the
    input record whose application emitted it (the first past a bar boundary, or the
    position or equity change): where its latency starts.
    """

    epoch: Epoch
    frames: list[Frame] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    correlations: list[CorrelationSnapshot] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    checkpoint: bytes | None = None
    released_by_ms: list[int] = field(default_factory=list)
    alert_levels: list[AlertLevels] = field(default_factory=list)


@dataclass(frozen=True)
class HostConfig:
    """What a host is built with, and rebuilt with on resume.

    Parameters
    ----------
    params : EngineParams
        The engine parameters (a checkpoint only restores under the same ones).
    source_kinds : sequence of message types
        Per source index, the message type of its topic (Price, Position or Account).
    align_ms : int
        Sequencer alignment: a source this far (ms) ahead of the slowest is paused.
    alert_config : bytes
        The alert configuration a fresh host starts with (TOML bytes, validated by
        the caller; empty: the built-in thresholds). A host restored from a
        checkpoint uses the checkpoint's.
    share : BookShare, optional
        The books this engine frames when several share the desks (None: every
        book). Only a home engine publishes correlation snapshots and thresholds.
    """

    params: EngineParams
    source_kinds: Sequence[MessageKind]
    align_ms: int = 1000
    alert_config: bytes = b""
    share: BookShare | None = None


class _SavedSource(msgspec.Struct, frozen=True, array_like=True):
    resume_offset: int
    done_ahead: list[int]


class _SavedAppliedTs(msgspec.Struct, frozen=True, array_like=True):
    topic: str
    key: str
    ts_ms: int


class HostCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The host state after epoch ``epoch`` (-1: before the first), as msgpack.

    ``sources``: where each source resumes (as in the epoch record);
    ``applied_ts``: the last applied ts per key (epoch ms), so lateness continues;
    ``engine``: :func:`heatmap.engine.checkpoint.export_state` of engine and alerts;
    ``alert_config``: the alert configuration in effect (TOML bytes),
    ``pending_alert_config``: one staged that waits for the next bar boundary.
    A reader accepts only its own ``format_version``.
    """

    format: str
    format_version: int
    epoch: int
    sources: list[_SavedSource]
    applied_ts: list[_SavedAppliedTs]
    engine: bytes
    alert_config: bytes
    pending_alert_config: bytes | None


_CHECKPOINT_ENVELOPE = Envelope(HostCheckpoint, format=CHECKPOINT_FORMAT,
                                version=CHECKPOINT_VERSION, error=HostError,
                                name="host checkpoint", version_name="host checkpoint version",
                                advice="start afresh")


def _decode(kind: MessageKind, value: bytes) -> Message:
    """The validated message of ``kind`` in ``value``; raises InvalidMessageError."""
    if kind is Price:
        return decode(Price, value)
    if kind is Position:
        return decode(Position, value)
    return decode(Account, value)


@dataclass(frozen=True)
class Resumed:
    """A host rebuilt by :meth:`EngineHost.resume`, the outputs of the epochs it re-applied
    (for comparison, never to be written again) and per source the offset to seek to."""

    host: EngineHost
    replayed: list[EpochOutput]
    seek_offsets: list[int]


class EngineHost:
    """A heat engine, its alert monitor and the sequencer that orders its input.

    Build a fresh one with ``EngineHost(config)``, or rebuild one with
    :meth:`resume`. Not thread-safe: one caller drives it.
    """

    def __init__(self, config: HostConfig, *, engine_state: bytes | None = None,
                 next_epoch: int = 0, positions: Sequence[SourcePosition] | None = None,
                 applied_ts_by_key: Mapping[EventKey, int] | None = None,
                 alert_config: tuple[bytes, bytes | None] | None = None) -> None:
        self.config = config
        params = config.params
        # The alert configuration in effect, the one waiting for the next bar boundary,
        # and the one staged in the open epoch (its record carries it).
        self._alert_config = config.alert_config if alert_config is None else alert_config[0]
        self._pending_alert_config = None if alert_config is None else alert_config[1]
        self._staged_alert_config: bytes | None = None
        limits = self._parsed(self._alert_config)
        if engine_state is None:
            self.engine = HeatEngine(params, on_bar_close=self._bar_closed)
            self.monitor = AlertMonitor(limits.defaults, dict(limits.per_desk))
            self._staged_alert_config = self._alert_config  # recorded in the first epoch
        else:
            self.engine, self.monitor = restore_state(
                engine_state, params, alert_defaults=limits.defaults,
                alert_per_desk=dict(limits.per_desk), on_bar_close=self._bar_closed)
        self.engine.share = config.share  # configuration, not state
        self._publishes_shared = config.share is None or config.share.home
        count = len(config.source_kinds)
        positions = positions or [SourcePosition(0, ())] * count
        if len(positions) != count:
            raise HostError(f"{len(positions)} source positions for {count} sources: the "
                            "input partitions changed; start afresh")
        self.sequencer = Sequencer(
            [position.resume_offset for position in positions], align_ms=config.align_ms,
            done_ahead={index: position.done_ahead for index, position in enumerate(positions)},
            applied_ts_by_key=applied_ts_by_key)
        self.next_epoch = next_epoch
        self._open()

    def _open(self) -> None:
        """Start collecting a new epoch's outputs."""
        self._applied: list[SourceRecord] = []
        self._frames: list[Frame] = []
        self._alerts: list[Alert] = []
        self._correlations: list[CorrelationSnapshot] = []
        self._alert_levels: list[AlertLevels] = []
        self._dead_letters: list[DeadLetter] = []
        self._released_by_ms: list[int] = []

    # -- input -------------------------------------------------------------------------------

    def step(self, records: Iterable[RawRecord], caught_up: Collection[int],
             max_events: int | None = None, *, arrived_s: float = 0.0,
             settled_before_s: float | None = None) -> int:
        """Decode and buffer ``records`` (offsets increasing per source), then apply every
        record the watermark releases, at most ``max_events`` (a catch-up releases a
        backlog at once; the rest is applied by the next calls, in the same order).
        ``caught_up``: the sources at their high-water mark. ``arrived_s``: when
        ``records`` were fetched; ``settled_before_s``: the latest arrival every
        caught-up source vouches for (see the sequencer's settling; same clock, s).
        Returns the number of events applied."""
        by_source: dict[int, list[RawRecord]] = {}
        for raw in records:
            by_source.setdefault(raw.source_index, []).append(raw)
        return self.step_fetched(by_source, caught_up, max_events, arrived_s=arrived_s,
                                 settled_before_s=settled_before_s)

    def step_fetched(self, fetched: Mapping[int, Sequence[FetchedRecord]],
                     caught_up: Collection[int], max_events: int | None = None, *,
                     arrived_s: float = 0.0, settled_before_s: float | None = None) -> int:
        """:meth:`step` with the records as a Kafka client hands them over: per source
        index, that source's records in offset order (no copy into RawRecords)."""
        for source_index, records in fetched.items():
            self._feed(source_index, records, arrived_s)
        released = self.sequencer.release(caught_up, max_events, settled_before_s)
        self._apply_all(released)
        return len(released)

    def _feed(self, source_index: int, fetched: Sequence[FetchedRecord],
              arrived_s: float) -> None:
        """Decode one source's records (offsets increasing) and buffer them in the sequencer;
        refused ones become dead letters."""
        kind, sequencer = self.config.source_kinds[source_index], self.sequencer
        decoded: list[SourceRecord] = []
        for raw in fetched:
            try:
                message = _decode(kind, raw.value or b"")
            except InvalidMessageError as error:
                self._buffer(source_index, decoded, fetched, arrived_s)  # offsets in order
                decoded = []
                if sequencer.skip(source_index, raw.offset):
                    self._dead_letters.append(DeadLetter.of(source_index, raw, str(error)))
                continue
            decoded.append(SourceRecord.of(source_index, raw.offset, message, raw.timestamp))
        self._buffer(source_index, decoded, fetched, arrived_s)

    def _buffer(self, source_index: int, decoded: Sequence[SourceRecord],
                fetched: Sequence[FetchedRecord], arrived_s: float) -> None:
        rejections = self.sequencer.add_all(source_index, decoded, arrived_s)
        if rejections:
            raw_of = {raw.offset: raw for raw in fetched}
            self._dead_letters.extend(DeadLetter.of(source_index, raw_of[rejection.record.offset],
                                                    rejection.reason)
                                      for rejection in rejections)

    def alignment(self) -> Alignment:
        """Which sources to pause and resume fetching (see :meth:`Sequencer.alignment`)."""
        return self.sequencer.alignment()

    @property
    def open_events(self) -> int:
        """Events applied since the last cut (the caller's epoch size rule)."""
        return len(self._applied)

    @property
    def open_outputs(self) -> int:
        """Frames, alerts and dead letters waiting for the next cut."""
        return len(self._frames) + len(self._alerts) + len(self._dead_letters)

    def _apply_all(self, records: Sequence[SourceRecord]) -> None:
        """Apply ``records`` in order, each run of quiet prices conflated.

        A quiet run: consecutive prices of symbols already priced, none after the next
        moment that makes frames (a bar boundary, a change frame due): applying them
        emits nothing, so only the last price of each symbol matters and the engine
        takes the run at once (:meth:`HeatEngine.on_quiet_prices`). The outcome is the
        one-by-one application's, bit for bit, and the epoch lists every record, so a
        new owner re-applying it conflates the same runs.
        """
        engine, applied = self.engine, self._applied
        slots = engine.market.slots
        position, count = 0, len(records)
        while position < count:
            quiet_ms = engine.quiet_until_ms()
            end = position
            if quiet_ms is not None:
                while end < count:
                    record = records[end]
                    message = record.message
                    if (type(message) is not Price or record.ts_ms > quiet_ms
                            or message.symbol not in slots):
                        break
                    end += 1
            if end - position < 2:
                self._apply(records[position])
                position += 1
                continue
            run = records[position:end]
            engine.on_quiet_prices([record.message for record in run],  # type: ignore[misc]
                                   [record.ts_ms for record in run])
            applied.extend(run)
            position = end

    def _apply(self, record: SourceRecord) -> None:
        """Apply one event as ``heat replay`` does: advance to its time, then apply it."""
        self._emit(self.engine.iter_advance(record.ts_ms), record.appended_ms)
        self._emit(self.engine.on_message(record.message, record.ts_ms), record.appended_ms)
        self._applied.append(record)

    def _emit(self, frames: Iterable[Frame], released_by_ms: int) -> None:
        for frame in frames:
            self._frames.append(frame)
            self._released_by_ms.append(released_by_ms)
            self._alerts.extend(self.monitor.observe(frame))

    def _bar_closed(self, boundary_ms: int) -> None:
        if self._pending_alert_config is not None:  # before the bar's frames are judged
            self._use_alert_config(self._pending_alert_config)
            self._pending_alert_config = None
        if not self._publishes_shared:  # the home engine publishes these once
            return
        self._correlations.extend(self.engine.correlation_snapshots(boundary_ms))
        # Every bar: the thresholds in effect are current in the database whatever was lost.
        self._alert_levels.extend(self.monitor.levels(boundary_ms))

    # -- alert configuration -----------------------------------------------------------------

    @property
    def alert_config(self) -> bytes:
        """The newest alert configuration this host knows (TOML bytes): staged, waiting
        or in effect; the caller compares its file against it."""
        if self._staged_alert_config is not None:
            return self._staged_alert_config
        if self._pending_alert_config is not None:
            return self._pending_alert_config
        return self._alert_config

    def stage_alert_config(self, content: bytes) -> None:
        """Make ``content`` (an alert configuration's TOML bytes) part of the applied
        order: the next epoch record carries it, and it takes effect at the next bar
        boundary (at once while the engine has seen nothing: no frame was judged yet).

        Only between an epoch's cut and the next :meth:`step` (ValueError otherwise).
        Raises AlertConfigError when ``content`` is not a valid configuration.
        """
        if self._applied or self._frames:
            raise ValueError("stage an alert configuration only right after cut_epoch")
        self._parsed(content)  # refused here, not at a bar boundary
        self._staged_alert_config = content
        if not self.engine.market.symbols and not self.engine.book.accounts:
            self._use_alert_config(content)
            self._pending_alert_config = None
        else:
            self._pending_alert_config = content

    def _use_alert_config(self, content: bytes) -> None:
        limits = self._parsed(content)
        self.monitor.defaults, self.monitor.per_desk = limits.defaults, dict(limits.per_desk)
        self._alert_config = content

    def _parsed(self, content: bytes) -> AlertConfig:
        return parse_alert_config(content, self.config.params.timeframes)

    # -- output ------------------------------------------------------------------------------

    def cut_epoch(self, *, checkpoint: bool = False) -> EpochOutput:
        """Close the open epoch: its record (applied order, resume positions), its outputs
        and, when ``checkpoint``, the state after it. The next epoch starts empty."""
        epoch = make_epoch(self.next_epoch, self.sequencer.watermark_ms, self._applied,
                           self.sequencer.positions(), self._staged_alert_config)
        self._staged_alert_config = None
        frames, alerts, correlations = self._frames, self._alerts, self._correlations
        # Engines sharing the desks all read every record: the home engine's letters only.
        dead_letters = self._dead_letters if self._publishes_shared else []
        released_by_ms = self._released_by_ms
        alert_levels = self._alert_levels
        self.next_epoch += 1
        self._open()
        return EpochOutput(epoch, frames, alerts, correlations, dead_letters,
                           self.checkpoint() if checkpoint else None, released_by_ms,
                           alert_levels)

    def checkpoint(self) -> bytes:
        """The host state after the last cut epoch, as msgpack bytes.

        Only between an epoch's cut and the next :meth:`step` (ValueError otherwise):
        the state must be the one the epoch record ends with.
        """
        if self._applied or self._dead_letters or self._frames:
            raise ValueError("checkpoint only right after cut_epoch: this epoch is open")
        positions = self.sequencer.positions()
        return _CHECKPOINT_ENVELOPE.encode(HostCheckpoint(
            format=CHECKPOINT_FORMAT, format_version=CHECKPOINT_VERSION,
            epoch=self.next_epoch - 1,
            sources=[_SavedSource(p.resume_offset, list(p.done_ahead)) for p in positions],
            applied_ts=[_SavedAppliedTs(topic, key, ts_ms)
                        for (topic, key), ts_ms in self.sequencer.applied_ts_by_key.items()],
            engine=export_state(self.engine, self.monitor),
            alert_config=self._alert_config, pending_alert_config=self._pending_alert_config))

    def seek_offsets(self) -> list[int]:
        """Per source, the offset to read from next (the sequencer's resume offsets)."""
        return [position.resume_offset for position in self.sequencer.positions()]

    # -- resume ------------------------------------------------------------------------------

    @classmethod
    def resume(cls, config: HostConfig, checkpoint: bytes | None,
               epochs_after: Iterable[Epoch],
               records_by_source: Mapping[int, Iterable[RawRecord]]) -> Resumed:
        """Rebuild the host a dead owner left: restore ``checkpoint`` (None: from scratch),
        re-apply the epochs after it in their recorded order, and continue.

        ``epochs_after``: the committed epochs in order; those the checkpoint already
        holds are skipped, the rest must follow it without a gap. ``records_by_source``:
        the input records covering at least the offsets those epochs applied.
        Raises HostError (or EpochError for a missing record).
        """
        saved = None if checkpoint is None else decode_checkpoint(checkpoint)
        last_number = -1 if saved is None else saved.epoch
        positions: list[SourcePosition] | None = None if saved is None else [
            SourcePosition(s.resume_offset, tuple(s.done_ahead)) for s in saved.sources]
        epochs = [epoch for epoch in epochs_after if epoch.epoch > last_number]
        for expected, epoch in enumerate(epochs, start=last_number + 1):
            if epoch.epoch != expected:
                raise HostError(f"epoch {expected} is missing after epoch {expected - 1}: "
                                "the sequence topic lost records; start afresh")
        if epochs:
            positions = [SourcePosition(s.resume_offset, tuple(s.done_ahead))
                         for s in epochs[-1].sources]
        host = cls(config, engine_state=None if saved is None else saved.engine,
                   next_epoch=last_number + 1, positions=positions,
                   applied_ts_by_key=None if saved is None else {
                       (item.topic, item.key): item.ts_ms for item in saved.applied_ts},
                   alert_config=None if saved is None else (saved.alert_config,
                                                            saved.pending_alert_config))
        if epochs:  # they carry the configurations they staged, the first one's included
            host._staged_alert_config = None
        by_offset = {index: {record.offset: record for record in records}
                     for index, records in records_by_source.items()}
        replayed = [host._reapply(epoch, by_offset) for epoch in epochs]
        return Resumed(host, replayed, host.seek_offsets())

    def _reapply(self, epoch: Epoch, by_offset: Mapping[int, Mapping[int, RawRecord]]
                 ) -> EpochOutput:
        """Apply one committed epoch's records in its recorded order; returns its outputs."""
        needed = {}  # only the records the epoch applied (replay_order says if any is missing)
        for source in epoch.sources:
            records = by_offset.get(source.source_index, {})
            needed[source.source_index] = [records[offset] for offset in source.offsets()
                                            if offset in records]
        if epoch.alert_config is not None:
            try:
                self.stage_alert_config(epoch.alert_config)
            except AlertConfigError as error:
                raise HostError(f"epoch {epoch.epoch}: its alert configuration no longer "
                                f"reads ({error.lines[0]}); start afresh") from error
            self._staged_alert_config = None  # already in the committed record
        kinds = self.config.source_kinds
        reapplied: list[SourceRecord] = []
        for raw in replay_order(epoch, needed):
            try:
                message = _decode(kinds[raw.source_index], raw.value)
            except InvalidMessageError as error:
                raise EpochError(f"epoch {epoch.epoch}: applied record {raw.offset} of "
                                 f"source {raw.source_index} no longer decodes: {error}"
                                 ) from error
            record = SourceRecord.of(raw.source_index, raw.offset, message)
            self.sequencer.remember(record)
            reapplied.append(record)
        self._apply_all(reapplied)
        output = EpochOutput(epoch, self._frames, self._alerts, self._correlations,
                             alert_levels=self._alert_levels)
        self.next_epoch = epoch.epoch + 1
        self._open()
        return output


def decode_checkpoint(blob: bytes) -> HostCheckpoint:
    """The host checkpoint in ``blob``; HostError when it is none of this version."""
    return _CHECKPOINT_ENVELOPE.decode(blob)
