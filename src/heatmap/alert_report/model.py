"""What ``heat alerts report`` reports, as msgspec structs (the JSON output is their encoding).

Times are RFC 3339 UTC; durations are in hours (``_h``); shares are fractions
(0.1 = 10 %).
"""

from __future__ import annotations

import msgspec


class KindStats(msgspec.Struct, kw_only=True):
    """The alerts of one kind and timeframe (``"all"`` for every one) over every book.

    ``per_book_day_median`` / ``per_book_day_max``: firings of one book on one UTC day,
    over every (book, day) of the period (days without a firing count as 0).
    ``episode_h_*``: firing to resolve, hours, over the episodes that resolved.
    ``refire_share``: the share of firings made within ``refire_window_h`` after a
    resolve of the same book, timeframe and kind (None without firings).
    """

    kind: str
    timeframe: str
    firings: int
    critical_firings: int
    per_book_day_median: float
    per_book_day_max: int
    episodes: int
    open_episodes: int  # fired and not resolved by the end of the input
    episode_h_p50: float | None
    episode_h_p90: float | None
    episode_h_p99: float | None
    episode_h_max: float | None
    refires: int
    refire_share: float | None


class BookStats(msgspec.Struct, kw_only=True):
    """One book (an account, or ``desk NAME``): its firings over its days."""

    book: str
    days: int  # UTC days from its first alert to the end of the input
    firings: int
    critical_firings: int
    per_day_mean: float
    per_day_max: int
    busiest_day: str | None  # YYYY-MM-DD of its most firings


class Lead(msgspec.Struct, kw_only=True):
    """An event ``heat compare`` finds for a book at a leverage, and the warning before it.

    ``lead_h``: hours from the start of the book's earliest critical alert that was
    firing at some moment of the look-back window before the event, to the event
    (None: none was; see :mod:`heatmap.alert_report.lead`).
    ``recorded``: from the input's alerts (the book at its recorded equity);
    ``at_leverage``: from alerts on the book's own frames at that leverage, as
    ``heat compare`` makes them (its heat timeframe).
    """

    book: str
    leverage: str
    event: str  # "liquidation" or "near_miss"
    ts: str
    recorded_alert_ts: str | None
    recorded_lead_h: float | None
    at_leverage_alert_ts: str | None
    at_leverage_lead_h: float | None


class Targets(msgspec.Struct, kw_only=True):
    """The targets the report judges; each None when there is nothing to judge."""

    median_per_book_day_at_most_3: bool | None
    no_book_day_above_6: bool | None
    refire_share_at_most_10pct: bool | None
    # Every liquidation found had a critical alert at least an hour before: judged with
    # the recorded book's alerts, and with the alerts of the book at that leverage.
    liquidations_warned_1h_recorded: bool | None
    liquidations_warned_1h_at_leverage: bool | None


class ReportParams(msgspec.Struct, kw_only=True):
    start: str | None  # first alert
    end: str | None  # last alert
    refire_window_h: float
    lookback_h: float
    leverages: list[str]
    heat_timeframe: str | None  # of the at-leverage alerts (None without the compare run)
    lead_kinds: list[str]  # alert kinds whose critical firings count as a warning


class AlertsReport(msgspec.Struct, kw_only=True):
    params: ReportParams
    kinds: list[KindStats]  # per kind and timeframe, then the "all" row
    books: list[BookStats]
    leads: list[Lead]
    targets: Targets
