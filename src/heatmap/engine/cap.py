"""Concentration caps: the largest change of one position that keeps its cluster under a line.

Clusters are formed as the engine forms them (average linkage on the correlation
distance, over the symbols held with the change); a change of one symbol's share
by ``f x d`` moves only that symbol's cluster, whose concentration
``K_C = sqrt(s_C' rho_CC s_C)`` then follows ``K_C(f)^2 = A + 2 B f + D f^2`` with
``a`` the cluster's shares before, ``A = a' rho a``, ``B = d (rho a)_j``, ``D = d^2``:
the largest ``f`` that keeps ``K_C`` at or under a cap is a root of a quadratic.
``heat compare``'s cap rule scales trades with it and the what-if's order limits
(:mod:`heatmap.engine.limits`) size orders with it.
"""

from __future__ import annotations

import math

import numpy as np

from heatmap.engine.clusters import cluster_labels

# Room for rounding: a cluster exactly at the cap may read a few ulps above it.
CAP_TOLERANCE = 1e-9


def cluster_concentrations(shares: np.ndarray, rho: np.ndarray, rho_min: float) -> np.ndarray:
    """Concentration of every cluster of the held symbols (``shares != 0``), shape (m,).

    Parameters
    ----------
    shares : ndarray, shape (k,)
        Signed shares of equity; zero entries are not held and join no cluster.
    rho : ndarray, shape (k, k)
    """
    held = np.flatnonzero(shares)
    if held.size == 0:
        return np.empty(0)
    weights, matrix = shares[held], rho[np.ix_(held, held)]
    labels = cluster_labels(matrix, rho_min)
    result = np.empty(int(labels.max()) + 1)
    for label in range(result.size):
        members = labels == label
        part = weights[members]
        result[label] = math.sqrt(max(float(part @ matrix[np.ix_(members, members)] @ part),
                                      0.0))
    return result


def max_concentration(shares: np.ndarray, rho: np.ndarray, rho_min: float) -> float:
    """The largest cluster concentration of the book (0 when it holds nothing)."""
    return float(cluster_concentrations(shares, rho, rho_min).max(initial=0.0))


def scaled(current: float, target: float, fraction: float) -> float:
    """The position after a change ``current -> target`` scaled by ``fraction``; exactly
    ``target`` when the whole change goes through (so a close is a close)."""
    return target if fraction == 1.0 else current + fraction * (target - current)


def capped_fraction(shares: np.ndarray, index: int, target: float, rho: np.ndarray,
                    rho_min: float, cap: float) -> float:
    """The fraction ``f`` of the change ``shares[index] -> target`` the rule lets through.

    Parameters
    ----------
    shares : ndarray, shape (k,)
        Shares of equity before the change (0 for symbols not held, including
        ``index`` when it is opened).
    index : int
        The symbol that changes; ``target`` its share after the full change.
    rho : ndarray, shape (k, k)
        Correlations of the ``k`` symbols.

    Returns
    -------
    float in [0, 1]
        The share after the change is ``shares[index] + f * (target - shares[index])``.
    """
    change = target - float(shares[index])
    if change == 0.0:
        return 1.0
    after = shares.copy()
    after[index] = target
    before_max = max_concentration(shares, rho, rho_min)
    limit = max(cap, before_max) + CAP_TOLERANCE
    if max_concentration(after, rho, rho_min) <= cap + CAP_TOLERANCE:
        return 1.0
    fraction = _cluster_fraction(shares, index, change, rho, rho_min, cap)
    if fraction == 0.0:
        return 0.0
    # The clusters of the symbols held with the change may differ from those formed
    # without it (a closing change, or a new symbol linking two clusters): check the
    # whole book as it would be, and make no trade rather than one the rule forbids.
    after[index] = scaled(float(shares[index]), target, fraction)
    if max_concentration(after, rho, rho_min) <= limit:
        return fraction
    return 0.0


def _cluster_fraction(shares: np.ndarray, index: int, change: float, rho: np.ndarray,
                      rho_min: float, cap: float) -> float:
    """Largest ``f`` in [0, 1] keeping the changed symbol's cluster at or under ``cap``,
    with the clusters of the symbols held during the change; else the ``f`` that lowers
    that cluster's concentration most."""
    held = np.flatnonzero(shares)
    if index not in held:
        held = np.sort(np.append(held, index))
    matrix = rho[np.ix_(held, held)]
    labels = cluster_labels(matrix, rho_min)
    position = int(np.flatnonzero(held == index)[0])
    members = held[labels == labels[position]]
    cluster_shares = np.zeros_like(shares)
    cluster_shares[members] = shares[members]
    rho_a = rho @ cluster_shares
    a_term = float(cluster_shares @ rho_a)
    b_term = change * float(rho_a[index])
    d_term = change * change
    if not d_term > 0.0:
        return 0.0  # a change too small to square: nothing worth trading
    discriminant = b_term * b_term - d_term * (a_term - cap * cap)
    if discriminant >= 0.0:
        upper = (-b_term + math.sqrt(discriminant)) / d_term
        lower = (-b_term - math.sqrt(discriminant)) / d_term
        if upper >= 0.0 and lower <= 1.0:
            return min(upper, 1.0)
    if float(shares[index]) == 0.0:
        return 0.0  # never open a position in a cluster that is over the cap either way
    return min(max(-b_term / d_term, 0.0), 1.0)
