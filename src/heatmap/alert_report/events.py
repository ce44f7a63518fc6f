"""The liquidations and near misses ``heat compare`` finds for books at given leverages.

One run of :func:`heatmap.compare.run.compare` (no rule) gives each book's
liquidation per leverage; its ``on_frame`` hook sees every scenario frame, from
which the near misses are taken with compare's own test
(:func:`~heatmap.compare.run.is_near_miss`) and the book's alerts at that
leverage are judged by a fresh :class:`~heatmap.engine.alerts.AlertMonitor` with
the same thresholds. A near miss is a run of consecutive near-miss frames and is
dated by its first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from heatmap.compare.run import CompareSettings, compare, is_near_miss
from heatmap.engine.alerts import AlertMonitor
from heatmap.schema import Account, Alert, Frame, Position, Price, rfc3339_to_ms


@dataclass(frozen=True)
class Event:
    """A liquidation or the start of a near miss of ``book`` at ``leverage`` (a label)."""

    book: str
    leverage: str
    kind: str  # "liquidation" or "near_miss"
    ts_ms: int


def scenario_key(book: str, leverage: str) -> str:
    """How the at-leverage warnings name a scenario."""
    return f"{book}\t{leverage}"


@dataclass
class CompareEvents:
    """What the compare run found: events in time order and the alert transitions of each
    scenario at its leverage, as (scenario key, alert) in time order."""

    events: list[Event] = field(default_factory=list)
    alerts: list[tuple[str, Alert]] = field(default_factory=list)
    # Every scenario frame as (scenario key, frame) in time order, when asked for: the
    # frames do not depend on the alert thresholds, so other thresholds can be judged on
    # them without running the scenarios again.
    frames: list[tuple[str, Frame]] = field(default_factory=list)


def compare_events(messages: Iterable[Price | Position | Account],
                   settings: CompareSettings, *, keep_frames: bool = False) -> CompareEvents:
    """Run ``heat compare``'s scenarios (without rules) over ``messages`` and collect the
    events and alerts (and with ``keep_frames`` the frames). ``settings.rules`` and
    ``settings.on_frame`` are replaced."""
    found = CompareEvents()
    monitor = AlertMonitor(settings.thresholds, dict(settings.alert_per_desk))
    near: set[str] = set()  # scenarios whose last frame was a near miss

    def on_frame(book: str, leverage: str, rule: str, frame: Frame) -> None:
        key = scenario_key(book, leverage)
        ts_ms = rfc3339_to_ms(frame.ts)
        if keep_frames:
            found.frames.append((key, frame))
        found.alerts.extend((key, alert) for alert in monitor.observe(frame))
        if is_near_miss(frame, monitor.thresholds(frame.desk)):
            if key not in near:
                found.events.append(Event(book, leverage, "near_miss", ts_ms))
            near.add(key)
        else:
            near.discard(key)

    run = CompareSettings(
        params=settings.params, leverages=settings.leverages, rules=(),
        heat_timeframe=settings.heat_timeframe, thresholds=settings.thresholds,
        alert_per_desk=settings.alert_per_desk, drawdowns=1, on_frame=on_frame)
    report = compare(messages, run).report
    found.events.extend(
        Event(s.book, s.leverage, "liquidation", rfc3339_to_ms(s.liquidation.ts))
        for s in report.scenarios if s.liquidation is not None)
    found.events.sort(key=lambda e: (e.ts_ms, e.book, e.leverage, e.kind))
    return found
