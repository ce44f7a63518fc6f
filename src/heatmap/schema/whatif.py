"""What-if: ``POST /v1/whatif`` of ``heat process``'s bot API, request and answer."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from heatmap.schema.inputs import require_finite
from heatmap.schema.names import Name, Symbol, require_names
from heatmap.schema.outputs import Alert, Frame

# Bounds that keep a request's numbers meaningful (a typo of a few orders of magnitude
# is refused, not computed): units of a symbol per order, and orders per request.
WHATIF_MAX_ABS_QTY = 1e12
WHATIF_MAX_ORDERS = 200
BookKind = Literal["account", "desk"]


class WhatIfOrder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A proposed order: ``qty`` units of ``symbol`` bought (> 0) or sold (< 0)."""

    symbol: Symbol
    qty: float

    def __post_init__(self) -> None:
        require_finite(qty=self.qty)
        if abs(self.qty) > WHATIF_MAX_ABS_QTY:
            raise ValueError(f"qty must be at most {WHATIF_MAX_ABS_QTY:g} in absolute value")
        require_names(symbol=self.symbol)


class WhatIfRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/whatif``: the frame of a book before and after ``orders``.

    ``account`` alone: that account's frame, the orders booked on it. ``desk`` alone:
    the desk's frame, the orders booked as a new member of the desk with no equity
    of its own (default maintenance rate). Both: the desk's frame, the orders booked
    on that member account. ``timeframe`` (e.g. ``1h``): one of the engine's
    timeframes; the shortest when left out.
    """

    orders: Annotated[list[WhatIfOrder], msgspec.Meta(min_length=1,
                                                      max_length=WHATIF_MAX_ORDERS)]
    account: Name | None = None
    desk: Name | None = None
    timeframe: str | None = None

    def __post_init__(self) -> None:
        if self.account is None and self.desk is None:
            raise ValueError("give an account or a desk")
        require_names(account=self.account, desk=self.desk)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """A number before and after the orders, and ``after - before`` (None when either is)."""

    before: float | None
    after: float | None
    delta: float | None


class PositionChange(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol held before or after the orders (None: not held then)."""

    symbol: str
    qty: Change
    notional: Change
    share: Change
    heat: Change
    heat_share: Change
    risk_contribution: Change
    cluster_before: str | None
    cluster_after: str | None


class ClusterChange(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster (by name) before or after the orders.

    ``crossed_up`` / ``crossed_down``: the concentration lines (the cluster
    concentration alert's warning and critical thresholds, e.g. 0.20 and 0.25) the
    cluster reaches (at or above) only after the orders, or leaves below only after them.
    """

    cluster: str
    members_before: list[str]
    members_after: list[str]
    concentration: Change
    net: Change
    liq_distance: Change
    liq_sigma: Change
    crossed_up: list[float]
    crossed_down: list[float]


class WhatIfDelta(msgspec.Struct, frozen=True, kw_only=True):
    """What the orders change. ``liq_distance`` is a fraction (0.25: a 25 % adverse move),
    ``liq_distance_pct`` the same in percent, ``min_liq_sigma`` the smallest cluster
    distance in sigmas of its 1-day move. ``alert_changes``: the alert transitions the
    book's thresholds give from the before frame to the after frame, each level taken at
    once (no ``min_frames`` debounce); ``alerts_after``: every alert the after frame
    alone fires."""

    gross: Change
    net: Change
    correlated_exposure: Change
    stress_exposure: Change
    effective_bets: Change
    hhi: Change
    max_cluster_concentration: Change
    liq_distance: Change
    liq_distance_pct: Change
    min_liq_sigma: Change
    var99_1d: Change
    positions: list[PositionChange]
    clusters: list[ClusterChange]
    alert_changes: list[Alert]
    alerts_after: list[Alert]


LimitedBy = Literal["line", "order_bound", "no_equity"]


class OrderLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The largest quantity of an order's symbol, in the order's direction, that keeps every
    cluster of the book at or under its desk's critical concentration line on each alerting
    timeframe (the order alone, booked as the what-if books it, on the book as it is).

    ``limited_by``: ``line`` when a line binds: ``timeframe`` and ``cluster`` (its name
    and ``members`` once the limit is booked) say which, ``concentration`` is the
    cluster's there (the line, up to 1e-9); ``order_bound`` when no line binds up to the
    largest order a what-if takes (notional 1000 x equity), which ``max_qty`` then is;
    ``no_equity`` when the book reports no equity (its shares are fractions of its gross
    notional, which the order changes): ``max_qty`` is null. ``max_qty`` is signed like
    the order (units of the symbol), 0 when the symbol's cluster is already at or over
    the line in that direction; an order of 0 has no direction: the limit of a buy.
    Clusters over their line that the order does not change do not limit it.
    """

    symbol: str
    max_qty: float | None
    limited_by: LimitedBy
    line: float  # the desk's critical cluster concentration (fraction of equity)
    timeframe: str | None
    cluster: str | None
    members: list[str]
    concentration: float | None


class WhatIf(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/whatif``'s answer: the book's frame before and after, the deltas, and for
    each order (in request order) the largest size its concentration lines allow."""

    book_kind: BookKind
    book: str
    timeframe: str
    ts: str
    orders: list[WhatIfOrder]
    before: Frame
    after: Frame
    delta: WhatIfDelta
    limits: list[OrderLimit] = msgspec.field(default_factory=list)
