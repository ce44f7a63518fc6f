"""The alerts report as terminal tables (rich): noise per kind, per book, leads, targets."""

from __future__ import annotations

from rich.table import Table

from heatmap.alert_report.model import AlertsReport


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _moment(ts: str | None) -> str:
    """``2018-01-16T22:25:00.000Z`` as ``2018-01-16 22:25``."""
    return "-" if ts is None else ts[:16].replace("T", " ")


def kind_table(report: AlertsReport) -> Table:
    """Firings, episode lengths and re-fires per kind and timeframe."""
    window = report.params.refire_window_h
    table = Table(title=f"Alert noise, {_moment(report.params.start)} to "
                        f"{_moment(report.params.end)}",
                  caption="median/day, max/day: firings of one book on one UTC day, over "
                          "every book and day; "
                          "episode: firing to resolve, hours; re-fire: firings within "
                          f"{window:g} h after a resolve of the same book, timeframe, kind")
    for name in ("kind", "timeframe"):
        table.add_column(name, no_wrap=True)
    for name in ("firings", "critical", "median/day", "max/day", "episodes", "open",
                 "p50 h", "p90 h", "p99 h", "max h", "re-fire"):
        table.add_column(name, justify="right")
    for row in report.kinds:
        table.add_row(row.kind, row.timeframe, str(row.firings), str(row.critical_firings),
                      _number(row.per_book_day_median), str(row.per_book_day_max),
                      str(row.episodes), str(row.open_episodes), _number(row.episode_h_p50),
                      _number(row.episode_h_p90), _number(row.episode_h_p99),
                      _number(row.episode_h_max), _share(row.refire_share))
    return table


def book_table(report: AlertsReport) -> Table:
    table = Table(title="Firings per book")
    table.add_column("book", no_wrap=True)
    for name in ("days", "firings", "critical", "per day", "most in a day"):
        table.add_column(name, justify="right")
    table.add_column("on", no_wrap=True)
    for row in report.books:
        table.add_row(row.book, str(row.days), str(row.firings), str(row.critical_firings),
                      _number(row.per_day_mean), str(row.per_day_max), row.busiest_day or "-")
    return table


def lead_table(report: AlertsReport) -> Table:
    params = report.params
    kinds = ", ".join(params.lead_kinds)
    table = Table(title="Warning before each liquidation and near miss (heat compare)",
                  caption=f"lead: hours from the start of the earliest critical alert "
                          f"({kinds}) firing in the {params.lookback_h:g} h before the event; "
                          "recorded: the book's alerts at its recorded equity; at leverage: "
                          "on the book's "
                          f"{params.heat_timeframe or '-'} frames at that leverage")
    for name in ("book", "leverage", "event", "at"):
        table.add_column(name, no_wrap=True)
    table.add_column("lead h (recorded)", justify="right")
    table.add_column("lead h (at leverage)", justify="right")
    for row in report.leads:
        table.add_row(row.book, row.leverage, row.event.replace("_", " "), _moment(row.ts),
                      _number(row.recorded_lead_h), _number(row.at_leverage_lead_h))
    return table


def target_lines(report: AlertsReport) -> list[str]:
    """One line per target: met, not met, or nothing to judge."""
    targets = report.targets
    total = report.kinds[-1]
    said = {True: "met", False: "NOT met", None: "nothing to judge"}
    return [
        f"median firings per book-day <= 3: {said[targets.median_per_book_day_at_most_3]} "
        f"({_number(total.per_book_day_median)})",
        f"no book-day above 6 firings: {said[targets.no_book_day_above_6]} "
        f"(max {total.per_book_day_max})",
        f"re-fire within {report.params.refire_window_h:g} h <= 10%: "
        f"{said[targets.refire_share_at_most_10pct]} ({_share(total.refire_share)})",
        "every liquidation warned >= 1 h before (recorded alerts): "
        f"{said[targets.liquidations_warned_1h_recorded]}",
        "every liquidation warned >= 1 h before (alerts at leverage): "
        f"{said[targets.liquidations_warned_1h_at_leverage]}",
    ]
