"""Cluster identity: a cluster keeps its name from frame to frame while its exposure
carries over, so an alert on it is not resolved and fired again under another name
when its largest member changes.

This frame's clusters are matched to the previous frame's clusters of the same book
and timeframe by the absolute exposure they share: for a previous cluster ``P`` and a
new cluster ``C``, ``shared = sum over common symbols of min(|s_P|, |s_C|)`` (shares
of equity, as they were in ``P``'s frame and are now). A pair may match when
``shared / max(gross_P, gross_C) >= KEEP_MIN_OVERLAP``: at least half of the larger
of the two carried over. Pairs are matched greedily, the most shared exposure first,
each cluster at most once, and only while the cluster still holds the symbol its
name comes from; a matched cluster keeps the previous name. A cluster left unmatched
is new and is named after its largest member (ties alphabetical), as on its first
frame. Every name is thus a member's symbol, and names within a frame are distinct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from heatmap.schema import Frame

# The share of the larger cluster's gross exposure that must carry over for a cluster
# to keep its name: a split keeps it on a part holding at least half of it, a merge
# on the larger part when that was at least half of the result.
KEEP_MIN_OVERLAP = 0.5

# A book's identity per timeframe: (account, desk, timeframe), exactly one of
# account and desk set (a desk frame's account is null).
IdentityKey = tuple[str | None, str | None, str]


@dataclass(frozen=True)
class KnownCluster:
    """A cluster as the previous frame left it.

    Attributes
    ----------
    name : str
    exposure : Mapping of str to float
        ``|share|`` (fraction of equity) per member symbol in that frame.
    """

    name: str
    exposure: Mapping[str, float]


def stable_names(labels: np.ndarray, symbols: Sequence[str], shares: np.ndarray,
                 previous: Sequence[KnownCluster],
                 min_overlap: float = KEEP_MIN_OVERLAP) -> list[str]:
    """The name of each cluster label, keeping the names of ``previous`` clusters.

    Parameters
    ----------
    labels : ndarray of int, shape (k,)
        Cluster label per symbol, labels 0..m-1.
    symbols : sequence of str, length k
    shares : ndarray, shape (k,)
        Signed shares of equity.
    previous : sequence of KnownCluster
        The book's clusters of the same timeframe in its previous frame; empty
        names every cluster after its largest member.

    Returns
    -------
    list of str, length m
        Distinct names, by label.
    """
    abs_shares = np.abs(shares).tolist()
    count = int(labels.max()) + 1 if len(labels) else 0
    members: list[dict[str, float]] = [{} for _ in range(count)]
    for label, symbol, share in zip(labels.tolist(), symbols, abs_shares, strict=True):
        members[label][symbol] = share
    names: list[str | None] = [None] * count
    taken: set[str] = set()
    for _, name, label in _matches(members, previous, min_overlap):
        if names[label] is None and name not in taken:
            names[label] = name
            taken.add(name)
    # A new cluster takes its largest member's name. No other cluster holds that
    # symbol, and a kept name is a member of its cluster, so names never collide.
    for label in range(count):
        if names[label] is None:
            names[label] = min(members[label].items(), key=lambda item: (-item[1], item[0]))[0]
    return [name for name in names if name is not None]


def _matches(members: list[dict[str, float]], previous: Sequence[KnownCluster],
             min_overlap: float) -> list[tuple[float, str, int]]:
    """Candidate pairs ``(-shared, previous name, label)``, best first: equal shared
    exposure falls back to the name, then the label (labels come in order of first
    appearance over the book's sorted symbols), so the outcome is deterministic."""
    # A name stays only with its namesake: a cluster called after a coin it no longer
    # holds would mislead more than a new name does. A symbol is in one cluster, so each
    # previous cluster has at most one candidate: the cluster holding its namesake.
    label_of = {symbol: label for label, now in enumerate(members) for symbol in now}
    candidates = []
    for known in previous:
        label = label_of.get(known.name)
        if label is None:
            continue
        now = members[label]
        shared = sum(min(share, known.exposure[symbol])
                     for symbol, share in now.items() if symbol in known.exposure)
        larger = max(sum(known.exposure.values()), sum(now.values()))
        if shared > 0.0 and shared >= min_overlap * larger:
            candidates.append((-shared, known.name, label))
    candidates.sort()
    return candidates


def known_clusters(frame: Frame) -> tuple[KnownCluster, ...]:
    """The clusters of ``frame`` as the next frame of its book and timeframe matches them."""
    shares = {row.symbol: abs(row.share) for row in frame.positions}
    return tuple(KnownCluster(cluster.cluster, {symbol: shares[symbol]
                                                for symbol in cluster.members})
                 for cluster in frame.clusters)


def identity_key(frame: Frame) -> IdentityKey:
    """The identity a frame continues: its account (whatever its desk) or its desk."""
    if frame.account is not None:
        return (frame.account, None, frame.timeframe)
    return (None, frame.desk, frame.timeframe)


class ClusterIdentities:
    """The clusters each book and timeframe had in its latest emitted frame.

    Only frames that were emitted are remembered (:meth:`remember`); frames made to
    be looked at (what-if, a book's frame on request) read without changing it.
    """

    def __init__(self) -> None:
        self._known: dict[IdentityKey, tuple[KnownCluster, ...]] = {}

    def previous(self, key: IdentityKey) -> tuple[KnownCluster, ...]:
        return self._known.get(key, ())

    def remember(self, frame: Frame) -> None:
        self._known[identity_key(frame)] = known_clusters(frame)

    def copy(self) -> ClusterIdentities:
        """An independent copy (the values are immutable: a shallow copy suffices)."""
        copied = ClusterIdentities()
        copied._known = dict(self._known)
        return copied

    def export_state(self) -> dict[IdentityKey, tuple[KnownCluster, ...]]:
        """Every book's known clusters, in insertion order."""
        return dict(self._known)

    def restore_state(self, state: Mapping[IdentityKey, Sequence[KnownCluster]]) -> None:
        """Take over ``state``; only a fresh instance can (ValueError)."""
        if self._known:
            raise ValueError("only fresh cluster identities take over an exported state")
        self._known = {key: tuple(clusters) for key, clusters in state.items()}
