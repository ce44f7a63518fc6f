"""Prices of the simulated market: a factor model in blocks of ticks, news and weekends."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heatmap.ingest.simulator.config import SimulatorConfig
from heatmap.ingest.simulator.universe import Universe

# Crypto trades every day of the year, so volatility is annualised over 365 days.
MS_PER_YEAR = 365 * 86_400 * 1000
# Random numbers are drawn for this many ticks at once (vectorised factor model);
# it is fixed so that the stream never depends on how long it runs.
BLOCK_TICKS = 256


# -- the schedule of regimes -------------------------------------------------------------------


def _periodic(elapsed_ms: np.ndarray | int, every_ms: int, offset_ms: int,
              duration_ms: int) -> np.ndarray:
    """Whether ``elapsed_ms`` (ms since start, scalar or array) lies in a periodic window."""
    phase = np.asarray(elapsed_ms) - offset_ms
    return np.asarray((phase >= 0) & (phase % every_ms < duration_ms))


@dataclass(frozen=True)
class Schedule:
    """News events and weekends in milliseconds since start (period 0 = never)."""

    news_every_ms: int
    news_offset_ms: int
    news_duration_ms: int
    weekend_every_ms: int
    weekend_offset_ms: int
    weekend_duration_ms: int

    @classmethod
    def of(cls, config: SimulatorConfig) -> Schedule:
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
class PriceBlock:
    """Latent prices of ``BLOCK_TICKS`` consecutive ticks (b ticks, n symbols).

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


def _log_returns(universe: Universe, config: SimulatorConfig, news: np.ndarray,
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
    dt_years = config.tick_interval_ms / MS_PER_YEAR
    vol = universe.annual_vol[None, :] * vol_multiplier[:, None]
    return vol * math.sqrt(dt_years) * z - 0.5 * vol * vol * dt_years


def price_block(universe: Universe, config: SimulatorConfig, schedule: Schedule,
                 rng: np.random.Generator, log_price: np.ndarray,
                 first_tick: int) -> tuple[PriceBlock, np.ndarray]:
    """The next block of ticks starting at tick ``first_tick``, and the last log prices (n,)."""
    n, k = len(universe.symbols), len(universe.members)
    elapsed_ms = (first_tick + np.arange(BLOCK_TICKS, dtype=np.int64)) * config.tick_interval_ms
    news = schedule.news(elapsed_ms)
    weekend = schedule.weekend(elapsed_ms)
    shocks = rng.standard_normal((BLOCK_TICKS, 1 + k + n))
    draws = rng.random((BLOCK_TICKS, n))
    path = log_price[None, :] + np.cumsum(_log_returns(universe, config, news, shocks), axis=0)
    mid = np.exp(path)
    probability = np.where(weekend, config.weekend_update_probability,
                           config.update_probability)
    block = PriceBlock(
        mid=mid.tolist(),
        bid=(mid * (1.0 - universe.half_spread)).tolist(),
        ask=(mid * (1.0 + universe.half_spread)).tolist(),
        mid_array=mid, observed=draws < probability[:, None], weekend=weekend.tolist(),
    )
    return block, path[-1].copy()
