"""Batch reference implementation of the heat-map risk math, used as a test oracle.

Everything here is recomputed from the raw inputs with plain pandas / numpy / scipy
batch code, favouring obviousness over speed. It follows the product specification
(messages, heat engine math, frame contract) and these documented conventions:

* Bars close on UTC multiples of ``bar_interval_s`` since the epoch. The bar grid runs
  from the first boundary at or after the earliest price observation to the last
  boundary at or before the latest one. ``C_i(B)`` is the last price observed at or
  before ``B`` (carried forward, NaN before the symbol's first price); returns are
  ``ln(C_i(B) / C_i(B-1))``.
* Per timeframe with half-life ``h`` bars: ``rho = returns.ewm(halflife=h,
  adjust=False).corr()`` and ``sigma_i**2 = returns[i].ewm(halflife=h,
  adjust=False).var(bias=True)``. A symbol with fewer than ``min_periods`` returns is
  warming; every correlation involving it is 0. Correlations are clipped to
  ``[-1, 1]``, NaN counts as 0, the diagonal is 1.
* A ``bar`` frame at ``T`` (``T`` is a boundary) uses the estimator after bar ``T``;
  ``position`` and ``equity`` frames use the estimator after the last boundary strictly
  before ``T``. Prices in a frame are the latest observation at or before ``T`` (for a
  bar frame that is the bar close).

All shares are in units of equity, volatilities are per bar in log-return units,
money amounts (notional, equity, VaR) are in the settlement currency, ages in seconds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

DEFAULT_MAINTENANCE_RATE = 0.005
NEAR_ZERO = 1e-12
VAR99_Z = 2.326
UNSURE_CONVICTION = 0.4
MISSING_CONVICTION = 0.5
SECONDS_PER_DAY_S = 86400.0

FRAME_FIELDS = (
    "ts",
    "trigger",
    "account",
    "desk",
    "timeframe",
    "equity",
    "gross",
    "net",
    "correlated_exposure",
    "stress_exposure",
    "effective_bets",
    "hhi",
    "max_cluster_concentration",
    "liq_distance",
    "var99_1d",
    "absorption_ratio",
    "regime_break",
    "stale",
    "max_price_age_s",
    "warming_up",
    "params",
    "params_hash",
    "positions",
    "clusters",
)
POSITION_FIELDS = (
    "symbol",
    "strategy",
    "qty",
    "price",
    "notional",
    "share",
    "heat",
    "heat_share",
    "risk_contribution",
    "cluster",
    "quadrant",
    "conviction",
    "stale",
    "price_age_s",
)
CLUSTER_FIELDS = (
    "cluster",
    "members",
    "gross",
    "net",
    "concentration",
    "stress_concentration",
    "liq_distance",
    "liq_sigma",
)
#: Frame fields the reference does not produce (engine-specific bookkeeping).
NOT_COMPARED_FIELDS = frozenset({"params", "params_hash"})
#: Params that differ between the frames of one replay (one value per timeframe).
PER_TIMEFRAME_PARAMS = frozenset({"timeframe", "halflife_bars"})
TRIGGERS = frozenset({"bar", "position", "equity"})


# ---------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------


def parse_ts(value: str | pd.Timestamp) -> pd.Timestamp:
    """Parse an RFC 3339 string (or a timestamp) into a tz-aware UTC timestamp.

    Parameters
    ----------
    value : str or pandas.Timestamp
        E.g. ``"2018-01-10T04:55:00Z"``; naive timestamps are taken as UTC.

    Returns
    -------
    pandas.Timestamp
        Timezone-aware, UTC.
    """
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def format_ts(ts: pd.Timestamp) -> str:
    """Format a UTC timestamp as RFC 3339 with milliseconds, e.g. ``...T04:55:00.000Z``."""
    ts = parse_ts(ts)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _to_utc_column(values: pd.Series) -> pd.Series:
    """RFC 3339 strings (or datetimes) as a tz-aware UTC column with nanosecond resolution."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values.astype(str), utc=True, format="ISO8601")
    return parsed.astype("datetime64[ns, UTC]")


def _optional_float(values: pd.Series) -> pd.Series:
    """Floats with ``""`` / None / NaN as NaN."""
    cleaned = values.astype(object).map(lambda v: np.nan if v is None or v == "" else v)
    return pd.to_numeric(cleaned).astype(float)


def _optional_str(values: pd.Series) -> pd.Series:
    """Strings with None / NaN as ``""``."""
    return values.astype(object).map(lambda v: "" if v is None or v != v else str(v))


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def load_prices(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Read price files into one long table of observations.

    Parameters
    ----------
    paths : iterable of path-like
        Either one CSV per symbol named ``SYMBOL.csv`` with ``timestamp`` and ``close``
        (or ``price``) columns, or a long CSV with ``timestamp,symbol,price``.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_observations, 3)``, columns ``ts`` (tz-aware UTC: the moment the
        price was observed), ``symbol`` (str) and ``price`` (float, settlement
        currency per unit), sorted by ``(ts, symbol)`` keeping file order among equal
        keys.
    """
    parts = []
    for path in paths:
        path = Path(path)
        raw = pd.read_csv(path, dtype={"symbol": str})
        if "symbol" in raw.columns:
            price_col = "price" if "price" in raw.columns else "close"
            part = pd.DataFrame(
                {"ts": raw["timestamp"], "symbol": raw["symbol"], "price": raw[price_col]}
            )
        else:
            price_col = "close" if "close" in raw.columns else "price"
            part = pd.DataFrame(
                {"ts": raw["timestamp"], "symbol": path.stem, "price": raw[price_col]}
            )
        parts.append(part)
    if not parts:
        return pd.DataFrame(
            {
                "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
                "symbol": pd.Series([], dtype=str),
                "price": pd.Series([], dtype=float),
            }
        )
    obs = pd.concat(parts, ignore_index=True)
    obs["ts"] = _to_utc_column(obs["ts"])
    obs["price"] = obs["price"].astype(float)
    obs["symbol"] = obs["symbol"].astype(str)
    return obs.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def load_positions(path: str | Path) -> pd.DataFrame:
    """Read a positions CSV ``timestamp,account,symbol,qty[,strategy,conviction]``.

    Parameters
    ----------
    path : path-like
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_rows, 6)``: ``ts`` (UTC), ``account``, ``symbol``, ``qty`` (signed
        units), ``strategy`` (str, ``""`` for none), ``conviction`` (float in 0..1, NaN
        when missing); sorted by ``ts`` keeping file order among equal timestamps.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return _normalise_positions(raw.rename(columns={"timestamp": "ts"}))


