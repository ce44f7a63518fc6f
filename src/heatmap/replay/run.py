"""Drive the heat engine over merged input files and write frames (and alerts) as JSON lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.replay.sources import ReadStats, merged_events
from heatmap.schema import Account, Frame, Position, Price, encode, ts_to_ms


@dataclass
class ReplayResult:
    frames: int = 0
    alerts: int = 0
    frames_by_trigger: dict[str, int] = field(default_factory=dict)
    stats: ReadStats = field(default_factory=ReadStats)


def apply(engine: HeatEngine, message: Price | Position | Account) -> list[Frame]:
    """Feed one validated message to the engine; returns the frames it released."""
    ts_ms = ts_to_ms(message.ts)
    if isinstance(message, Price):
        return engine.on_price(message.symbol, ts_ms, message.price)
    if isinstance(message, Position):
        return engine.on_position(message.account, message.symbol, ts_ms, message.qty,
                                  message.strategy, message.conviction)
    return engine.on_account(message.account, ts_ms, message.equity, message.desk,
                             message.maintenance_rate)


def replay(prices: list[Path], positions: Path | None, accounts: Path | None,
           params: EngineParams, frames_out: IO[bytes], alerts_out: IO[bytes] | None = None,
           monitor: AlertMonitor | None = None,
           on_progress: Callable[[ReadStats], None] | None = None) -> ReplayResult:
    """Replay the files through a fresh engine, writing one JSON frame per line."""
    engine = HeatEngine(params)
    monitor = monitor or AlertMonitor()
    result = ReplayResult()
    stats = result.stats

    def emit(frames: Iterable[Frame]) -> None:
        for frame in frames:
            frames_out.write(encode(frame) + b"\n")
            result.frames += 1
            result.frames_by_trigger[frame.trigger] = (
                result.frames_by_trigger.get(frame.trigger, 0) + 1)
            for alert in monitor.observe(frame):
                result.alerts += 1
                if alerts_out is not None:
                    alerts_out.write(encode(alert) + b"\n")

    for count, message in enumerate(merged_events(prices, positions, accounts, stats)):
        emit(engine.iter_advance(ts_to_ms(message.ts)))  # streamed: gaps close many bars
        emit(apply(engine, message))
        if on_progress is not None and count % 2048 == 0:
            on_progress(stats)
    emit(engine.finish())
    if on_progress is not None:
        on_progress(stats)
    return result
