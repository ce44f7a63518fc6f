"""Prices, bar closes and the per-timeframe correlation estimators of one universe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from heatmap.engine.arrays import require_array
from heatmap.engine.ewma import EwmaCorrelation, ExportedEwma
from heatmap.engine.params import EngineParams


@dataclass(frozen=True, kw_only=True)
class ExportedMarket:
    """Prices, bars and statistics of a market, copied out of it (``k`` symbols).

    Attributes
    ----------
    symbols : list of str, length k
        In slot order (the order they first priced in).
    last_price : ndarray of float64, shape (k,)
        The last observed price per symbol, in the settlement currency.
    last_price_ms : ndarray of int64, shape (k,)
        When each last price was observed, epoch ms.
    prev_close : ndarray of float64, shape (k,)
        The close of the last closed bar; NaN before a symbol's first close.
    next_boundary_ms, last_boundary_ms : int or None
        The next bar boundary to close and the last one closed, epoch ms.
    estimators : dict of str to ExportedEwma
        Per timeframe, in the parameters' order; each over ``k`` slots.
    """

    symbols: list[str]
    last_price: np.ndarray
    last_price_ms: np.ndarray
    prev_close: np.ndarray
    next_boundary_ms: int | None
    last_boundary_ms: int | None
    estimators: dict[str, ExportedEwma]


class MarketState:
    """Every symbol with a price: last price, bar closes and EWMA statistics.

    Symbols get a slot on their first price and keep it; statistics of all
    timeframes are indexed by slot. Prices are in the settlement currency;
    timestamps are epoch milliseconds.
    """

    def __init__(self, params: EngineParams) -> None:
        self.params = params
        self.bar_ms = params.bar_interval_s * 1000
        self.slots: dict[str, int] = {}
        self.symbols: list[str] = []
        self.last_price = np.empty(0)
        self.last_price_ms = np.empty(0, dtype=np.int64)
        self.prev_close = np.empty(0)
        self.estimators = {
            name: EwmaCorrelation(params.alpha(name), params.min_periods)
            for name in params.timeframes
        }
        self.next_boundary_ms: int | None = None
        self.last_boundary_ms: int | None = None
        self._correlation_cache: dict[str, np.ndarray] = {}

    def _add_symbol(self, symbol: str) -> int:
        slot = len(self.symbols)
        self.slots[symbol] = slot
        self.symbols.append(symbol)
        self.last_price = np.append(self.last_price, math.nan)
        self.last_price_ms = np.append(self.last_price_ms, np.int64(0))
        self.prev_close = np.append(self.prev_close, math.nan)
        for estimator in self.estimators.values():
            estimator.resize(slot + 1)
        self._correlation_cache.clear()
        return slot

    def export_state(self) -> ExportedMarket:
        """A copy of the prices, bars and statistics (not the correlation cache)."""
        return ExportedMarket(
            symbols=list(self.symbols), last_price=self.last_price.copy(),
            last_price_ms=self.last_price_ms.copy(), prev_close=self.prev_close.copy(),
            next_boundary_ms=self.next_boundary_ms, last_boundary_ms=self.last_boundary_ms,
            estimators={name: estimator.export_state()
                        for name, estimator in self.estimators.items()})

    def restore_state(self, state: ExportedMarket) -> None:
        """Take over ``state`` (exported by a market of the same parameters); only a
        fresh market, with no symbol yet, can.

        Raises
        ------
        ValueError
            The market has symbols already, or ``state`` is inconsistent: other
            timeframes, a symbol twice, or estimators or arrays that do not fit the symbols.
        """
        if self.symbols:
            raise ValueError("only a fresh market takes over an exported state")
        if list(state.estimators) != list(self.estimators):
            raise ValueError(f"timeframes {list(state.estimators)}, expected "
                             f"{list(self.estimators)}")
        k = len(state.symbols)
        if len(set(state.symbols)) != k:
            raise ValueError("a symbol appears twice")
        for name, estimator in self.estimators.items():
            if state.estimators[name].size != k:
                raise ValueError(f"timeframe {name} holds {state.estimators[name].size} "
                                 f"slots for {k} symbols")
            estimator.restore_state(state.estimators[name])
        require_array("last_price", state.last_price, np.float64, (k,))
        require_array("last_price_ms", state.last_price_ms, np.int64, (k,))
        require_array("prev_close", state.prev_close, np.float64, (k,))
        self.symbols = list(state.symbols)
        self.slots = {symbol: slot for slot, symbol in enumerate(state.symbols)}
        # Copies: the market updates these in place.
        self.last_price = state.last_price.copy()
        self.last_price_ms = state.last_price_ms.copy()
        self.prev_close = state.prev_close.copy()
        self.next_boundary_ms = state.next_boundary_ms
        self.last_boundary_ms = state.last_boundary_ms

    def on_price(self, symbol: str, ts_ms: int, price: float) -> None:
        """Record an observed price. Close earlier bars first (:meth:`next_boundary_before`)."""
        slot = self.slots.get(symbol)
        if slot is None:
            slot = self._add_symbol(symbol)
        if ts_ms >= self.last_price_ms[slot] or math.isnan(self.last_price[slot]):
            self.last_price[slot] = price
            self.last_price_ms[slot] = ts_ms
        if self.next_boundary_ms is None:
            # The first bar closes at the first boundary at or after the first price.
            self.next_boundary_ms = -(-ts_ms // self.bar_ms) * self.bar_ms

    def on_prices(self, slots: Sequence[int], ts_ms: Sequence[int],
                  prices: Sequence[float]) -> None:
        """Record one observed price for each of ``slots`` (distinct, already priced), as
        :meth:`on_price` would for each: kept only when at least as new as the last."""
        slot_index = np.asarray(slots, dtype=np.int64)
        times_ms = np.asarray(ts_ms, dtype=np.int64)
        newer = (times_ms >= self.last_price_ms[slot_index]) | np.isnan(
            self.last_price[slot_index])
        self.last_price[slot_index[newer]] = np.asarray(prices, dtype=np.float64)[newer]
        self.last_price_ms[slot_index[newer]] = times_ms[newer]

    def next_boundary_before(self, ts_ms: int) -> int | None:
        """The next bar boundary to close if it lies strictly before ``ts_ms``, else None."""
        if self.next_boundary_ms is None or self.next_boundary_ms >= ts_ms:
            return None
        return self.next_boundary_ms

    def close_bar(self, boundary_ms: int) -> None:
        """Close the bar at ``boundary_ms``: closes are the last prices (carried forward).

        Every symbol with a previous close gets a return ``ln(C(k) / C(k-1))``;
        a symbol's first close only starts its series.
        """
        closes = self.last_price
        observed = ~np.isnan(self.prev_close)
        with np.errstate(invalid="ignore", divide="ignore"):
            returns = np.where(observed, np.log(closes / self.prev_close), 0.0)
        for estimator in self.estimators.values():
            estimator.update(returns, observed)
        self.prev_close = closes.copy()
        self.last_boundary_ms = boundary_ms
        self.next_boundary_ms = boundary_ms + self.bar_ms
        self._correlation_cache.clear()

    def full_correlation(self, timeframe: str) -> np.ndarray:
        """Correlations of every slot for ``timeframe``, shape (n, n), cached per bar.

        The array is shared and never written: a bar close or a new symbol replaces
        it, so a reader may keep it (what-if's market copies do).
        """
        full = self._correlation_cache.get(timeframe)
        if full is None:
            every_slot = np.arange(len(self.symbols))
            full = self.estimators[timeframe].correlation(every_slot)
            self._correlation_cache[timeframe] = full
        return full

    def correlation(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Correlations among ``slots`` for ``timeframe``, shape (k, k), from a per-bar cache."""
        return self.full_correlation(timeframe)[np.ix_(slots, slots)]

    def volatility(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Per-bar volatility of log returns, shape (k,)."""
        return np.sqrt(self.estimators[timeframe].variance(slots))

    def warming(self, timeframe: str, slots: np.ndarray) -> np.ndarray:
        """Whether each slot still lacks ``min_periods`` returns, shape (k,)."""
        return ~self.estimators[timeframe].warm(slots)