def _normalise_positions(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "ts": _to_utc_column(df["ts"]),
            "account": df["account"].astype(str),
            "symbol": df["symbol"].astype(str),
            "qty": pd.to_numeric(df["qty"]).astype(float),
        }
    )
    strategy = df["strategy"] if "strategy" in df.columns else pd.Series("", index=df.index)
    out["strategy"] = _optional_str(strategy)
    conviction = df["conviction"] if "conviction" in df.columns else pd.Series("", index=df.index)
    out["conviction"] = _optional_float(conviction)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def load_accounts(path: str | Path | None) -> pd.DataFrame:
    """Read an accounts CSV ``timestamp,account,equity[,desk,maintenance_rate]``.

    Parameters
    ----------
    path : path-like or None
        The CSV file; None gives an empty table.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_rows, 5)``: ``ts`` (UTC), ``account``, ``equity`` (settlement
        currency), ``desk`` (str or None), ``maintenance_rate`` (fraction of gross
        notional, 0.005 when missing); sorted by ``ts`` keeping file order.
    """
    if path is None:
        raw = pd.DataFrame({"ts": [], "account": [], "equity": []}, dtype=str)
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        raw = raw.rename(columns={"timestamp": "ts"})
    return _normalise_accounts(raw)


def _normalise_accounts(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "ts": _to_utc_column(df["ts"]),
            "account": df["account"].astype(str),
            "equity": pd.to_numeric(df["equity"]).astype(float),
        }
    )
    desk = _optional_str(df["desk"] if "desk" in df.columns else pd.Series("", index=df.index))
    out["desk"] = pd.Series([d or None for d in desk], index=df.index, dtype=object)
    rate = (
        df["maintenance_rate"]
        if "maintenance_rate" in df.columns
        else pd.Series("", index=df.index)
    )
    out["maintenance_rate"] = _optional_float(rate).fillna(DEFAULT_MAINTENANCE_RATE)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------
# Bars and returns
# ---------------------------------------------------------------------------


