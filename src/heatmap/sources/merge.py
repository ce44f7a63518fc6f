"""Every recorded file as one stream of messages, merged by time."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path

from heatmap.schema import Account, Position, Price, encode
from heatmap.sources.csv_files import (
    MAX_GAP_MS,
    ReadStats,
    read_accounts,
    read_positions,
    read_prices,
)


def merged_events(prices: list[Path], positions: Path | None, accounts: Path | None,
                  stats: ReadStats, max_gap_ms: int | None = MAX_GAP_MS
                  ) -> Iterator[Price | Position | Account]:
    """All rows of all files as messages, in time order (prices first at equal times).

    Rows more than ``max_gap_ms`` ahead of everything before them are rejected
    (the engine would close every bar in between); None accepts any gap.
    """
    streams = [read_prices(path, stats) for path in prices]
    if accounts is not None:
        streams.append(read_accounts(accounts, stats))
    if positions is not None:
        streams.append(read_positions(positions, stats))
    last_ms = None
    for ts_ms, _, message in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        if last_ms is not None and max_gap_ms is not None and ts_ms - last_ms > max_gap_ms:
            stats.reject(type(message).__name__.lower(),
                         "more than a year after the previous row", encode(message))
            continue
        last_ms = ts_ms
        yield message
