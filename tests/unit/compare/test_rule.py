"""The cluster-cap rule: no trade takes a cluster's concentration over the cap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.compare.rule import (
    CAP_TOLERANCE,
    ClusterCap,
    capped_fraction,
    cluster_concentrations,
    max_concentration,
    parse_rule,
    scaled,
)

RHO_MIN = 0.5


def _correlation(loadings: list[list[float]]) -> np.ndarray:
    """A valid correlation matrix from factor loadings (rows: symbols)."""
    factors = np.array(loadings)
    covariance = factors @ factors.T + 0.05 * np.eye(len(factors))
    scale = 1.0 / np.sqrt(np.diag(covariance))
    return covariance * np.outer(scale, scale)


loadings = st.integers(min_value=2, max_value=6).flatmap(
    lambda k: st.lists(st.lists(st.floats(-1, 1), min_size=2, max_size=2),
                       min_size=k, max_size=k))
changes = st.lists(st.tuples(st.integers(0, 5), st.floats(-0.6, 0.6)), min_size=1,
                   max_size=12)


def _apply(shares: np.ndarray, index: int, target: float, rho: np.ndarray,
           cap: float) -> np.ndarray:
    fraction = capped_fraction(shares, index, target, rho, RHO_MIN, cap)
    assert 0.0 <= fraction <= 1.0
    after = shares.copy()
    after[index] = scaled(float(shares[index]), target, fraction)
    return after


@settings(max_examples=150, deadline=None)
@given(loadings, changes, st.sampled_from([0.1, 0.25, 0.4]))
def test_starting_flat_no_cluster_ever_exceeds_the_cap(rows: list[list[float]],
                                                       trades: list[tuple[int, float]],
                                                       cap: float) -> None:
    rho = _correlation(rows)
    shares = np.zeros(len(rows))
    for index, target in trades:
        shares = _apply(shares, index % len(rows), target, rho, cap)
        assert max_concentration(shares, rho, RHO_MIN) <= cap + CAP_TOLERANCE


@settings(max_examples=150, deadline=None)
@given(loadings, st.lists(st.floats(-0.8, 0.8), min_size=6, max_size=6),
       st.integers(0, 5), st.floats(-0.8, 0.8))
def test_a_trade_never_raises_concentration_above_the_cap_or_what_it_was(
        rows: list[list[float]], start: list[float], index: int, target: float) -> None:
    """From any book (prices may have pushed it over the cap), a change leaves the largest
    cluster concentration at most max(cap, before)."""
    rho = _correlation(rows)
    shares = np.array(start[:len(rows)])
    before = max_concentration(shares, rho, RHO_MIN)
    after = _apply(shares, index % len(rows), target, rho, 0.25)
    assert max_concentration(after, rho, RHO_MIN) <= max(0.25, before) + CAP_TOLERANCE


def test_a_correlated_trade_is_scaled_to_the_cap_exactly() -> None:
    rho = np.array([[1.0, 0.8], [0.8, 1.0]])
    shares = np.array([0.2, 0.0])
    fraction = capped_fraction(shares, 1, 0.2, rho, RHO_MIN, 0.25)
    # K^2 = 0.04 + 2 * 0.8 * 0.2 x + x^2 = 0.0625 at x = 0.2 f
    x = -0.16 + math.sqrt(0.16**2 + 0.0225)
    assert fraction == pytest.approx(x / 0.2)
    after = np.array([0.2, x])
    assert cluster_concentrations(after, rho, RHO_MIN).tolist() == pytest.approx([0.25])


def test_an_uncorrelated_trade_passes_whole() -> None:
    rho = np.array([[1.0, 0.1], [0.1, 1.0]])
    assert capped_fraction(np.array([0.2, 0.0]), 1, 0.2, rho, RHO_MIN, 0.25) == 1.0


def test_a_trade_reducing_an_over_cap_cluster_goes_through() -> None:
    rho = np.array([[1.0, 0.9], [0.9, 1.0]])
    shares = np.array([0.3, 0.3])  # over the cap after prices moved
    assert capped_fraction(shares, 0, 0.1, rho, RHO_MIN, 0.25) == 1.0
    assert capped_fraction(shares, 0, 0.5, rho, RHO_MIN, 0.25) == 0.0


def test_rules_parse_from_the_command_line() -> None:
    assert parse_rule("cap-cluster=0.25") == ClusterCap(0.25)
    assert ClusterCap(0.25).label == "cap-cluster=0.25"
    for text in ("cap=0.25", "cap-cluster=lots", "cap-cluster=-1", "cap-cluster=nan"):
        with pytest.raises(ValueError, match=r"cap|rule"):
            parse_rule(text)
