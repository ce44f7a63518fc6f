"""From a book's holdings and a market to frames: what the live engine and what-if share.

Both :class:`heatmap.engine.engine.HeatEngine` (over its live
:class:`~heatmap.engine.market.MarketState`) and :mod:`heatmap.engine.whatif` (over a
copy, :class:`~heatmap.engine.market_view.MarketView`) make frames through these two
functions, so a what-if frame is the frame the engine would make.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

from heatmap.engine.book import Holdings
from heatmap.engine.heat import BookSnapshot, compute_frame, regime_break
from heatmap.engine.identity import ClusterIdentities
from heatmap.engine.params import EngineParams
from heatmap.schema import Frame, Trigger


class MarketReader(Protocol):
    """What frames read of a market: prices by slot and per-timeframe statistics.

    ``slots`` maps a symbol to its index into ``last_price`` (settlement currency) and
    ``last_price_ms`` (epoch ms), both shape (n,).
    """

    @property
    def slots(self) -> Mapping[str, int]: ...

    @property
    def last_price(self) -> np.ndarray: ...

    @property
    def last_price_ms(self) -> np.ndarray: ...

    def correlation(self, timeframe: str, slots: np.ndarray) -> np.ndarray: ...

    def volatility(self, timeframe: str, slots: np.ndarray) -> np.ndarray: ...

    def warming(self, timeframe: str, slots: np.ndarray) -> np.ndarray: ...


def book_snapshot(holdings: Holdings, market: MarketReader, *, account: str | None,
                  desk: str | None, ts_ms: int, trigger: Trigger
                  ) -> tuple[BookSnapshot, np.ndarray] | None:
    """The book's holdings at the market's current prices and their market slots.

    Unpriced symbols are left out. None when the book holds positions without
    positive equity (shares are undefined, no frame is made); a book that holds
    nothing always gets a snapshot.
    """
    slots_by_symbol = market.slots
    priced = [i for i, s in enumerate(holdings.symbols) if s in slots_by_symbol]
    symbols = [holdings.symbols[i] for i in priced]
    slots = np.array([slots_by_symbol[s] for s in symbols], dtype=np.int64)
    price = market.last_price[slots]
    qty = holdings.qty[priced]
    margin_slots = [slots_by_symbol.get(s) for s in holdings.margin_symbols]
    margin = float(sum(weight * market.last_price[slot]
                       for weight, slot in zip(holdings.margin_weights.tolist(),
                                               margin_slots, strict=True)
                       if slot is not None))
    equity = holdings.equity
    if equity is None:
        equity = float(np.abs(qty * price).sum())
    if not equity > 0.0 and symbols:
        return None
    return BookSnapshot(
        ts_ms=ts_ms, trigger=trigger, account=account, desk=desk,
        symbols=symbols, qty=qty, price=price,
        price_age_s=(ts_ms - market.last_price_ms[slots]) / 1000.0,
        strategy=[holdings.strategy[i] for i in priced],
        conviction=[holdings.conviction[i] for i in priced],
        equity=equity, margin=margin,
    ), slots


def book_frames(book: BookSnapshot, slots: np.ndarray, market: MarketReader,
                params: EngineParams, timeframes: Iterable[str],
                echo: Mapping[str, tuple[dict[str, object], str]] | None = None,
                identities: ClusterIdentities | None = None) -> list[Frame]:
    """One frame of ``book`` per timeframe in ``timeframes`` (in that order).

    ``echo``: per timeframe, precomputed ``(frame_params, params_hash)``.
    ``identities``: the clusters of the book's previous frames, whose names carry over
    (read only); None names every cluster after its largest member.
    """
    account = book.account
    desk = None if account is not None else book.desk
    fast, slow = params.fast_timeframe, params.slow_timeframe
    timeframes = list(timeframes)
    # Each timeframe's block is gathered once: the regime break reads the same blocks.
    rho = {tf: market.correlation(tf, slots) for tf in {*timeframes, fast, slow}}
    warming = {tf: market.warming(tf, slots) for tf in rho}
    regime = regime_break(rho[fast], rho[slow], ~(warming[fast] | warming[slow]))
    return [
        compute_frame(book, timeframe, rho[timeframe], market.volatility(timeframe, slots),
                      warming[timeframe], regime, params,
                      None if echo is None else echo[timeframe],
                      () if identities is None else identities.previous(
                          (account, desk, timeframe)))
        for timeframe in timeframes
    ]
