"""A deterministic crypto market and trading desks: prices, positions and equity.

The market is a factor model driving geometric Brownian motion in log
prices: every symbol loads on one market factor, on the factor of its
sector (its *cluster*) and on its own noise. Two regimes change that
structure on a fixed schedule of simulated time:

- **news events**: every symbol loads mostly on the market factor (pairwise
  correlations jump toward 1) and volatility is multiplied;
- **weekends**: liquidity is thin, prices are observed rarely and go stale.

Desks of accounts trade the market with two strategies whose heat looks
different: ``steady`` holds hedged pairs inside each sector but piles into
one altcoin sector during news events (concentrated, correlated heat);
``swing`` takes directional views spread evenly over all sectors (even heat,
bigger P&L swings). Each strategy runs at every leverage by different
accounts. Equity is marked to market at the simulated prices.

Everything is pure: time is simulated from ``SimulatorConfig.start`` (no wall
clock), randomness comes from the seed only (no I/O, no environment), and the
same configuration gives the same event stream, byte for byte (with one NumPy
version: NumPy does not promise identical random variates across releases).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np

from heatmap.schema import Account, Position, Price, datetime_to_ms

__all__ = ["SOURCE", "STRATEGIES", "AccountSpec", "MarketSimulator", "SimulatorConfig"]

SOURCE = "simulator"
CURRENCY = "USDT"
STRATEGIES = ("steady", "swing")

# Crypto trades every day of the year, so volatility is annualised over 365 days.
_MS_PER_YEAR = 365 * 86_400 * 1000
# Random numbers are drawn for this many ticks at once (vectorised factor model);
# it is fixed so that the stream never depends on how long it runs.
_BLOCK_TICKS = 256

# Behaviour of the strategies, per rebalance (probabilities) or per position.
_STEADY_ROTATE_PROBABILITY = 0.05
_SWING_FLIP_PROBABILITY = 0.15
_SWING_REPICK_PROBABILITY = 0.15
_HEDGE_RELEASE_PROBABILITY = 0.5
_HEDGE_RATIO_RANGE = (0.3, 0.6)
_QTY_SIGNIFICANT_DIGITS = 6

# Sectors with real tickers at realistic orders of magnitude of price (USDT), so that
# quantities span from fractions of a coin to billions; more symbols get generated names.
_SECTORS: tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...] = (
    ("majors", "MAJ", (
        ("BTCUSDT", 60_000.0), ("ETHUSDT", 3_000.0), ("BNBUSDT", 550.0), ("XRPUSDT", 0.55),
        ("LTCUSDT", 75.0), ("BCHUSDT", 400.0), ("TRXUSDT", 0.12), ("ETCUSDT", 25.0))),
    ("layer1", "LYR", (
        ("SOLUSDT", 150.0), ("ADAUSDT", 0.45), ("AVAXUSDT", 30.0), ("DOTUSDT", 6.5),
        ("NEARUSDT", 5.0), ("ATOMUSDT", 8.0), ("APTUSDT", 9.0), ("SUIUSDT", 1.5))),
    ("defi", "DFI", (
        ("UNIUSDT", 8.0), ("AAVEUSDT", 95.0), ("LINKUSDT", 14.0), ("MKRUSDT", 2_500.0),
        ("CRVUSDT", 0.45), ("COMPUSDT", 55.0), ("SUSHIUSDT", 1.1), ("LDOUSDT", 2.0))),
    ("memes", "MEME", (
        ("DOGEUSDT", 0.12), ("SHIBUSDT", 0.000018), ("PEPEUSDT", 0.0000085),
        ("FLOKIUSDT", 0.00015), ("BONKUSDT", 0.000022), ("WIFUSDT", 2.2),
        ("BOMEUSDT", 0.009), ("MEMEUSDT", 0.015))),
)


class SimulatorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Every number that shapes a simulated market and its desks.

    Parameters
    ----------
    seed : int
        The only source of randomness.
    start : datetime
        Simulated time of the first events; must be timezone aware.
    symbols : int
        Number of symbols; at least two per cluster.
    clusters : int
        Number of sectors (majors, layer-1s, DeFi, memes, then generated ones).
    tick_interval_ms : int
        Simulated time between ticks; every tick moves every latent price.
    update_probability : float
        Chance per tick that a symbol's price is observed (emitted).
    max_quiet_ms : int
        Outside weekends a symbol quiet for this long is observed at the next
        tick anyway (a liquid market's book ticker never stops for long).
    cluster_annual_vol : tuple of float
        Annualised volatility (log returns) per cluster, cycled if shorter.
    cluster_spread_bps : tuple of float
        Full bid/ask spread in basis points per cluster, cycled if shorter.
    market_variance_share, sector_variance_share : float
        Shares of a symbol's return variance from the market and from its
        sector factor; the rest is idiosyncratic. Within-cluster correlation is
        their sum, across clusters the market share.
    news_event_every_s : float or None
        Period of news events; None disables them.
    news_event_offset_s : float
        Start of the first news event after ``start``.
    news_event_duration_s : float
        Length of a news event.
    news_market_variance_share, news_sector_variance_share : float
        Variance shares during news events (mostly market: correlations near 1).
    news_vol_multiplier : float
        Volatility multiplier during news events.
    weekend_mode : bool
        Whether thin-liquidity weekends happen.
    weekend_every_s, weekend_offset_s, weekend_duration_s : float
        Period, start of the first one after ``start`` and length of weekends
        (the defaults put them on Saturday and Sunday for the default start,
        a Thursday).
    weekend_update_probability : float
        Chance per tick that a symbol is observed during a weekend.
    desks, accounts_per_desk : int
        Accounts alternate strategies ``steady``/``swing`` and cycle leverages
        in pairs, so each strategy runs at each leverage.
    leverages : tuple of float
        Target gross notional over equity per account.
    initial_equity : float
        Equity of every account at start, in the settlement currency.
    maintenance_rate : float
        Maintenance margin as a fraction of gross notional.
    position_update_every_s : float
        Rebalance period of every account (accounts are staggered).
    equity_update_every_s : float
        Period of equity (``accounts``) messages.
    rebalance_threshold : float
        A position is traded only when its target differs by more than this
        fraction of the current quantity (or opens, closes or flips).
    hedge_probability : float
        Chance per rebalance that an unhedged account shorts a correlated coin
        of the sector of its largest long.
    steady_carry_annual : float
        Funding/basis carry earned by ``steady`` accounts, as an annual rate on
        their gross notional: the source of their small, steady gains.
    recapitalise_below : float
        An account whose equity falls below this fraction of the initial
        equity is closed out and topped up to the initial equity by its desk.
    """

    seed: int = 7
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    symbols: int = 24
    clusters: int = 4
    tick_interval_ms: int = 250
    update_probability: float = 0.3
    max_quiet_ms: int = 1500
    cluster_annual_vol: tuple[float, ...] = (0.55, 0.85, 0.95, 1.30)
    cluster_spread_bps: tuple[float, ...] = (1.0, 4.0, 6.0, 12.0)
    market_variance_share: float = 0.30
    sector_variance_share: float = 0.50
    news_event_every_s: float | None = 3600.0
    news_event_offset_s: float = 1800.0
    news_event_duration_s: float = 600.0
    news_market_variance_share: float = 0.90
    news_sector_variance_share: float = 0.06
    news_vol_multiplier: float = 3.0
    weekend_mode: bool = True
    weekend_every_s: float = 7 * 86_400.0
    weekend_offset_s: float = 2 * 86_400.0
    weekend_duration_s: float = 2 * 86_400.0
    weekend_update_probability: float = 0.004
    desks: int = 2
    accounts_per_desk: int = 3
    leverages: tuple[float, ...] = (5.0, 10.0)
    initial_equity: float = 1_000_000.0
    maintenance_rate: float = 0.005
    position_update_every_s: float = 30.0
    equity_update_every_s: float = 10.0
    rebalance_threshold: float = 0.10
    hedge_probability: float = 0.2
    steady_carry_annual: float = 0.15
    recapitalise_below: float = 0.25

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        if self.clusters < 1 or self.symbols < 2 * self.clusters:
            raise ValueError("need at least one cluster and two symbols per cluster")
        if self.tick_interval_ms <= 0 or self.max_quiet_ms <= 0:
            raise ValueError("tick_interval_ms and max_quiet_ms must be positive")
        for name in ("update_probability", "weekend_update_probability"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1]")
        for market, sector in ((self.market_variance_share, self.sector_variance_share),
                               (self.news_market_variance_share,
                                self.news_sector_variance_share)):
            if market < 0.0 or sector < 0.0 or market + sector > 1.0:
                raise ValueError("variance shares must be non-negative and sum to at most 1")
        if not self.cluster_annual_vol or min(self.cluster_annual_vol) <= 0.0:
            raise ValueError("cluster_annual_vol must be non-empty and positive")
        if not self.cluster_spread_bps or min(self.cluster_spread_bps) < 0.0:
            raise ValueError("cluster_spread_bps must be non-empty and non-negative")
        if self.news_event_every_s is not None and not (
                0.0 < self.news_event_duration_s < self.news_event_every_s):
            raise ValueError("news events must be shorter than their period")
        if self.weekend_mode and not 0.0 < self.weekend_duration_s < self.weekend_every_s:
            raise ValueError("weekends must be shorter than their period")
        if self.desks < 1 or self.accounts_per_desk < 1:
            raise ValueError("need at least one desk with one account")
        if not self.leverages or min(self.leverages) <= 0.0 or self.initial_equity <= 0.0:
            raise ValueError("leverages and initial_equity must be positive")
        if self.position_update_every_s <= 0.0 or self.equity_update_every_s <= 0.0:
            raise ValueError("update periods must be positive")
        if not 0.0 <= self.rebalance_threshold < 1.0:
            raise ValueError("rebalance_threshold must be in [0, 1)")


class AccountSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Who an account is: its desk, strategy and target leverage (gross / equity)."""

    account: str
    desk: str
    strategy: str
    leverage: float


# -- the universe ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Universe:
    """The symbols and their static properties.

    Attributes
    ----------
    symbols : tuple of str, length n
    cluster : ndarray of int, shape (n,)
        Cluster index per symbol; symbols are listed cluster by cluster.
    members : tuple of ndarray of int, length k
        Symbol indices per cluster.
    cluster_names : tuple of str, length k
    initial_price : ndarray, shape (n,)
        Price at start, settlement currency.
    annual_vol : ndarray, shape (n,)
        Annualised volatility of log returns.
    half_spread : ndarray, shape (n,)
        Half the bid/ask spread as a fraction of the price.
    """

    symbols: tuple[str, ...]
    cluster: np.ndarray
    members: tuple[np.ndarray, ...]
    cluster_names: tuple[str, ...]
    initial_price: np.ndarray
    annual_vol: np.ndarray
    half_spread: np.ndarray

    @property
    def altcoin_clusters(self) -> np.ndarray:
        """Clusters a ``steady`` book may pile into: every one but the majors (cluster 0)."""
        count = len(self.members)
        return np.arange(1, count) if count > 1 else np.arange(1)


def _cluster_sizes(symbols: int, clusters: int) -> list[int]:
    """Symbols per cluster, as even as possible (earlier clusters get the remainder)."""
    return [symbols // clusters + (c < symbols % clusters) for c in range(clusters)]


def _sector(c: int) -> tuple[str, str, tuple[tuple[str, float], ...]]:
    """Name, generated-ticker prefix and catalogue of tickers with prices of cluster ``c``."""
    if c < len(_SECTORS):
        return _SECTORS[c]
    return f"sector{c}", f"S{c}X", ()


def _build_universe(config: SimulatorConfig, rng: np.random.Generator) -> _Universe:
    """Symbols cluster by cluster: catalogue tickers first, then generated ones."""
    names: list[str] = []
    cluster: list[int] = []
    prices: list[float] = []
    for c, size in enumerate(_cluster_sizes(config.symbols, config.clusters)):
        _, prefix, catalogue = _sector(c)
        for j in range(size):
            if j < len(catalogue):
                name, price = catalogue[j]
            else:
                # Generated coins get price levels from a tenth of a cent to a hundred.
                name, price = f"{prefix}{j:02d}USDT", float(10.0 ** rng.uniform(-3.0, 2.0))
            names.append(name)
            cluster.append(c)
            prices.append(price)
    cluster_idx = np.array(cluster, dtype=np.int64)
    base_vol = np.array([config.cluster_annual_vol[c % len(config.cluster_annual_vol)]
                         for c in cluster])
    # Coins of one sector differ a little in volatility (about +-10 %).
    annual_vol = base_vol * np.exp(0.1 * rng.standard_normal(len(names)))
    spread_bps = np.array([config.cluster_spread_bps[c % len(config.cluster_spread_bps)]
                           for c in cluster])
    return _Universe(
        symbols=tuple(names), cluster=cluster_idx,
        members=tuple(np.flatnonzero(cluster_idx == c) for c in range(config.clusters)),
        cluster_names=tuple(_sector(c)[0] for c in range(config.clusters)),
        initial_price=np.array(prices), annual_vol=annual_vol,
        half_spread=spread_bps / 2.0 / 10_000.0,
    )


def _account_specs(config: SimulatorConfig) -> tuple[AccountSpec, ...]:
    """Accounts ``desk-a-01``, ``desk-a-02``, ... with alternating strategies."""
    specs = []
    for d in range(config.desks):
        desk = f"desk-{_desk_letter(d)}"
        for a in range(config.accounts_per_desk):
            j = d * config.accounts_per_desk + a
            specs.append(AccountSpec(
                account=f"{desk}-{a + 1:02d}", desk=desk,
                strategy=STRATEGIES[j % len(STRATEGIES)],
                # Leverage changes every other account, so both strategies get each leverage.
                leverage=config.leverages[(j // len(STRATEGIES)) % len(config.leverages)],
            ))
    return tuple(specs)


def _desk_letter(d: int) -> str:
    """``a``, ``b``, ..., ``z``, ``aa``, ... for desk index ``d`` (0-based)."""
    letters = ""
    d += 1
    while d:
        d, rest = divmod(d - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


# -- the schedule of regimes -------------------------------------------------------------------


def _periodic(elapsed_ms: np.ndarray | int, every_ms: int, offset_ms: int,
              duration_ms: int) -> np.ndarray:
    """Whether ``elapsed_ms`` (ms since start, scalar or array) lies in a periodic window."""
    phase = np.asarray(elapsed_ms) - offset_ms
    return np.asarray((phase >= 0) & (phase % every_ms < duration_ms))


@dataclass(frozen=True)
class _Schedule:
    """News events and weekends in milliseconds since start (period 0 = never)."""

    news_every_ms: int
    news_offset_ms: int
    news_duration_ms: int
    weekend_every_ms: int
    weekend_offset_ms: int
    weekend_duration_ms: int

    @classmethod
    def of(cls, config: SimulatorConfig) -> _Schedule:
        news_every = config.news_event_every_s
        return cls(
            news_every_ms=0 if news_every is None else round(news_every * 1000),
            news_offset_ms=round(config.news_event_offset_s * 1000),
            news_duration_ms=round(config.news_event_duration_s * 1000),
            weekend_every_ms=round(config.weekend_every_s * 1000) if config.weekend_mode else 0,
            weekend_offset_ms=round(config.weekend_offset_s * 1000),
            weekend_duration_ms=round(config.weekend_duration_s * 1000),
        )

    def news(self, elapsed_ms: np.ndarray | int) -> np.ndarray:
        """Whether a news event is active, shape of ``elapsed_ms``."""
        if not self.news_every_ms:
            return np.zeros(np.shape(elapsed_ms), dtype=bool)
        return _periodic(elapsed_ms, self.news_every_ms, self.news_offset_ms,
                         self.news_duration_ms)

    def weekend(self, elapsed_ms: np.ndarray | int) -> np.ndarray:
        """Whether the market is in a thin weekend, shape of ``elapsed_ms``."""
        if not self.weekend_every_ms:
            return np.zeros(np.shape(elapsed_ms), dtype=bool)
        return _periodic(elapsed_ms, self.weekend_every_ms, self.weekend_offset_ms,
                         self.weekend_duration_ms)


# -- prices ------------------------------------------------------------------------------------


@dataclass
class _PriceBlock:
    """Latent prices of ``_BLOCK_TICKS`` consecutive ticks (b ticks, n symbols).

    ``mid``, ``bid``, ``ask`` are nested lists [b][n] (settlement currency) for
    fast per-event access; ``mid_array`` is the same mid as an ndarray (b, n);
    ``observed`` (b, n) says which symbols the random draw observes;
    ``weekend`` (b,) says where observation is thin (no forced updates).
    """

    mid: list[list[float]]
    bid: list[list[float]]
    ask: list[list[float]]
    mid_array: np.ndarray
    observed: np.ndarray
    weekend: list[bool]


def _factor_loadings(config: SimulatorConfig, news: np.ndarray) -> tuple[np.ndarray, ...]:
    """Loadings on market, sector and own noise and the volatility multiplier, each (b,).

    Loadings are square roots of variance shares summing to 1, so a symbol's
    variance is its annual volatility squared in both regimes (before the
    news multiplier).
    """
    market = np.where(news, config.news_market_variance_share, config.market_variance_share)
    sector = np.where(news, config.news_sector_variance_share, config.sector_variance_share)
    idio = np.clip(1.0 - market - sector, 0.0, None)
    vol_multiplier = np.where(news, config.news_vol_multiplier, 1.0)
    return np.sqrt(market), np.sqrt(sector), np.sqrt(idio), vol_multiplier


def _log_returns(universe: _Universe, config: SimulatorConfig, news: np.ndarray,
                 shocks: np.ndarray) -> np.ndarray:
    """GBM log returns of one block of ticks.

    Parameters
    ----------
    news : ndarray of bool, shape (b,)
    shocks : ndarray, shape (b, 1 + k + n)
        Standard normals: market factor, k sector factors, n idiosyncratic.

    Returns
    -------
    ndarray, shape (b, n)
        ``sigma sqrt(dt) z - sigma^2 dt / 2`` per tick and symbol, with ``dt``
        in years: zero drift, so prices are martingales.
    """
    k = len(universe.members)
    a_market, a_sector, a_idio, vol_multiplier = _factor_loadings(config, news)
    z = (a_market[:, None] * shocks[:, :1]
         + a_sector[:, None] * shocks[:, 1:1 + k][:, universe.cluster]
         + a_idio[:, None] * shocks[:, 1 + k:])
    dt_years = config.tick_interval_ms / _MS_PER_YEAR
    vol = universe.annual_vol[None, :] * vol_multiplier[:, None]
    return vol * math.sqrt(dt_years) * z - 0.5 * vol * vol * dt_years


def _price_block(universe: _Universe, config: SimulatorConfig, schedule: _Schedule,
                 rng: np.random.Generator, log_price: np.ndarray,
                 first_tick: int) -> tuple[_PriceBlock, np.ndarray]:
    """The next block of ticks starting at tick ``first_tick``, and the last log prices (n,)."""
    n, k = len(universe.symbols), len(universe.members)
    elapsed_ms = (first_tick + np.arange(_BLOCK_TICKS, dtype=np.int64)) * config.tick_interval_ms
    news = schedule.news(elapsed_ms)
    weekend = schedule.weekend(elapsed_ms)
    shocks = rng.standard_normal((_BLOCK_TICKS, 1 + k + n))
    draws = rng.random((_BLOCK_TICKS, n))
    path = log_price[None, :] + np.cumsum(_log_returns(universe, config, news, shocks), axis=0)
    mid = np.exp(path)
    probability = np.where(weekend, config.weekend_update_probability,
                           config.update_probability)
    block = _PriceBlock(
        mid=mid.tolist(),
        bid=(mid * (1.0 - universe.half_spread)).tolist(),
        ask=(mid * (1.0 + universe.half_spread)).tolist(),
        mid_array=mid, observed=draws < probability[:, None], weekend=weekend.tolist(),
    )
    return block, path[-1].copy()


# -- accounts and strategies -------------------------------------------------------------------


@dataclass
class _Book:
    """The running state of one account.

    Arrays are per symbol (n,): signed quantity, average entry price, the
    prices equity was last marked at, and the conviction of each position.
    """

    spec: AccountSpec
    rng: np.random.Generator
    equity: float
    qty: np.ndarray
    entry: np.ndarray
    mark_price: np.ndarray
    conviction: np.ndarray
    mark_ms: int = 0
    next_rebalance_ms: int = 0
    carry_annual: float = 0.0
    # steady: one (long, short) pair per cluster; the cluster piled into during news
    pairs: list[tuple[int, int]] = field(default_factory=list)
    pile_cluster: int | None = None
    # swing: direction (+1/-1) per cluster, picked symbols per cluster, size tilt per symbol
    direction: np.ndarray = field(default_factory=lambda: np.empty(0))
    picks: list[np.ndarray] = field(default_factory=list)
    tilt: np.ndarray = field(default_factory=lambda: np.empty(0))
    # (hedge symbol, hedged symbol, hedge size as a fraction of the hedged long)
    hedge: tuple[int, int, float] | None = None


def _pick_pair(book: _Book, members: np.ndarray) -> tuple[int, int]:
    long_i, short_i = book.rng.choice(members, size=2, replace=False).tolist()
    book.conviction[[long_i, short_i]] = book.rng.uniform(0.6, 0.9, size=2)
    return long_i, short_i


def _pick_swing(book: _Book, members: np.ndarray) -> np.ndarray:
    count = int(book.rng.integers(1, min(2, members.size) + 1))
    picks = book.rng.choice(members, size=count, replace=False)
    book.tilt[picks] = book.rng.uniform(0.5, 1.5, size=count)
    # Swing traders are often unsure: conviction spans the whole range.
    book.conviction[picks] = book.rng.uniform(0.2, 1.0, size=count)
    return picks


def _init_strategy(book: _Book, universe: _Universe) -> None:
    if book.spec.strategy == "steady":
        book.pairs = [_pick_pair(book, members) for members in universe.members]
    else:
        book.direction = book.rng.choice([-1.0, 1.0], size=len(universe.members))
        book.tilt = np.zeros(len(universe.symbols))
        book.picks = [_pick_swing(book, members) for members in universe.members]


def _evolve_steady(book: _Book, universe: _Universe, news: bool) -> None:
    """Pile into one altcoin cluster while news lasts; otherwise keep (rarely rotate) pairs."""
    if news and book.pile_cluster is None:
        book.pile_cluster = int(book.rng.choice(universe.altcoin_clusters))
        members = universe.members[book.pile_cluster]
        book.conviction[members] = book.rng.uniform(0.85, 1.0, size=members.size)
    elif not news and book.pile_cluster is not None:
        book.pile_cluster = None
        book.pairs = [_pick_pair(book, members) for members in universe.members]
    elif not news and book.rng.random() < _STEADY_ROTATE_PROBABILITY:
        c = int(book.rng.integers(len(universe.members)))
        book.pairs[c] = _pick_pair(book, universe.members[c])


def _evolve_swing(book: _Book, universe: _Universe) -> None:
    """Flip some sector views and re-pick some coins."""
    count = len(universe.members)
    book.direction[book.rng.random(count) < _SWING_FLIP_PROBABILITY] *= -1.0
    for c in np.flatnonzero(book.rng.random(count) < _SWING_REPICK_PROBABILITY).tolist():
        book.picks[c] = _pick_swing(book, universe.members[c])


def _base_weights(book: _Book, universe: _Universe) -> np.ndarray:
    """Unnormalised signed weights per symbol, shape (n,), before hedges."""
    weights = np.zeros(len(universe.symbols))
    if book.spec.strategy == "steady":
        if book.pile_cluster is not None:
            # Chasing the move: long every coin of one sector, nothing else.
            weights[universe.members[book.pile_cluster]] = 1.0
            return weights
        for long_i, short_i in book.pairs:
            weights[long_i] += 1.0
            weights[short_i] -= 1.0
        return weights
    for c, picks in enumerate(book.picks):
        tilt = book.tilt[picks]
        # Every sector gets the same gross: that is what spreads the heat evenly.
        weights[picks] = book.direction[c] * tilt / tilt.sum()
    return weights


def _evolve_hedge(book: _Book, universe: _Universe, weights: np.ndarray,
                  probability: float) -> None:
    """Drop or take a hedge: a short in another coin of the sector of the largest long."""
    rng = book.rng
    if book.hedge is not None:
        hedge_i, hedged_i, _ = book.hedge
        if (rng.random() < _HEDGE_RELEASE_PROBABILITY or weights[hedged_i] <= 0.0
                or weights[hedge_i] != 0.0):
            book.hedge = None
        return
    if rng.random() >= probability or weights.max() <= 0.0:
        return
    hedged_i = int(np.argmax(weights))
    members = universe.members[universe.cluster[hedged_i]]
    candidates = members[weights[members] == 0.0]
    if candidates.size == 0:
        return  # the whole sector is held already: nothing left to hedge with
    hedge_i = int(rng.choice(candidates))
    book.conviction[hedge_i] = rng.uniform(0.5, 0.8)
    book.hedge = (hedge_i, hedged_i, float(rng.uniform(*_HEDGE_RATIO_RANGE)))


def _target_weights(book: _Book, universe: _Universe, news: bool,
                    hedge_probability: float) -> np.ndarray:
    """Signed shares of equity per symbol, shape (n,), summing in absolute value to leverage."""
    if book.spec.strategy == "steady":
        _evolve_steady(book, universe, news)
    else:
        _evolve_swing(book, universe)
    weights = _base_weights(book, universe)
    _evolve_hedge(book, universe, weights, hedge_probability)
    if book.hedge is not None:
        hedge_i, hedged_i, ratio = book.hedge
        weights[hedge_i] = -ratio * weights[hedged_i]
    return weights * (book.spec.leverage / np.abs(weights).sum())


def _round_qty(qty: float) -> float:
    """Quantities as an order would carry them: a few significant digits."""
    return float(f"{qty:.{_QTY_SIGNIFICANT_DIGITS}g}")


def _entry_after_trade(old_qty: float, old_entry: float, new_qty: float, price: float) -> float:
    """Average entry price after trading from ``old_qty`` to ``new_qty`` at ``price``."""
    if old_qty == 0.0 or old_qty * new_qty < 0.0:
        return price  # a new position, or a flip: the remainder is entered now
    if abs(new_qty) > abs(old_qty):
        added = abs(new_qty) - abs(old_qty)
        return (abs(old_qty) * old_entry + added * price) / abs(new_qty)
    return old_entry  # reducing does not change the entry of what is left


# -- the event stream --------------------------------------------------------------------------


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
                  n_accounts: int) -> _Book:
        n = len(self.universe.symbols)
        book = _Book(
            spec=spec, rng=np.random.default_rng(seed), equity=self.config.initial_equity,
            qty=np.zeros(n), entry=np.zeros(n), mark_price=self.last_price.copy(),
            conviction=np.zeros(n),
            # Accounts rebalance staggered over the period, not all on one tick.
            next_rebalance_ms=round(self.rebalance_every_ms * (j + 1) / (n_accounts + 1)),
            carry_annual=self.config.steady_carry_annual if spec.strategy == "steady" else 0.0,
        )
        _init_strategy(book, self.universe)
        return book

    def events(self, duration_ms: int | None) -> Iterator[Event]:
        """The opening messages, then every tick until ``duration_ms`` (None: forever)."""
        yield from self._opening()
        tick = 0
        config, names = self.config, self.universe.symbols
        next_action_ms = self._next_action_ms()
        while True:
            block, self.log_price = _price_block(self.universe, config, self.schedule, self.rng,
                                                 self.log_price, tick + 1)
            for k in range(_BLOCK_TICKS):
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

    def _observe(self, block: _PriceBlock, k: int) -> np.ndarray:
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

    def _mark(self, book: _Book, elapsed_ms: int) -> None:
        """Mark equity to the last observed prices and accrue carry since the last mark."""
        pnl = float(book.qty @ (self.last_price - book.mark_price))
        years = (elapsed_ms - book.mark_ms) / _MS_PER_YEAR
        gross = float(np.abs(book.qty) @ self.last_price)
        book.equity += pnl + book.carry_annual * gross * years
        book.mark_price = self.last_price.copy()
        book.mark_ms = elapsed_ms

    def _recapitalise_if_needed(self, book: _Book, ts: datetime) -> Iterator[Event]:
        """Close out a blown-up account and top its equity up, so a long run stays sane."""
        if book.equity >= self.config.recapitalise_below * self.config.initial_equity:
            return
        for i in np.flatnonzero(book.qty).tolist():
            book.qty[i] = 0.0
            yield self._position_message(book, i, ts)
        book.equity = self.config.initial_equity
        book.hedge = None

    def _rebalance(self, book: _Book, elapsed_ms: int, ts: datetime) -> Iterator[Event]:
        """Trade toward the strategy's target weights; emit the positions that changed."""
        self._mark(book, elapsed_ms)
        recapitalised = list(self._recapitalise_if_needed(book, ts))
        yield from recapitalised
        if recapitalised:
            yield self._account_message(book, ts)
        news = bool(self.schedule.news(elapsed_ms))
        weights = _target_weights(book, self.universe, news, self.config.hedge_probability)
        target = weights * book.equity / self.last_price
        threshold = self.config.rebalance_threshold
        for i in np.flatnonzero(np.abs(target - book.qty) > threshold * np.abs(book.qty)).tolist():
            new_qty = _round_qty(float(target[i]))
            book.entry[i] = _entry_after_trade(float(book.qty[i]), float(book.entry[i]),
                                               new_qty, float(self.last_price[i]))
            book.qty[i] = new_qty
            yield self._position_message(book, i, ts)

    def _position_message(self, book: _Book, i: int, ts: datetime) -> Position:
        qty = float(book.qty[i])
        spec = book.spec
        return Position(
            account=spec.account, symbol=self.universe.symbols[i], ts=ts, qty=qty,
            strategy=spec.strategy, conviction=round(float(book.conviction[i]), 3),
            entry_price=float(book.entry[i]) if qty != 0.0 else None,
            leverage=spec.leverage, desk=spec.desk, source=SOURCE,
        )

    def _account_message(self, book: _Book, ts: datetime) -> Account:
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
        self.accounts = _account_specs(self.config)
        seeds = np.random.SeedSequence(self.config.seed).spawn(2 + len(self.accounts))
        # Independent streams: the price path does not depend on how the desks trade.
        self._universe = _build_universe(self.config, np.random.default_rng(seeds[0]))
        self._market_seed = seeds[1]
        self._account_seeds = seeds[2:]
        self._schedule = _Schedule.of(self.config)
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
