"""The demo's board: the newest frame per book, the alerts firing now."""

from __future__ import annotations

from heatmap.demo.board import Board
from support.demo_messages import alert, cluster, frame, position


def test_the_newest_frame_of_the_timeframe_stands_for_its_book() -> None:
    board = Board("1h")
    board.add_frame(frame(ts="2018-01-16T12:00:00Z", positions=(position("A", 0.1, 0.2),)))
    board.add_frame(frame(ts="2018-01-16T12:05:00Z", positions=(position("B", 0.2, 0.2),)))
    board.add_frame(frame(ts="2018-01-16T12:10:00Z", timeframe="4h"))
    assert [row.symbol for _, row in board.positions()] == ["B"]
    assert board.frames_read == 3
    assert board.event_ms is not None and board.first_event_ms is not None
    assert board.event_ms - board.first_event_ms == 10 * 60_000


def test_desks_come_first_and_clusters_by_concentration() -> None:
    board = Board("1h")
    board.add_frame(frame(account="b", clusters=(cluster("X", 0.1),)))
    board.add_frame(frame(account="a", clusters=(cluster("Y", 0.3),)))
    board.add_frame(frame(account=None, desk="d", clusters=(cluster("Z", 0.2),)))
    assert [book for book, _ in board.books()] == [("desk", "d"), ("account", "a"),
                                                   ("account", "b")]
    assert [row.cluster for _, row in board.clusters()] == ["Y", "Z", "X"]
    # Desk frames hold no positions of their own in the positions list.
    assert board.positions() == []


def test_alerts_fire_and_resolve_per_book_timeframe_kind_and_subject() -> None:
    board = Board("1h")
    board.add_alert(alert(subject="ETH", severity="warning", ts="2018-01-16T12:00:00Z"))
    board.add_alert(alert(subject="LTC", severity="critical", ts="2018-01-16T11:00:00Z"))
    board.add_alert(alert(subject="ETH", timeframe="4h"))
    assert [a.subject for a in board.alerts()] == ["ETH", "LTC", "ETH"]
    assert board.alerts()[0].severity == "critical"
    board.add_alert(alert(subject="ETH", state="resolved"))
    assert {(a.subject, a.timeframe) for a in board.alerts()} == {("LTC", "1h"), ("ETH", "4h")}
    assert board.alerts_read == 4
