"""Calibrating a desk's thresholds on twelve hours of synthetic one-minute prices: a
clustered pair book (desk alpha) that a sell-off liquidates at 10x, and a spread book
(desk beta) that nothing threatens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from heatmap.alert_report.calibrate import (
    CONCENTRATION_CRITICAL,
    Calibration,
    Candidate,
    calibrate,
    candidates,
    config_toml,
    critical_ms,
    suggested_thresholds,
)
from heatmap.alert_report.calibrate_table import suggestion_line
from heatmap.alert_report.events import CompareEvents, Event, compare_events, scenario_key
from heatmap.alert_report.lead import Warnings
from heatmap.compare.run import CompareSettings
from heatmap.engine.alerts import AlertThresholds
from heatmap.engine.params import EngineParams
from heatmap.process.alert_config import parse_alert_config
from heatmap.schema import Account, Alert, Position, Price, rfc3339_to_ms

START = datetime(2018, 1, 11, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
OPEN = START + timedelta(minutes=120)
BOOKS = {"pair": ("alpha", {"AAA": 300.0, "BBB": 300.0}),
         "spread": ("beta", {"AAA": 50.0, "CCC": 50.0, "DDD": 50.0, "BBB": -50.0})}
PARAMS = EngineParams(bar_interval_s=60, timeframes={"15m": 900, "1h": 3600}, min_periods=10)
LEVERAGES = (5.0, 10.0)


def messages(minutes: int = 720) -> list[Price | Position | Account]:
    """AAA and BBB move together (and sell off from minute 400 to 460), CCC alone, DDD
    against them; both books open at minute 120 with an equity of 100."""
    generator = np.random.default_rng(11)
    common = generator.normal(0.0, 0.004, minutes)
    common[400:460] -= 0.004
    levels = np.array([10.0, 20.0, 40.0, 5.0])
    found: list[Price | Position | Account] = []
    for minute in range(minutes):
        moves = common[minute] * np.array([1.0, 0.9, 0.0, -0.3]) + generator.normal(0, 0.002, 4)
        levels = levels * np.exp(moves)
        ts = START + timedelta(minutes=minute)
        found += [Price(symbol=s, ts=ts, price=float(p), source="test")
                  for s, p in zip(SYMBOLS, levels, strict=True)]
        if ts == OPEN:
            for account, (desk, notional) in BOOKS.items():
                found.append(Account(account=account, ts=ts, equity=100.0, desk=desk))
                found += [Position(account=account, symbol=s, ts=ts,
                                   qty=n / float(levels[SYMBOLS.index(s)]))
                          for s, n in notional.items()]
    return found


def settings(defaults: AlertThresholds | None = None,
             per_desk: dict[str, AlertThresholds] | None = None) -> CompareSettings:
    return CompareSettings(params=PARAMS, leverages=LEVERAGES,
                           thresholds=defaults or AlertThresholds(),
                           alert_per_desk=per_desk or {})


@pytest.fixture(scope="module")
def found() -> CompareEvents:
    return compare_events(messages(), settings(), keep_frames=True)


@pytest.fixture(scope="module")
def calibration(found: CompareEvents) -> Calibration:
    return calibrate(found, AlertThresholds(), {}, heat_timeframe="1h",
                     leverages=["5x", "10x"])


def test_the_grid_is_valid_and_most_cautious_first() -> None:
    grid = candidates()
    assert len(grid) == len(set(grid)) == 8 * 3 * 3
    assert grid[0].cluster_concentration_critical == CONCENTRATION_CRITICAL[0]
    assert [c.order() for c in grid] == sorted(c.order() for c in grid)
    for candidate in grid:
        assert candidate.cluster_concentration_warning == pytest.approx(
            0.8 * candidate.cluster_concentration_critical)
        assert candidate.liquidation_sigma_warning == pytest.approx(
            3.0 * candidate.liquidation_sigma_critical)
    # SPEC's defaults are a candidate.
    assert Candidate.of(AlertThresholds()) in grid


def test_frames_are_kept_once_and_events_found(found: CompareEvents) -> None:
    assert found.frames
    assert {key for key, _ in found.frames} == {
        scenario_key(book, leverage) for book in BOOKS for leverage in ("5x", "10x")}
    kinds = {(e.book, e.leverage, e.kind) for e in found.events}
    assert ("pair", "10x", "liquidation") in kinds
    assert all(e.book == "pair" for e in found.events)


def test_each_desk_is_judged_on_its_own_books(calibration: Calibration) -> None:
    desks = {d.desk: d for d in calibration.desks}
    assert sorted(desks) == ["alpha", "beta"]
    alpha, beta = desks["alpha"], desks["beta"]
    assert alpha.books == ["pair 10x", "pair 5x"]
    assert beta.events == []
    assert len(alpha.candidates) == len(candidates())
    assert alpha.current.thresholds == Candidate.of(AlertThresholds())
    assert alpha.warns_every_event
    # Fewer pages than SPEC's defaults, or as few.
    assert alpha.suggested.firings <= alpha.current.firings
    assert alpha.suggested.firings == min(
        r.firings for r in alpha.candidates
        if r.warned == sum(not e.at_open for e in alpha.events))
    assert "every event warned" in suggestion_line(alpha)
    assert "no liquidation or near miss to warn of" in suggestion_line(beta)


def test_the_suggestion_warns_before_every_event_when_run_again(
        calibration: Calibration, found: CompareEvents) -> None:
    defaults, per_desk = suggested_thresholds(calibration, AlertThresholds(), {})
    text = config_toml(defaults, per_desk, ["suggested"])
    loaded = parse_alert_config(text.encode(), PARAMS.timeframes, "suggested.toml")
    assert loaded.defaults == defaults and dict(loaded.per_desk) == per_desk
    # The whole compare run again, its alerts judged with the file as written (its near
    # misses are those of the new liquidation line: the events judged are the first run's).
    again = compare_events(messages(), settings(loaded.defaults, dict(loaded.per_desk)))
    warnings = Warnings(again.alerts, 24.0)
    alpha = next(d for d in calibration.desks if d.desk == "alpha")
    judged = [e for e in alpha.events if not e.at_open]
    assert judged
    for event in judged:
        warning = warnings.before(scenario_key(event.book, event.leverage),
                                  rfc3339_to_ms(event.ts))
        assert warning is not None and warning.lead_h > 0.0, event


def test_without_a_candidate_that_warns_the_thresholds_stay(found: CompareEvents) -> None:
    # An event of the spread book a minute before its first frame: nothing fires before it.
    first = min(rfc3339_to_ms(f.ts) for key, f in found.frames if key.startswith("spread\t5x"))
    events = [*found.events, Event("spread", "5x", "near_miss", first - 60_000)]
    crafted = CompareEvents(events=events, alerts=found.alerts, frames=found.frames)
    result = calibrate(crafted, AlertThresholds(), {}, heat_timeframe="1h",
                       leverages=["5x", "10x"], desks={"beta"})
    [beta] = result.desks
    assert not beta.warns_every_event
    assert beta.suggested is beta.current
    line = suggestion_line(beta)
    assert line.startswith("desk beta: no candidate warns before every event")
    assert "\n" not in line


def test_min_lead_is_required_of_every_warning(found: CompareEvents) -> None:
    result = calibrate(found, AlertThresholds(), {}, heat_timeframe="1h",
                       leverages=["5x", "10x"], min_lead_h=1000.0, desks={"alpha"})
    [alpha] = result.desks
    assert all(r.warned == 0 for r in alpha.candidates)
    assert not alpha.warns_every_event


def test_the_file_loads_as_written(tmp_path: Path) -> None:
    spot = '币安 "spot" desk'
    per_desk = {
        "alpha": AlertThresholds(cluster_concentration_warning=0.4,
                                 cluster_concentration_critical=0.5, min_frames=6),
        spot: AlertThresholds(liquidation_sigma_warning=6.0, liquidation_sigma_critical=2.0,
                              timeframes=("1h",)),
    }
    defaults = AlertThresholds(regime_break=0.5)
    path = tmp_path / "alerts.toml"
    path.write_text(config_toml(defaults, per_desk, ["two lines", "of header"]),
                    encoding="utf-8")
    loaded = parse_alert_config(path.read_bytes(), PARAMS.timeframes, str(path))
    assert loaded.defaults == defaults
    assert dict(loaded.per_desk) == per_desk


def _alert(minute: int, state: str, severity: str, subject: str) -> tuple[str, Alert]:
    ts = f"2018-01-11T00:{minute:02d}:00.000Z"
    return ("book", Alert(ts=ts, account="book", desk=None, timeframe="1h",
                          kind="cluster_concentration", subject=subject, severity=severity,
                          state=state, value=1.0, threshold=0.25,  # type: ignore[arg-type]
                          message=""))


def test_red_time_is_the_union_of_critical_periods() -> None:
    transitions = [
        _alert(0, "firing", "warning", "ETH"),
        _alert(10, "firing", "critical", "ETH"),  # red from 10
        _alert(15, "firing", "critical", "ADA"),
        _alert(20, "firing", "warning", "ETH"),  # ADA still red
        _alert(30, "resolved", "critical", "ADA"),  # red until 30
        _alert(50, "firing", "critical", "XRP"),  # red from 50 to the end
        ("other", _alert(5, "firing", "critical", "ETH")[1]),
    ]
    start = rfc3339_to_ms("2018-01-11T00:00:00Z")
    span = (start, start + 60 * 60_000)
    assert critical_ms("book", transitions, span) == (20 + 10) * 60_000


def test_red_share_is_a_share(calibration: Calibration) -> None:
    for desk in calibration.desks:
        for result in [desk.current, *desk.candidates]:
            assert result.critical_share is not None
            assert 0.0 <= result.critical_share <= 1.0
