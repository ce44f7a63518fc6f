"""Recorded files as an ingest source: merged messages, rejected rows as dead letters."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path

from heatmap.ingest.rejected import Message, Rejected
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events
from heatmap.topics import Topics


def recorded_files(prices: list[Path], positions: Path | None, accounts: Path | None,
                   topics: Topics, stats: ReadStats) -> Iterator[Message | Rejected]:
    """Recorded price (bars or trades), position and account files merged by time;
    rows that break the contract come out as :class:`Rejected` with their bytes."""
    rejected: deque[Rejected] = deque()
    topic_of = {"price": topics.prices, "position": topics.positions,
                "account": topics.accounts}
    stats.on_reject = lambda kind, reason, raw: rejected.append(
        Rejected(topic_of.get(kind, topics.prices), reason, raw))
    # No gap limit: nothing here closes bars, and recordings of different years may mix.
    for message in merged_events(prices, positions, accounts, stats, max_gap_ms=None):
        while rejected:
            yield rejected.popleft()
        yield message
    while rejected:
        yield rejected.popleft()
