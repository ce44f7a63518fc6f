"""Correlated clusters of held symbols: average linkage on the correlation distance."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.cluster import _hierarchy

# The method code linkage passes to the nearest-neighbour chain for "average"
# (hierarchy._LINKAGE_METHODS); the tests assert the chain gives linkage's tree.
_AVERAGE: Literal[2] = 2


@lru_cache(maxsize=64)  # a bar's books come in a few sizes; bounded all the same
def upper_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pairs ``i < j`` of ``k`` symbols, row by row, each of
    shape (k (k - 1) / 2,): the order of a condensed distance matrix.

    Shared read-only arrays: building them costs more than a small book's clustering
    or regime break, and a book's size takes few values.
    """
    rows, cols = np.triu_indices(k, 1)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def cluster_labels(rho: np.ndarray, rho_min: float) -> np.ndarray:
    """Cluster label per symbol, shape (k,), labels 0..m-1 in order of first appearance.

    Distance ``d_ij = sqrt((1 - rho_ij) / 2)``, average linkage, cut at
    ``d* = sqrt((1 - rho_min) / 2)``: symbols end up together when their
    average-linkage correlation is at least ``rho_min``.
    """
    k = rho.shape[0]
    if k < 2:
        return np.zeros(k, dtype=np.int64)
    # Condensed (the pairs i < j) straight from rho: the k x k matrix was only ever
    # read back as its upper triangle.
    distance = np.sqrt(np.clip((1.0 - rho[upper_pairs(k)]) / 2.0, 0.0, 1.0))
    return _cut(average_linkage(distance, k), k, float(np.sqrt((1.0 - rho_min) / 2.0)))


def average_linkage(distance: np.ndarray, k: int) -> np.ndarray:
    """``scipy.cluster.hierarchy.linkage(distance, "average")``, shape (k - 1, 4), from
    the algorithm it runs (the nearest-neighbour chain) without its argument checks and
    array-API dispatch, which cost three times the clustering of a book's few symbols.
    ``distance``: condensed, finite, float64, shape (k (k - 1) / 2,); finite by
    construction here (clipped). Tests assert equality with ``linkage``."""
    return np.asarray(_hierarchy.nn_chain(distance, k, _AVERAGE))


def _cut(tree: np.ndarray, k: int, height: float) -> np.ndarray:
    """Flat clusters of ``tree`` at ``height``: what ``fcluster(criterion="distance")`` gives.

    Average linkage is monotonic, so the flat clusters are the components
    joined by merges no higher than ``height``. Reading them off the linkage
    matrix directly avoids fcluster's per-call validation, which costs more
    than the clustering itself on a book of a few symbols (tests assert
    equality with fcluster).
    """
    # Row ``step`` joins two nodes into node ``k + step``; a kept merge points both at it.
    parent = list(range(2 * k - 1))
    for step, (left, right, merge_height, _) in enumerate(tree.tolist()):
        if merge_height <= height:
            parent[int(left)] = parent[int(right)] = k + step
    # A node's parent comes after it, so walking down from the last node each parent
    # already points at its top: one pass leaves every node pointing at its top.
    for node in range(2 * k - 2, -1, -1):
        parent[node] = parent[parent[node]]
    order: dict[int, int] = {}
    return np.array([order.setdefault(top, len(order)) for top in parent[:k]],
                    dtype=np.int64)


def cluster_names(labels: np.ndarray, symbols: list[str], shares: np.ndarray) -> list[str]:
    """Name of each cluster label: its member with the largest ``|share|`` (ties alphabetical)."""
    names: dict[int, tuple[float, str]] = {}
    for label, symbol, share in zip(labels.tolist(), symbols, np.abs(shares).tolist(),
                                    strict=True):
        best = names.get(label)
        if best is None or (-share, symbol) < best:
            names[label] = (-share, symbol)
    return [names[label][1] for label in range(len(names))]
