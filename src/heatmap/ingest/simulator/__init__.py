"""A deterministic crypto market and trading desks: prices, positions and equity.

The market is a factor model driving geometric Brownian motion in log
prices: every symbol loads on one market factor, on the factor of its
sector (its *cluster*) and on its own noise. Two regimes change that
structure on a fixed schedule of simulated time:

- **news events**: every symbol loads mostly on the market factor (pairwise
  correlations jump toward 1) and volatility is multiplied;
- **weekends**: liquidity is thin, prices are observed rarely and go stale.

Desks of accounts trade the market with three strategies whose heat looks
different, each desk running one book of each: ``spread`` (2.5x gross) holds
hedged pairs inside each sector (little correlated heat, a small carry);
``alts`` (5x) is long the altcoin sectors, half of it in one, and piles into
one altcoin sector during news events (concentrated, correlated heat);
``scalp`` (10x) takes directional views spread evenly over all sectors and
turns them over often (even heat, big P&L swings). Equity is marked to market
at the simulated prices.

Everything is pure: time is simulated from ``SimulatorConfig.start`` (no wall
clock), randomness comes from the seed only (no I/O, no environment), and the
same configuration gives the same event stream, byte for byte (with one NumPy
version: NumPy does not promise identical random variates across releases).
"""

from heatmap.ingest.simulator.config import SOURCE, STRATEGIES, AccountSpec, SimulatorConfig
from heatmap.ingest.simulator.stream import MarketSimulator

__all__ = ["SOURCE", "STRATEGIES", "AccountSpec", "MarketSimulator", "SimulatorConfig"]