def bar_grid(observations: pd.DataFrame, bar_interval_s: float) -> pd.DatetimeIndex:
    """All bar boundaries covered by the observations.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table from :func:`load_prices`.
    bar_interval_s : float
        Bar length in seconds; boundaries are UTC multiples of it since the epoch.

    Returns
    -------
    pandas.DatetimeIndex
        Shape ``(n_bars,)``, tz-aware UTC: from the first boundary at or after the
        earliest observation to the last boundary at or before the latest one.
    """
    if observations.empty:
        return pd.DatetimeIndex([], tz="UTC")
    step_ns = round(bar_interval_s * 1e9)
    first_ns = observations["ts"].min().value
    last_ns = observations["ts"].max().value
    start_ns = -(-first_ns // step_ns) * step_ns  # ceil to a boundary
    end_ns = (last_ns // step_ns) * step_ns  # floor to a boundary
    if end_ns < start_ns:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.DatetimeIndex(np.arange(start_ns, end_ns + 1, step_ns), tz="UTC")


def _asof_on_grid(
    observations: pd.DataFrame, grid: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Last observed price (and its timestamp) at or before each grid point, per symbol."""
    symbols = sorted(observations["symbol"].unique())
    prices, stamps = {}, {}
    left = pd.DataFrame({"at": grid})
    for symbol in symbols:
        obs = observations.loc[observations["symbol"] == symbol, ["ts", "price"]].copy()
        obs["ts"] = obs["ts"].astype("datetime64[ns, UTC]")
        # several observations at one instant: the one read last is the latest
        obs = obs.drop_duplicates("ts", keep="last").rename(columns={"ts": "obs_ts"})
        merged = pd.merge_asof(left, obs, left_on="at", right_on="obs_ts", direction="backward")
        prices[symbol] = merged["price"].to_numpy()
        stamps[symbol] = merged["obs_ts"].to_numpy()
    price_df = pd.DataFrame(prices, index=grid, columns=symbols, dtype=float)
    stamp_df = pd.DataFrame(stamps, index=grid, columns=symbols)
    return price_df, stamp_df


def bar_closes(observations: pd.DataFrame, bar_interval_s: float) -> pd.DataFrame:
    """Bar-close prices ``C_i(B)``: last observed price at or before each boundary.

    Parameters
    ----------
    observations : pandas.DataFrame
        Long table from :func:`load_prices`.
    bar_interval_s : float
        Bar length in seconds.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_bars, n_symbols)``; index: boundaries (tz-aware UTC, see
        :func:`bar_grid`); columns: symbols sorted; values: prices carried forward,
        NaN before a symbol's first observation.
    """
    grid = bar_grid(observations, bar_interval_s)
    closes, _ = _asof_on_grid(observations, grid)
    return closes


def log_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Per-bar log returns ``ln(C(B) / C(B-1))``.

    Parameters
    ----------
    closes : pandas.DataFrame
        Shape ``(n_bars, n_symbols)`` from :func:`bar_closes`.

    Returns
    -------
    pandas.DataFrame
        Same shape; NaN until a symbol has two closes.
    """
    return np.log(closes / closes.shift(1))


# ---------------------------------------------------------------------------
# EWMA estimator
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EwmEstimate:
    """Per-bar EWMA correlation and volatility of one timeframe.

    Attributes
    ----------
    boundaries : pandas.DatetimeIndex
        Shape ``(n_bars,)``, UTC bar boundaries.
    symbols : tuple of str
        Length ``n_symbols``, column order of the arrays.
    rho : numpy.ndarray
        Shape ``(n_bars, n_symbols, n_symbols)``: correlation after each bar, with the
        warm-up rule applied, clipped to [-1, 1], NaN as 0, unit diagonal.
    raw_rho : numpy.ndarray
        Same shape: pandas' correlation as computed (NaN kept, no warm-up rule).
    sigma : numpy.ndarray
        Shape ``(n_bars, n_symbols)``: per-bar volatility (log-return units), the
        square root of the biased EWMA variance; 0 where pandas gives NaN.
    warming : numpy.ndarray
        Shape ``(n_bars, n_symbols)``, bool: fewer than ``min_periods`` returns so far.
    """

    boundaries: pd.DatetimeIndex
    symbols: tuple[str, ...]
    rho: np.ndarray
    raw_rho: np.ndarray
    sigma: np.ndarray
    warming: np.ndarray


def ewm_estimate(returns: pd.DataFrame, halflife_bars: float, min_periods: int) -> EwmEstimate:
    """Run the pandas EWMA correlation / variance over all bars.

    Parameters
    ----------
    returns : pandas.DataFrame
        Shape ``(n_bars, n_symbols)`` from :func:`log_returns`.
    halflife_bars : float
        EWMA half-life in bars (``alpha = 1 - 2**(-1/h)``).
    min_periods : int
        Number of returns a symbol needs before its correlations count.

    Returns
    -------
    EwmEstimate
        Correlations, volatilities and warm-up flags after each bar.
    """
    symbols = tuple(returns.columns)
    n_bars, n_sym = returns.shape
    ewm = returns.ewm(halflife=halflife_bars, adjust=False)
    if n_bars and n_sym:
        corr = ewm.corr()
        full_index = pd.MultiIndex.from_product([returns.index, list(symbols)])
        corr = corr.reindex(full_index)[list(symbols)]
        raw_rho = corr.to_numpy(dtype=float).reshape(n_bars, n_sym, n_sym)
    else:
        raw_rho = np.zeros((n_bars, n_sym, n_sym))
    variance = ewm.var(bias=True).to_numpy(dtype=float)
    sigma = np.sqrt(np.where(np.isnan(variance), 0.0, np.maximum(variance, 0.0)))

    counts = returns.notna().cumsum().to_numpy()
    warming = counts < min_periods
    rho = np.clip(np.nan_to_num(raw_rho, nan=0.0), -1.0, 1.0)
    either_warming = warming[:, :, None] | warming[:, None, :]
    rho = np.where(either_warming, 0.0, rho)
    diag = np.arange(n_sym)
    rho[:, diag, diag] = 1.0
    return EwmEstimate(
        boundaries=returns.index,
        symbols=symbols,
        rho=rho,
        raw_rho=raw_rho,
        sigma=sigma,
        warming=warming,
    )


# ---------------------------------------------------------------------------
# Pure portfolio math
# ---------------------------------------------------------------------------


def quadratic_norm(weights: np.ndarray, matrix: np.ndarray) -> float:
    """``sqrt(max(w' M w, 0))``.

    Parameters
    ----------
    weights : numpy.ndarray
        Shape ``(n,)``.
    matrix : numpy.ndarray
        Shape ``(n, n)``, symmetric.

    Returns
    -------
    float
        The norm; 0 for ``n == 0``.
    """
    if len(weights) == 0:
        return 0.0
    return math.sqrt(max(float(weights @ matrix @ weights), 0.0))


def heat_contributions(
    shares: np.ndarray, rho: np.ndarray
) -> tuple[float, np.ndarray, list[float | None]]:
    """Correlated exposure, heat and heat share.

    Parameters
    ----------
    shares : numpy.ndarray
        Shape ``(n,)``, signed notional / equity.
    rho : numpy.ndarray
        Shape ``(n, n)`` correlation.

    Returns
    -------
    exposure : float
        ``E = sqrt(max(s' rho s, 0))`` in units of equity.
    heat : numpy.ndarray
        Shape ``(n,)``, ``c_i = s_i (rho s)_i / E`` (0 when ``E < 1e-12``); sums to E.
    heat_share : list of float or None
        Length ``n``, ``c_i / E`` (None when ``E < 1e-12``).
    """
    exposure = quadratic_norm(shares, rho)
    if exposure < NEAR_ZERO:
        return exposure, np.zeros(len(shares)), [None] * len(shares)
    heat = shares * (rho @ shares) / exposure
    return exposure, heat, [float(c / exposure) for c in heat]


def risk_contributions(
    shares: np.ndarray, rho: np.ndarray, sigma: np.ndarray
) -> tuple[float, np.ndarray]:
    """Per-bar portfolio volatility and risk contributions.

    Parameters
    ----------
    shares : numpy.ndarray
        Shape ``(n,)``, signed notional / equity.
    rho : numpy.ndarray
        Shape ``(n, n)`` correlation.
    sigma : numpy.ndarray
        Shape ``(n,)``, per-bar volatilities.

    Returns
    -------
    sigma_p : float
        ``sqrt(max(s' Sigma s, 0))`` with ``Sigma = D rho D``, per bar, units of equity.
    rc : numpy.ndarray
        Shape ``(n,)``, ``s_i (Sigma s)_i / sigma_p`` (0 when ``sigma_p < 1e-12``).
    """
    cov = covariance(rho, sigma)
    sigma_p = quadratic_norm(shares, cov)
    if sigma_p < NEAR_ZERO:
        return sigma_p, np.zeros(len(shares))
    return sigma_p, shares * (cov @ shares) / sigma_p


def covariance(rho: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``Sigma = D rho D`` with ``D = diag(sigma)``; shapes ``(n, n)``, ``(n,)`` -> ``(n, n)``."""
    return rho * np.outer(sigma, sigma)


def stress_correlation(rho: np.ndarray, kappa: float) -> np.ndarray:
    """``(1 - kappa) rho + kappa 1 1'`` with a unit diagonal; shape ``(n, n)``."""
    stressed = (1.0 - kappa) * rho + kappa * np.ones_like(rho)
    np.fill_diagonal(stressed, 1.0)
    return stressed


def liquidation_distance(net_share: float, mu: float) -> float | None:
    """Uniform adverse move taking equity to maintenance margin.

    Parameters
    ----------
    net_share : float
        Net share ``N`` (sum of signed shares, units of equity).
    mu : float
        Maintenance margin over equity.

    Returns
    -------
    float or None
        ``(1 - mu) / |N|`` as a fractional price move; None when ``|N| < 1e-12``.
    """
    if abs(net_share) < NEAR_ZERO:
        return None
    return (1.0 - mu) / abs(net_share)


def quadrant(heat: float, conviction: float | None, share: float, size_threshold: float) -> str:
    """Heat quadrant of one position.

    Parameters
    ----------
    heat : float
        ``c_i``.
    conviction : float or None
        0..1; None counts as 0.5.
    share : float
        ``s_i``.
    size_threshold : float
        ``|s_i|`` at or above which a position is ``core``.

    Returns
    -------
    str
        ``hedge``, ``unsure``, ``core`` or ``speculative``.
    """
    if heat < 0:
        return "hedge"
    conv = MISSING_CONVICTION if conviction is None else conviction
    if conv < UNSURE_CONVICTION:
        return "unsure"
    if abs(share) >= size_threshold:
        return "core"
    return "speculative"


def _largest_abs(candidates: Iterable[tuple[float, tuple[str, ...]]]) -> tuple[str, ...]:
    """Key of the candidate with the largest ``|value|``; ties broken by the smallest key."""
    best = min(candidates, key=lambda item: (-abs(item[0]), item[1]))
    return best[1]


# A cluster keeps the name of a cluster of its book's previous frame (same timeframe)
# holding its namesake when the absolute exposure they share is at least this share of
# the larger of the two's gross exposure.
KEEP_MIN_OVERLAP = 0.5


def carry_names(frame: dict[str, Any], previous: dict[str, dict[str, float]] | None) -> None:
    """Rename ``frame``'s clusters (named after their largest member) as the product keeps
    names across frames: given ``previous``, the name -> ``{member: |share|}`` of the
    book's previous frame of this timeframe, pairs of a previous and a current cluster are
    taken greedily by shared exposure ``sum min(|s_prev|, |s_now|)`` (ties: name, then the
    cluster's first symbol), when the current cluster holds the previous name's symbol and
    shares at least ``KEEP_MIN_OVERLAP`` of the larger gross. Positions follow."""
    if not previous:
        return
    share = {p["symbol"]: abs(p["share"]) for p in frame["positions"]}
    current = {c["cluster"]: {m: share[m] for m in c["members"]} for c in frame["clusters"]}
    pairs = []
    for old, was in previous.items():
        for born, now in current.items():
            shared = sum(min(was[m], now[m]) for m in set(was) & set(now))
            larger = max(sum(was.values()), sum(now.values()))
            if old in now and shared > 0.0 and shared >= KEEP_MIN_OVERLAP * larger:
                pairs.append((-shared, old, min(now), born))
    renamed: dict[str, str] = {}
    for _, old, _, born in sorted(pairs):
        if born not in renamed and old not in renamed.values():
            renamed[born] = old
    for cluster in frame["clusters"]:
        cluster["cluster"] = renamed.get(cluster["cluster"], cluster["cluster"])
    for position in frame["positions"]:
        position["cluster"] = renamed.get(position["cluster"], position["cluster"])
    frame["clusters"].sort(key=lambda c: (-c["concentration"], c["cluster"]))


def cluster_partition(
    symbols: Sequence[str], shares: np.ndarray, rho: np.ndarray, rho_min: float
) -> list[tuple[str, list[int]]]:
    """Average-linkage clusters of held symbols, named after their largest member.

    Parameters
    ----------
    symbols : sequence of str
        Length ``n``.
    shares : numpy.ndarray
        Shape ``(n,)``.
    rho : numpy.ndarray
        Shape ``(n, n)`` correlation.
    rho_min : float
        Correlation at which the dendrogram is cut: ``d* = sqrt((1 - rho_min) / 2)``.

    Returns
    -------
    list of (str, list of int)
        Per cluster its name (member with the largest ``|s_i|``, ties alphabetical) and
        member indices sorted by symbol; clusters in no particular order.
    """
    n = len(symbols)
    if n == 0:
        return []
    if n == 1:
        labels = np.array([1])
    else:
        sym_rho = (rho + rho.T) / 2.0
        dist = np.sqrt(np.clip((1.0 - sym_rho) / 2.0, 0.0, None))
        np.fill_diagonal(dist, 0.0)
        tree = linkage(squareform(dist, checks=False), method="average")
        labels = fcluster(tree, t=math.sqrt((1.0 - rho_min) / 2.0), criterion="distance")
    clusters = []
    for label in sorted(set(labels.tolist())):
        members = sorted((i for i in range(n) if labels[i] == label), key=lambda i: symbols[i])
        (name,) = _largest_abs((float(shares[i]), (symbols[i],)) for i in members)
        clusters.append((name, members))
    return clusters


# ---------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """A symbol's holding in a book, before prices are applied."""

    qty_by_account: dict[str, float]
    strategy: str
    conviction: float | None

    @property
    def qty(self) -> float:
        return float(sum(self.qty_by_account.values()))


@dataclass(frozen=True)
class _BookState:
    """Holdings and accounts of one book (account or desk) at some instant."""

    frame_account: str | None
    frame_desk: str | None
    # equity per member account that has an accounts row; None: no row (account frames)
    equity_by_account: dict[str, float] | None
    rate_by_account: dict[str, float]
    entries: dict[str, _Entry]


class ReferenceModel:
    """Batch recomputation of heat frames from prices, positions and accounts.

    Parameters
    ----------
    price_paths : sequence of path-like
        Price files (see :func:`load_prices`).
    positions_csv : path-like
        Positions CSV (see :func:`load_positions`).
    accounts_csv : path-like or None
        Accounts CSV (see :func:`load_accounts`).
    params : mapping
        A frame's ``params``: at least ``bar_interval_s``, ``timeframes`` (name ->
        half-life in bars), ``min_periods``, ``size_threshold``, ``stale_after_s``,
        ``rho_min``, ``stress_kappa``. ``timeframe`` / ``halflife_bars`` are ignored
        (every timeframe of ``timeframes`` is precomputed).
    """

    def __init__(
        self,
        price_paths: Sequence[str | Path],
        positions_csv: str | Path,
        accounts_csv: str | Path | None,
        params: Mapping[str, Any],
    ) -> None:
        self._build(
            load_prices(price_paths),
            load_positions(positions_csv),
            load_accounts(accounts_csv),
            params,
        )

    @classmethod
    def from_data(
        cls,
        observations: pd.DataFrame,
        positions: pd.DataFrame,
        accounts: pd.DataFrame | None,
        params: Mapping[str, Any],
    ) -> ReferenceModel:
        """Build from in-memory tables.

        Parameters
        ----------
        observations : pandas.DataFrame
            Columns ``ts, symbol, price`` (``ts`` anything :func:`pandas.to_datetime`
            parses as UTC).
        positions : pandas.DataFrame
            Columns ``ts, account, symbol, qty`` and optionally ``strategy``,
            ``conviction`` (None/NaN/"" for missing).
        accounts : pandas.DataFrame or None
            Columns ``ts, account, equity`` and optionally ``desk``, ``maintenance_rate``.
        params : mapping
            As for the constructor.

        Returns
        -------
        ReferenceModel
        """
        obs = pd.DataFrame(
            {
                "ts": _to_utc_column(observations["ts"]),
                "symbol": observations["symbol"].astype(str),
                "price": observations["price"].astype(float),
            }
        )
        obs = obs.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)
        acc = (
            accounts
            if accounts is not None
            else pd.DataFrame({"ts": [], "account": [], "equity": []}, dtype=str)
        )
        return cls._from_tables(
            obs, _normalise_positions(positions), _normalise_accounts(acc), params
        )

    @classmethod
    def _from_tables(
        cls,
        observations: pd.DataFrame,
        positions: pd.DataFrame,
        accounts: pd.DataFrame,
        params: Mapping[str, Any],
    ) -> ReferenceModel:
        """Build from tables already in the shape of the ``load_*`` functions."""
        model = cls.__new__(cls)
        model._build(observations, positions, accounts, params)
        return model

    def _build(
        self,
        observations: pd.DataFrame,
        positions: pd.DataFrame,
        accounts: pd.DataFrame,
        params: Mapping[str, Any],
    ) -> None:
        self.params = dict(params)
        self.bar_interval_s = float(params["bar_interval_s"])
        self.bars_per_day = SECONDS_PER_DAY_S / self.bar_interval_s
        self.timeframes = {str(k): float(v) for k, v in dict(params["timeframes"]).items()}
        self.min_periods = int(params["min_periods"])
        self.size_threshold = float(params["size_threshold"])
        self.stale_after_s = float(params["stale_after_s"])
        self.rho_min = float(params["rho_min"])
        self.stress_kappa = float(params["stress_kappa"])
        ordered = sorted(self.timeframes, key=lambda name: (self.timeframes[name], name))
        self.fast_timeframe, self.slow_timeframe = ordered[0], ordered[-1]

        self.observations = observations
        self.positions = positions
        self.accounts = accounts
        grid = bar_grid(observations, self.bar_interval_s)
        self.closes, self.close_times = _asof_on_grid(observations, grid)
        self.returns = log_returns(self.closes)
        self.estimates = {
            name: ewm_estimate(self.returns, halflife, self.min_periods)
            for name, halflife in self.timeframes.items()
        }
        self._boundary_ns = grid.asi8 if len(grid) else np.array([], dtype=np.int64)
        self._obs_by_symbol = {
            symbol: (
                group["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
                group["price"].to_numpy(dtype=float),
            )
            for symbol, group in observations.groupby("symbol", sort=True)
        }
        self._symbol_index = {s: i for i, s in enumerate(self.closes.columns)}
        self._pos_ns = positions["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self._acc_ns = accounts["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self._book_state = lru_cache(maxsize=4096)(self._book_state_uncached)

    # -- state lookups -----------------------------------------------------

    def bar_index(self, ts: str | pd.Timestamp, trigger: str) -> int:
        """Index of the bar whose estimator a frame uses (-1: before any bar).

        Parameters
        ----------
        ts : str or pandas.Timestamp
            Frame time ``T``.
        trigger : str
            ``bar`` (last boundary ``B <= T``) or ``position`` / ``equity`` (last
            boundary ``B < T``).

        Returns
        -------
        int
            Row index into the bar grid.
        """
        t_ns = parse_ts(ts).value
        side = "right" if trigger == "bar" else "left"
        return int(np.searchsorted(self._boundary_ns, t_ns, side=side)) - 1

    def price_at(self, symbol: str, ts: str | pd.Timestamp) -> tuple[float, float] | None:
        """Latest observed price at or before ``ts`` and its age.

        Returns
        -------
        tuple of (float, float) or None
            ``(price, price_age_s)``; None when the symbol has no price yet.
        """
        if symbol not in self._obs_by_symbol:
            return None
        t_ns = parse_ts(ts).value
        times_ns, prices = self._obs_by_symbol[symbol]
        idx = int(np.searchsorted(times_ns, t_ns, side="right")) - 1
        if idx < 0:
            return None
        return float(prices[idx]), (t_ns - int(times_ns[idx])) / 1e9

    def _book_state_uncached(
        self, n_pos_rows: int, n_acc_rows: int, account: str | None, desk: str | None
    ) -> _BookState:
        pos = self.positions.iloc[:n_pos_rows].drop_duplicates(
            ["account", "symbol", "strategy"], keep="last"
        )
        acc = self.accounts.iloc[:n_acc_rows].drop_duplicates("account", keep="last")
        acc_rows = {row.account: row for row in acc.itertuples(index=False)}
        if account is not None:
            row = acc_rows.get(account)
            members = [account]
            frame_desk = row.desk if row is not None else None
            equity_by_account = {account: float(row.equity)} if row is not None else None
            rates = {
                account: float(row.maintenance_rate)
                if row is not None
                else DEFAULT_MAINTENANCE_RATE
            }
        else:
            members = sorted(a for a, row in acc_rows.items() if row.desk == desk)
            frame_desk = desk
            equity_by_account = {a: float(acc_rows[a].equity) for a in members}
            rates = {a: float(acc_rows[a].maintenance_rate) for a in members}
        pos = pos[pos["account"].isin(members)]
        entries = {}
        for symbol, group in pos.groupby("symbol", sort=True):
            qty_by_account = {
                a: float(g["qty"].sum()) for a, g in group.groupby("account", sort=True)
            }
            rows = list(group.itertuples(index=False))
            strategy, acct = _largest_abs((float(r.qty), (r.strategy, r.account)) for r in rows)
            chosen = next(r for r in rows if r.strategy == strategy and r.account == acct)
            conviction = None if math.isnan(chosen.conviction) else float(chosen.conviction)
            entries[symbol] = _Entry(qty_by_account, strategy, conviction)
        return _BookState(
            frame_account=account,
            frame_desk=frame_desk,
            equity_by_account=equity_by_account,
            rate_by_account=rates,
            entries=entries,
        )

    def book_state(
        self, ts: str | pd.Timestamp, account: str | None, desk: str | None
    ) -> _BookState:
        """Holdings of an account (or a desk when ``account`` is None) at ``ts``."""
        t_ns = parse_ts(ts).value
        n_pos = int(np.searchsorted(self._pos_ns, t_ns, side="right"))
        n_acc = int(np.searchsorted(self._acc_ns, t_ns, side="right"))
        return self._book_state(n_pos, n_acc, account, desk)

    # -- frames --------------------------------------------------------------

    def correlation(self, timeframe: str, bar: int, symbols: Sequence[str]) -> np.ndarray:
        """Warmed correlation among ``symbols`` after bar ``bar``; shape ``(n, n)``."""
        if bar < 0:
            return np.eye(len(symbols))
        ix = [self._symbol_index[s] for s in symbols]
        return self.estimates[timeframe].rho[bar][np.ix_(ix, ix)].copy()

    def volatility(self, timeframe: str, bar: int, symbols: Sequence[str]) -> np.ndarray:
        """Per-bar volatilities of ``symbols`` after bar ``bar``; shape ``(n,)``."""
        if bar < 0:
            return np.zeros(len(symbols))
        ix = [self._symbol_index[s] for s in symbols]
        return self.estimates[timeframe].sigma[bar][ix].copy()

    def warming(self, timeframe: str, bar: int, symbols: Sequence[str]) -> np.ndarray:
        """Warm-up flags of ``symbols`` after bar ``bar``; shape ``(n,)``, bool."""
        if bar < 0:
            return np.ones(len(symbols), dtype=bool)
        ix = [self._symbol_index[s] for s in symbols]
        return self.estimates[timeframe].warming[bar][ix].copy()

    def frame(
        self,
        ts: str | pd.Timestamp,
        trigger: str,
        account: str | None,
        desk: str | None,
        timeframe: str,
    ) -> dict[str, Any] | None:
        """Recompute one frame.

        Parameters
        ----------
        ts : str or pandas.Timestamp
            Frame time ``T``; for ``bar`` frames a bar boundary.
        trigger : str
            ``bar``, ``position`` or ``equity``.
        account : str or None
            The account; None for a desk frame.
        desk : str or None
            The desk of a desk frame (ignored for account frames, whose ``desk`` is the
            one named by the account's latest accounts row).
        timeframe : str
            A key of ``params["timeframes"]``.

        Returns
        -------
        dict or None
            The frame (fields of the frame contract except ``params`` /
            ``params_hash``; positions sorted by symbol; clusters by concentration
            descending then name), or None when its equity is not positive (no frame).

        Raises
        ------
        ValueError
            Unknown trigger/timeframe, a bar frame off the bar grid, or neither account
            nor desk given.
        """
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}")
        if timeframe not in self.timeframes:
            raise ValueError(f"unknown timeframe {timeframe!r}")
        if account is None and desk is None:
            raise ValueError("a frame needs an account or a desk")
        t = parse_ts(ts)
        bar = self.bar_index(t, trigger)
        if trigger == "bar" and (bar < 0 or self._boundary_ns[bar] != t.value):
            raise ValueError(f"bar frame at {t} is not a boundary of the bar grid")
        state = self.book_state(t, account, desk)

        # held symbols: non-zero summed quantity and a price at T
        held, qty, price, age_s, entries = [], [], [], [], []
        for symbol in sorted(state.entries):
            entry = state.entries[symbol]
            quote = self.price_at(symbol, t)
            if abs(entry.qty) < NEAR_ZERO or quote is None:
                continue
            held.append(symbol)
            qty.append(entry.qty)
            price.append(quote[0])
            age_s.append(quote[1])
            entries.append(entry)
        qty_arr = np.array(qty, dtype=float)
        price_arr = np.array(price, dtype=float)
        notional = qty_arr * price_arr

        # equity and maintenance margin (settlement currency)
        margin = 0.0
        for member, rate in state.rate_by_account.items():
            gross_notional = 0.0
            for symbol, entry in state.entries.items():
                quote = self.price_at(symbol, t)
                if quote is not None:
                    gross_notional += abs(entry.qty_by_account.get(member, 0.0) * quote[0])
            margin += rate * gross_notional
        if state.equity_by_account is None:
            equity = float(np.abs(notional).sum())
        else:
            equity = float(sum(state.equity_by_account.values()))
        if not equity > 0 and held:
            return None
        mu = margin / equity if equity > 0 else 0.0

        shares = notional / equity
        rho = self.correlation(timeframe, bar, held)
        sigma = self.volatility(timeframe, bar, held)
        warming = self.warming(timeframe, bar, held)
        exposure, heat, heat_share = heat_contributions(shares, rho)
        stress_rho = stress_correlation(rho, self.stress_kappa)
        sigma_p, rc = risk_contributions(shares, rho, sigma)
        cov = covariance(rho, sigma)
        gross = float(np.abs(shares).sum())
        net = float(shares.sum())
        n_held = len(held)

        clusters_out = []
        cluster_of = {}
        for name, members in cluster_partition(held, shares, rho, self.rho_min):
            sub = np.ix_(members, members)
            s_c = shares[members]
            net_c = float(s_c.sum())
            liq_c = liquidation_distance(net_c, mu)
            sigma_c = quadratic_norm(s_c, cov[sub])
            if liq_c is None or sigma_c < NEAR_ZERO:
                liq_sigma = None
            else:
                liq_sigma = liq_c / (sigma_c / abs(net_c) * math.sqrt(self.bars_per_day))
            for i in members:
                cluster_of[held[i]] = name
            clusters_out.append(
                {
                    "cluster": name,
                    "members": [held[i] for i in members],
                    "gross": float(np.abs(s_c).sum()),
                    "net": net_c,
                    "concentration": quadratic_norm(s_c, rho[sub]),
                    "stress_concentration": quadratic_norm(s_c, stress_rho[sub]),
                    "liq_distance": liq_c,
                    "liq_sigma": liq_sigma,
                }
            )
        clusters_out.sort(key=lambda c: (-c["concentration"], c["cluster"]))

        positions_out = []
        for i, symbol in enumerate(held):
            positions_out.append(
                {
                    "symbol": symbol,
                    "strategy": entries[i].strategy,
                    "qty": float(qty_arr[i]),
                    "price": float(price_arr[i]),
                    "notional": float(notional[i]),
                    "share": float(shares[i]),
                    "heat": float(heat[i]),
                    "heat_share": heat_share[i],
                    "risk_contribution": float(rc[i]),
                    "cluster": cluster_of[symbol],
                    "quadrant": quadrant(
                        float(heat[i]),
                        entries[i].conviction,
                        float(shares[i]),
                        self.size_threshold,
                    ),
                    "conviction": entries[i].conviction,
                    "stale": bool(age_s[i] > self.stale_after_s),
                    "price_age_s": float(age_s[i]),
                }
            )

        if n_held:
            weights = np.abs(shares) / gross
            hhi = float((weights**2).sum())
            absorption = float(np.linalg.eigvalsh((rho + rho.T) / 2.0).max() / n_held)
        else:
            hhi = None
            absorption = None
        return {
            "ts": format_ts(t),
            "trigger": trigger,
            "account": state.frame_account,
            "desk": state.frame_desk,
            "timeframe": timeframe,
            "equity": equity,
            "gross": gross,
            "net": net,
            "correlated_exposure": exposure,
            "stress_exposure": quadratic_norm(shares, stress_rho),
            "effective_bets": gross**2 / exposure**2 if exposure >= NEAR_ZERO else None,
            "hhi": hhi,
            "max_cluster_concentration": (
                max(c["concentration"] for c in clusters_out) if clusters_out else None
            ),
            "liq_distance": liquidation_distance(net, mu),
            "var99_1d": VAR99_Z * sigma_p * math.sqrt(self.bars_per_day) * equity,
            "absorption_ratio": absorption,
            "regime_break": self.regime_break(bar, held),
            "stale": any(p["stale"] for p in positions_out),
            "max_price_age_s": max(age_s) if age_s else None,
            "warming_up": bool(warming.any()),
            "positions": positions_out,
            "clusters": clusters_out,
        }

    def regime_break(self, bar: int, symbols: Sequence[str]) -> float | None:
        """RMS over pairs ``i < j`` of ``rho_fast - rho_slow`` after bar ``bar``.

        Only pairs whose symbols are both past warm-up in both timeframes count:
        a warming pair's correlations are 0 by convention, which says nothing
        about a break.

        Returns
        -------
        float or None
            None when fewer than one such pair exists.
        """
        n = len(symbols)
        if n < 2:
            return None
        fast = self.correlation(self.fast_timeframe, bar, symbols)
        slow = self.correlation(self.slow_timeframe, bar, symbols)
        warm = ~(self.warming(self.fast_timeframe, bar, symbols)
                 | self.warming(self.slow_timeframe, bar, symbols))
        i, j = np.triu_indices(n, k=1)
        counted = warm[i] & warm[j]
        if not counted.any():
            return None
        difference = fast[i[counted], j[counted]] - slow[i[counted], j[counted]]
        return float(np.sqrt(np.mean(difference**2)))

    def emits(self, ts: str | pd.Timestamp, account: str | None, desk: str | None) -> bool:
        """Whether a frame for this book at ``ts`` is emitted.

        A book exists from the first row naming it (an account in any row, a desk in an
        accounts row). It gets frames while it has positive equity, and also while it
        holds nothing (empty frames, so its alerts can resolve); a book that holds
        positions without positive equity gets none.
        """
        t = parse_ts(ts)
        if account is not None:
            named = pd.concat([self.positions.loc[self.positions["account"] == account, "ts"],
                               self.accounts.loc[self.accounts["account"] == account, "ts"]])
        else:
            named = self.accounts.loc[self.accounts["desk"] == desk, "ts"]
        if named.empty or named.min() > t:
            return False
        state = self.book_state(t, account, desk)
        held = [symbol for symbol, entry in state.entries.items()
                if abs(entry.qty) >= NEAR_ZERO and self.price_at(symbol, t) is not None]
        if not held or state.equity_by_account is None:
            return True
        return sum(state.equity_by_account.values()) > 0

    def books(self) -> tuple[list[str], list[str]]:
        """All accounts (positions or accounts rows) and all desks named in the inputs."""
        accounts = sorted(set(self.positions["account"]) | set(self.accounts["account"]))
        desks = sorted({d for d in self.accounts["desk"] if d is not None})
        return accounts, desks


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare_value(
    path: str, got: Any, want: Any, rel_tol: float, abs_tol: float, out: list[str]
) -> None:
    """Append a message to ``out`` when ``got`` (engine) differs from ``want`` (reference)."""
    if want is None or got is None:
        if not (want is None and got is None):
            out.append(f"{path}: engine {got!r} != reference {want!r}")
        return
    if isinstance(want, bool) or isinstance(got, bool):
        if not (isinstance(want, bool) and isinstance(got, bool) and want == got):
            out.append(f"{path}: engine {got!r} != reference {want!r}")
        return
    if _is_number(want):
        if not _is_number(got):
            out.append(f"{path}: engine {got!r} is not a number (reference {want!r})")
            return
        g, w = float(got), float(want)
        if not (math.isfinite(g) and math.isfinite(w)):
            out.append(f"{path}: non-finite value, engine {got!r}, reference {want!r}")
            return
        if not math.isclose(g, w, rel_tol=rel_tol, abs_tol=abs_tol):
            out.append(f"{path}: engine {g!r} != reference {w!r} (diff {g - w:.3g})")
        return
    if got != want:
        out.append(f"{path}: engine {got!r} != reference {want!r}")


def compare_frames(
    engine_frame: Mapping[str, Any],
    reference_frame: Mapping[str, Any],
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-9,
) -> list[str]:
    """List every difference between an engine frame and the reference frame.

    Parameters
    ----------
    engine_frame : mapping
        A frame as the engine emitted it (decoded JSON).
    reference_frame : mapping
        The frame from :meth:`ReferenceModel.frame`.
    rel_tol, abs_tol : float
        Tolerances of :func:`math.isclose` for numbers.

    Returns
    -------
    list of str
        One ``"$.path: ..."`` message per mismatch; empty when the frames agree.
        ``ts`` is compared as an instant; ``params`` / ``params_hash`` are not
        compared; null vs number is a mismatch; a missing ``strategy`` equals ``""``;
        positions are matched by symbol (and must be sorted by symbol); clusters are
        matched by member set (names, values and the order by concentration descending
        are then checked).
    """
    out: list[str] = []
    for key in FRAME_FIELDS:
        if key in NOT_COMPARED_FIELDS or key in ("positions", "clusters"):
            continue
        if key not in engine_frame:
            out.append(f"$.{key}: missing in engine frame")
            continue
        got, want = engine_frame[key], reference_frame.get(key)
        if key == "ts":
            try:
                same = parse_ts(got) == parse_ts(want)
            except (TypeError, ValueError):
                same = False
            if not same:
                out.append(f"$.ts: engine {got!r} != reference {want!r}")
            continue
        _compare_value(f"$.{key}", got, want, rel_tol, abs_tol, out)
    _compare_positions(
        engine_frame.get("positions"), reference_frame["positions"], rel_tol, abs_tol, out
    )
    _compare_clusters(
        engine_frame.get("clusters"), reference_frame["clusters"], rel_tol, abs_tol, out
    )
    return out


def _compare_positions(
    got: Any, want: list[dict[str, Any]], rel_tol: float, abs_tol: float, out: list[str]
) -> None:
    if not isinstance(got, list):
        out.append(f"$.positions: engine {got!r} is not a list")
        return
    symbols = [p.get("symbol") for p in got]
    if len(set(symbols)) != len(symbols):
        out.append(f"$.positions: duplicate symbols {symbols}")
    if symbols != sorted(symbols, key=str):
        out.append(f"$.positions: not sorted by symbol: {symbols}")
    by_symbol = {p.get("symbol"): p for p in got}
    want_by_symbol = {p["symbol"]: p for p in want}
    for symbol in sorted(set(by_symbol) - set(want_by_symbol), key=str):
        out.append(f"$.positions[{symbol}]: not held according to the reference")
    for symbol, ref in want_by_symbol.items():
        eng = by_symbol.get(symbol)
        if eng is None:
            out.append(f"$.positions[{symbol}]: missing in engine frame")
            continue
        for key in POSITION_FIELDS:
            path = f"$.positions[{symbol}].{key}"
            if key not in eng:
                out.append(f"{path}: missing in engine frame")
                continue
            value = eng[key]
            if key == "strategy" and value is None:
                value = ""
            _compare_value(path, value, ref[key], rel_tol, abs_tol, out)


def _compare_clusters(
    got: Any, want: list[dict[str, Any]], rel_tol: float, abs_tol: float, out: list[str]
) -> None:
    if not isinstance(got, list):
        out.append(f"$.clusters: engine {got!r} is not a list")
        return
    eng_by_members = {}
    for c in got:
        members = frozenset(c.get("members") or [])
        if members in eng_by_members:
            out.append(f"$.clusters: member set {sorted(members)} listed twice")
        eng_by_members[members] = c
    ref_by_members = {frozenset(c["members"]): c for c in want}
    for members in eng_by_members.keys() - ref_by_members.keys():
        out.append(f"$.clusters[{sorted(members)}]: no such cluster in the reference")
    for members, ref in ref_by_members.items():
        label = ref["cluster"]
        eng = eng_by_members.get(members)
        if eng is None:
            out.append(f"$.clusters[{label}]: members {sorted(members)} not a cluster in engine")
            continue
        for key in CLUSTER_FIELDS:
            path = f"$.clusters[{label}].{key}"
            if key == "members":
                continue
            if key not in eng:
                out.append(f"{path}: missing in engine frame")
                continue
            _compare_value(path, eng[key], ref[key], rel_tol, abs_tol, out)
    concentrations = [c.get("concentration") for c in got]
    for k in range(len(got) - 1):
        a, b = concentrations[k], concentrations[k + 1]
        if not (_is_number(a) and _is_number(b)):
            continue
        if b > a and not math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol):
            out.append(f"$.clusters: not sorted by concentration descending at index {k + 1}")


# ---------------------------------------------------------------------------
# Replay check
# ---------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """Outcome of :func:`check_replay_output`.

    Attributes
    ----------
    frames_read : int
        Lines in the JSONL file.
    frames_checked : int
        Frames recomputed and compared (after ``stride`` / ``limit``).
    frames_matched : int
        Checked frames without any mismatch.
    frames_mismatched : int
        Checked frames with at least one mismatch (or that should not exist).
    by_trigger : collections.Counter
        Checked frames per trigger.
    mismatches : list of str
        The first ``max_mismatches`` messages, each prefixed by the frame's identity.
    missing_bar_frames : list of str
        Up to ``max_mismatches`` (book, timeframe, boundary) for which the reference
        expects a bar frame within the replayed span but the file has none.
    missing_bar_frame_count : int
        Total count of such missing bar frames.
    """

    frames_read: int = 0
    frames_checked: int = 0
    frames_matched: int = 0
    frames_mismatched: int = 0
    by_trigger: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    missing_bar_frames: list[str] = field(default_factory=list)
    missing_bar_frame_count: int = 0

    @property
    def ok(self) -> bool:
        """True when every checked frame matched."""
        return self.frames_mismatched == 0


def _shared_params_key(params: Mapping[str, Any]) -> str:
    shared = {k: v for k, v in params.items() if k not in PER_TIMEFRAME_PARAMS}
    return json.dumps(shared, sort_keys=True, default=str)


def check_replay_output(
    frames_jsonl_path: str | Path,
    price_paths: Sequence[str | Path],
    positions_csv: str | Path,
    accounts_csv: str | Path | None,
    *,
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-9,
    max_mismatches: int = 20,
    stride: int = 1,
    limit: int | None = None,
    check_bar_coverage: bool = True,
) -> ReplaySummary:
    """Compare every frame of a replay output file to the reference.

    Parameters
    ----------
    frames_jsonl_path : path-like
        One frame (JSON object of the frame contract) per line.
    price_paths, positions_csv, accounts_csv
        The inputs the replay was run on.
    rel_tol, abs_tol : float
        Number tolerances, see :func:`compare_frames`.
    max_mismatches : int
        How many messages to keep.
    stride : int
        Check every ``stride``-th frame only (1: all).
    limit : int or None
        Stop after this many checked frames.
    check_bar_coverage : bool
        Also list bar frames the reference expects (positive equity, for every account
        and desk named in the inputs, every timeframe, every boundary between the first
        and last bar frame of the file) that the file lacks.

    Returns
    -------
    ReplaySummary
        Counts and the first mismatches.
    """
    summary = ReplaySummary()
    prices = load_prices(price_paths)
    positions = load_positions(positions_csv)
    accounts = load_accounts(accounts_csv)
    models: dict[str, ReferenceModel] = {}
    seen_bar_frames: set[tuple[str | None, str | None, str, int]] = set()
    first_bar_ns: int | None = None
    last_bar_ns: int | None = None
    model: ReferenceModel | None = None
    # Per book and timeframe, the clusters of its previous frame in the file: names carry.
    previous_clusters: dict[tuple[Any, ...], dict[str, dict[str, float]]] = {}

    def note(message: str) -> None:
        if len(summary.mismatches) < max_mismatches:
            summary.mismatches.append(message)

    with open(frames_jsonl_path, encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            summary.frames_read += 1
            frame = json.loads(line)
            ident = (
                f"line {line_no} {frame.get('ts')} {frame.get('trigger')} "
                f"account={frame.get('account')} desk={frame.get('desk')} "
                f"tf={frame.get('timeframe')}"
            )
            params = frame.get("params") or {}
            key = _shared_params_key(params)
            if key not in models:
                try:
                    models[key] = ReferenceModel._from_tables(prices, positions, accounts, params)
                except (KeyError, TypeError, ValueError) as exc:
                    summary.frames_checked += 1
                    summary.frames_mismatched += 1
                    note(f"{ident}: unusable params ({exc!r})")
                    continue
            model = models[key]
            timeframe = frame.get("timeframe")
            book_key = (frame.get("account"),
                        frame.get("desk") if frame.get("account") is None else None, timeframe)
            previous = previous_clusters.get(book_key)
            shares_now = {p["symbol"]: abs(p["share"]) for p in frame.get("positions") or []}
            previous_clusters[book_key] = {
                c["cluster"]: {m: shares_now.get(m, 0.0) for m in c["members"]}
                for c in frame.get("clusters") or []}
            if frame.get("trigger") == "bar":
                t_ns = parse_ts(frame["ts"]).value
                seen_bar_frames.add(
                    (
                        frame.get("account"),
                        frame.get("desk") if frame.get("account") is None else None,
                        timeframe,
                        t_ns,
                    )
                )
                first_bar_ns = t_ns if first_bar_ns is None else min(first_bar_ns, t_ns)
                last_bar_ns = t_ns if last_bar_ns is None else max(last_bar_ns, t_ns)
            if (summary.frames_read - 1) % stride:
                continue
            if limit is not None and summary.frames_checked >= limit:
                continue
            summary.frames_checked += 1
            summary.by_trigger[frame.get("trigger")] += 1
            problems: list[str] = []
            declared_halflife = params.get("halflife_bars")
            expected_halflife = model.timeframes.get(timeframe)
            if (
                declared_halflife is not None
                and expected_halflife is not None
                and not math.isclose(float(declared_halflife), expected_halflife)
            ):
                problems.append("$.params.halflife_bars: differs from params.timeframes")
            try:
                reference = model.frame(
                    frame["ts"],
                    frame["trigger"],
                    frame.get("account"),
                    frame.get("desk"),
                    timeframe,
                )
            except (KeyError, ValueError) as exc:
                reference = None
                problems.append(f"reference cannot build this frame ({exc})")
            else:
                if reference is None:
                    problems.append("frame has non-positive equity: it should not be emitted")
                else:
                    carry_names(reference, previous)
                    problems.extend(compare_frames(frame, reference, rel_tol, abs_tol))
            if problems:
                summary.frames_mismatched += 1
                for problem in problems:
                    note(f"{ident}: {problem}")
            else:
                summary.frames_matched += 1

    if check_bar_coverage and model is not None and first_bar_ns is not None:
        accounts_named, desks_named = model.books()
        books = [(a, None) for a in accounts_named] + [(None, d) for d in desks_named]
        grid = model._boundary_ns
        span = grid[(grid >= first_bar_ns) & (grid <= last_bar_ns)]
        for b_ns in span:
            t = pd.Timestamp(int(b_ns), tz="UTC")
            for account, desk in books:
                if not model.emits(t, account, desk):
                    continue
                for timeframe in model.timeframes:
                    if (account, desk, timeframe, int(b_ns)) in seen_bar_frames:
                        continue
                    summary.missing_bar_frame_count += 1
                    if len(summary.missing_bar_frames) < max_mismatches:
                        summary.missing_bar_frames.append(
                            f"account={account} desk={desk} tf={timeframe} {format_ts(t)}"
                        )
    return summary
