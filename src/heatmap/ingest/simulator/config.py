"""What shapes a simulated market and its desks: the configuration and account specs."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

SOURCE = "simulator"
CURRENCY = "USDT"
# A desk's accounts take these in turn, each at the leverage of the same place in
# ``SimulatorConfig.leverages``: a market-neutral spread book, a book long the altcoin
# sectors (most of it in one, all of it in one during news) and a scalper turning a
# directional book over across every sector.
STRATEGIES = ("spread", "alts", "scalp")


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
        A desk's accounts take the strategies ``spread``, ``alts``, ``scalp`` in turn.
    leverages : tuple of float
        Target gross notional over equity, per place in a desk (cycled): by default
        the spread book at 2.5x, the altcoin book at 5x and the scalper at 10x.
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
    spread_carry_annual : float
        Funding/basis carry earned by ``spread`` accounts, as an annual rate on
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
    leverages: tuple[float, ...] = (2.5, 5.0, 10.0)
    initial_equity: float = 1_000_000.0
    maintenance_rate: float = 0.005
    position_update_every_s: float = 30.0
    equity_update_every_s: float = 10.0
    rebalance_threshold: float = 0.10
    hedge_probability: float = 0.2
    spread_carry_annual: float = 0.15
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
