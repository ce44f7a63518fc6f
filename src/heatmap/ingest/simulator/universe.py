"""The simulated symbols (sectors of real and generated tickers) and the desks' accounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heatmap.ingest.simulator.config import STRATEGIES, AccountSpec, SimulatorConfig

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


@dataclass(frozen=True)
class Universe:
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
        """Clusters an ``alts`` book trades: every one but the majors (cluster 0)."""
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


def build_universe(config: SimulatorConfig, rng: np.random.Generator) -> Universe:
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
    return Universe(
        symbols=tuple(names), cluster=cluster_idx,
        members=tuple(np.flatnonzero(cluster_idx == c) for c in range(config.clusters)),
        cluster_names=tuple(_sector(c)[0] for c in range(config.clusters)),
        initial_price=np.array(prices), annual_vol=annual_vol,
        half_spread=spread_bps / 2.0 / 10_000.0,
    )


def account_specs(config: SimulatorConfig) -> tuple[AccountSpec, ...]:
    """Accounts ``desk-a-01``, ``desk-a-02``, ...: a desk's accounts take the strategies
    and leverages in turn."""
    specs = []
    for d in range(config.desks):
        desk = f"desk-{_desk_letter(d)}"
        for a in range(config.accounts_per_desk):
            # Each desk runs the profiles in turn: spread, alts, scalp, each at its leverage.
            specs.append(AccountSpec(
                account=f"{desk}-{a + 1:02d}", desk=desk,
                strategy=STRATEGIES[a % len(STRATEGIES)],
                leverage=config.leverages[a % len(config.leverages)],
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
