"""Alert thresholds per desk from a replay of candidates (``heat alerts calibrate``).

The frames ``heat compare`` makes of each book at each leverage (its heat timeframe)
do not depend on the alert thresholds: they are made once, by
:func:`~heatmap.alert_report.events.compare_events`, which also finds the
liquidations and near misses with the thresholds in effect (a near miss is a run
of frames with a cluster under the desk's critical liquidation sigma in effect, so
the events stay the same whatever a candidate says). Each candidate then only runs
a fresh :class:`~heatmap.engine.alerts.AlertMonitor` over those frames.

The candidates (:func:`candidates`): the critical cluster concentration in
:data:`CONCENTRATION_CRITICAL` (from SPEC's 0.25 up) with its warning at
:data:`CONCENTRATION_WARNING_RATIO` of it; the critical liquidation distance in
:data:`SIGMA_CRITICAL` sigmas (from SPEC's 1 up: further from liquidation warns
earlier) with its warning at :data:`SIGMA_WARNING_RATIO` times it (SPEC's 3 and 1);
``min_frames`` in :data:`MIN_FRAMES`. Every other threshold is the desk's in effect.

Per desk (the books whose latest frame is of that desk; books without a desk form
one group, whose thresholds are the file's ``[defaults]``) and candidate: the
firings (every transition to ``firing``) per book-day, a book being a book at one
leverage and its days the UTC days from its first frame to its last; and for every
event of those books, the lead of the book's first critical alert
(:mod:`heatmap.alert_report.lead`). A warning counts when its lead is more than 0
(one that starts at the event's own frame is no warning) and at least
``min_lead_h``. An event at a book's first frame (it opened in a near miss) is
shown but not judged: no alert can come before it.

The suggestion is the candidate with the fewest firings that warns before every
judged event (ties: the lower critical concentration, the further liquidation
line, the fewer frames: the more cautious); when none does, the thresholds in
effect stay.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

import msgspec

from heatmap.alert_report.events import CompareEvents, Event, scenario_key
from heatmap.alert_report.lead import Warnings
from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.schema import Alert, Frame, ms_to_rfc3339, rfc3339_to_ms

CONCENTRATION_CRITICAL = (0.25, 0.30, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
CONCENTRATION_WARNING_RATIO = 0.8
SIGMA_CRITICAL = (1.0, 1.5, 2.0)
SIGMA_WARNING_RATIO = 3.0
MIN_FRAMES = (1, 3, 6)
DAY_MS = 86_400_000
NO_DESK = None


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """The thresholds a candidate sets; the desk's other thresholds stay."""

    cluster_concentration_warning: float
    cluster_concentration_critical: float
    liquidation_sigma_warning: float
    liquidation_sigma_critical: float
    min_frames: int

    @classmethod
    def of(cls, limits: AlertThresholds) -> Candidate:
        """The candidate fields of a desk's thresholds."""
        return cls(**{name: getattr(limits, name) for name in cls.__struct_fields__})

    def applied(self, limits: AlertThresholds) -> AlertThresholds:
        """``limits`` with this candidate's thresholds."""
        return msgspec.structs.replace(limits, **msgspec.structs.asdict(self))

    def order(self) -> tuple[float, float, int]:
        """Most cautious first: lower concentration, further liquidation line, fewer frames."""
        return (self.cluster_concentration_critical, -self.liquidation_sigma_critical,
                self.min_frames)


def candidates() -> list[Candidate]:
    """The grid, most cautious first."""
    grid = [Candidate(cluster_concentration_warning=round(CONCENTRATION_WARNING_RATIO * k, 6),
                      cluster_concentration_critical=k,
                      liquidation_sigma_warning=round(SIGMA_WARNING_RATIO * sigma, 6),
                      liquidation_sigma_critical=sigma, min_frames=frames)
            for k in CONCENTRATION_CRITICAL for sigma in SIGMA_CRITICAL for frames in MIN_FRAMES]
    return sorted(grid, key=Candidate.order)


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    book: str
    leverage: str
    event: str  # "liquidation" or "near_miss"
    ts: str
    # At the book's first frame: it opened in it, no alert could come before (not judged).
    at_open: bool


class CandidateResult(msgspec.Struct, kw_only=True):
    """One candidate on one desk's books."""

    thresholds: Candidate
    firings: int
    book_days: int
    per_book_day: float
    max_book_day: int  # the most firings of one book on one UTC day
    # Share of the books' time (first frame to last) with a critical alert of any kind on:
    # how much of the day the desk's screen is red (None: no time).
    critical_share: float | None
    warned: int  # events (not at open) with a critical alert at least min_lead_h before
    leads_h: list[float | None]  # per event of the desk, in its order (None: no warning)
    # Over the judged events: the shortest lead (None when one had no warning, or there
    # is none) and the median of those warned.
    shortest_lead_h: float | None
    median_lead_h: float | None


