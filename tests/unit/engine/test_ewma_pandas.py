"""The online estimator equals pandas' ewm(adjust=False) on the same returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from heatmap.engine.ewma import EwmaCorrelation
from heatmap.engine.market import MarketState
from heatmap.engine.params import EngineParams
from heatmap.schema import rfc3339_to_ms
from oracle.reference import bar_closes, load_prices, log_returns

DATA = Path(__file__).parents[3] / "data" / "binance-5m"


def _pandas_corr(returns: pd.DataFrame, halflife: float, min_periods: int, bar: int):
    window = returns.iloc[: bar + 1]
    return window.ewm(halflife=halflife, adjust=False, min_periods=min_periods).corr().loc[
        window.index[-1]]


@pytest.mark.slow
@pytest.mark.parametrize("timeframe", ["1h", "4h", "1d"])
def test_real_5m_bars_match_pandas_within_1e_8(timeframe: str) -> None:
    params = EngineParams(bar_interval_s=300,
                          timeframes={"1h": 3600, "4h": 14400, "1d": 86400})
    observations = load_prices(sorted(DATA.glob("*.csv")))
    closes = bar_closes(observations, 300)
    returns = log_returns(closes)
    market = MarketState(params)
    checkpoints = {25, 400, 2000, len(closes) - 1}
    worst_corr = worst_var = 0.0
    symbols = list(closes.columns)
    prices = observations.sort_values("ts", kind="stable")
    price_rows = iter(zip((rfc3339_to_ms(t.isoformat()) for t in prices["ts"]),
                          prices["symbol"], prices["price"], strict=True))
    pending = next(price_rows, None)
    for bar, boundary in enumerate(closes.index):
        boundary_ms = rfc3339_to_ms(boundary.isoformat())
        while pending is not None and pending[0] <= boundary_ms:
            market.on_price(pending[1], pending[0], float(pending[2]))
            pending = next(price_rows, None)
        assert market.next_boundary_before(boundary_ms + 1) == boundary_ms
        market.close_bar(boundary_ms)
        if bar not in checkpoints:
            continue
        slots = np.array([market.slots[s] for s in symbols])
        expected = _pandas_corr(returns, params.halflife_bars(timeframe),
                                params.min_periods, bar).loc[symbols, symbols].to_numpy()
        ours = market.correlation(timeframe, slots)
        defined = ~np.isnan(expected)
        np.fill_diagonal(defined, False)
        if defined.any():
            worst_corr = max(worst_corr, np.abs(ours[defined] - expected[defined]).max())
        variance = returns.iloc[: bar + 1].ewm(halflife=params.halflife_bars(timeframe),
                                               adjust=False).var(bias=True).iloc[-1]
        ours_sigma = market.volatility(timeframe, slots)
        assert np.allclose(ours_sigma**2, variance.loc[symbols].to_numpy(), rtol=1e-8,
                           atol=1e-16)
        worst_var = max(worst_var, float(np.nanmax(np.abs(ours_sigma**2 - variance.loc[
            symbols].to_numpy()))))
    assert worst_corr < 1e-8


def test_late_joiners_and_gaps_match_pandas_pairwise() -> None:
    rng = np.random.default_rng(7)
    bars, n = 400, 6
    frame = pd.DataFrame(rng.normal(size=(bars, n)) @ rng.normal(size=(n, n)) * 0.01)
    frame.iloc[:60, 3] = np.nan     # joins later
    frame.iloc[:150, 5] = np.nan    # joins much later
    frame.iloc[[200, 201], 1] = np.nan  # a gap
    halflife = 12.0
    estimator = EwmaCorrelation(1 - 2 ** (-1 / halflife), min_periods=20, capacity=2)
    estimator.resize(n)
    for t in range(bars):
        row = frame.iloc[t].to_numpy()
        estimator.update(np.nan_to_num(row), ~np.isnan(row))
        if t in (70, 160, 200, 202, 260, bars - 1):
            expected = _pandas_corr(frame, halflife, 20, t).to_numpy()
            ours = estimator.correlation(np.arange(n))
            defined = ~np.isnan(expected)
            assert np.abs(ours[defined] - expected[defined]).max() < 1e-12


def test_warming_pairs_are_zero_and_diagonal_is_one() -> None:
    estimator = EwmaCorrelation(0.1, min_periods=5)
    estimator.resize(2)
    for value in (0.01, 0.02, -0.01):
        estimator.update(np.array([value, value]))
    rho = estimator.correlation(np.arange(2))
    assert rho.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    for value in (0.03, -0.02):
        estimator.update(np.array([value, value]))
    assert estimator.correlation(np.arange(2))[0, 1] == pytest.approx(1.0)


def test_constant_prices_never_give_negative_variance_or_nan() -> None:
    estimator = EwmaCorrelation(0.05, min_periods=1)
    estimator.resize(3)
    for _ in range(500):
        estimator.update(np.zeros(3))
    rho = estimator.correlation(np.arange(3))
    assert np.isfinite(rho).all()
    assert (estimator.variance(np.arange(3)) >= 0).all()
