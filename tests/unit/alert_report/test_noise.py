"""The report's statistics on a small hand-made sequence of alert transitions."""

from __future__ import annotations

import pytest

from heatmap.alert_report.build import build_report
from heatmap.alert_report.events import CompareEvents, Event, scenario_key
from heatmap.alert_report.lead import Warnings
from heatmap.alert_report.noise import noise
from heatmap.schema import Alert, rfc3339_to_ms


def alert(ts: str, state: str, *, account: str | None = "a", desk: str | None = "d",
          timeframe: str = "1h", kind: str = "cluster_concentration", subject: str = "ETH",
          severity: str = "warning") -> Alert:
    return Alert(ts=f"2018-01-{ts}:00Z", account=account, desk=desk, timeframe=timeframe,
                 kind=kind, subject=subject, severity=severity, state=state, value=0.3,
                 threshold=0.25, message="")  # type: ignore[arg-type]


# Book "a", 1h concentration of ETH: fires day 1 at 00:00, escalates at 01:00, resolves
# 02:00, fires again 02:30 (a re-fire), resolves 05:30. Book "a", 4h: one open episode
# from day 2 12:00. Desk "d" (its own alerts): one firing day 2, resolved an hour later.
SEQUENCE = [
    alert("01T00:00", "firing"),
    alert("01T01:00", "firing", severity="critical"),
    alert("01T02:00", "resolved", severity="critical"),
    alert("01T02:30", "firing"),
    alert("01T05:30", "resolved"),
    alert("02T12:00", "firing", timeframe="4h"),
    alert("02T13:00", "firing", account=None, kind="regime_break", subject="portfolio"),
    alert("02T14:00", "resolved", account=None, kind="regime_break", subject="portfolio"),
]


def by_kind(kinds, kind, timeframe):
    return next(k for k in kinds if (k.kind, k.timeframe) == (kind, timeframe))


def test_firings_per_book_day():
    kinds, books = noise(SEQUENCE)
    total = by_kind(kinds, "all", "all")
    # Book a: 3 firings on day 1, 1 on day 2; desk d (from day 2): 1. Cells: 3, 1, 1.
    assert total.firings == 5
    assert total.critical_firings == 1
    assert total.per_book_day_median == 1.0
    assert total.per_book_day_max == 3
    one_hour = by_kind(kinds, "cluster_concentration", "1h")
    assert (one_hour.firings, one_hour.per_book_day_max) == (3, 3)
    # Cells of the 1h concentration: a day 1 = 3, a day 2 = 0, d day 2 = 0.
    assert one_hour.per_book_day_median == 0.0
    assert [(b.book, b.days, b.firings, b.per_day_max, b.busiest_day) for b in books] == [
        ("a", 2, 4, 3, "2018-01-01"), ("desk d", 1, 1, 1, "2018-01-02")]
    assert books[0].per_day_mean == pytest.approx(2.0)


def test_episodes_run_from_firing_to_resolve():
    kinds, _ = noise(SEQUENCE)
    one_hour = by_kind(kinds, "cluster_concentration", "1h")
    # 00:00 -> 02:00 (the escalation goes on with it) and 02:30 -> 05:30.
    assert (one_hour.episodes, one_hour.open_episodes) == (2, 0)
    assert one_hour.episode_h_p50 == pytest.approx(2.5)
    assert one_hour.episode_h_max == pytest.approx(3.0)
    four_hours = by_kind(kinds, "cluster_concentration", "4h")
    assert (four_hours.episodes, four_hours.open_episodes) == (1, 1)
    assert four_hours.episode_h_p50 is None
    total = by_kind(kinds, "all", "all")
    assert total.episode_h_p50 == pytest.approx(2.0)  # of 2, 3 and 1 hours


