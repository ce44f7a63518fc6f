"""The output messages: heat frames, alerts and correlation matrices.

Every producer encodes them from these Structs (``heat replay`` included), so the
JSON on Kafka, in files and in the API is one format.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Trigger = Literal["bar", "position", "equity"]
Quadrant = Literal["core", "speculative", "hedge", "unsure"]


class PositionRow(msgspec.Struct, kw_only=True):
    """One held symbol in a frame. Shares are in units of equity; ages in seconds."""

    symbol: str
    strategy: str | None
    qty: float
    price: float
    notional: float
    share: float
    heat: float
    heat_share: float | None
    risk_contribution: float
    cluster: str
    quadrant: Quadrant
    conviction: float | None
    stale: bool
    price_age_s: float


class ClusterRow(msgspec.Struct, kw_only=True):
    """One correlated cluster of held symbols (named after its largest member)."""

    cluster: str
    members: list[str]
    gross: float
    net: float
    concentration: float
    stress_concentration: float
    liq_distance: float | None
    liq_sigma: float | None


class Frame(msgspec.Struct, kw_only=True):
    """A heat frame (``heat-frames``, key = account, or desk for desk frames)."""

    ts: str
    trigger: Trigger
    account: str | None
    desk: str | None
    timeframe: str
    equity: float
    gross: float
    net: float
    correlated_exposure: float
    stress_exposure: float
    effective_bets: float | None
    hhi: float | None
    max_cluster_concentration: float | None
    liq_distance: float | None
    var99_1d: float
    absorption_ratio: float | None
    regime_break: float | None
    stale: bool
    max_price_age_s: float | None
    warming_up: bool
    params: dict[str, object]
    params_hash: str
    positions: list[PositionRow]
    clusters: list[ClusterRow]


AlertKind = Literal["cluster_concentration", "liquidation_proximity", "stale_heat",
                    "regime_break"]
Severity = Literal["warning", "critical"]
AlertState = Literal["firing", "resolved"]


class Alert(msgspec.Struct, kw_only=True):
    """An alert transition (``alerts``).

    ``threshold`` is the level that fired (reported again on resolve);
    ``warning_threshold`` and ``critical_threshold`` are the levels of the kind
    configured for the book's desk when the transition happened (null for a level the
    kind does not have, and in alerts written before they were carried).
    """

    ts: str
    account: str | None
    desk: str | None
    timeframe: str
    kind: AlertKind
    subject: str
    severity: Severity
    state: AlertState
    value: float | None
    threshold: float
    message: str
    warning_threshold: float | None = None
    critical_threshold: float | None = None


class AlertLevels(msgspec.Struct, kw_only=True):
    """The alert thresholds in effect for a desk (``alert-levels``, key = desk).

    Published at every bar close: one for the defaults (``desk`` null: the books of
    desks the alert configuration does not name, and accounts without a desk) and one
    per desk it names, each resolved (the desk's table over the defaults). Fields as
    the configuration's: concentration levels as fractions of equity, liquidation
    levels in standard deviations of a cluster's 1-day move, ``*_s`` in seconds;
    ``timeframes``: the timeframes that alert (null: every one).
    """

    ts: str
    desk: str | None
    cluster_concentration_warning: float
    cluster_concentration_critical: float
    liquidation_sigma_warning: float
    liquidation_sigma_critical: float
    stale_heat_after_s: float
    regime_break: float
    min_frames: int
    resolve_ratio: float
    resolve_after_s: float
    timeframes: list[str] | None


class CorrelationSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The correlation matrix of one timeframe at one bar close.

    ``rho`` is the upper triangle without the diagonal, row by row:
    ``k (k - 1) / 2`` values for ``k`` symbols.
    """

    ts_ms: int
    timeframe: str
    params_hash: str
    symbols: list[str]
    rho: list[float]


class Correlation(msgspec.Struct, kw_only=True):
    """A bar-close correlation matrix (``correlations``, key = timeframe).

    ``rho`` is the upper triangle without the diagonal, row by row: ``k (k - 1) / 2``
    values for ``k`` symbols; ``ts`` is the bar close (RFC 3339 UTC).
    """

    ts: str
    timeframe: str
    params_hash: str
    symbols: list[str]
    rho: list[float]
