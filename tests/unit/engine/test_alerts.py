"""Alert hysteresis: fire after min_frames breaches, resolve only clearly below."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.schema import ClusterRow, Frame, ms_to_rfc3339


def _frame(n: int, concentration: float | None = None, regime: float | None = None,
           stale: bool = False, desk: str | None = None, price_age_s: float | None = None,
           account: str | None = "a") -> Frame:
    clusters = [] if concentration is None else [ClusterRow(
        cluster="ETHUSDT", members=["ETHUSDT"], gross=concentration, net=concentration,
        concentration=concentration, stress_concentration=concentration, liq_distance=10.0,
        liq_sigma=50.0)]
    return Frame(ts=ms_to_rfc3339(n * 1000), trigger="bar", account=account, desk=desk,
                 timeframe="1h", equity=1.0, gross=0.0, net=0.0, correlated_exposure=0.0,
                 stress_exposure=0.0, effective_bets=None, hhi=None,
                 max_cluster_concentration=concentration, liq_distance=None, var99_1d=0.0,
                 absorption_ratio=None, regime_break=regime, stale=stale,
                 max_price_age_s=price_age_s, warming_up=False,
                 params={"stale_after_s": 2.0}, params_hash="",
                 positions=[], clusters=clusters)


def _run(values, **kwargs):
    monitor = AlertMonitor(**kwargs)
    return [alert for n, value in enumerate(values)
            for alert in monitor.observe(_frame(n, concentration=value))]


def test_fires_after_min_frames_and_escalates() -> None:
    alerts = _run([0.21, 0.21, 0.21, 0.26, 0.26, 0.26, 0.17])
    assert [(a.state, a.severity, a.ts[17:19]) for a in alerts] == [
        ("firing", "warning", "02"), ("firing", "critical", "05"),
        ("resolved", "critical", "06")]
    assert alerts[0].kind == "cluster_concentration" and alerts[0].subject == "ETHUSDT"
    assert alerts[0].threshold == 0.20 and alerts[1].threshold == 0.25


def test_two_breaches_then_a_dip_do_not_fire() -> None:
    assert _run([0.21, 0.21, 0.19, 0.21, 0.21, 0.19]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.9 * 0.20 + 1e-9, 0.20 - 1e-9), min_size=1, max_size=60))
def test_hovering_between_0_9x_and_1x_never_flaps(hover) -> None:
    # Once firing, a value between 0.9 x and 1 x the threshold never resolves it ...
    alerts = _run([0.21, 0.21, 0.21, *hover])
    assert [(a.state, a.severity) for a in alerts] == [("firing", "warning")]
    # ... and never fires it in the first place.
    assert _run(hover) == []


def test_vanished_cluster_resolves() -> None:
    monitor = AlertMonitor()
    fired = [a for n in range(3) for a in monitor.observe(_frame(n, concentration=0.22))]
    assert [a.state for a in fired] == ["firing"]
    [resolved] = monitor.observe(_frame(4, concentration=None))
    assert resolved.state == "resolved" and resolved.subject == "ETHUSDT"


def test_thresholds_per_desk() -> None:
    tight = AlertThresholds(cluster_concentration_warning=0.1,
                            cluster_concentration_critical=0.15)
    monitor = AlertMonitor(per_desk={"alpha": tight})
    alerts = [a for n in range(3)
              for a in monitor.observe(_frame(n, concentration=0.12, desk="alpha"))]
    assert [a.threshold for a in alerts] == [0.1]


def test_stale_heat_counts_from_when_prices_went_stale() -> None:
    # The feed stopped at t=0: at t the oldest price is t seconds old, stale after 2 s,
    # so the frame has been stale for t - 2 s; that passes 5 s at t = 8 s.
    monitor = AlertMonitor()
    alerts = [a for n in range(3, 14)
              for a in monitor.observe(_frame(n, stale=True, price_age_s=float(n)))]
    assert [(a.kind, a.state) for a in alerts] == [("stale_heat", "firing")]
    assert alerts[0].ts.endswith("10.000Z")  # breaches at 8, 9 and 10 s: min_frames = 3
    assert alerts[0].value == 8.0
    [resolved] = monitor.observe(_frame(14, stale=False, price_age_s=0.0))
    assert resolved.state == "resolved"


def test_an_account_moving_desks_keeps_one_alert_state() -> None:
    monitor = AlertMonitor()
    fired = [a for n in range(3)
             for a in monitor.observe(_frame(n, concentration=0.22, desk="d1"))]
    assert [a.state for a in fired] == ["firing"]
    # Same account, now reported under desk d2: still the same alert, not a second one.
    assert monitor.observe(_frame(3, concentration=0.22, desk="d2")) == []
    [resolved] = monitor.observe(_frame(4, concentration=0.1, desk="d2"))
    assert resolved.state == "resolved"


def test_regime_break() -> None:
    monitor = AlertMonitor()
    alerts = [a for n, value in enumerate([0.31, 0.35, 0.4, 0.28, 0.26])
              for a in monitor.observe(_frame(n, regime=value))]
    assert [(a.kind, a.state) for a in alerts] == [("regime_break", "firing"),
                                                    ("regime_break", "resolved")]


def test_alerts_carry_the_levels_of_their_desk() -> None:
    tight = AlertThresholds(cluster_concentration_warning=0.1,
                            cluster_concentration_critical=0.15)
    monitor = AlertMonitor(per_desk={"alpha": tight})
    alerts = [a for n in range(3) for desk in ("alpha", "beta")
              for a in monitor.observe(_frame(n, concentration=0.22, desk=desk,
                                              account=desk))]
    levels = {(a.desk, a.severity): (a.warning_threshold, a.critical_threshold) for a in alerts}
    assert levels == {("alpha", "critical"): (0.1, 0.15), ("beta", "warning"): (0.2, 0.25)}
    [regime] = [a for n in range(3) for a in monitor.observe(_frame(n, regime=0.5))]
    assert (regime.warning_threshold, regime.critical_threshold) == (0.3, None)


def test_only_the_configured_timeframes_alert() -> None:
    monitor = AlertMonitor(AlertThresholds(timeframes=("4h",)))
    assert [a for n in range(5) for a in monitor.observe(_frame(n, concentration=0.3))] == []
    # A machine of a timeframe that stops alerting resolves on its next frame.
    monitor = AlertMonitor(per_desk={"d1": AlertThresholds(timeframes=("1h",))})
    fired = [a for n in range(3)
             for a in monitor.observe(_frame(n, concentration=0.3, desk="d1"))]
    assert [a.state for a in fired] == ["firing"]
    monitor.per_desk = {"d1": AlertThresholds(timeframes=("4h",))}
    [resolved] = monitor.observe(_frame(3, concentration=0.3, desk="d1"))
    assert (resolved.state, resolved.value) == ("resolved", None)
