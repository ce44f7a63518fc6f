"""The pipeline benchmark's synthetic load and statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.load import (
    LatencySummary,
    LoadShape,
    PositionChanges,
    PriceWalk,
    ReleaseClock,
    crossing_time,
    histogram_quantile,
    make_books,
    percentile,
    rate_between,
    tick_times_ms,
    value_at,
)


def test_ticks_go_round_robin_over_the_symbols() -> None:
    walk = PriceWalk(["A", "B", "C"], seed=1)
    ticks = walk.ticks(7)
    assert [symbol for symbol, _ in ticks] == ["A", "B", "C", "A", "B", "C", "A"]
    assert all(price > 0 for _, price in ticks)
    assert walk.ticks_made == 7


def test_a_walk_is_the_same_however_it_is_cut_and_skipped() -> None:
    whole = PriceWalk(["A", "B", "C"], seed=3).ticks(10)
    cut = PriceWalk(["A", "B", "C"], seed=3)
    pieces = cut.ticks(4) + cut.ticks(1) + cut.ticks(5)
    assert pieces == whole
    skipped = PriceWalk(["A", "B", "C"], seed=3)
    skipped.skip(6)
    assert skipped.ticks(4) == whole[6:]


def test_symbols_of_a_sector_move_together() -> None:
    """Bar returns (one round per bar, scaled) are correlated: the market factor alone
    gives every pair a positive correlation on average."""
    shape = LoadShape(symbols=40)
    walk = PriceWalk(shape.symbol_names(), seed=5)
    closes = np.array([[price for _, price in walk.ticks(40, scale=30.0)] for _ in range(300)])
    returns = np.diff(np.log(closes), axis=0)
    rho = np.corrcoef(returns.T)
    assert rho[np.triu_indices(40, 1)].mean() > 0.2


def test_tick_times_are_spaced_by_the_rate() -> None:
    assert tick_times_ms(1000, 0, 5, 2000.0) == [1000, 1000, 1001, 1001, 1002]
    assert tick_times_ms(1000, 3, 2, 1000.0) == [1003, 1004]


def test_books_hold_distinct_symbols_within_the_share_bound() -> None:
    shape = LoadShape(symbols=30, accounts=6, desks=2, positions_per_account=5)
    prices = dict.fromkeys(shape.symbol_names(), 50.0)
    books = make_books(shape, prices, ts_ms=0, equity=1000.0)
    assert [account.desk for account in books.accounts] == ["desk-00", "desk-01"] * 3
    assert books.position_count == 30
    for held in books.holdings.values():
        assert len({symbol for symbol, _ in held}) == 5
        assert all(abs(qty * 50.0 / 1000.0) <= 0.15 for _, qty in held)
    assert len(books.positions(ts_ms=0)) == 30


def test_position_changes_visit_accounts_in_turn_and_resize_slightly() -> None:
    shape = LoadShape(symbols=10, accounts=3, desks=0, positions_per_account=2)
    books = make_books(shape, dict.fromkeys(shape.symbol_names(), 10.0), ts_ms=0)
    before = {account: dict(held) for account, held in books.holdings.items()}
    changes = PositionChanges(books, seed=1)
    made = [changes.next(ts_ms=n) for n in range(6)]
    assert [change.account for change in made] == ["acct-0000", "acct-0001", "acct-0002"] * 2
    first, fourth = made[0], made[3]
    assert first.symbol != fourth.symbol  # the account's next holding
    assert 0.9 <= first.qty / before["acct-0000"][first.symbol] <= 1.1


def test_percentiles_interpolate() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert math.isnan(percentile([], 50))
    summary = LatencySummary.of([10.0, 20.0, 30.0])
    assert (summary.count, summary.p50_ms, summary.max_ms) == (3, 20.0, 30.0)


def test_histogram_quantile_is_linear_within_a_bucket() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (math.inf, 40.0)]
    assert histogram_quantile(buckets, 0.25) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.15)
    assert histogram_quantile(buckets, 0.875) == pytest.approx(0.35)


def test_histogram_quantile_in_the_infinite_bucket_is_the_largest_bound() -> None:
    assert histogram_quantile([(1.0, 1.0), (math.inf, 10.0)], 0.99) == 1.0
    assert math.isnan(histogram_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5))


def test_rates_come_from_interpolated_crossings() -> None:
    samples = [(0.0, 0.0), (1.0, 100.0), (2.0, 100.0), (3.0, 400.0)]
    assert crossing_time(samples, 50) == pytest.approx(0.5)
    assert crossing_time(samples, 100) == pytest.approx(1.0)
    assert crossing_time(samples, 250) == pytest.approx(2.5)
    assert crossing_time(samples, 500) is None
    assert rate_between(samples, 50, 250) == pytest.approx(100.0)
    assert rate_between(samples, 50, 500) is None


def test_values_between_samples_are_interpolated() -> None:
    samples = [(0.0, 10.0), (100.0, 20.0), (100.0, 25.0), (300.0, 45.0)]
    assert value_at(samples, 50.0) == pytest.approx(15.0)
    assert value_at(samples, 200.0) == pytest.approx(35.0)
    assert value_at(samples, -5.0) == 10.0
    assert value_at(samples, 301.0) is None


def test_a_frame_is_released_by_the_first_input_after_its_time() -> None:
    clock = ReleaseClock()
    clock.add([100, 100, 105])
    clock.add([103, 110])  # out of order: merged
    assert clock.released_at(99) == 100
    assert clock.released_at(100) == 103
    assert clock.released_at(105) == 110
    assert clock.released_at(110) is None
