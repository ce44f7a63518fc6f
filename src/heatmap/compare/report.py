"""What ``heat compare`` reports, as msgspec structs (the JSON output is their encoding).

Amounts are in the settlement currency; ``ts`` fields are RFC 3339 UTC; depths,
returns and concentrations are fractions (0.25 = 25 %, of equity for
concentrations).
"""

from __future__ import annotations

import msgspec


class ClusterLoss(msgspec.Struct, kw_only=True):
    """What a cluster's members lost over a stretch (negative: they gained)."""

    cluster: str
    members: list[str]
    loss: float


class HeatState(msgspec.Struct, kw_only=True):
    """The book's hottest bar frame in a window: its largest cluster and what it held."""

    ts: str
    max_cluster_concentration: float | None
    effective_bets: float | None
    top_cluster: str | None
    members: list[str]


class Liquidation(msgspec.Struct, kw_only=True):
    """The first bar close where equity was at or below maintenance margin."""

    ts: str
    equity: float
    maintenance_margin: float
    loss_by_cluster: list[ClusterLoss]  # since the start, largest loss first
    worst_cluster: str | None


class Drawdown(msgspec.Struct, kw_only=True):
    """One drawdown episode (peak to trough), with the heat that preceded it."""

    rank: int
    peak_ts: str
    trough_ts: str
    recovery_ts: str | None
    peak_equity: float
    trough_equity: float
    depth: float
    loss_by_cluster: list[ClusterLoss]  # peak to trough, largest loss first
    heat_before: HeatState | None  # the hour before the peak


class ScenarioResult(msgspec.Struct, kw_only=True):
    """One book under one leverage and one rule (or none)."""

    book: str
    leverage: str  # "asis" or e.g. "5x"
    rule: str  # "none" or e.g. "cap-cluster=0.25"
    start_ts: str
    end_ts: str
    equity_start: float
    equity_end: float
    total_return: float
    max_drawdown: float
    liquidation: Liquidation | None
    near_misses: int  # bars with a cluster under 1 sigma from liquidation, not liquidated
    critical_concentration_hours: float  # a critical cluster_concentration alert firing
    worst_cluster: str | None  # the cluster that lost most (liquidation, else worst drawdown)
    median_effective_bets: float | None
    positions_scaled: int  # changes the rule scaled down (0 without a rule)
    drawdowns: list[Drawdown]


class CompareParams(msgspec.Struct, kw_only=True):
    """The settings a comparison ran with."""

    bar_interval_s: int
    timeframes: list[str]
    heat_timeframe: str
    leverages: list[str]
    rules: list[str]
    params_hash: str  # the engine parameters of the heat timeframe
    critical_concentration: float
    near_miss_sigma: float


class CompareReport(msgspec.Struct, kw_only=True):
    params: CompareParams
    scenarios: list[ScenarioResult]
