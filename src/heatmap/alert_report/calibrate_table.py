"""``heat alerts calibrate`` in the terminal: per desk, the candidates, then the suggestion."""

from __future__ import annotations

from collections import Counter

from rich.table import Table

from heatmap.alert_report.calibrate import Calibration, CandidateResult, DeskCalibration


def desk_name(desk: str | None) -> str:
    return "books without a desk" if desk is None else f"desk {desk}"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _levels(result: CandidateResult) -> tuple[str, str, str]:
    t = result.thresholds
    return (f"{t.cluster_concentration_warning:g} / {t.cluster_concentration_critical:g}",
            f"{t.liquidation_sigma_warning:g} / {t.liquidation_sigma_critical:g}",
            str(t.min_frames))


def judged(desk: DeskCalibration) -> int:
    """The events a candidate has to warn of (not those at a book's opening)."""
    return sum(not e.at_open for e in desk.events)


def _events(desk: DeskCalibration) -> str:
    counts = Counter(e.event for e in desk.events)
    opened = len(desk.events) - judged(desk)
    return ((f"{counts['liquidation']} liquidations, {counts['near_miss']} near misses"
             + (f" ({opened} at a book's first frame, not judged)" if opened else ""))
            if desk.events else "no liquidation or near miss")


def candidate_table(calibration: Calibration, desk: DeskCalibration) -> Table:
    """Every candidate on one desk's books: firings and the warning before its events."""
    params = calibration.params
    table = Table(title=f"{desk_name(desk.desk)}: {len(desk.books)} books at "
                        f"{', '.join(params.leverages)} ({params.heat_timeframe} frames), "
                        f"{_events(desk)}",
                  caption="K: cluster concentration warning / critical; sigma: liquidation "
                          "distance warning / critical (1-day sigmas); red: share of the books' "
                          "time with a critical alert on; warned: events with a "
                          f"critical alert on at least {params.min_lead_h:g} h before (looked "
                          f"for {params.lookback_h:g} h back); lead: hours, shortest over every "
                          "event (- when one had none) and median")
    table.add_column("", no_wrap=True)
    for name in ("K", "sigma", "min frames", "firings", "per book-day", "max book-day",
                 "red", "warned", "shortest lead h", "median lead h"):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [("in effect", desk.current)]
    rows += [("suggested" if result is desk.suggested else "", result)
             for result in desk.candidates]
    for label, result in rows:
        table.add_row(label, *_levels(result), str(result.firings),
                      _number(result.per_book_day, 2), str(result.max_book_day),
                      _red(result),
                      f"{result.warned}/{judged(desk)}", _number(result.shortest_lead_h),
                      _number(result.median_lead_h),
                      style="bold" if label == "suggested" else None)
    return table


def lead_table(desk: DeskCalibration) -> Table:
    """Each event of the desk and the warning before it: in effect and suggested."""
    table = Table(title=f"{desk_name(desk.desk)}: the warning before each event")
    for name in ("book", "leverage", "event", "at"):
        table.add_column(name, no_wrap=True)
    table.add_column("lead h (in effect)", justify="right")
    table.add_column("lead h (suggested)", justify="right")
    for number, event in enumerate(desk.events):
        what = event.event.replace("_", " ") + (" (at open)" if event.at_open else "")
        table.add_row(event.book, event.leverage, what,
                      event.ts[:16].replace("T", " "),
                      _number(desk.current.leads_h[number]),
                      _number(desk.suggested.leads_h[number]))
    return table


def _red(result: CandidateResult) -> str:
    return "-" if result.critical_share is None else f"{result.critical_share:.0%}"


def suggestion_line(desk: DeskCalibration) -> str:
    """What the desk should use, in one line."""
    levels = _levels(desk.suggested)
    said = (f"{desk_name(desk.desk)}: suggested cluster concentration {levels[0]}, "
            f"liquidation sigma {levels[1]}, min_frames {levels[2]}: "
            f"{desk.suggested.per_book_day:.2f} firings per book-day (in effect "
            f"{desk.current.per_book_day:.2f}), red {_red(desk.suggested)} of the time "
            f"(in effect {_red(desk.current)})")
    if not judged(desk):
        return said + ", no liquidation or near miss to warn of"
    if not desk.warns_every_event:
        best = max(desk.candidates, key=lambda r: r.warned)
        return (f"{desk_name(desk.desk)}: no candidate warns before every event (the best "
                f"{best.warned} of {judged(desk)}): keeping the thresholds in effect")
    return said + f", every event warned, shortest lead {_number(desk.suggested.shortest_lead_h)} h"
