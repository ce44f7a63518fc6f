"""Alert hysteresis: fire after min_frames breaches, resolve only clearly below."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.schema import ClusterRow, Frame, ms_to_rfc3339


def _frame(n: int, concentration: float | None = None, regime: float | None = None,
           stale: bool = False, desk: str | None = None) -> Frame:
    clusters = [] if concentration is None else [ClusterRow(
        cluster="ETHUSDT", members=["ETHUSDT"], gross=concentration, net=concentration,
        concentration=concentration, stress_concentration=concentration, liq_distance=10.0,
        liq_sigma=50.0)]
    return Frame(ts=ms_to_rfc3339(n * 1000), trigger="bar", account="a", desk=desk,
                 timeframe="1h", equity=1.0, gross=0.0, net=0.0, correlated_exposure=0.0,
                 stress_exposure=0.0, effective_bets=None, hhi=None,
                 max_cluster_concentration=concentration, liq_distance=None, var99_1d=0.0,
                 absorption_ratio=None, regime_break=regime, stale=stale,
                 max_price_age_s=None, warming_up=False, params={}, params_hash="",
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


def test_stale_heat_fires_after_five_seconds_stale() -> None:
    monitor = AlertMonitor()
    alerts = [a for n in range(0, 12) for a in monitor.observe(_frame(n, stale=True))]
    assert [(a.kind, a.state) for a in alerts] == [("stale_heat", "firing")]
    assert alerts[0].ts.endswith("08.000Z")  # stale > 5 s from 6 s on, third such frame at 8 s
    [resolved] = monitor.observe(_frame(13, stale=False))
    assert resolved.state == "resolved"


def test_regime_break() -> None:
    monitor = AlertMonitor()
    alerts = [a for n, value in enumerate([0.31, 0.35, 0.4, 0.28, 0.26])
              for a in monitor.observe(_frame(n, regime=value))]
    assert [(a.kind, a.state) for a in alerts] == [("regime_break", "firing"),
                                                    ("regime_break", "resolved")]