def test_refires_within_the_window_after_a_resolve_of_the_same_book_timeframe_kind():
    kinds, _ = noise(SEQUENCE)
    one_hour = by_kind(kinds, "cluster_concentration", "1h")
    assert (one_hour.refires, one_hour.refire_share) == (1, pytest.approx(1 / 3))
    assert by_kind(kinds, "all", "all").refire_share == pytest.approx(1 / 5)
    # Half an hour apart: not a re-fire with a window of 20 minutes.
    kinds, _ = noise(SEQUENCE, refire_window_h=1 / 3)
    assert by_kind(kinds, "all", "all").refires == 0
    # Another timeframe's resolve does not make a re-fire.
    other = [alert("01T00:00", "resolved", timeframe="4h"), alert("01T00:10", "firing")]
    assert by_kind(noise(other)[0], "all", "all").refires == 0


def test_a_renamed_cluster_resolving_and_firing_at_one_moment_is_a_refire():
    renamed = [alert("01T00:00", "firing", subject="ETH"),
               alert("01T03:00", "firing", subject="LTC"),
               alert("01T03:00", "resolved", subject="ETH")]
    assert by_kind(noise(renamed)[0], "all", "all").refires == 1


def test_lead_is_from_the_earliest_critical_alert_on_within_the_lookback_window():
    ms = rfc3339_to_ms
    transitions = [
        alert("01T01:00", "firing", severity="critical"),            # on 01:00 - 02:00
        alert("01T02:00", "firing"),                                  # stepped down
        alert("01T03:00", "resolved"),
        alert("03T00:00", "firing", severity="critical", timeframe="4h"),  # never resolved
        alert("03T05:00", "firing", severity="critical", subject="LTC"),
        alert("03T06:00", "resolved", severity="critical", subject="LTC"),
        alert("03T04:00", "firing", severity="critical", kind="stale_heat", subject="frame"),
    ]
    warnings = Warnings.of_accounts(sorted(transitions, key=lambda a: a.ts), lookback_h=24)
    found = warnings.before("a", ms("2018-01-03T06:00:00Z"))
    assert found is not None and found.lead_h == pytest.approx(6.0)
    # The 4h alert is still on days later: its whole lead counts.
    assert warnings.before("a", ms("2018-01-09T00:00:00Z")).lead_h == pytest.approx(144.0)
    # On until 02:00: 25 h later it is out of the window, 23 h later in it.
    assert warnings.before("a", ms("2018-01-02T03:00:00Z")) is None
    assert warnings.before("a", ms("2018-01-02T01:00:00Z")).lead_h == pytest.approx(24.0)
    assert warnings.before("a", ms("2018-01-01T00:59:00Z")) is None  # before any
    assert warnings.before("b", ms("2018-01-03T06:00:00Z")) is None
    # A stale feed alone is no warning; nor is a warning-level alert.
    stale = [alert("01T00:00", "firing", severity="critical", kind="stale_heat"),
             alert("01T00:00", "firing", subject="LTC")]
    assert Warnings.of_accounts(stale, 24).before("a", ms("2018-01-01T01:00:00Z")) is None


def test_report_judges_the_targets():
    event_ms = rfc3339_to_ms("2018-01-01T03:00:00Z")
    found = CompareEvents(events=[Event("a", "5x", "liquidation", event_ms)],
                          alerts=[(scenario_key("a", "5x"),
                                   alert("01T02:30", "firing", severity="critical"))])
    report = build_report(SEQUENCE, found, leverages=["5x"], heat_timeframe="1d")
    lead = report.leads[0]
    # The recorded book's critical firing of 01:00 is 2 h before; at 5x half an hour.
    assert (lead.recorded_lead_h, lead.at_leverage_lead_h) == (2.0, 0.5)
    assert lead.recorded_alert_ts == "2018-01-01T01:00:00.000Z"
    targets = report.targets
    assert targets.median_per_book_day_at_most_3 is True
    assert targets.no_book_day_above_6 is True
    assert targets.refire_share_at_most_10pct is False  # 1 of 5
    assert targets.liquidations_warned_1h_recorded is True
    assert targets.liquidations_warned_1h_at_leverage is False
    assert build_report([], None).targets.liquidations_warned_1h_recorded is None
