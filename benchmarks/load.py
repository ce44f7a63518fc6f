"""The synthetic load of the pipeline benchmark, and the statistics it reports.

- :class:`PriceWalk`: price ticks, round robin over the symbols, whose log prices
  follow a random walk of a market factor, ten sectors and noise, so bar returns are
  correlated and accounts form real clusters.
- :func:`make_books`: accounts (in desks) holding positions over those symbols, and
  :class:`PositionChanges`, a stream of resized positions, account by account.
- Statistics: percentiles of samples and of Prometheus histograms, rates from
  sampled counters, and :class:`ReleaseClock`, which finds the input record that
  released a frame.

Pure: numpy and the message structs; no Kafka, database or clock.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from heatmap.schema import Account, Position, Price, ms_to_datetime

SECTORS = 10
SOURCE = "bench"


@dataclass(frozen=True)
class LoadShape:
    """How big the synthetic desk is: symbols, accounts (spread over ``desks``, 0 for
    none), positions per account, and the seed every generator derives from."""

    symbols: int = 200
    accounts: int = 100
    desks: int = 10
    positions_per_account: int = 20
    seed: int = 7

    def symbol_names(self) -> list[str]:
        return [f"P{index:03d}USDT" for index in range(self.symbols)]

    def account_names(self) -> list[str]:
        return [f"acct-{index:04d}" for index in range(self.accounts)]

    def desk_of(self, account_index: int) -> str | None:
        return f"desk-{account_index % self.desks:02d}" if self.desks else None

    def describe(self) -> str:
        desks = f" in {self.desks} desks" if self.desks else ""
        return (f"{self.symbols} symbols, {self.accounts} accounts{desks} x "
                f"{self.positions_per_account} positions")


class PriceWalk:
    """Round-robin price ticks over ``symbols`` (tick ``n`` prices symbol ``n % count``).

    Each round of ticks (one per symbol) moves every log price by
    ``tick_sigma * (0.6 market + 0.5 sector + 0.6 noise)`` with standard normal
    draws, so symbols of a sector move together. Deterministic for a seed.
    """

    def __init__(self, symbols: Sequence[str], seed: int, tick_sigma: float = 2e-4) -> None:
        self.symbols = list(symbols)
        self._rng = np.random.default_rng(seed)
        count = len(self.symbols)
        self._log_price = np.log(self._rng.uniform(1.0, 1000.0, size=count))
        self._sector = self._rng.integers(0, SECTORS, size=count)
        self._sigma = tick_sigma
        self._next = count  # position in the current round; a new round starts first
        self._moves = np.zeros(count)
        self.ticks_made = 0

    def prices(self) -> dict[str, float]:
        """The current price of every symbol."""
        return dict(zip(self.symbols, np.exp(self._log_price).tolist(), strict=True))

    def _new_round(self) -> None:
        count = len(self.symbols)
        market = self._rng.normal()
        sectors = self._rng.normal(size=SECTORS)
        noise = self._rng.normal(size=count)
        self._moves = self._sigma * (0.6 * market + 0.5 * sectors[self._sector] + 0.6 * noise)
        self._next = 0

    def ticks(self, count: int, scale: float = 1.0) -> list[tuple[str, float]]:
        """The next ``count`` ticks as (symbol, price); ``scale`` multiplies their moves
        (``sqrt(k)`` moves a tick about as far as ``k`` rounds would)."""
        made: list[tuple[str, float]] = []
        while len(made) < count:
            if self._next == len(self.symbols):
                self._new_round()
            start = self._next
            stop = min(len(self.symbols), start + count - len(made))
            self._log_price[start:stop] += scale * self._moves[start:stop]
            made.extend(zip(self.symbols[start:stop],
                            np.exp(self._log_price[start:stop]).tolist(), strict=True))
            self._next = stop
        self.ticks_made += count
        return made

    def skip(self, count: int) -> None:
        """Advance as if ``count`` ticks had been made (a second process continues a walk)."""
        while count > 0:
            step = min(count, 100_000)
            self.ticks(step)
            count -= step


def tick_times_ms(start_ms: int, first: int, count: int, per_s: float) -> list[int]:
    """Event times (epoch ms) of ticks ``first .. first + count - 1`` spaced ``1 / per_s``
    seconds apart from ``start_ms`` (several ticks share a millisecond above 1,000/s)."""
    offsets = (np.arange(first, first + count, dtype=np.float64) * 1000.0 / per_s)
    return (start_ms + np.floor(offsets).astype(np.int64)).tolist()


def price(symbol: str, ts_ms: int, value: float) -> Price:
    return Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=value, source=SOURCE)


@dataclass
class Books:
    """The accounts' terms and their positions: per account, (symbol, qty) held."""

    accounts: list[Account]
    holdings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def positions(self, ts_ms: int) -> list[Position]:
        moment = ms_to_datetime(ts_ms)
        return [Position(account=account, symbol=symbol, ts=moment, qty=qty, source=SOURCE)
                for account, held in self.holdings.items() for symbol, qty in held]

    @property
    def position_count(self) -> int:
        return sum(len(held) for held in self.holdings.values())


