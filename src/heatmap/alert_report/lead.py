"""The warning before an event: the lead time of a book's first critical alert.

A book is *warned* while a critical alert of a kind that says "risk" (cluster
concentration, liquidation proximity; a stale feed is not a warning of a loss)
is firing: from the transition that takes an alert machine to critical to the one
that resolves it or steps it down to warning. For an event of a book at time
``t`` (a liquidation, a near miss), the warning is the earliest of the book's
critical periods that was on at some moment of ``[t - lookback, t]``, and its
lead ``t`` minus that period's start. So an alert that fired days before and
never stopped counts with its full lead, while one of an unrelated week, long
resolved, does not.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from heatmap.schema import Alert, AlertKind, rfc3339_to_ms

LEAD_KINDS: tuple[AlertKind, ...] = ("cluster_concentration", "liquidation_proximity")
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Warning:
    """The warning found before an event: its start (epoch ms) and lead (hours)."""

    ts_ms: int
    lead_h: float


class Warnings:
    """Critical periods per book, for the look-ups of :meth:`before`.

    Parameters
    ----------
    transitions : iterable of (book, Alert)
        Alert transitions and the book each belongs to, in time order; only those of
        :data:`LEAD_KINDS` matter.
    lookback_h : float
        How far before an event a warning is looked for, hours.
    """

    def __init__(self, transitions: Iterable[tuple[str, Alert]], lookback_h: float) -> None:
        started: dict[tuple[str, str, str, str], int] = {}
        self.periods: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for book, alert in transitions:
            if alert.kind not in LEAD_KINDS:
                continue
            key = (book, alert.timeframe, alert.kind, alert.subject)
            ts_ms = rfc3339_to_ms(alert.ts)
            critical = alert.state == "firing" and alert.severity == "critical"
            if critical:
                started.setdefault(key, ts_ms)
            elif key in started:
                self.periods[book].append((started.pop(key), ts_ms))
        for (book, *_), start in started.items():
            self.periods[book].append((start, math.inf))  # still on at the input's end
        self.lookback_ms = round(lookback_h * HOUR_MS)

    @classmethod
    def of_accounts(cls, alerts: Iterable[Alert], lookback_h: float) -> Warnings:
        """From alert transitions in time order, books being their accounts (a desk's own
        alerts left out: events are of accounts)."""
        return cls(((a.account, a) for a in alerts if a.account is not None), lookback_h)

    def before(self, book: str, event_ms: int) -> Warning | None:
        """The warning of ``book`` for an event at ``event_ms``, or None."""
        starts = [start for start, end in self.periods.get(book, [])
                  if start <= event_ms and end >= event_ms - self.lookback_ms]
        if not starts:
            return None
        first = min(starts)
        return Warning(first, (event_ms - first) / HOUR_MS)
