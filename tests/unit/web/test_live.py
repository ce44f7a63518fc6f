"""The engine facade: committed frames become the latest and reach subscribers, committed
alert transitions keep each book's firing alerts; what-if runs on copies taken after a
step, which later engine changes do not touch."""

from __future__ import annotations

import asyncio

import pytest

from heatmap.engine.alerts import AlertMonitor
from heatmap.schema import WhatIfOrder, WhatIfRequest
from heatmap.web.live import (
    SUBSCRIBER_QUEUE_FRAMES,
    EngineNotLive,
    LiveView,
)
from support.sample_books import sample_alert as alert
from support.sample_books import sample_engine

THRESHOLDS = AlertMonitor().thresholds



def test_latest_frames_are_the_committed_ones_per_book_and_timeframe() -> None:
    engine, ts_ms = sample_engine()
    view = LiveView()
    assert view.latest("account", "a1", "1h") is None
    first = engine.frames_for(("a1", None), ts_ms, "position")
    view.committed(first)
    second = engine.frames_for(("a1", None), ts_ms + 500, "position")
    desk = engine.frames_for((None, "d1"), ts_ms, "position")
    view.committed(second + desk)
    latest = view.latest("account", "a1", "1h")
    assert latest is not None and latest.message is second[1]
    assert b'"account":"a1"' in latest.json and b'"timeframe":"1h"' in latest.json
    assert view.latest("desk", "d1", "10m") is not None
    view.stepped(engine, THRESHOLDS)
    assert view.books() == {
        "accounts": [{"account": "a1", "desk": "d1", "timeframes": ["10m", "1h"]}],
        "desks": [{"desk": "d1", "timeframes": ["10m", "1h"]}],
        "timeframes": ["10m", "1h"]}


def test_subscribers_get_each_new_frame_of_their_book_only() -> None:
    async def scenario() -> None:
        engine, ts_ms = sample_engine()
        view = LiveView()
        with view.subscribe("account", "a1", "1h") as queue:
            assert view.subscribers == 1
            view.committed(engine.frames_for(("a2", None), ts_ms, "position"))
            assert queue.empty()
            frames = engine.frames_for(("a1", None), ts_ms, "position")
            view.committed(frames)
            got = await asyncio.wait_for(queue.get(), 1)
            assert got.message is frames[1]
            for step in range(SUBSCRIBER_QUEUE_FRAMES + 5):  # a slow reader keeps the newest
                view.committed(engine.frames_for(("a1", None), ts_ms + step, "position"))
            assert queue.qsize() == SUBSCRIBER_QUEUE_FRAMES
        assert view.subscribers == 0

    asyncio.run(scenario())


def test_a_subscriber_full_longer_than_the_stall_timeout_is_closed() -> None:
    async def scenario() -> None:
        engine, ts_ms = sample_engine()
        now_s = [0.0]
        view = LiveView(stall_timeout_s=5.0, clock=lambda: now_s[0])
        closed: list[str] = []

        def commit(step: int) -> None:
            view.committed(engine.frames_for(("a1", None), ts_ms + step, "position"))

        with view.subscribe("account", "a1", "1h", on_close=lambda: closed.append("slow")) \
                as slow, view.subscribe("account", "a1", "1h") as reader:
            for step in range(SUBSCRIBER_QUEUE_FRAMES + 1):  # full from the last one on
                commit(step)
            while not reader.empty():  # one reader keeps up, the other does not
                reader.get_nowait()
            now_s[0] = 5.0
            commit(100)  # full for exactly the timeout: kept, the oldest dropped
            assert closed == [] and view.subscribers == 2
            reader.get_nowait()
            now_s[0] = 5.5
            commit(101)
            assert closed == ["slow"] and view.subscribers == 1
            assert slow.qsize() == SUBSCRIBER_QUEUE_FRAMES  # nothing more reaches it
            assert reader.qsize() == 1
        assert view.subscribers == 0

    asyncio.run(scenario())