def make_books(shape: LoadShape, prices: Mapping[str, float], ts_ms: int,
               equity: float = 1_000_000.0) -> Books:
    """Every account with ``equity`` and its desk, holding ``positions_per_account``
    distinct symbols, each a signed share of equity up to 15 % at ``prices``."""
    rng = np.random.default_rng(shape.seed + 1)
    symbols = shape.symbol_names()
    moment = ms_to_datetime(ts_ms)
    books = Books(accounts=[])
    for index, account in enumerate(shape.account_names()):
        books.accounts.append(Account(account=account, ts=moment, equity=equity,
                                      desk=shape.desk_of(index)))
        held = rng.choice(len(symbols), size=min(shape.positions_per_account, len(symbols)),
                          replace=False)
        shares = rng.uniform(-0.15, 0.15, size=len(held))
        books.holdings[account] = [
            (symbols[slot], float(share * equity / prices[symbols[slot]]))
            for slot, share in zip(held.tolist(), shares.tolist(), strict=True)]
    return books


class PositionChanges:
    """Resized positions: account after account (round robin), each time the next symbol
    it holds, its quantity scaled by a factor in [0.9, 1.1]."""

    def __init__(self, books: Books, seed: int) -> None:
        self._books = books
        self._accounts = list(books.holdings)
        self._rng = np.random.default_rng(seed + 2)
        self._count = 0

    def next(self, ts_ms: int) -> Position:
        account = self._accounts[self._count % len(self._accounts)]
        held = self._books.holdings[account]
        slot = (self._count // len(self._accounts)) % len(held)
        symbol, qty = held[slot]
        qty *= float(self._rng.uniform(0.9, 1.1))
        held[slot] = (symbol, qty)
        self._count += 1
        return Position(account=account, symbol=symbol, ts=ms_to_datetime(ts_ms), qty=qty,
                        source=SOURCE)


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100, linear interpolation); NaN without values."""
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """The ``q`` quantile (0..1) of a Prometheus histogram, as ``histogram_quantile`` does:
    linear within the bucket that holds it.

    ``buckets``: (upper bound, cumulative count), ascending, the last bound ``inf``.
    A quantile in the ``+Inf`` bucket is the largest finite bound; NaN when empty.
    """
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def crossing_time(samples: Sequence[tuple[float, float]], level: float) -> float | None:
    """When a non-decreasing sampled counter reached ``level``: linear between the last
    sample below it and the first at or above; None if it never did.

    ``samples``: (time, value) in time order.
    """
    previous: tuple[float, float] | None = None
    for moment, value in samples:
        if value >= level:
            if previous is None or value == previous[1]:
                return moment
            before_s, before_value = previous
            return before_s + (moment - before_s) * (level - before_value) / (
                value - before_value)
        previous = (moment, value)
    return None


def value_at(samples: Sequence[tuple[float, float]], x: float) -> float | None:
    """``y`` at ``x`` on the line through (x, y) samples with ``x`` non-decreasing; None
    beyond the last sample."""
    previous: tuple[float, float] | None = None
    for sample_x, sample_y in samples:
        if sample_x >= x:
            if previous is None or sample_x == previous[0]:
                return sample_y
            return previous[1] + (sample_y - previous[1]) * (x - previous[0]) / (
                sample_x - previous[0])
        previous = (sample_x, sample_y)
    return None


def rate_between(samples: Sequence[tuple[float, float]], start: float, end: float
                 ) -> float | None:
    """Units per second while a sampled counter went from ``start`` to ``end``."""
    started, ended = crossing_time(samples, start), crossing_time(samples, end)
    if started is None or ended is None or ended <= started:
        return None
    return (end - start) / (ended - started)


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of a set of latencies, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, latencies_ms: Sequence[float]) -> LatencySummary:
        return cls(len(latencies_ms), percentile(latencies_ms, 50), percentile(latencies_ms, 99),
                   max(latencies_ms, default=math.nan))


class ReleaseClock:
    """The event times (epoch ms) of every input record, to find what released a frame.

    The engine emits a frame stamped ``t`` (a bar boundary, or a position or equity
    change due at ``t``) while applying the first input record later than ``t``; a
    live producer stamps each record's Kafka timestamp with its event time, so that
    record's append time is the smallest input time after ``t``.
    """

    def __init__(self) -> None:
        self._times_ms: list[int] = []

    def add(self, times_ms: Iterable[int]) -> None:
        new = sorted(set(times_ms))
        if not new:
            return
        if self._times_ms and new[0] <= self._times_ms[-1]:
            self._times_ms = sorted(set(self._times_ms).union(new))
        else:
            self._times_ms.extend(new)

    def released_at(self, frame_ts_ms: int) -> int | None:
        """The event time of the first input record after ``frame_ts_ms``; None if none yet."""
        index = bisect.bisect_right(self._times_ms, frame_ts_ms)
        return self._times_ms[index] if index < len(self._times_ms) else None
