"""Drive the heat engine over merged input files and write frames (and alerts) as JSON lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from heatmap.db.writer import HeatBatch
from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.schema import Account, Frame, Position, Price, datetime_to_ms, encode, rfc3339_to_ms
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events


@dataclass
class ReplayResult:
    frames: int = 0
    alerts: int = 0
    frames_by_trigger: dict[str, int] = field(default_factory=dict)
    stats: ReadStats = field(default_factory=ReadStats)
    rows_written: dict[str, int] = field(default_factory=dict)


class DatabaseOutput:
    """Collects what a replay produces (and its inputs) into batches for the writer.

    Parameters
    ----------
    write : callable
        Stores one :class:`HeatBatch` (``HeatWriter.write``); returns rows inserted per table.
    batch_frames : int
        Frames per batch (with their positions and clusters).
    """

    def __init__(self, write: Callable[[HeatBatch], dict[str, int]],
                 batch_frames: int = 2000) -> None:
        self.write = write
        self.batch_frames = batch_frames
        self.batch = HeatBatch()
        self.rows_written: dict[str, int] = {}
        # Times of the first and last frame added (epoch ms): the range the rollups
        # have to be refreshed over afterwards.
        self.frames_range_ms: tuple[int, int] | None = None

    def add_input(self, message: Price | Position | Account) -> None:
        if isinstance(message, Price):
            self.batch.prices.append(message)
        elif isinstance(message, Position):
            self.batch.positions.append(message)
        else:
            self.batch.accounts.append(message)

    def add_frame(self, frame: Frame) -> None:
        self.batch.frames.append(frame)
        ts_ms = rfc3339_to_ms(frame.ts)
        first_ms, last_ms = self.frames_range_ms or (ts_ms, ts_ms)
        self.frames_range_ms = (min(first_ms, ts_ms), max(last_ms, ts_ms))
        if len(self.batch.frames) >= self.batch_frames:
            self.flush()

    def flush(self) -> None:
        for table, count in self.write(self.batch).items():
            self.rows_written[table] = self.rows_written.get(table, 0) + count
        self.batch = HeatBatch()


def replay(prices: list[Path], positions: Path | None, accounts: Path | None,
           params: EngineParams, frames_out: IO[bytes] | None,
           alerts_out: IO[bytes] | None = None, monitor: AlertMonitor | None = None,
           on_progress: Callable[[ReadStats], None] | None = None,
           database: DatabaseOutput | None = None) -> ReplayResult:
    """Replay the files through a fresh engine: one JSON frame per line to ``frames_out``,
    and everything (inputs, frames, correlations, alerts) to ``database`` when given."""
    engine = HeatEngine(params)
    monitor = monitor or AlertMonitor()
    result = ReplayResult()
    stats = result.stats

    if database is not None:
        def snapshot_correlations(boundary_ms: int) -> None:
            database.batch.correlations.extend(engine.correlation_snapshots(boundary_ms))
            database.batch.alert_levels.extend(monitor.levels(boundary_ms))

        engine.on_bar_close = snapshot_correlations

    def emit(frames: Iterable[Frame]) -> None:
        for frame in frames:
            if frames_out is not None:
                frames_out.write(encode(frame) + b"\n")
            result.frames += 1
            result.frames_by_trigger[frame.trigger] = (
                result.frames_by_trigger.get(frame.trigger, 0) + 1)
            alerts = monitor.observe(frame)
            for alert in alerts:
                result.alerts += 1
                if alerts_out is not None:
                    alerts_out.write(encode(alert) + b"\n")
            if database is not None:
                database.batch.alerts.extend(alerts)
                database.add_frame(frame)

    for count, message in enumerate(merged_events(prices, positions, accounts, stats)):
        emit(engine.iter_advance(datetime_to_ms(message.ts)))  # streamed: gaps close many bars
        if database is not None:
            database.add_input(message)
        emit(engine.on_message(message, datetime_to_ms(message.ts)))
        if on_progress is not None and count % 2048 == 0:
            on_progress(stats)
    emit(engine.finish())
    if database is not None:
        database.flush()
        result.rows_written = database.rows_written
    if on_progress is not None:
        on_progress(stats)
    return result
