"""The report from alert transitions and, optionally, the events of a compare run."""

from __future__ import annotations

from collections.abc import Sequence

from heatmap.alert_report.events import CompareEvents, Event, scenario_key
from heatmap.alert_report.lead import LEAD_KINDS, Warning, Warnings
from heatmap.alert_report.model import AlertsReport, Lead, ReportParams, Targets
from heatmap.alert_report.noise import noise
from heatmap.schema import Alert, ms_to_rfc3339, rfc3339_to_ms

# The targets: firings per book and day (median, most), re-fire share, warning lead.
MEDIAN_PER_BOOK_DAY = 3.0
MAX_PER_BOOK_DAY = 6
MAX_REFIRE_SHARE = 0.10
MIN_LEAD_H = 1.0


def build_report(alerts: Sequence[Alert], found: CompareEvents | None, *,
                 refire_window_h: float = 1.0, lookback_h: float = 24.0,
                 leverages: Sequence[str] = (), heat_timeframe: str | None = None
                 ) -> AlertsReport:
    """Noise statistics of ``alerts`` and, with ``found``, the lead of each event.

    Parameters
    ----------
    alerts : sequence of Alert
        The recorded books' alert transitions (``heat replay --alerts``).
    found : CompareEvents or None
        Liquidations, near misses and at-leverage alerts of a compare run.
    refire_window_h, lookback_h : float
        Hours: a firing this soon after a resolve is a re-fire; a warning is looked for
        this far before an event.
    """
    kinds, books = noise(alerts, refire_window_h)
    in_order = sorted(alerts, key=lambda a: rfc3339_to_ms(a.ts))  # stable within a moment
    recorded = Warnings.of_accounts(in_order, lookback_h)
    at_leverage = Warnings(found.alerts if found else [], lookback_h)
    leads = [_lead(event, recorded, at_leverage) for event in (found.events if found else [])]
    total = kinds[-1]
    liquidations = [lead for lead in leads if lead.event == "liquidation"]
    times = sorted(a.ts for a in alerts)
    return AlertsReport(
        params=ReportParams(start=times[0] if times else None,
                            end=times[-1] if times else None,
                            refire_window_h=refire_window_h, lookback_h=lookback_h,
                            leverages=list(leverages), heat_timeframe=heat_timeframe,
                            lead_kinds=list(LEAD_KINDS)),
        kinds=kinds, books=books, leads=leads,
        targets=Targets(
            median_per_book_day_at_most_3=(total.per_book_day_median <= MEDIAN_PER_BOOK_DAY
                                           if books else None),
            no_book_day_above_6=total.per_book_day_max <= MAX_PER_BOOK_DAY if books else None,
            refire_share_at_most_10pct=(None if total.refire_share is None
                                        else total.refire_share <= MAX_REFIRE_SHARE),
            liquidations_warned_1h_recorded=_warned(
                [lead.recorded_lead_h for lead in liquidations]),
            liquidations_warned_1h_at_leverage=_warned(
                [lead.at_leverage_lead_h for lead in liquidations])))


def _warned(leads_h: list[float | None]) -> bool | None:
    if not leads_h:
        return None
    return all(lead is not None and lead >= MIN_LEAD_H for lead in leads_h)


def _lead(event: Event, recorded: Warnings, at_leverage: Warnings) -> Lead:
    mine = recorded.before(event.book, event.ts_ms)
    theirs = at_leverage.before(scenario_key(event.book, event.leverage), event.ts_ms)
    return Lead(book=event.book, leverage=event.leverage, event=event.kind,
                ts=ms_to_rfc3339(event.ts_ms),
                recorded_alert_ts=_ts(mine), recorded_lead_h=mine.lead_h if mine else None,
                at_leverage_alert_ts=_ts(theirs),
                at_leverage_lead_h=theirs.lead_h if theirs else None)


def _ts(found: Warning | None) -> str | None:
    return None if found is None else ms_to_rfc3339(found.ts_ms)

