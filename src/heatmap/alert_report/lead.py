"""The warning before an event: the lead time of a book's first critical alert.

For an event of a book at time ``t`` (a liquidation, a near miss), the warning is
the earliest critical firing of that book, of the kinds that say "risk" (cluster
concentration, liquidation proximity; a stale feed is not a warning of a loss),
at or after ``t - lookback`` and at or before ``t``; its lead is ``t`` minus its
time. Taking the earliest in a window, not the book's first ever, keeps an alert of
an unrelated week from counting as a warning.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from heatmap.schema import Alert, AlertKind, rfc3339_to_ms

LEAD_KINDS: tuple[AlertKind, ...] = ("cluster_concentration", "liquidation_proximity")
HOUR_MS = 3_600_000


def is_warning(alert: Alert) -> bool:
    """A critical firing of a kind that warns of a loss."""
    return (alert.state == "firing" and alert.severity == "critical"
            and alert.kind in LEAD_KINDS)


@dataclass(frozen=True)
class Warning:
    """The warning found before an event: when (epoch ms) and how long before (hours)."""

    ts_ms: int
    lead_h: float


class Warnings:
    """Critical firings per book, for the look-ups of :meth:`before`.

    Parameters
    ----------
    firings : iterable of (book, epoch ms)
        The warnings' books and times (see :func:`is_warning`), in any order.
    lookback_h : float
        How far before an event a warning is looked for, hours.
    """

    def __init__(self, firings: Iterable[tuple[str, int]], lookback_h: float) -> None:
        times: dict[str, list[int]] = defaultdict(list)
        for book, ts_ms in firings:
            times[book].append(ts_ms)
        self.times = {book: sorted(found) for book, found in times.items()}
        self.lookback_ms = round(lookback_h * HOUR_MS)

    @classmethod
    def of_alerts(cls, alerts: Sequence[Alert], lookback_h: float) -> Warnings:
        """From alert transitions, books being their accounts (desk alerts left out)."""
        return cls(((a.account, rfc3339_to_ms(a.ts)) for a in alerts
                    if a.account is not None and is_warning(a)), lookback_h)

    def before(self, book: str, event_ms: int) -> Warning | None:
        """The earliest warning of ``book`` in ``[event - lookback, event]``, or None."""
        times = self.times.get(book, [])
        first = bisect.bisect_left(times, event_ms - self.lookback_ms)
        if first >= len(times) or times[first] > event_ms:
            return None
        return Warning(times[first], (event_ms - times[first]) / HOUR_MS)
