"""Hand-made frames and alerts for the demo's board and view tests."""

from __future__ import annotations

from heatmap.schema import Alert, ClusterRow, Frame, PositionRow


def position(symbol: str, heat: float, share: float, cluster: str = "ETHUSDT",
             stale: bool = False) -> PositionRow:
    return PositionRow(symbol=symbol, strategy="trend", qty=share * 10, price=100.0,
                       notional=share * 1000, share=share, heat=heat, heat_share=heat / 0.5,
                       risk_contribution=heat / 2, cluster=cluster,
                       quadrant="hedge" if heat < 0 else "core", conviction=0.7, stale=stale,
                       price_age_s=0.5)


def cluster(name: str, concentration: float, members: tuple[str, ...] = (),
            liq_sigma: float | None = 2.5) -> ClusterRow:
    return ClusterRow(cluster=name, members=[name, *members], gross=concentration * 1.2,
                      net=concentration, concentration=concentration,
                      stress_concentration=concentration * 1.1, liq_distance=0.8,
                      liq_sigma=liq_sigma)


def frame(ts: str = "2018-01-16T12:00:00Z", account: str | None = "acct-a1",
          desk: str | None = "alpha", timeframe: str = "1h",
          positions: tuple[PositionRow, ...] = (), clusters: tuple[ClusterRow, ...] = (),
          stale: bool = False) -> Frame:
    return Frame(ts=ts, trigger="bar", account=account, desk=desk, timeframe=timeframe,
                 equity=40.0, gross=1.5, net=0.9, correlated_exposure=0.6,
                 stress_exposure=0.7, effective_bets=2.4, hhi=0.3,
                 max_cluster_concentration=max((c.concentration for c in clusters),
                                               default=None),
                 liq_distance=0.9, var99_1d=3.2, absorption_ratio=0.7, regime_break=0.1,
                 stale=stale, max_price_age_s=0.4, warming_up=False, params={},
                 params_hash="p1", positions=list(positions), clusters=list(clusters))


def alert(state: str = "firing", account: str | None = "acct-a1", subject: str = "ETHUSDT",
          kind: str = "cluster_concentration", severity: str = "critical",
          ts: str = "2018-01-16T12:00:00Z", timeframe: str = "1h") -> Alert:
    return Alert(ts=ts, account=account, desk=None if account else "alpha",
                 timeframe=timeframe, kind=kind, subject=subject,  # type: ignore[arg-type]
                 severity=severity, state=state, value=0.31,  # type: ignore[arg-type]
                 threshold=0.25, message=f"{subject} concentration 31% >= 25%")