class DeskCalibration(msgspec.Struct, kw_only=True):
    desk: str | None  # None: the books without a desk (the file's [defaults])
    books: list[str]  # "book leverage"
    events: list[EventRow]
    current: CandidateResult  # the thresholds in effect
    candidates: list[CandidateResult]  # the grid, most cautious first
    suggested: CandidateResult
    warns_every_event: bool  # False: no candidate did, the suggestion is the current one


class CalibrationParams(msgspec.Struct, kw_only=True):
    heat_timeframe: str
    leverages: list[str]
    lookback_h: float
    min_lead_h: float
    start: str | None
    end: str | None


class Calibration(msgspec.Struct, kw_only=True):
    params: CalibrationParams
    desks: list[DeskCalibration]


def desks_of(frames: Iterable[tuple[str, Frame]]) -> dict[str, str | None]:
    """Each scenario's desk: its latest frame's."""
    return {key: frame.desk for key, frame in frames}


def run_alerts(frames: Sequence[tuple[str, Frame]], defaults: AlertThresholds,
               per_desk: Mapping[str, AlertThresholds]) -> list[tuple[str, Alert]]:
    """The alert transitions of the scenario frames under these thresholds, in time order."""
    monitor = AlertMonitor(defaults, dict(per_desk))
    return [(key, alert) for key, frame in frames for alert in monitor.observe(frame)]


def _spans(frames: Iterable[tuple[str, Frame]]) -> dict[str, tuple[int, int]]:
    """Each scenario's first and last frame times, epoch ms."""
    spans: dict[str, tuple[int, int]] = {}
    for key, frame in frames:
        ts_ms = rfc3339_to_ms(frame.ts)
        first, _ = spans.get(key, (ts_ms, ts_ms))
        spans[key] = (first, ts_ms)
    return spans


def critical_ms(book: str, transitions: Sequence[tuple[str, Alert]],
                 span: tuple[int, int]) -> int:
    """Milliseconds of ``span`` during which ``book`` had a critical alert of any kind on
    (``transitions`` in time order)."""
    on: set[tuple[str, str, str]] = set()
    since = 0
    total = 0
    for key, alert in transitions:
        if key != book:
            continue
        machine = (alert.timeframe, alert.kind, alert.subject)
        was = bool(on)
        if alert.state == "firing" and alert.severity == "critical":
            on.add(machine)
        else:
            on.discard(machine)
        ts_ms = rfc3339_to_ms(alert.ts)
        if on and not was:
            since = ts_ms
        elif was and not on:
            total += ts_ms - since
    if on:
        total += max(span[1] - since, 0)
    return total


