"""A read-only copy of a :class:`~heatmap.engine.market.MarketState` that what-if runs on.

Taking one is cheap enough for every engine step: prices are copied (two vectors of
the universe), while the per-timeframe statistics (correlations, volatilities, warm-up
flags), which only change when a bar closes or a symbol joins, are computed once per
bar and shared by the copies of that bar. A copy answers the same reads as the live
market (:class:`heatmap.engine.frames.MarketReader`), with the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from heatmap.engine.market import MarketState


@dataclass(frozen=True)
class TimeframeStats:
    """Statistics of every slot for one timeframe, as of one bar close.

    correlation : ndarray, shape (n, n); volatility : ndarray, shape (n,), per bar;
    warming : ndarray of bool, shape (n,).
    """

    correlation: np.ndarray
    volatility: np.ndarray
    warming: np.ndarray


@dataclass(frozen=True)
class MarketView:
    """Prices and statistics of a universe of ``n`` symbols at one moment.

    Attributes
    ----------
    symbols : tuple[str, ...], length n, in slot order
    slots : mapping symbol -> slot
    last_price : ndarray, shape (n,), settlement currency
    last_price_ms : ndarray of int64, shape (n,), epoch ms
    stats : per timeframe, :class:`TimeframeStats`
    bar_ms : int or None
        The last bar close the statistics include (epoch ms).
    """

    symbols: tuple[str, ...]
    slots: Mapping[str, int]
    last_price: np.ndarray
    last_price_ms: np.ndarray
    stats: Mapping[str, TimeframeStats]
    bar_ms: int | None

    @property
    def ts_ms(self) -> int | None:
        """The newest price time (epoch ms); None before the first price."""
        return int(self.last_price_ms.max()) if self.symbols else None

    def correlation(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Correlations among ``slots``, shape (k, k)."""
        return self.stats[timeframe].correlation[np.ix_(slots, slots)]

    def volatility(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Per-bar volatility of log returns, shape (k,)."""
        return self.stats[timeframe].volatility[slots]

    def warming(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Whether each slot still lacks ``min_periods`` returns, shape (k,)."""
        return self.stats[timeframe].warming[slots]


def capture_market(market: MarketState, previous: MarketView | None = None) -> MarketView:
    """A copy of ``market`` as it is now.

    ``previous``: an earlier copy of the same market; its statistics (and symbols)
    are reused when no bar closed and no symbol joined since, so only prices are copied.
    """
    size = len(market.symbols)
    if (previous is not None and previous.bar_ms == market.last_boundary_ms
            and len(previous.symbols) == size):
        symbols, slots, stats = previous.symbols, previous.slots, previous.stats
    else:
        every_slot = np.arange(size)
        symbols, slots = tuple(market.symbols), dict(market.slots)
        stats = {timeframe: TimeframeStats(
            correlation=market.full_correlation(timeframe),
            volatility=market.volatility(timeframe, every_slot),
            warming=market.warming(timeframe, every_slot))
            for timeframe in market.estimators}
    return MarketView(symbols=symbols, slots=slots, last_price=market.last_price.copy(),
                      last_price_ms=market.last_price_ms.copy(), stats=stats,
                      bar_ms=market.last_boundary_ms)
