"""The simulation as a stream of messages: opening state, then prices and trades per tick."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

from heatmap.ingest.simulator.config import CURRENCY, SOURCE, AccountSpec, SimulatorConfig
from heatmap.ingest.simulator.desks import (
    Book,
    entry_after_trade,
    init_strategy,
    round_qty,
    target_weights,
)
from heatmap.ingest.simulator.market import (
    BLOCK_TICKS,
    MS_PER_YEAR,
    PriceBlock,
    Schedule,
    price_block,
)
from heatmap.ingest.simulator.universe import account_specs, build_universe
from heatmap.schema import Account, Position, Price, datetime_to_ms


def _next_due_ms(due_ms: int, every_ms: int, now_ms: int) -> int:
    """The first time on the grid ``due_ms + j * every_ms`` after ``now_ms`` (ticks may be
    coarser than the period: the schedule keeps its cadence instead of falling behind)."""
    return due_ms + (now_ms - due_ms) // every_ms * every_ms + every_ms


Event = Price | Position | Account


class _Run:
    """One pass over simulated time: the mutable state behind :meth:`MarketSimulator.events`."""

    def __init__(self, simulator: MarketSimulator) -> None:
        config = simulator.config
        self.config = config
        self.universe = simulator._universe
        self.schedule = simulator._schedule
        self.start = simulator.start
        self.rng = np.random.default_rng(simulator._market_seed)
        self.log_price = np.log(self.universe.initial_price)
        self.last_price = self.universe.initial_price.copy()
        self.quiet_ticks = np.zeros(len(self.universe.symbols), dtype=np.int64)
        self.max_quiet_ticks = max(1, -(-config.max_quiet_ms // config.tick_interval_ms))
        self.rebalance_every_ms = round(config.position_update_every_s * 1000)
        self.equity_every_ms = round(config.equity_update_every_s * 1000)
        self.next_equity_ms = self.equity_every_ms
        specs = simulator.accounts
        self.books = [self._new_book(spec, seed, j, len(specs))
                      for j, (spec, seed) in enumerate(zip(specs, simulator._account_seeds,
                                                           strict=True))]

    def _new_book(self, spec: AccountSpec, seed: np.random.SeedSequence, j: int,
                  n_accounts: int) -> Book:
        n = len(self.universe.symbols)
        book = Book(
            spec=spec, rng=np.random.default_rng(seed), equity=self.config.initial_equity,
            qty=np.zeros(n), entry=np.zeros(n), mark_price=self.last_price.copy(),
            conviction=np.zeros(n),
            # Accounts rebalance staggered over the period, not all on one tick.
            next_rebalance_ms=round(self.rebalance_every_ms * (j + 1) / (n_accounts + 1)),
            carry_annual=self.config.spread_carry_annual if spec.strategy == "spread" else 0.0,
        )
        init_strategy(book, self.universe)
        return book

    def events(self, duration_ms: int | None) -> Iterator[Event]:
        """The opening messages, then every tick until ``duration_ms`` (None: forever)."""
        yield from self._opening()
        tick = 0
        config, names = self.config, self.universe.symbols
        next_action_ms = self._next_action_ms()
        while True:
            block, self.log_price = price_block(self.universe, config, self.schedule, self.rng,
                                                 self.log_price, tick + 1)
            for k in range(BLOCK_TICKS):
                tick += 1
                elapsed_ms = tick * config.tick_interval_ms
                if duration_ms is not None and elapsed_ms > duration_ms:
                    return
                ts = self.start + timedelta(milliseconds=elapsed_ms)
                mid, bid, ask = block.mid[k], block.bid[k], block.ask[k]
                # Plain loop over Python floats: this is the hot path of the generator.
                for i in self._observe(block, k).tolist():
                    yield Price(symbol=names[i], ts=ts, price=mid[i], source=SOURCE,
                                bid=bid[i], ask=ask[i])
                if elapsed_ms >= next_action_ms:
                    yield from self._actions(elapsed_ms, ts)
                    next_action_ms = self._next_action_ms()

    def _observe(self, block: PriceBlock, k: int) -> np.ndarray:
        """Indices of the symbols observed at tick ``k`` of ``block``; records their prices."""
        self.quiet_ticks += 1
        observed = block.observed[k]
        if not block.weekend[k]:
            observed = observed | (self.quiet_ticks >= self.max_quiet_ticks)
        updated = np.flatnonzero(observed)
        self.quiet_ticks[updated] = 0
        self.last_price[updated] = block.mid_array[k, updated]
        return updated

    def _opening(self) -> Iterator[Event]:
        """At start: account terms, opening positions, then every symbol's first price."""
        ts = self.start
        for book in self.books:
            yield self._account_message(book, ts)
        for book in self.books:
            yield from self._rebalance(book, 0, ts)
        universe = self.universe
        for name, price, half_spread in zip(universe.symbols, universe.initial_price.tolist(),
                                            universe.half_spread.tolist(), strict=True):
            yield Price(symbol=name, ts=ts, price=price, source=SOURCE,
                        bid=price * (1.0 - half_spread), ask=price * (1.0 + half_spread))

    def _next_action_ms(self) -> int:
        return min(self.next_equity_ms, min(book.next_rebalance_ms for book in self.books))

    def _actions(self, elapsed_ms: int, ts: datetime) -> Iterator[Event]:
        """Rebalances and equity updates due by ``elapsed_ms``, after this tick's prices."""
        for book in self.books:
            if book.next_rebalance_ms <= elapsed_ms:
                book.next_rebalance_ms = _next_due_ms(book.next_rebalance_ms,
                                                      self.rebalance_every_ms, elapsed_ms)
                yield from self._rebalance(book, elapsed_ms, ts)
        if self.next_equity_ms <= elapsed_ms:
            self.next_equity_ms = _next_due_ms(self.next_equity_ms, self.equity_every_ms,
                                               elapsed_ms)
            for book in self.books:
                self._mark(book, elapsed_ms)
                yield from self._recapitalise_if_needed(book, ts)
                yield self._account_message(book, ts)

    def _mark(self, book: Book, elapsed_ms: int) -> None:
        """Mark equity to the last observed prices and accrue carry since the last mark."""
        pnl = float(book.qty @ (self.last_price - book.mark_price))
        years = (elapsed_ms - book.mark_ms) / MS_PER_YEAR
        gross = float(np.abs(book.qty) @ self.last_price)
        book.equity += pnl + book.carry_annual * gross * years
        book.mark_price = self.last_price.copy()
        book.mark_ms = elapsed_ms

    def _recapitalise_if_needed(self, book: Book, ts: datetime) -> Iterator[Event]:
        """Close out a blown-up account and top its equity up, so a long run stays sane."""
        if book.equity >= self.config.recapitalise_below * self.config.initial_equity:
            return
        for i in np.flatnonzero(book.qty).tolist():
            book.qty[i] = 0.0
            yield self._position_message(book, i, ts)
        book.equity = self.config.initial_equity
        book.hedge = None

    def _rebalance(self, book: Book, elapsed_ms: int, ts: datetime) -> Iterator[Event]:
        """Trade toward the strategy's target weights; emit the positions that changed."""
        self._mark(book, elapsed_ms)
        recapitalised = list(self._recapitalise_if_needed(book, ts))
        yield from recapitalised
        if recapitalised:
            yield self._account_message(book, ts)
        news = bool(self.schedule.news(elapsed_ms))
        weights = target_weights(book, self.universe, news, self.config.hedge_probability)
        target = weights * book.equity / self.last_price
        threshold = self.config.rebalance_threshold
        for i in np.flatnonzero(np.abs(target - book.qty) > threshold * np.abs(book.qty)).tolist():
            new_qty = round_qty(float(target[i]))
            book.entry[i] = entry_after_trade(float(book.qty[i]), float(book.entry[i]),
                                               new_qty, float(self.last_price[i]))
            book.qty[i] = new_qty
            yield self._position_message(book, i, ts)

    def _position_message(self, book: Book, i: int, ts: datetime) -> Position:
        qty = float(book.qty[i])
        spec = book.spec
        return Position(
            account=spec.account, symbol=self.universe.symbols[i], ts=ts, qty=qty,
            strategy=spec.strategy, conviction=round(float(book.conviction[i]), 3),
            entry_price=float(book.entry[i]) if qty != 0.0 else None,
            leverage=spec.leverage, desk=spec.desk, source=SOURCE,
        )

    def _account_message(self, book: Book, ts: datetime) -> Account:
        return Account(account=book.spec.account, ts=ts, equity=round(book.equity, 2),
                       desk=book.spec.desk, maintenance_rate=self.config.maintenance_rate,
                       currency=CURRENCY)


