"""Correlation snapshots list symbols sorted, whatever order they first priced in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heatmap.db.writer import HeatBatch
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.replay.run import DatabaseOutput, replay

PARAMS = EngineParams(bar_interval_s=60, timeframes={"5m": 300}, min_periods=2)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PATHS: dict[str, list[float]] = {
    "ZZZ": [100, 101, 99, 103, 104, 102], "AAA": [10, 10.5, 10.2, 10.9, 11, 10.4],
    "MMM": [5, 4.9, 5.1, 4.8, 4.7, 5.0], "BBB": [1, 1.1, 1.0, 1.2, 1.1, 1.3]}


def _engine(order: list[str]) -> HeatEngine:
    engine = HeatEngine(PARAMS)
    for bar in range(6):
        for symbol in order:
            engine.on_price(symbol, T0_MS + bar * 60_000, PATHS[symbol][bar])
    engine.advance_to(T0_MS + 6 * 60_000)
    return engine


def test_symbols_are_sorted_and_rho_follows_them() -> None:
    engine = _engine(["ZZZ", "AAA", "MMM", "BBB"])
    symbols, rho = engine.correlation_snapshot("5m")
    assert symbols == ["AAA", "BBB", "MMM", "ZZZ"]
    assert engine.market.symbols == ["ZZZ", "AAA", "MMM", "BBB"]  # slots keep first-seen order
    slots = np.array([engine.market.slots[s] for s in symbols])
    full = engine.market.correlation("5m", slots)
    rows, cols = np.triu_indices(len(symbols), 1)
    np.testing.assert_array_equal(rho, full[rows, cols])
    assert np.abs(rho).max() > 0.0  # warm: a real matrix, not the warm-up zeros


def test_snapshot_does_not_depend_on_first_seen_order() -> None:
    first, second = _engine(["ZZZ", "AAA", "MMM", "BBB"]), _engine(["BBB", "MMM", "AAA", "ZZZ"])
    symbols_1, rho_1 = first.correlation_snapshot("5m")
    symbols_2, rho_2 = second.correlation_snapshot("5m")
    assert symbols_1 == symbols_2
    assert rho_1.tobytes() == rho_2.tobytes()


def test_replay_writes_sorted_snapshots_to_the_database(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,symbol,price\n" + "".join(
        f"2026-01-01T00:{bar:02d}:00Z,{symbol},{PATHS[symbol][bar]}\n"
        for bar in range(6) for symbol in ("ZZZ", "AAA", "MMM", "BBB")))
    positions = tmp_path / "positions.csv"
    positions.write_text("timestamp,account,symbol,qty\n2026-01-01T00:00:30Z,a,ZZZ,1\n")
    batches: list[HeatBatch] = []

    def write(batch: HeatBatch) -> dict[str, int]:
        batches.append(batch)
        return {}

    replay([prices], positions, None, PARAMS, None, database=DatabaseOutput(write))
    snapshots = [c for batch in batches for c in batch.correlations]
    assert len(snapshots) == 6  # one per bar close
    for snapshot in snapshots:
        assert snapshot.symbols == ["AAA", "BBB", "MMM", "ZZZ"]
        assert len(snapshot.rho) == 6
