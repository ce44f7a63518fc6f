"""Noise of alert transitions: firings per book and day, episode lengths, re-fires.

A *firing* is every transition with ``state == "firing"`` (a page: an alert that
starts, or changes level while it lasts); an *episode* runs from the transition
that starts one alert machine (book, timeframe, kind, subject) to its resolve. A
book is an account, or ``desk NAME`` for a desk's own alerts. A book's days are
the UTC days from its first alert to the last alert of the input (days without
a firing count as 0), so a book that starts late is not diluted by days before it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from heatmap.alert_report.model import BookStats, KindStats
from heatmap.schema import Alert, ms_to_rfc3339, rfc3339_to_ms

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ALL = "all"


def book_of(alert: Alert) -> str:
    """The book an alert belongs to: its account, else its desk."""
    return alert.account if alert.account is not None else f"desk {alert.desk or ''}"


@dataclass(frozen=True)
class _Transition:
    ts_ms: int
    book: str
    alert: Alert


def _transitions(alerts: Sequence[Alert]) -> list[_Transition]:
    """The alerts in time order (stable: the input's order within one moment)."""
    found = [_Transition(rfc3339_to_ms(a.ts), book_of(a), a) for a in alerts]
    return sorted(found, key=lambda t: t.ts_ms)


def _day(ts_ms: int) -> int:
    return ts_ms // DAY_MS


def book_days(transitions: Sequence[_Transition]) -> dict[str, range]:
    """Each book's UTC days (day numbers since the epoch), first alert to the input's end."""
    if not transitions:
        return {}
    last = _day(transitions[-1].ts_ms)
    first: dict[str, int] = {}
    for t in transitions:
        first.setdefault(t.book, _day(t.ts_ms))
    return {book: range(day, last + 1) for book, day in first.items()}


def _episodes_h(transitions: Sequence[_Transition]) -> tuple[list[float], int]:
    """Lengths (hours) of the episodes that resolved, and how many were still open."""
    started: dict[tuple[str, str, str, str], int] = {}
    lengths = []
    for t in transitions:
        a = t.alert
        key = (t.book, a.timeframe, a.kind, a.subject)
        if a.state == "firing":
            started.setdefault(key, t.ts_ms)  # a change of level goes on with the episode
        elif key in started:
            lengths.append((t.ts_ms - started.pop(key)) / HOUR_MS)
    return lengths, len(started)


def _refires(transitions: Sequence[_Transition], window_ms: int) -> list[bool]:
    """For every firing in order: whether a resolve of its book, timeframe and kind came
    within ``window_ms`` before it (at the same moment included)."""
    last_resolve: dict[tuple[str, str, str], int] = {}
    flags = []
    # At one moment resolves are taken before firings: a cluster renamed in a frame
    # resolves under its old name and fires under the new one, which is a re-fire.
    for t in sorted(transitions, key=lambda t: (t.ts_ms, t.alert.state == "firing")):
        key = (t.book, t.alert.timeframe, t.alert.kind)
        if t.alert.state == "resolved":
            last_resolve[key] = t.ts_ms
        else:
            resolved = last_resolve.get(key)
            flags.append(resolved is not None and t.ts_ms - resolved <= window_ms)
    return flags


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def kind_stats(transitions: Sequence[_Transition], days: dict[str, range], kind: str,
               timeframe: str, window_ms: int) -> KindStats:
    """The statistics of the transitions of one kind and timeframe (already selected)."""
    firings = [t for t in transitions if t.alert.state == "firing"]
    per_cell = Counter((t.book, _day(t.ts_ms)) for t in firings)
    counts = [per_cell.get((book, day), 0) for book, span in days.items() for day in span]
    lengths, still_open = _episodes_h(transitions)
    flags = _refires(transitions, window_ms)
    return KindStats(
        kind=kind, timeframe=timeframe, firings=len(firings),
        critical_firings=sum(t.alert.severity == "critical" for t in firings),
        per_book_day_median=float(np.median(counts)) if counts else 0.0,
        per_book_day_max=max(counts, default=0),
        episodes=len(lengths) + still_open, open_episodes=still_open,
        episode_h_p50=_percentile(lengths, 50), episode_h_p90=_percentile(lengths, 90),
        episode_h_p99=_percentile(lengths, 99), episode_h_max=max(lengths, default=None),
        refires=sum(flags), refire_share=sum(flags) / len(flags) if flags else None)


def noise(alerts: Sequence[Alert], refire_window_h: float = 1.0
          ) -> tuple[list[KindStats], list[BookStats]]:
    """Statistics per kind and timeframe (then one ``all`` row) and per book.

    Parameters
    ----------
    alerts : sequence of Alert
        Transitions of any books, in any order.
    refire_window_h : float
        Hours after a resolve within which a firing counts as a re-fire.
    """
    transitions = _transitions(alerts)
    days = book_days(transitions)
    window_ms = round(refire_window_h * HOUR_MS)
    groups: dict[tuple[str, str], list[_Transition]] = defaultdict(list)
    for t in transitions:
        groups[(t.alert.kind, t.alert.timeframe)].append(t)
    kinds = [kind_stats(groups[key], days, *key, window_ms) for key in sorted(groups)]
    kinds.append(kind_stats(transitions, days, ALL, ALL, window_ms))
    return kinds, [_book_stats(book, span, transitions) for book, span in sorted(days.items())]


def _book_stats(book: str, span: range, transitions: Sequence[_Transition]) -> BookStats:
    firings = [t for t in transitions if t.book == book and t.alert.state == "firing"]
    per_day = Counter(_day(t.ts_ms) for t in firings)
    busiest = min(per_day, key=lambda day: (-per_day[day], day)) if per_day else None
    return BookStats(
        book=book, days=len(span), firings=len(firings),
        critical_firings=sum(t.alert.severity == "critical" for t in firings),
        per_day_mean=len(firings) / len(span), per_day_max=max(per_day.values(), default=0),
        busiest_day=None if busiest is None else ms_to_rfc3339(busiest * DAY_MS)[:10])
