"""The backlog's layout in event time (no Kafka)."""

from __future__ import annotations

from benchmarks.feeds import BAR_MS, Backlog, bar_start_ms, history_ticks
from benchmarks.load import PriceWalk


def test_history_ticks_every_symbol_just_after_each_boundary() -> None:
    walk = PriceWalk(["A", "B"], seed=1)
    ticks = list(history_ticks(walk, first_bar_ms=60_000, bars=2, rounds_per_bar=4.0))
    assert [(tick.symbol, tick.ts.timestamp() * 1000) for tick in ticks] == [
        ("A", 60_001), ("B", 60_002), ("A", 120_001), ("B", 120_002)]


def test_bar_closes_count_the_boundaries_the_dense_ticks_cross() -> None:
    def backlog(start_ms: int, end_ms: int) -> Backlog:
        return Backlog(accounts=1, positions=1, history_ticks=0, dense_ticks=10,
                       dense_start_ms=start_ms, dense_end_ms=end_ms, ticks_per_s=1.0)

    assert backlog(BAR_MS - 1000, BAR_MS + 1000).bar_closes == 1
    assert backlog(BAR_MS - 1000, BAR_MS).bar_closes == 0  # nothing after the boundary yet
    assert backlog(BAR_MS + 1, 3 * BAR_MS + 5).bar_closes == 2
    assert backlog(1, 2).records == 12


def test_bar_start() -> None:
    assert bar_start_ms(3 * BAR_MS + 59_999) == 3 * BAR_MS
