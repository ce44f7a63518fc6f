"""The heat rule: scale a position change down so its cluster stays under a concentration cap.

"Reduce position size on correlated trades": before a change of one symbol's
position is made, the book's clusters are formed as the engine forms them
(average linkage on the correlation distance, over the symbols held with the
change) and the change is scaled by the largest ``f`` in [0, 1] for which the
concentration ``K_C = sqrt(s_C' rho_CC s_C)`` of the changed symbol's cluster
stays at or under the cap. Only that cluster depends on ``f``:
``K_C(f)^2 = A + 2 B f + D f^2`` with ``a`` the cluster's shares before,
``A = a' rho a``, ``B = d (rho a)_j``, ``D = d^2`` for a share change ``d`` of
symbol ``j``, so ``f`` is a root of a quadratic. When no ``f`` keeps the
cluster under the cap (prices moved it above already), the change is scaled
to where it lowers the cluster's concentration most (``-B / D``, kept in
[0, 1]: a trade that only adds to an over-cap cluster is not made). A change
never raises the book's largest cluster concentration above
``max(cap, what it was before)``; starting under the cap and without price
moves, no cluster ever exceeds it.
"""

from __future__ import annotations

import math

import msgspec

# The root-finding lives in the engine, where the what-if's order limits use it too.
from heatmap.engine.cap import (
    CAP_TOLERANCE,
    capped_fraction,
    cluster_concentrations,
    max_concentration,
    scaled,
)

__all__ = ["CAP_TOLERANCE", "RULE_PREFIX", "ClusterCap", "capped_fraction",
           "cluster_concentrations", "max_concentration", "parse_rule", "scaled"]

RULE_PREFIX = "cap-cluster="


class ClusterCap(msgspec.Struct, frozen=True):
    """No cluster's concentration above ``cap`` (a fraction of equity) after a change."""

    cap: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cap) and self.cap > 0.0):
            raise ValueError(f"the cluster cap must be a positive number, not {self.cap}")

    @property
    def label(self) -> str:
        return f"{RULE_PREFIX}{self.cap:g}"


def parse_rule(text: str) -> ClusterCap:
    """A rule from its command-line form, ``cap-cluster=0.25``."""
    name, _, value = text.strip().partition("=")
    if f"{name}=" != RULE_PREFIX:
        raise ValueError(f"unknown rule {text!r} (expected e.g. {RULE_PREFIX}0.25)")
    try:
        cap = float(value)
    except ValueError as error:
        raise ValueError(f"not a cap: {value!r} (expected e.g. {RULE_PREFIX}0.25)") from error
    return ClusterCap(cap)
