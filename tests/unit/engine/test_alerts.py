"""Alert hysteresis: fire after min_frames breaches, resolve only clearly below."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.schema import ClusterRow, Frame, PositionRow, ms_to_rfc3339


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


# SPEC's hysteresis alone: a level is left at the first recovered frame.
IMMEDIATE = AlertThresholds(resolve_after_s=0.0)


def _run(values, **kwargs):
    monitor = AlertMonitor(**{"defaults": IMMEDIATE, **kwargs})
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
    monitor = AlertMonitor(IMMEDIATE)
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


def _in(frame: Frame, timeframe: str) -> Frame:
    """``frame`` as the engine makes it for ``timeframe`` of 1h, 4h and 1d."""
    params = {**frame.params, "timeframes": {"1h": 12.0, "4h": 48.0, "1d": 288.0}}
    return msgspec.structs.replace(frame, timeframe=timeframe, params=params)


def test_book_wide_alerts_fire_once_per_book_on_its_fastest_alerting_timeframe() -> None:
    monitor = AlertMonitor(per_desk={"d1": AlertThresholds(timeframes=("4h", "1d"))})
    fired = [(a.account, a.desk, a.timeframe, a.kind)
             for n in range(3) for account, desk in (("a", None), ("b", "d1"))
             for timeframe in ("1d", "4h", "1h")
             for a in monitor.observe(_in(_frame(n, regime=0.5, stale=True, price_age_s=60.0,
                                                 desk=desk, account=account), timeframe))]
    assert sorted(fired) == [("a", None, "1h", "regime_break"), ("a", None, "1h", "stale_heat"),
                             ("b", "d1", "4h", "regime_break"), ("b", "d1", "4h", "stale_heat")]
    # Cluster alerts stay per timeframe.
    clustered = AlertMonitor()
    assert len([a for n in range(3) for timeframe in ("1h", "4h", "1d")
                for a in clustered.observe(_in(_frame(n, concentration=0.3), timeframe))]) == 3


HELD_S = 600.0  # a hold of ten minutes of frame time
HOLDING = AlertThresholds(resolve_after_s=HELD_S)


def _held(minute: int, concentration: float | None) -> Frame:
    """A frame at ``minute`` of a book that holds a coin; its one cluster at
    ``concentration`` (None: no cluster formed)."""
    held = PositionRow(symbol="ETHUSDT", strategy=None, qty=1.0, price=1.0, notional=1.0,
                       share=0.1, heat=0.0, heat_share=None, risk_contribution=0.0,
                       cluster="ETHUSDT", quadrant="cold", conviction=None, stale=False,
                       price_age_s=0.0)
    frame = _frame(minute * 60, concentration=concentration)
    return msgspec.structs.replace(frame, positions=[held])


def _transitions(monitor: AlertMonitor, values: list[float | None]) -> list[tuple[str, str, int]]:
    return [(a.state, a.severity, n) for n, value in enumerate(values)
            for a in monitor.observe(_held(n, value))]


def test_a_cluster_alert_resolves_only_after_recovering_for_its_hold() -> None:
    # Fired at minute 2; recovered at 3 (held), back over the line at 5 (the hold
    # starts again), recovered from 6 on: resolved at 16, ten minutes later.
    values = [0.3, 0.3, 0.3, 0.1, 0.1, 0.3, *[0.1] * 12]
    assert _transitions(AlertMonitor(HOLDING), values) == [
        ("firing", "critical", 2), ("resolved", "critical", 16)]
    # Without a hold, every dip resolves and every return fires again.
    assert _transitions(AlertMonitor(IMMEDIATE), values) == [
        ("firing", "critical", 2), ("resolved", "critical", 3)]


def test_stepping_down_a_level_waits_for_the_hold_too() -> None:
    values = [0.3, 0.3, 0.3, *[0.21] * 12]
    assert _transitions(AlertMonitor(HOLDING), values) == [
        ("firing", "critical", 2), ("firing", "warning", 13)]


def test_a_vanished_cluster_is_held_and_a_flat_book_resolves_at_once() -> None:
    monitor = AlertMonitor(HOLDING)
    # The cluster is gone from minute 3 on and comes back at 8: the same alert goes on.
    values: list[float | None] = [0.3, 0.3, 0.3, None, None, None, None, None, 0.3]
    assert _transitions(monitor, values) == [("firing", "critical", 2)]
    # Gone for the whole hold: resolved when it ends.
    assert [(a.state, a.ts) for n in range(9, 20) for a in monitor.observe(_held(n, None))] \
        == [("resolved", ms_to_rfc3339(19 * 60_000))]
    flat = AlertMonitor(HOLDING)
    _transitions(flat, [0.3, 0.3, 0.3])
    [resolved] = flat.observe(_frame(3 * 60, concentration=None))
    assert resolved.state == "resolved"


def test_a_held_alert_survives_export_and_restore() -> None:
    monitor = AlertMonitor(HOLDING)
    _transitions(monitor, [0.3, 0.3, 0.3, 0.1])
    restored = AlertMonitor(HOLDING)
    restored.restore_state(monitor.export_state())
    later = [(a.state, n) for n in range(4, 14)
             for a in restored.observe(_held(n, 0.1))]
    assert later == [("resolved", 13)]


def test_levels_publish_the_defaults_and_each_desk_resolved() -> None:
    beta = AlertThresholds(cluster_concentration_warning=0.3, cluster_concentration_critical=0.4,
                           timeframes=("4h",))
    monitor = AlertMonitor(per_desk={"beta": beta, "alpha": AlertThresholds()})
    defaults, alpha, published_beta = monitor.levels(60_000)
    assert [levels.desk for levels in (defaults, alpha, published_beta)] == [
        None, "alpha", "beta"]
    assert defaults.ts == ms_to_rfc3339(60_000) and defaults.timeframes is None
    assert (defaults.cluster_concentration_critical, defaults.resolve_after_s) == (0.25, 3600.0)
    assert (published_beta.cluster_concentration_warning,
            published_beta.cluster_concentration_critical) == (0.3, 0.4)
    assert published_beta.timeframes == ["4h"] and published_beta.min_frames == 3