class MarketSimulator:
    """A simulated crypto market with trading desks, as a stream of messages.

    Parameters
    ----------
    config : SimulatorConfig, optional
        Defaults to ``SimulatorConfig()``.

    Attributes
    ----------
    symbols : tuple of str, length n
        Listed cluster by cluster (``BTCUSDT``, ``ETHUSDT``, ..., ``SOLUSDT``, ...).
    cluster_of : dict[str, int]
        Ground truth: the cluster (sector) index of every symbol.
    cluster_names : tuple of str
        Sector name per cluster index (``majors``, ``layer1``, ``defi``, ``memes``, ...).
    initial_prices : dict[str, float]
        Price of every symbol at ``start``, settlement currency.
    accounts : tuple of AccountSpec
        Every account with its desk, strategy and target leverage.
    start : datetime
        ``config.start`` in UTC.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.start = self.config.start.astimezone(UTC)
        self.accounts = account_specs(self.config)
        seeds = np.random.SeedSequence(self.config.seed).spawn(2 + len(self.accounts))
        # Independent streams: the price path does not depend on how the desks trade.
        self._universe = build_universe(self.config, np.random.default_rng(seeds[0]))
        self._market_seed = seeds[1]
        self._account_seeds = seeds[2:]
        self._schedule = Schedule.of(self.config)
        universe = self._universe
        self.symbols = universe.symbols
        self.cluster_of = {s: int(c) for s, c in zip(universe.symbols, universe.cluster,
                                                        strict=True)}
        self.cluster_names = universe.cluster_names
        self.initial_prices = dict(zip(universe.symbols, universe.initial_price.tolist(),
                                       strict=True))

    def _elapsed_ms(self, ts: datetime) -> int:
        if ts.tzinfo is None:
            raise ValueError("ts must be timezone aware")
        return datetime_to_ms(ts) - datetime_to_ms(self.start)

    def news_active(self, ts: datetime) -> bool:
        """Whether a news event (correlations near 1, volatility up) is active at ``ts``."""
        elapsed_ms = self._elapsed_ms(ts)
        return elapsed_ms >= 0 and bool(self._schedule.news(elapsed_ms))

    def weekend_active(self, ts: datetime) -> bool:
        """Whether the market is in a thin-liquidity weekend (prices go stale) at ``ts``."""
        elapsed_ms = self._elapsed_ms(ts)
        return elapsed_ms >= 0 and bool(self._schedule.weekend(elapsed_ms))

    def events(self, duration_s: float | None = None) -> Iterator[Event]:
        """Every message of the simulation, in non-decreasing time order.

        Parameters
        ----------
        duration_s : float, optional
            Simulated seconds after ``start`` to cover (events at ``start +
            duration_s`` included); None runs forever.

        Yields
        ------
        Price, Position or Account
            First the accounts' terms, their opening positions and a price for
            every symbol (all at ``start``), then per tick the observed prices,
            followed by the positions traded and equity updates due by then.
            A shorter run is a prefix of a longer one.
        """
        duration_ms = None if duration_s is None else round(duration_s * 1000)
        return _Run(self).events(duration_ms)
