"""Correlated clusters of held symbols: average linkage on the correlation distance."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


def cluster_labels(rho: np.ndarray, rho_min: float) -> np.ndarray:
    """Cluster label per symbol, shape (k,), labels 0..m-1 in order of first appearance.

    Distance ``d_ij = sqrt((1 - rho_ij) / 2)``, average linkage, cut at
    ``d* = sqrt((1 - rho_min) / 2)``: symbols end up together when their
    average-linkage correlation is at least ``rho_min``.
    """
    k = rho.shape[0]
    if k < 2:
        return np.zeros(k, dtype=np.int64)
    distance = np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, 1.0))
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    raw = fcluster(tree, t=np.sqrt((1.0 - rho_min) / 2.0), criterion="distance")
    _, labels = np.unique(raw, return_inverse=True)
    return labels


def cluster_names(labels: np.ndarray, symbols: list[str], shares: np.ndarray) -> list[str]:
    """Name of each cluster label: its member with the largest ``|share|`` (ties alphabetical)."""
    names: dict[int, tuple[float, str]] = {}
    for label, symbol, share in zip(labels.tolist(), symbols, np.abs(shares).tolist(),
                                    strict=True):
        best = names.get(label)
        if best is None or (-share, symbol) < best:
            names[label] = (-share, symbol)
    return [names[label][1] for label in range(len(names))]
