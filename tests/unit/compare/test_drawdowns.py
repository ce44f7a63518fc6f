"""Drawdown episodes: peak to trough, cut at every new high."""

from __future__ import annotations

import numpy as np
import pytest

from heatmap.compare.drawdowns import Episode, episodes, max_drawdown, worst


def test_episodes_run_from_a_high_to_the_next() -> None:
    equity = np.array([100, 90, 95, 80, 100, 120, 60, 70, 130, 125])
    assert episodes(equity) == [
        Episode(peak=0, trough=3, recovery=4, depth=pytest.approx(0.2)),
        Episode(peak=5, trough=6, recovery=8, depth=pytest.approx(0.5)),
        Episode(peak=8, trough=9, recovery=None, depth=pytest.approx(5 / 130)),
    ]
    assert [e.peak for e in worst(equity, 2)] == [5, 0]
    assert max_drawdown(equity) == pytest.approx(0.5)


def test_a_curve_that_never_falls_has_none() -> None:
    assert episodes(np.array([1.0, 1.0, 2.0, 3.0])) == []
    assert max_drawdown(np.array([])) == 0.0


def test_the_first_of_equal_troughs_counts() -> None:
    [episode] = episodes(np.array([10.0, 5.0, 5.0, 7.0]))
    assert (episode.trough, episode.recovery) == (1, None)
