"""Heat of one book at one moment: the frame math, vectorised over its positions.

Notation (for k held symbols): ``s`` shares of equity (k,), ``rho``
correlation (k, k), ``sigma`` per-bar volatility of log returns (k,),
``Sigma = D rho D``. Heat ``c_i = s_i (rho s)_i / E`` with
``E = sqrt(s' rho s)``; risk contribution ``s_i (Sigma s)_i / sigma_p``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from heatmap.engine.clusters import cluster_labels, upper_pairs
from heatmap.engine.identity import KnownCluster, stable_names
from heatmap.engine.params import EngineParams
from heatmap.schema import ClusterRow, Frame, PositionRow, Quadrant, Trigger, ms_to_rfc3339


@dataclass(frozen=True)
class BookSnapshot:
    """Everything one frame needs, already aligned on the book's held symbols.

    Attributes
    ----------
    symbols : list[str], length k (sorted)
    qty, price : ndarray, shape (k,)
        Net quantity and last price (settlement currency per unit).
    price_age_s : ndarray, shape (k,)
        Seconds since each price was observed.
    strategy, conviction : list, length k
    equity : float
        Book equity; gross notional when the book reported none.
    margin : float
        Maintenance margin in money.
    """

    ts_ms: int
    trigger: Trigger
    account: str | None
    desk: str | None
    symbols: list[str]
    qty: np.ndarray
    price: np.ndarray
    price_age_s: np.ndarray
    strategy: list[str | None]
    conviction: list[float | None]
    equity: float
    margin: float


def _quadratic(weights: np.ndarray, matrix: np.ndarray) -> float:
    return float(np.sqrt(max(float(weights @ matrix @ weights), 0.0)))


def _stress(rho: np.ndarray, kappa: float) -> np.ndarray:
    stressed = (1.0 - kappa) * rho + kappa
    np.fill_diagonal(stressed, 1.0)
    return stressed


def regime_break(rho_fast: np.ndarray, rho_slow: np.ndarray,
                 warm: np.ndarray | None = None) -> float | None:
    """RMS over held pairs ``i < j`` of ``rho_fast - rho_slow``.

    Only pairs of ``warm`` symbols (shape (k,), both timeframes past warm-up)
    count: a warming pair's correlation is 0 by convention, which says
    nothing about a break. None when no pair counts.
    """
    k = rho_fast.shape[0]
    rows, cols = upper_pairs(k)
    if warm is not None:
        counted = warm[rows] & warm[cols]
        rows, cols = rows[counted], cols[counted]
    if rows.size == 0:
        return None
    difference = rho_fast[rows, cols] - rho_slow[rows, cols]
    return float(np.sqrt(np.mean(difference * difference)))


def compute_frame(book: BookSnapshot, timeframe: str, rho: np.ndarray, sigma: np.ndarray,
                  warming: np.ndarray, regime: float | None, params: EngineParams,
                  echo: tuple[dict[str, object], str] | None = None,
                  previous: Sequence[KnownCluster] = ()) -> Frame:
    """The heat frame of ``book`` for ``timeframe``.

    Parameters
    ----------
    rho : ndarray, shape (k, k)
        Correlations of the held symbols for this timeframe.
    sigma : ndarray, shape (k,)
        Per-bar volatilities of the held symbols for this timeframe.
    warming : ndarray of bool, shape (k,)
    regime : float or None
        Regime break of the book (same for every timeframe).
    echo : (dict, str), optional
        Precomputed ``(params.frame_params(timeframe), params.params_hash(timeframe))``.
    previous : sequence of KnownCluster
        The book's clusters of this timeframe in its previous frame: clusters that
        carry them over keep their names (:mod:`heatmap.engine.identity`).
    """
    tol = params.zero_tol
    equity = book.equity
    notional = book.qty * book.price
    shares = notional / equity if equity > 0.0 else np.zeros_like(notional)
    abs_shares = np.abs(shares)
    gross, net = float(abs_shares.sum()), float(shares.sum())
    mu = book.margin / equity if equity > 0.0 else 0.0

    rho_s = rho @ shares
    exposure = float(np.sqrt(max(float(shares @ rho_s), 0.0)))
    if exposure < tol:
        heat = np.zeros_like(shares)
        heat_share: list[float | None] = [None] * len(shares)
    else:
        heat = shares * rho_s / exposure
        heat_share = (heat / exposure).tolist()
    covariance = rho * np.outer(sigma, sigma)
    cov_s = covariance @ shares
    sigma_p = float(np.sqrt(max(float(shares @ cov_s), 0.0)))
    risk = shares * cov_s / sigma_p if sigma_p >= tol else np.zeros_like(shares)
    stress_rho = _stress(rho, params.stress_kappa)

    labels = cluster_labels(rho, params.rho_min)
    names = stable_names(labels, book.symbols, shares, previous)
    clusters = _cluster_rows(labels, names, book.symbols, shares, rho, stress_rho, covariance,
                             mu, params)

    positions = _position_rows(book, notional, shares, abs_shares, heat, heat_share, risk,
                               [names[label] for label in labels.tolist()], params)
    held = len(book.symbols)
    return Frame(
        ts=ms_to_rfc3339(book.ts_ms), trigger=book.trigger, account=book.account,
        desk=book.desk, timeframe=timeframe, equity=float(equity), gross=gross, net=net,
        correlated_exposure=exposure,
        stress_exposure=_quadratic(shares, stress_rho),
        effective_bets=gross * gross / (exposure * exposure) if exposure >= tol else None,
        hhi=float(np.sum((abs_shares / gross) ** 2)) if gross >= tol else None,
        max_cluster_concentration=max((c.concentration for c in clusters), default=None),
        liq_distance=(1.0 - mu) / abs(net) if abs(net) >= tol else None,
        var99_1d=params.var_z * sigma_p * float(np.sqrt(params.bars_per_day)) * equity,
        absorption_ratio=float(np.linalg.eigvalsh(rho)[-1]) / held if held else None,
        regime_break=regime,
        stale=any(row.stale for row in positions),
        max_price_age_s=float(book.price_age_s.max()) if held else None,
        warming_up=bool(warming.any()),
        params=echo[0] if echo else params.frame_params(timeframe),
        params_hash=echo[1] if echo else params.params_hash(timeframe),
        positions=positions, clusters=clusters,
    )


# Quadrant names by code, in the order their tests apply (the first that holds wins).
_QUADRANTS: tuple[Quadrant, ...] = ("hedge", "unsure", "core", "speculative")


def _position_rows(book: BookSnapshot, notional: np.ndarray, shares: np.ndarray,
                   abs_shares: np.ndarray, heat: np.ndarray, heat_share: list[float | None],
                   risk: np.ndarray, cluster_names_by_position: list[str],
                   params: EngineParams) -> list[PositionRow]:
    """One row per held symbol, sorted by symbol; arrays of shape (k,) in book order.

    The per-position tests run on whole arrays and every array becomes a list of
    Python floats once (``tolist``), so the row loop only assembles rows: indexing
    numpy scalars per field costs more than the frame's linear algebra.
    """
    conviction = np.array([params.missing_conviction if c is None else c
                           for c in book.conviction], dtype=float)
    # hedge if heat < 0; else unsure if conviction < unsure_below; else core if
    # |share| >= size_threshold; else speculative: written from the last test to the
    # first, so the first test that holds has the last word.
    quadrant_codes = np.full(len(book.symbols), 3)
    quadrant_codes[abs_shares >= params.size_threshold] = 2
    quadrant_codes[conviction < params.unsure_below] = 1
    quadrant_codes[heat < 0.0] = 0
    stale = book.price_age_s > params.price_stale_after_s
    columns = zip(book.symbols, book.strategy, np.asarray(book.qty, dtype=float).tolist(),
                  book.price.tolist(), notional.tolist(), shares.tolist(), heat.tolist(),
                  heat_share, risk.tolist(), cluster_names_by_position, quadrant_codes.tolist(),
                  book.conviction, stale.tolist(), book.price_age_s.tolist(), strict=True)
    positions = [
        PositionRow(
            symbol=symbol, strategy=strategy, qty=qty, price=price, notional=notional_i,
            share=share, heat=heat_i, heat_share=heat_share_i, risk_contribution=risk_i,
            cluster=cluster, quadrant=_QUADRANTS[code], conviction=conviction_i,
            stale=stale_i, price_age_s=price_age_s)
        for (symbol, strategy, qty, price, notional_i, share, heat_i, heat_share_i, risk_i,
             cluster, code, conviction_i, stale_i, price_age_s) in columns
    ]
    positions.sort(key=lambda row: row.symbol)
    return positions


def _cluster_rows(labels: np.ndarray, names: list[str], symbols: list[str], shares: np.ndarray,
                  rho: np.ndarray, stress_rho: np.ndarray, covariance: np.ndarray, mu: float,
                  params: EngineParams) -> list[ClusterRow]:
    """Per-cluster sums and quadratic forms, all clusters at once via a membership matrix."""
    tol = params.zero_tol
    membership = np.zeros((len(names), len(symbols)))
    membership[labels, np.arange(len(symbols))] = 1.0
    weighted = membership * shares  # (m, k): each cluster's shares, zero elsewhere

    def quadratic(matrix: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(np.einsum("ci,ij,cj->c", weighted, matrix, weighted), 0.0))

    concentration, stress, cluster_sigma = (quadratic(rho), quadratic(stress_rho),
                                            quadratic(covariance))
    gross, net = membership @ np.abs(shares), membership @ shares
    sqrt_bars = float(np.sqrt(params.bars_per_day))
    members: list[list[str]] = [[] for _ in names]
    for symbol, label in zip(symbols, labels.tolist(), strict=True):
        members[label].append(symbol)
    rows = []
    # Python floats from here on (tolist): the same numbers, without a numpy scalar per field.
    for name, member_symbols, gross_c, net_c, concentration_c, stress_c, sigma_c in zip(
            names, members, gross.tolist(), net.tolist(), concentration.tolist(),
            stress.tolist(), cluster_sigma.tolist(), strict=True):
        abs_net = abs(net_c)
        liq = (1.0 - mu) / abs_net if abs_net >= tol else None
        liq_sigma = None
        if liq is not None and sigma_c >= tol:
            liq_sigma = liq / (sigma_c / abs_net * sqrt_bars)
        rows.append(ClusterRow(
            cluster=name, members=sorted(member_symbols), gross=gross_c, net=net_c,
            concentration=concentration_c, stress_concentration=stress_c,
            liq_distance=liq, liq_sigma=liq_sigma,
        ))
    rows.sort(key=lambda row: (-row.concentration, row.cluster))
    return rows
