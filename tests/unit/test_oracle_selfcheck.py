"""Self-checks of the batch reference implementation on hand-computable cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oracle import reference as ref

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BAR_S = 300
START = pd.Timestamp("2024-01-01T00:00:00Z")
PARAMS = {
    "bar_interval_s": BAR_S,
    "timeframe": "fast",
    "halflife_bars": 2.0,
    "timeframes": {"fast": 2.0, "slow": 8.0},
    "min_periods": 3,
    "size_threshold": 0.10,
    "stale_after_s": 2.0,
    "rho_min": 0.5,
    "stress_kappa": 0.5,
}
BASE_RETURNS = np.array([0.01, -0.02, 0.015, 0.005, -0.01, 0.02, -0.005, 0.01, -0.015, 0.0])


def boundary(k: int) -> pd.Timestamp:
    """The k-th bar boundary after START."""
    return START + pd.Timedelta(seconds=BAR_S * k)


def observations_from_paths(paths: dict[str, np.ndarray]) -> pd.DataFrame:
    """One observation per symbol exactly at every boundary; ``paths`` maps symbol -> prices."""
    rows = [
        (boundary(k), symbol, float(price))
        for symbol, prices in paths.items()
        for k, price in enumerate(prices)
    ]
    return pd.DataFrame(rows, columns=["ts", "symbol", "price"])


def price_path(returns: np.ndarray, start_price: float = 1.0) -> np.ndarray:
    """Prices whose consecutive log returns are ``returns``; shape ``(len(returns) + 1,)``."""
    return start_price * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))


def positions_table(rows: list[tuple]) -> pd.DataFrame:
    """Positions from ``(ts, account, symbol, qty, strategy, conviction)`` tuples."""
    return pd.DataFrame(rows, columns=["ts", "account", "symbol", "qty", "strategy", "conviction"])


def accounts_table(rows: list[tuple]) -> pd.DataFrame:
    """Accounts from ``(ts, account, equity, desk, maintenance_rate)`` tuples."""
    return pd.DataFrame(rows, columns=["ts", "account", "equity", "desk", "maintenance_rate"])


def clone_model(positions: list[tuple], accounts: list[tuple] | None = None) -> ref.ReferenceModel:
    """AAA and a clone BBB = 2 * AAA (identical log returns) plus an unrelated CCC."""
    aaa = price_path(BASE_RETURNS)
    other = np.array([0.0, 0.01, 0.01, -0.02, 0.0, 0.03, -0.01, -0.02, 0.005, 0.01])
    obs = observations_from_paths({"AAA": aaa, "BBB": 2.0 * aaa, "CCC": price_path(other, 4.0)})
    acc = accounts_table(accounts) if accounts is not None else None
    return ref.ReferenceModel.from_data(obs, positions_table(positions), acc, PARAMS)


LAST_BAR = boundary(len(BASE_RETURNS))


# ---------------------------------------------------------------------------
# Bars and estimator
# ---------------------------------------------------------------------------


def test_bar_closes_grid_and_carry_forward():
    obs = pd.DataFrame(
        [
            ("2024-01-01T00:02:10Z", "AAA", 1.0),
            ("2024-01-01T00:05:00Z", "AAA", 2.0),  # exactly on a boundary: belongs to it
            ("2024-01-01T00:06:00Z", "BBB", 5.0),
            ("2024-01-01T00:14:59Z", "AAA", 3.0),
            ("2024-01-01T00:16:40Z", "BBB", 6.0),
        ],
        columns=["ts", "symbol", "price"],
    )
    obs["ts"] = pd.to_datetime(obs["ts"], utc=True)
    closes = ref.bar_closes(obs, BAR_S)
    assert list(closes.index) == [boundary(1), boundary(2), boundary(3)]
    assert list(closes.columns) == ["AAA", "BBB"]
    assert closes["AAA"].tolist() == [2.0, 2.0, 3.0]
    assert math.isnan(closes["BBB"].iloc[0])
    assert closes["BBB"].tolist()[1:] == [5.0, 5.0]
    returns = ref.log_returns(closes)
    assert math.isnan(returns["AAA"].iloc[0])
    assert returns["AAA"].iloc[1] == 0.0
    assert returns["AAA"].iloc[2] == pytest.approx(math.log(1.5))
    assert returns["BBB"].iloc[:2].isna().all()


def _hand_ewm(x: list[float], y: list[float], alpha: float) -> list[float]:
    """EWMA covariance with adjust=False, bias=True; NaN pairs are skipped."""
    mean_x = mean_y = cov = None
    out = []
    for xi, yi in zip(x, y, strict=True):
        if math.isnan(xi) or math.isnan(yi):
            out.append(math.nan if cov is None else cov)
            continue
        if cov is None:
            mean_x, mean_y, cov = xi, yi, 0.0
        else:
            dx, dy = xi - mean_x, yi - mean_y
            cov = (1 - alpha) * (cov + alpha * dx * dy)
            mean_x += alpha * dx
            mean_y += alpha * dy
        out.append(cov)
    return out


def test_ewm_estimate_matches_hand_recursion():
    h = 2.0
    alpha = 1 - 2 ** (-1 / h)
    a = [math.nan, 0.01, -0.02, 0.015, 0.005, -0.01, 0.02]
    b = [math.nan, 0.002, 0.01, -0.01, 0.004, 0.0, 0.012]
    c = [math.nan, math.nan, math.nan, 0.03, -0.01, 0.02, 0.0]  # joins late
    returns = pd.DataFrame({"A": a, "B": b, "C": c})
    est = ref.ewm_estimate(returns, halflife_bars=h, min_periods=1)
    var_a, var_b, var_c = _hand_ewm(a, a, alpha), _hand_ewm(b, b, alpha), _hand_ewm(c, c, alpha)
    cov_ab, cov_ac = _hand_ewm(a, b, alpha), _hand_ewm(a, c, alpha)
    # pandas pairs statistics over joint observations only: A's variance in the (A, C)
    # correlation starts when C joins, unlike A's own sigma
    a_joint = [x if not math.isnan(y) else math.nan for x, y in zip(a, c, strict=True)]
    var_a_joint = _hand_ewm(a_joint, a_joint, alpha)
    for k in range(2, len(a)):
        assert est.sigma[k, 0] == pytest.approx(math.sqrt(var_a[k]), rel=1e-12)
        assert est.sigma[k, 1] == pytest.approx(math.sqrt(var_b[k]), rel=1e-12)
        rho_ab = cov_ab[k] / math.sqrt(var_a[k] * var_b[k])
        assert est.raw_rho[k, 0, 1] == pytest.approx(rho_ab, rel=1e-10)
        assert est.rho[k, 1, 0] == pytest.approx(rho_ab, rel=1e-10)
    for k in range(4, len(a)):
        assert est.sigma[k, 2] == pytest.approx(math.sqrt(var_c[k]), rel=1e-12)
        rho_ac = cov_ac[k] / math.sqrt(var_a_joint[k] * var_c[k])
        assert est.raw_rho[k, 0, 2] == pytest.approx(rho_ac, rel=1e-10)
    # one joint observation: zero variance gives NaN correlation, which counts as 0
    assert math.isnan(est.raw_rho[3, 0, 2])
    assert est.rho[3, 0, 2] == 0.0
    assert est.sigma[0, 0] == 0.0  # no return yet
    assert np.all(est.rho[:, [0, 1, 2], [0, 1, 2]] == 1.0)


def test_warm_up_zeroes_correlations_until_min_periods():
    returns = pd.DataFrame({"A": [math.nan, *BASE_RETURNS], "B": [math.nan, *BASE_RETURNS]})
    est = ref.ewm_estimate(returns, halflife_bars=2.0, min_periods=3)
    assert est.warming[:3].all()  # 0, 1, 2 returns
    assert not est.warming[3:].any()
    assert np.all(est.rho[:3, 0, 1] == 0.0)
    assert est.rho[3, 0, 1] == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------
# Pure portfolio math
# ---------------------------------------------------------------------------


def test_heat_two_assets_by_hand():
    shares = np.array([0.6, -0.2])
    rho = np.array([[1.0, 0.5], [0.5, 1.0]])
    exposure, heat, heat_share = ref.heat_contributions(shares, rho)
    # rho s = (0.5, 0.1); s' rho s = 0.3 - 0.02 = 0.28
    assert exposure == pytest.approx(math.sqrt(0.28))
    assert heat.tolist() == pytest.approx([0.3 / exposure, -0.02 / exposure])
    assert heat.sum() == pytest.approx(exposure)
    assert heat_share == pytest.approx([0.3 / 0.28, -0.02 / 0.28])
    assert ref.quadrant(heat[1], 0.9, shares[1], 0.10) == "hedge"
    sigma = np.array([0.02, 0.01])
    sigma_p, rc = ref.risk_contributions(shares, rho, sigma)
    # Sigma = [[4e-4, 1e-4], [1e-4, 1e-4]]; Sigma s = (2.2e-4, 4e-5)
    assert sigma_p == pytest.approx(math.sqrt(0.6 * 2.2e-4 - 0.2 * 4e-5))
    assert rc.tolist() == pytest.approx([0.6 * 2.2e-4 / sigma_p, -0.2 * 4e-5 / sigma_p])
    stressed = ref.stress_correlation(rho, 0.5)
    assert stressed.tolist() == [[1.0, 0.75], [0.75, 1.0]]


def test_uncorrelated_exposure_is_euclidean_norm():
    shares = np.array([0.3, -0.4, 0.0])
    exposure, heat, _ = ref.heat_contributions(shares, np.eye(3))
    assert exposure == pytest.approx(0.5)
    assert heat.tolist() == pytest.approx([0.09 / 0.5, 0.16 / 0.5, 0.0])


def test_quadrants():
    assert ref.quadrant(-1e-9, 0.9, 0.5, 0.10) == "hedge"
    assert ref.quadrant(0.1, 0.39, 0.5, 0.10) == "unsure"
    assert ref.quadrant(0.1, None, 0.10, 0.10) == "core"  # missing conviction counts as 0.5
    assert ref.quadrant(0.1, 0.4, -0.099, 0.10) == "speculative"


def test_cluster_naming_ties_are_alphabetical():
    symbols = ["ZZZ", "MMM", "AAA"]
    rho = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    clusters = dict(ref.cluster_partition(symbols, np.array([0.2, -0.2, 0.05]), rho, 0.5))
    assert clusters == {"MMM": [1, 0], "AAA": [2]}  # members sorted by symbol
    clusters = dict(ref.cluster_partition(symbols, np.array([0.1, -0.3, 0.05]), rho, 0.5))
    assert set(clusters) == {"MMM", "AAA"}
    clusters = dict(ref.cluster_partition(symbols, np.array([0.4, -0.3, 0.05]), rho, 0.5))
    assert set(clusters) == {"ZZZ", "AAA"}


def test_cluster_cut_at_rho_min():
    symbols = ["A", "B"]
    shares = np.array([0.1, 0.1])
    above = np.array([[1.0, 0.51], [0.51, 1.0]])
    below = np.array([[1.0, 0.49], [0.49, 1.0]])
    assert len(ref.cluster_partition(symbols, shares, above, 0.5)) == 1
    assert len(ref.cluster_partition(symbols, shares, below, 0.5)) == 2


def test_liquidation_distance_by_hand():
    # mu = 0.02 * (1.5 + 0.5) = 0.04 ; x = (1 - 0.04) / |1.5 - 0.5|
    assert ref.liquidation_distance(1.0, 0.04) == pytest.approx(0.96)
    assert ref.liquidation_distance(-2.0, 0.04) == pytest.approx(0.48)
    assert ref.liquidation_distance(1e-13, 0.04) is None


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


def test_identical_returns_give_unit_correlation_and_one_bet():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 3.0, "s1", 0.8),
            ("2024-01-01T00:00:00Z", "acc", "BBB", 1.0, "s1", None),
        ],
        [("2024-01-01T00:00:00Z", "acc", 10.0, "", 0.02)],
    )
    frame = model.frame(LAST_BAR, "bar", "acc", None, "fast")
    p_aaa = price_path(BASE_RETURNS)[-1]
    s = np.array([3.0 * p_aaa, 2.0 * p_aaa]) / 10.0
    assert frame["correlated_exposure"] == pytest.approx(s.sum(), rel=1e-12)
    assert frame["effective_bets"] == pytest.approx(1.0, rel=1e-12)
    assert frame["absorption_ratio"] == pytest.approx(1.0, rel=1e-12)
    assert frame["hhi"] == pytest.approx((3 / 5) ** 2 + (2 / 5) ** 2)
    assert frame["warming_up"] is False
    assert frame["desk"] is None
    (cluster,) = frame["clusters"]
    assert cluster["cluster"] == "AAA"
    assert cluster["members"] == ["AAA", "BBB"]
    assert cluster["concentration"] == pytest.approx(s.sum(), rel=1e-12)
    # both legs share sigma: the cluster's per-bar sigma is |N| sigma
    sigma = model.volatility("fast", model.bar_index(LAST_BAR, "bar"), ["AAA"])[0]
    mu = 0.02 * s.sum()
    x = (1 - mu) / s.sum()
    assert cluster["liq_distance"] == pytest.approx(x, rel=1e-12)
    assert cluster["liq_sigma"] == pytest.approx(x / (sigma * math.sqrt(86400 / BAR_S)), rel=1e-9)
    assert frame["var99_1d"] == pytest.approx(
        2.326 * s.sum() * sigma * math.sqrt(86400 / BAR_S) * 10.0, rel=1e-9
    )
    assert [p["cluster"] for p in frame["positions"]] == ["AAA", "AAA"]
    assert [p["conviction"] for p in frame["positions"]] == [0.8, None]
    assert [p["quadrant"] for p in frame["positions"]] == ["core", "core"]


def test_long_and_short_clone_cancel():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 10.0, "", None),
            ("2024-01-01T00:00:00Z", "acc", "BBB", -5.0, "", None),
        ],
        [("2024-01-01T00:00:00Z", "acc", 10.0, "", None)],
    )
    frame = model.frame(LAST_BAR, "bar", "acc", None, "fast")
    assert frame["net"] == 0.0
    assert frame["correlated_exposure"] == pytest.approx(0.0, abs=1e-9)
    assert frame["var99_1d"] == pytest.approx(0.0, abs=1e-9)
    assert frame["liq_distance"] is None
    assert frame["clusters"][0]["liq_distance"] is None
    assert frame["clusters"][0]["liq_sigma"] is None
    assert frame["clusters"][0]["concentration"] == pytest.approx(0.0, abs=1e-9)
    assert frame["clusters"][0]["stress_concentration"] == pytest.approx(0.0, abs=1e-9)
    assert frame["gross"] == pytest.approx(2 * 10.0 * price_path(BASE_RETURNS)[-1] / 10.0)
    assert [p["strategy"] for p in frame["positions"]] == ["", ""]


def test_uncorrelated_book_and_warm_up():
    positions = [
        ("2024-01-01T00:00:00Z", "acc", "AAA", 1.0, "", None),
        ("2024-01-01T00:00:00Z", "acc", "CCC", 0.5, "", None),
    ]
    model = clone_model(positions)
    # after bar 2 only two returns exist: every symbol warms, rho is the identity
    frame = model.frame(boundary(2), "bar", "acc", None, "fast")
    assert frame["warming_up"] is True
    shares = np.array([p["share"] for p in frame["positions"]])
    assert frame["correlated_exposure"] == pytest.approx(np.linalg.norm(shares))
    assert frame["stress_exposure"] == pytest.approx(math.sqrt(shares @ shares + shares.prod()))
    assert frame["regime_break"] is None  # warming pairs say nothing about a break
    late = model.frame(LAST_BAR, "bar", "acc", None, "fast")
    assert late["warming_up"] is False


def test_equity_falls_back_to_gross_notional():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 2.0, "", None),
            ("2024-01-01T00:00:00Z", "acc", "CCC", -1.0, "", None),
        ]
    )
    frame = model.frame(LAST_BAR, "bar", "acc", None, "fast")
    notional = [p["notional"] for p in frame["positions"]]
    assert frame["equity"] == pytest.approx(sum(abs(n) for n in notional))
    assert frame["gross"] == pytest.approx(1.0)
    assert frame["liq_distance"] == pytest.approx((1 - 0.005) / abs(frame["net"]))
    # An account never named in the inputs gets no frame (it does not exist).
    assert not model.emits(LAST_BAR, "nobody", None)


def test_non_positive_equity_emits_nothing():
    model = clone_model(
        [("2024-01-01T00:00:00Z", "acc", "AAA", 1.0, "", None)],
        [("2024-01-01T00:00:00Z", "acc", 0.0, "", None)],
    )
    assert model.frame(LAST_BAR, "bar", "acc", None, "fast") is None


def test_latest_rows_strategies_and_closing():
    model = clone_model(
        [
            ("2024-01-01T00:01:00Z", "acc", "AAA", 4.0, "zeta", 0.9),
            ("2024-01-01T00:01:00Z", "acc", "AAA", -4.0, "alpha", None),
            ("2024-01-01T00:01:00Z", "acc", "CCC", 1.0, "x", 0.2),
            ("2024-01-01T00:20:00Z", "acc", "AAA", 6.0, "zeta", 0.7),
            ("2024-01-01T00:21:30Z", "acc", "CCC", 0.0, "x", None),
            ("2024-01-01T00:30:00Z", "acc", "CCC", -2.0, "x", None),
        ],
        [("2024-01-01T00:00:00Z", "acc", 10.0, "d1", None)],
    )
    early = model.frame(boundary(2), "bar", "acc", None, "fast")
    # AAA nets to 0 over strategies: not held; CCC held
    assert [p["symbol"] for p in early["positions"]] == ["CCC"]
    assert early["desk"] == "d1"
    mid = model.frame(boundary(4), "bar", "acc", None, "fast")
    (aaa, ccc) = mid["positions"]
    assert (aaa["qty"], aaa["strategy"], aaa["conviction"]) == (2.0, "zeta", 0.7)
    assert ccc["quadrant"] == "unsure"
    closed = model.frame("2024-01-01T00:25:00Z", "position", "acc", None, "fast")
    assert [p["symbol"] for p in closed["positions"]] == ["AAA"]
    reopened = model.frame(boundary(6), "bar", "acc", None, "fast")
    assert [p["qty"] for p in reopened["positions"]] == [2.0, -2.0]


def test_strategy_tie_is_alphabetical():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 3.0, "beta", 0.2),
            ("2024-01-01T00:00:00Z", "acc", "AAA", -3.0, "alpha", 0.9),
            ("2024-01-01T00:00:00Z", "acc", "AAA", 1.0, "gamma", 0.5),
        ]
    )
    (row,) = model.frame(LAST_BAR, "bar", "acc", None, "fast")["positions"]
    assert (row["qty"], row["strategy"], row["conviction"]) == (1.0, "alpha", 0.9)


def test_frame_timing_conventions():
    model = clone_model([("2024-01-01T00:00:00Z", "acc", "AAA", 1.0, "", None)])
    assert model.bar_index(boundary(5), "bar") == 5
    assert model.bar_index(boundary(5), "position") == 4
    assert model.bar_index(boundary(5) + pd.Timedelta(seconds=1), "equity") == 5
    assert model.bar_index(START - pd.Timedelta(seconds=1), "position") == -1
    with pytest.raises(ValueError, match="boundary"):
        model.frame(boundary(5) + pd.Timedelta(seconds=1), "bar", "acc", None, "fast")
    frame = model.frame(boundary(5) + pd.Timedelta(seconds=150), "position", "acc", None, "fast")
    (row,) = frame["positions"]
    assert row["price_age_s"] == 150.0
    assert row["stale"] is True
    assert frame["stale"] is True
    assert frame["max_price_age_s"] == 150.0
    assert row["price"] == pytest.approx(price_path(BASE_RETURNS)[5])
    on_bar = model.frame(boundary(5), "bar", "acc", None, "fast")
    assert on_bar["positions"][0]["stale"] is False
    assert on_bar["positions"][0]["price_age_s"] == 0.0


def test_position_at_boundary_is_in_that_bar_frame():
    model = clone_model([("2024-01-01T00:25:00Z", "acc", "AAA", 1.0, "", None)])
    assert not model.emits(boundary(4), "acc", None)  # not named before 00:25
    assert model.frame(boundary(5), "bar", "acc", None, "fast") is not None
    assert model.frame(boundary(5), "position", "acc", None, "fast") is not None


def test_desk_frame_is_one_book():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "a1", "AAA", 2.0, "s", 0.3),
            ("2024-01-01T00:00:00Z", "a2", "AAA", -5.0, "t", 0.8),
            ("2024-01-01T00:00:00Z", "a2", "CCC", 1.0, "t", None),
            ("2024-01-01T00:00:00Z", "a1", "CCC", -1.0, "s", None),
            ("2024-01-01T00:00:00Z", "outsider", "AAA", 100.0, "", None),
        ],
        [
            ("2024-01-01T00:00:00Z", "a1", 10.0, "desk", 0.01),
            ("2024-01-01T00:00:00Z", "a2", 30.0, "desk", None),
            ("2024-01-01T00:00:00Z", "outsider", 5.0, "", None),
        ],
    )
    frame = model.frame(LAST_BAR, "bar", None, "desk", "fast")
    assert frame["account"] is None and frame["desk"] == "desk"
    assert frame["equity"] == 40.0
    (row,) = frame["positions"]  # CCC nets to zero over the desk
    assert (row["symbol"], row["qty"], row["strategy"], row["conviction"]) == (
        "AAA",
        -3.0,
        "t",
        0.8,
    )
    p_aaa = price_path(BASE_RETURNS)[-1]
    p_ccc = model.price_at("CCC", LAST_BAR)[0]
    margin = 0.01 * (2 * p_aaa + p_ccc) + 0.005 * (5 * p_aaa + p_ccc)
    net = -3.0 * p_aaa / 40.0
    assert frame["liq_distance"] == pytest.approx((1 - margin / 40.0) / abs(net))


def test_regime_break_matches_pandas():
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 1.0, "", None),
            ("2024-01-01T00:00:00Z", "acc", "CCC", 1.0, "", None),
        ]
    )
    returns = ref.log_returns(model.closes)[["AAA", "CCC"]]
    fast = returns.ewm(halflife=2.0, adjust=False).corr().loc[LAST_BAR].loc["AAA", "CCC"]
    slow = returns.ewm(halflife=8.0, adjust=False).corr().loc[LAST_BAR].loc["AAA", "CCC"]
    for timeframe in ("fast", "slow"):
        frame = model.frame(LAST_BAR, "bar", "acc", None, timeframe)
        assert frame["regime_break"] == pytest.approx(abs(fast - slow), rel=1e-12)


# ---------------------------------------------------------------------------
# Comparison and replay walking
# ---------------------------------------------------------------------------


def _reference_frame() -> dict:
    model = clone_model(
        [
            ("2024-01-01T00:00:00Z", "acc", "AAA", 3.0, "s1", 0.8),
            ("2024-01-01T00:00:00Z", "acc", "BBB", 1.0, "s1", None),
            ("2024-01-01T00:00:00Z", "acc", "CCC", -1.0, "", None),
        ],
        [("2024-01-01T00:00:00Z", "acc", 10.0, "", 0.02)],
    )
    return model.frame(LAST_BAR, "bar", "acc", None, "fast")


def test_compare_frames_identical_and_reordered():
    frame = _reference_frame()
    assert ref.compare_frames(frame, frame) == []
    engine = json.loads(json.dumps(frame))
    engine["ts"] = "2024-01-01T00:50:00Z"
    for cluster in engine["clusters"]:
        cluster["members"] = list(reversed(cluster["members"]))
    engine["positions"][2]["strategy"] = None
    engine["heat"] = "extra fields are ignored"
    engine["params"] = {"whatever": 1}
    assert ref.compare_frames(engine, frame) == []


def test_compare_frames_reports_paths():
    frame = _reference_frame()
    engine = json.loads(json.dumps(frame))
    engine["positions"][0]["heat"] *= 1 + 1e-4
    engine["effective_bets"] = None
    engine["stale"] = 0
    del engine["hhi"]
    engine["clusters"][0]["members"] = ["AAA"]
    engine["positions"] = engine["positions"][:2]
    problems = ref.compare_frames(engine, frame)
    text = "\n".join(problems)
    assert "$.positions[AAA].heat" in text
    assert "$.effective_bets" in text
    assert "$.stale" in text
    assert "$.hhi: missing" in text
    assert "$.positions[CCC]: missing" in text
    assert "$.clusters" in text
    small = json.loads(json.dumps(frame))
    small["positions"][0]["heat"] *= 1 + 1e-8
    assert ref.compare_frames(small, frame) == []


def _write_inputs(tmp_path) -> tuple[list, object, object]:
    aaa = price_path(BASE_RETURNS)
    paths = []
    for symbol, prices in {"AAA": aaa, "BBB": 2.0 * aaa}.items():
        csv = tmp_path / f"{symbol}.csv"
        lines = ["timestamp,close"] + [
            f"{boundary(k).strftime('%Y-%m-%dT%H:%M:%SZ')},{float(price)!r}"
            for k, price in enumerate(prices)
        ]
        csv.write_text("\n".join(lines) + "\n")
        paths.append(csv)
    positions = tmp_path / "positions.csv"
    positions.write_text(
        "timestamp,account,symbol,qty,strategy,conviction\n"
        "2024-01-01T00:12:30Z,acc,AAA,3,s1,0.8\n"
        "2024-01-01T00:12:30Z,acc,BBB,-1,,\n"
    )
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("timestamp,account,equity,desk,maintenance_rate\n")
    return paths, positions, accounts


def test_check_replay_output_walks_a_file(tmp_path):
    paths, positions, accounts = _write_inputs(tmp_path)
    model = ref.ReferenceModel(paths, positions, accounts, PARAMS)
    frames = []
    for tf, halflife in PARAMS["timeframes"].items():
        params = {**PARAMS, "timeframe": tf, "halflife_bars": halflife}
        for ts in model.closes.index:
            if model.emits(ts, "acc", None):
                frame = model.frame(ts, "bar", "acc", None, tf)
                frames.append({**frame, "params": params, "params_hash": "x"})
        frame = model.frame("2024-01-01T00:12:30Z", "position", "acc", None, tf)
        frames.append({**frame, "params": params, "params_hash": "x"})
    out = tmp_path / "frames.jsonl"
    out.write_text("".join(json.dumps(f) + "\n" for f in frames))
    summary = ref.check_replay_output(out, paths, positions, accounts)
    assert summary.ok, summary.mismatches
    assert summary.frames_checked == len(frames) == 2 * (8 + 1)
    assert summary.by_trigger == {"bar": 16, "position": 2}
    assert summary.missing_bar_frame_count == 0

    frames[3]["var99_1d"] *= 1.01
    del frames[5]  # a missing bar frame
    out.write_text("".join(json.dumps(f) + "\n" for f in frames))
    summary = ref.check_replay_output(out, paths, positions, accounts)
    assert not summary.ok
    assert summary.frames_mismatched == 1
    assert "$.var99_1d" in summary.mismatches[0]
    assert summary.missing_bar_frame_count == 1


def test_replay_fixture_on_real_data():
    prices = sorted((REPO / "data" / "binance-5m").glob("*.csv"))
    replay = REPO / "tests" / "data" / "replay"
    params = {
        **PARAMS,
        "timeframe": "1h",
        "halflife_bars": 12.0,
        "timeframes": {"1h": 12.0, "4h": 48.0, "1d": 288.0},
        "min_periods": 20,
    }
    model = ref.ReferenceModel(prices, replay / "positions.csv", replay / "accounts.csv", params)
    assert len(prices) == 10
    assert 60 <= len(model.positions) <= 120
    assert set(model.positions["symbol"]) <= set(model.closes.columns)
    leveraged = model.frame("2018-01-16T15:00:00Z", "bar", "acct-b2", None, "4h")
    assert leveraged["gross"] > 1.0
    assert leveraged["desk"] == "beta"
    assert leveraged["liq_distance"] == pytest.approx(
        (1 - 0.02 * leveraged["gross"]) / leveraged["net"]
    )
    # acct-a2 trades before its first accounts row: fully funded
    early = model.frame("2018-01-12T00:00:00Z", "bar", "acct-a2", None, "1h")
    assert early["gross"] == pytest.approx(1.0)
    desk = model.frame("2018-01-20T12:02:30Z", "position", None, "alpha", "1d")
    assert desk["account"] is None and len(desk["positions"]) >= 5
    assert desk["stale"] is True and desk["max_price_age_s"] == 150.0
