"""Properties of the frame math that hold for every book (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from heatmap.engine.clusters import average_linkage, cluster_labels, upper_pairs
from heatmap.engine.heat import BookSnapshot, compute_frame
from heatmap.engine.params import EngineParams

PARAMS = EngineParams()


@st.composite
def books(draw, min_size: int = 1, max_size: int = 8):
    """A correlation matrix from random factor loadings, plus shares and volatilities."""
    k = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(k, draw(st.integers(1, 4))))
    covariance = loadings @ loadings.T + np.diag(rng.uniform(0.05, 1.0, size=k))
    scale = np.sqrt(np.diag(covariance))
    rho = covariance / np.outer(scale, scale)
    np.fill_diagonal(rho, 1.0)
    shares = rng.uniform(-0.6, 0.6, size=k)
    assume(np.all(np.abs(shares) > 1e-3))
    sigma = rng.uniform(0.0005, 0.01, size=k)
    return rho, shares, sigma


def _frame(rho, shares, sigma, symbols=None, conviction=None):
    k = len(shares)
    symbols = symbols or [f"S{i:02d}" for i in range(k)]
    book = BookSnapshot(
        ts_ms=0, trigger="bar", account="a", desk=None, symbols=symbols,
        qty=np.asarray(shares, dtype=float) * 100.0, price=np.full(k, 10.0),
        price_age_s=np.zeros(k), strategy=[None] * k,
        conviction=conviction or [None] * k, equity=1000.0, margin=5.0,
    )
    return compute_frame(book, "1h", rho, sigma, np.zeros(k, dtype=bool), None, PARAMS)


@settings(max_examples=200, deadline=None)
@given(books())
def test_heats_sum_to_correlated_exposure(book) -> None:
    frame = _frame(*book)
    assert sum(row.heat for row in frame.positions) == pytest.approx(
        frame.correlated_exposure, rel=1e-9, abs=1e-12)
    if frame.correlated_exposure > 1e-9:
        assert sum(row.heat_share for row in frame.positions) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(books(min_size=2), st.randoms(use_true_random=False))
def test_invariant_to_symbol_order(book, random) -> None:
    rho, shares, sigma = book
    k = len(shares)
    symbols = [f"S{i:02d}" for i in range(k)]
    order = list(range(k))
    random.shuffle(order)
    permuted = _frame(rho[np.ix_(order, order)], shares[order], sigma[order],
                      [symbols[i] for i in order])
    original = _frame(rho, shares, sigma, symbols)
    by_symbol = {row.symbol: row for row in permuted.positions}
    for row in original.positions:
        assert by_symbol[row.symbol].heat == pytest.approx(row.heat, abs=1e-12)
        assert by_symbol[row.symbol].cluster == row.cluster
    assert permuted.correlated_exposure == pytest.approx(original.correlated_exposure)
    assert sorted(map(tuple, (c.members for c in permuted.clusters))) == sorted(
        map(tuple, (c.members for c in original.clusters)))


@settings(max_examples=100, deadline=None)
@given(books(), st.floats(0.1, 10.0))
def test_scaling_quantities_scales_shares_exposure_and_heat(book, factor) -> None:
    rho, shares, sigma = book
    base, scaled = _frame(rho, shares, sigma), _frame(rho, shares * factor, sigma)
    assert scaled.correlated_exposure == pytest.approx(base.correlated_exposure * factor)
    for a, b in zip(base.positions, scaled.positions, strict=True):
        assert b.share == pytest.approx(a.share * factor)
        assert b.heat == pytest.approx(a.heat * factor, abs=1e-12)


@given(st.floats(0.01, 1.0))
def test_long_and_short_of_a_perfect_clone_cancel(share) -> None:
    frame = _frame(np.ones((2, 2)), np.array([share, -share]), np.array([0.01, 0.01]))
    assert frame.correlated_exposure == pytest.approx(0.0, abs=1e-7)
    assert all(row.heat == 0.0 for row in frame.positions)
    assert frame.effective_bets is None
    assert frame.clusters[0].liq_distance is None


@settings(max_examples=200, deadline=None)
@given(books(min_size=2))
def test_negative_heat_iff_adding_more_lowers_exposure(book) -> None:
    rho, shares, sigma = book
    frame = _frame(rho, shares, sigma)
    for i, row in enumerate(frame.positions):
        assume(abs(row.heat) > 1e-6)
        bumped = shares.copy()
        bumped[i] *= 1.0 + 1e-6
        bumped_exposure = np.sqrt(bumped @ rho @ bumped)
        assert (row.heat < 0) == (bumped_exposure < frame.correlated_exposure)


@given(st.integers(1, 12))
def test_effective_bets_counts_independent_positions(n) -> None:
    equal = np.full(n, 0.1)
    uncorrelated = _frame(np.eye(n), equal, np.full(n, 0.01))
    assert uncorrelated.effective_bets == pytest.approx(n)
    correlated = _frame(np.ones((n, n)), equal, np.full(n, 0.01))
    assert correlated.effective_bets == pytest.approx(1.0)
    assert len(correlated.clusters) == 1


@settings(max_examples=300, deadline=None)
@given(books(min_size=2, max_size=12), st.floats(-0.5, 0.95))
def test_clusters_equal_scipy_fcluster(book, rho_min) -> None:
    rho = book[0]
    distance = np.sqrt(np.clip((1 - rho) / 2, 0, 1))
    np.fill_diagonal(distance, 0)
    expected = fcluster(linkage(squareform(distance, checks=False), "average"),
                        t=np.sqrt((1 - rho_min) / 2), criterion="distance")
    ours = cluster_labels(rho, rho_min)
    # Same partition: labels correspond one to one.
    pairs = set(zip(ours.tolist(), expected.tolist(), strict=True))
    assert len(pairs) == len(set(ours.tolist())) == len(set(expected.tolist()))


@settings(max_examples=300, deadline=None)
@given(books(min_size=2, max_size=40))
def test_average_linkage_is_scipys_to_the_bit(book) -> None:
    rho = book[0]
    k = rho.shape[0]
    distance = np.sqrt(np.clip((1.0 - rho[upper_pairs(k)]) / 2.0, 0.0, 1.0))
    assert average_linkage(distance, k).tobytes() == linkage(distance, "average").tobytes()


def test_cluster_named_after_largest_member_ties_alphabetical() -> None:
    frame = _frame(np.ones((3, 3)), np.array([0.2, -0.2, 0.1]), np.full(3, 0.01),
                   ["ZEC", "ADA", "BTC"])
    assert frame.clusters[0].cluster == "ADA"


def test_regime_break_counts_warm_pairs_only() -> None:
    from heatmap.engine.heat import regime_break

    fast = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    slow = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert regime_break(fast, slow, np.array([True, True, False])) == pytest.approx(0.4)
    assert regime_break(fast, slow, np.array([True, False, False])) is None
    assert regime_break(fast[:1, :1], slow[:1, :1]) is None
