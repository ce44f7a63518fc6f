"""Drawdown episodes of an equity curve.

An episode starts at a peak (a bar whose equity is at or above every bar before
it) and runs until the next such bar; its trough is its lowest bar (the first,
on ties) and its depth ``1 - trough / peak``. The database function
``heat_api.drawdowns`` cuts episodes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    """Indices into the curve (bars) of a drawdown; ``recovery`` is None if never recovered."""

    peak: int
    trough: int
    recovery: int | None
    depth: float


def episodes(equity: np.ndarray) -> list[Episode]:
    """Every drawdown of ``equity`` (shape (T,), bar by bar) with a positive depth, in time
    order. A peak must be positive for its depth to be defined; a curve whose running
    peak is not is not cut."""
    if equity.size == 0:
        return []
    running_peak = np.maximum.accumulate(equity)
    new_peak = np.empty(equity.size, dtype=bool)
    new_peak[0] = True
    new_peak[1:] = equity[1:] >= running_peak[:-1]
    starts = np.flatnonzero(new_peak)
    found = []
    for number, start in enumerate(starts.tolist()):
        end = int(starts[number + 1]) if number + 1 < starts.size else equity.size
        peak_equity = float(equity[start])
        if end - start < 2 or not peak_equity > 0.0:
            continue
        trough = start + int(np.argmin(equity[start:end]))
        depth = 1.0 - float(equity[trough]) / peak_equity
        if depth > 0.0:
            found.append(Episode(start, trough, end if end < equity.size else None, depth))
    return found


def worst(equity: np.ndarray, count: int) -> list[Episode]:
    """The ``count`` deepest drawdowns, deepest first (earlier first on equal depth)."""
    return sorted(episodes(equity), key=lambda e: (-e.depth, e.peak))[:count]


def max_drawdown(equity: np.ndarray) -> float:
    """Depth of the deepest drawdown (0 for a curve that never falls)."""
    deepest = worst(equity, 1)
    return deepest[0].depth if deepest else 0.0