def _judge(candidate: Candidate, books: Sequence[str], spans: Mapping[str, tuple[int, int]],
           events: Sequence[Event], judged: Sequence[bool], alerts: Sequence[tuple[str, Alert]],
           lookback_h: float, min_lead_h: float) -> CandidateResult:
    mine = set(books)
    transitions = [(key, alert) for key, alert in alerts if key in mine]
    per_day = Counter((key, rfc3339_to_ms(alert.ts) // DAY_MS) for key, alert in transitions
                      if alert.state == "firing")
    days = sum(last // DAY_MS - first // DAY_MS + 1
               for first, last in (spans[key] for key in books))
    warnings = Warnings(transitions, lookback_h)
    leads: list[float | None] = []
    for event in events:
        found = warnings.before(scenario_key(event.book, event.leverage), event.ts_ms)
        leads.append(None if found is None else found.lead_h)
    firings = sum(per_day.values())
    red_ms = sum(critical_ms(key, transitions, spans[key]) for key in books)
    span_ms = sum(last - first for first, last in (spans[key] for key in books))
    mine_judged = [lead for lead, counts in zip(leads, judged, strict=True) if counts]
    known = [lead for lead in mine_judged if lead is not None]
    return CandidateResult(
        thresholds=candidate, firings=firings, book_days=days,
        per_book_day=firings / days if days else 0.0, max_book_day=max(per_day.values(),
                                                                       default=0),
        critical_share=red_ms / span_ms if span_ms else None,
        warned=sum(lead is not None and lead > 0.0 and lead >= min_lead_h
                   for lead, counts in zip(leads, judged, strict=True) if counts),
        leads_h=leads,
        shortest_lead_h=min(known) if known and len(known) == len(mine_judged) else None,
        median_lead_h=statistics.median(known) if known else None)


def calibrate(found: CompareEvents, defaults: AlertThresholds,
              per_desk: Mapping[str, AlertThresholds], *, heat_timeframe: str,
              leverages: Sequence[str], lookback_h: float = 24.0, min_lead_h: float = 0.0,
              desks: Collection[str | None] | None = None) -> Calibration:
    """Judge every candidate on the frames of ``found`` (``compare_events(...,
    keep_frames=True)``), per desk.

    Parameters
    ----------
    found : CompareEvents
        The scenario frames and events of one compare run.
    defaults, per_desk : AlertThresholds
        The thresholds in effect (what the events were found with).
    desks : collection of str or None, optional
        Only these desks (None in it: the books without a desk); every one by default.
    min_lead_h : float
        A warning counts when it came at least this many hours before its event.
    """
    desk_of = desks_of(found.frames)
    chosen = sorted({d for d in desk_of.values() if desks is None or d in desks},
                    key=lambda d: (d is not None, d or ""))
    keys = {key for key, desk in desk_of.items() if desk in chosen}
    frames = [(key, frame) for key, frame in found.frames if key in keys]
    spans = _spans(frames)
    books = {desk: sorted(key for key in keys if desk_of[key] == desk) for desk in chosen}
    events = {desk: [e for e in found.events
                     if desk_of.get(scenario_key(e.book, e.leverage), "\0") == desk]
              for desk in chosen}
    at_open = {desk: [spans[scenario_key(e.book, e.leverage)][0] == e.ts_ms
                      for e in events[desk]] for desk in chosen}
    judged = {desk: [not flag for flag in flags] for desk, flags in at_open.items()}

    def results(candidate: Candidate | None) -> dict[str | None, CandidateResult]:
        limits = {desk: per_desk.get(desk, defaults) if desk is not None else defaults
                  for desk in chosen}
        if candidate is not None:
            limits = {desk: candidate.applied(value) for desk, value in limits.items()}
        base = limits.get(NO_DESK, candidate.applied(defaults) if candidate else defaults)
        alerts = run_alerts(frames, base, {d: v for d, v in limits.items() if d is not None})
        return {desk: _judge(candidate or Candidate.of(limits[desk]), books[desk], spans,
                             events[desk], judged[desk], alerts, lookback_h, min_lead_h)
                for desk in chosen}

    current = results(None)
    grid = [results(candidate) for candidate in candidates()]
    calibrated = []
    for desk in chosen:
        tried = [outcome[desk] for outcome in grid]
        every = [r for r in tried if r.warned == sum(judged[desk])]
        best = min(every, key=lambda r: (r.firings, r.thresholds.order())) if every else None
        calibrated.append(DeskCalibration(
            desk=desk, books=[key.replace("\t", " ") for key in books[desk]],
            events=[EventRow(book=e.book, leverage=e.leverage, event=e.kind,
                             ts=ms_to_rfc3339(e.ts_ms), at_open=flag)
                    for e, flag in zip(events[desk], at_open[desk], strict=True)],
            current=current[desk], candidates=tried, suggested=best or current[desk],
            warns_every_event=best is not None))
    times = [frame.ts for _, frame in frames]
    return Calibration(
        params=CalibrationParams(heat_timeframe=heat_timeframe, leverages=list(leverages),
                                 lookback_h=lookback_h, min_lead_h=min_lead_h,
                                 start=min(times, default=None), end=max(times, default=None)),
        desks=calibrated)


def suggested_thresholds(calibration: Calibration, defaults: AlertThresholds,
                         per_desk: Mapping[str, AlertThresholds]
                         ) -> tuple[AlertThresholds, dict[str, AlertThresholds]]:
    """The thresholds in effect with each calibrated desk's suggestion applied."""
    desks = dict(per_desk)
    for desk in calibration.desks:
        if desk.desk is None:
            defaults = desk.suggested.thresholds.applied(defaults)
    for desk in calibration.desks:
        if desk.desk is not None:
            desks[desk.desk] = desk.suggested.thresholds.applied(per_desk.get(desk.desk,
                                                                              defaults))
    return defaults, desks


def config_toml(defaults: AlertThresholds, per_desk: Mapping[str, AlertThresholds],
                header: Sequence[str] = ()) -> str:
    """An alert configuration file (docs/alerts.md) that loads as these thresholds: every
    key written out, so no table depends on another."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines += ["[defaults]", *_keys(defaults)]
    for desk in sorted(per_desk):
        lines += ["", f"[desk.{json.dumps(desk, ensure_ascii=False)}]", *_keys(per_desk[desk])]
    return "\n".join(lines) + "\n"


def _keys(limits: AlertThresholds) -> list[str]:
    lines = []
    for name in limits.__struct_fields__:
        value = getattr(limits, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            text = json.dumps(list(value))
        elif isinstance(value, int):
            text = str(value)
        else:
            text = repr(float(value))
        lines.append(f"{name} = {text}")
    return lines

