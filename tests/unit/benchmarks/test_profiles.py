"""Where the time goes in py-spy's collapsed stacks."""

from __future__ import annotations

import pytest

from benchmarks.profiles import top_functions_collapsed

STACKS = [
    "main (app.py:1);step (heatmap/host.py:10);decode (heatmap/schema.py:5) 6",
    "main (app.py:1);step (heatmap/host.py:12);apply (heatmap/host.py:20) 3",
    "main (app.py:2);idle (app.py:9) 1",
    "not a stack line",
]


def test_own_time_is_counted_at_the_leaf_per_function() -> None:
    top = dict(top_functions_collapsed(STACKS))
    assert top == pytest.approx({"decode (schema.py)": 0.6, "apply (host.py)": 0.3,
                                 "idle (app.py)": 0.1})


def test_inclusive_time_counts_our_functions_once_per_stack() -> None:
    top = dict(top_functions_collapsed(STACKS, inclusive=True))
    assert top["step (host.py)"] == pytest.approx(0.9)
    assert top["decode (schema.py)"] == pytest.approx(0.6)
    assert "main (app.py)" not in top  # not the product's: every stack's root


def test_no_samples_no_functions() -> None:
    assert top_functions_collapsed([]) == []
