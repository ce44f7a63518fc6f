"""Order limits: the largest change of one position that keeps its cluster under a line.

For an order of symbol ``j`` in direction ``sign`` on a book with shares ``s``
(fractions of equity, shape (k,)), the limit on one timeframe is the largest
``x >= 0`` with every cluster of ``s + sign x e_j`` at or under ``line`` that the
change moves, found by :func:`heatmap.engine.cap.capped_fraction` (the root of a
quadratic, as ``heat compare``'s cap rule sizes trades) over a change of ``bound``;
the limit of the order is the smallest over the timeframes, and that timeframe
binds. The equity does not change with the order (it is traded at the last price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from heatmap.engine.cap import capped_fraction
from heatmap.engine.clusters import cluster_labels


@dataclass(frozen=True)
class ShareLimit:
    """The largest share change allowed and what binds it.

    Attributes
    ----------
    share : float
        Largest ``x`` (fraction of equity, >= 0) the order's share may move in its
        direction; ``bound`` when no line binds.
    timeframe : str or None
        The timeframe whose line binds (None: the bound does).
    members : ndarray of int
        Indices into the shares of the binding cluster, held with the order (empty
        when the bound binds).
    """

    share: float
    timeframe: str | None
    members: np.ndarray


def share_limit(shares: np.ndarray, index: int, direction: float,
                correlations: Mapping[str, np.ndarray], rho_min: float, line: float,
                bound: float) -> ShareLimit:
    """The largest move of ``shares[index]`` in ``direction`` keeping its cluster under ``line``.

    Parameters
    ----------
    shares : ndarray, shape (k,)
        Signed shares of equity before the order (0 where not held, ``index`` included
        when the order opens it).
    index : int
        The order's symbol.
    direction : float
        +1 (buy) or -1 (sell).
    correlations : mapping of str to ndarray, shape (k, k)
        Per timeframe (in the order ties are broken), the correlations of the ``k``
        symbols.
    rho_min : float
        The correlation that joins symbols in a cluster.
    line, bound : float
        The concentration line, and the largest move looked at (fractions of equity).
    """
    target = float(shares[index]) + direction * bound
    best = ShareLimit(bound, None, np.empty(0, dtype=np.int64))
    for timeframe, rho in correlations.items():
        allowed = capped_fraction(shares, index, target, rho, rho_min, line) * bound
        if allowed < best.share:
            best = ShareLimit(allowed, timeframe, _cluster_of(shares, index, rho, rho_min))
    return best


def _cluster_of(shares: np.ndarray, index: int, rho: np.ndarray, rho_min: float
                ) -> np.ndarray:
    """Indices of the cluster of ``index``, formed over the symbols held with it."""
    held = np.flatnonzero(shares)
    if index not in held:
        held = np.sort(np.append(held, index))
    labels = cluster_labels(rho[np.ix_(held, held)], rho_min)
    return held[labels == labels[int(np.flatnonzero(held == index)[0])]]