def test_what_if_reads_the_copies_of_the_last_step() -> None:
    engine, ts_ms = sample_engine()
    view = LiveView()
    request = WhatIfRequest(account="a1", timeframe="1h",
                            orders=[WhatIfOrder(symbol="CCC", qty=1.0)])
    with pytest.raises(EngineNotLive):
        view.what_if(request)
    view.stepped(engine, THRESHOLDS)
    answer = view.what_if(request)
    assert answer.before == engine.frames_for(("a1", None), ts_ms, "position")[1]
    # The engine moves on; the copies stay as they were until the next step.
    engine.on_position("a1", "CCC", ts_ms + 1, 7.0)
    engine.on_price("AAA", ts_ms + 2, 1.0)
    again = view.what_if(request)
    assert again.before == answer.before and again.after == answer.after
    view.stepped(engine, THRESHOLDS)
    moved = view.what_if(request)
    assert moved.before != answer.before
    assert [p.qty.after for p in moved.delta.positions if p.symbol == "CCC"] == [8.0]
    view.stopped()
    assert not view.live
    with pytest.raises(EngineNotLive):
        view.what_if(request)


def test_a_step_that_changed_nothing_keeps_the_copies() -> None:
    engine, _ = sample_engine()
    view = LiveView()
    view.stepped(engine, THRESHOLDS)
    copies = view._copies
    assert copies is not None
    market, book = copies.market, copies.book
    view.stepped(engine, THRESHOLDS)
    assert copies.market is market and copies.book is book


def test_firing_alerts_are_the_latest_firing_transition_per_book_until_resolved() -> None:
    view = LiveView()
    concentration = alert("cluster_concentration", "AAA", "firing")
    desk_stale = alert("stale_heat", "frame", "firing", "critical", account=None)
    other_timeframe = alert("regime_break", "portfolio", "firing", timeframe="10m")
    view.committed([], [concentration, desk_stale, other_timeframe])
    assert view.firing("account", "a1", "1h") == [concentration]
    assert view.firing("desk", "d1", "1h") == [desk_stale]  # a desk is a book of its own
    assert view.firing("account", "a1", "10m") == [other_timeframe]
    assert view.firing("account", "a2", "1h") == []
    # A higher level replaces the lower one; critical ones come first.
    critical = alert("cluster_concentration", "AAA", "firing", "critical",
                     ts="2018-01-11T04:05:00.000Z")
    regime = alert("regime_break", "portfolio", "firing")
    view.committed([], [critical, regime])
    assert view.firing("account", "a1", "1h") == [critical, regime]
    # Resolved removes it; other books and timeframes keep theirs.
    view.committed([], [alert("cluster_concentration", "AAA", "resolved", "critical")])
    assert view.firing("account", "a1", "1h") == [regime]
    view.committed([], [alert("regime_break", "portfolio", "resolved")])
    assert view.firing("account", "a1", "1h") == []
    assert view.firing("desk", "d1", "1h") == [desk_stale]
    assert view.firing("account", "a1", "10m") == [other_timeframe]
    view.stopped()  # committed, so still true until the next engine commits
    assert view.firing("desk", "d1", "1h") == [desk_stale]


def test_subscribers_get_the_alert_transitions_of_their_book_after_its_frames() -> None:
    async def scenario() -> None:
        engine, ts_ms = sample_engine()
        view = LiveView()
        with view.subscribe("account", "a1", "1h") as queue:
            view.committed([], [alert("stale_heat", "frame", "firing", account="a2"),
                                alert("stale_heat", "frame", "firing", account=None)])
            assert queue.empty()
            frames = engine.frames_for(("a1", None), ts_ms, "position")
            fired = alert("stale_heat", "frame", "firing", "critical")
            view.committed(frames, [fired])
            assert (await asyncio.wait_for(queue.get(), 1)).json == view.latest(
                "account", "a1", "1h").json  # type: ignore[union-attr]
            pushed = await asyncio.wait_for(queue.get(), 1)
            assert pushed.message is fired
            assert pushed.event == b"alert" and b'"state":"firing"' in pushed.json
            assert queue.empty()

    asyncio.run(scenario())
