"""The rule that an input partition's records are all applied, sooner or later."""

from __future__ import annotations

from heatmap.process.progress import InputProgress


def test_caught_up_and_short_of_the_end_is_a_suspect_until_vouched_for() -> None:
    progress = InputProgress(3, stall_s=30)
    assert progress.short_when_caught_up([10, 5, 0], [10, 5, None]) == []
    assert progress.short_when_caught_up([10, 4, 0], [10, 5, 0]) == [1]
    progress.vouch(1, applied=4, end=5)  # only a commit marker at offset 4
    assert progress.short_when_caught_up([10, 4, 0], [10, 5, 0]) == []
    assert progress.short_when_caught_up([10, 4, 0], [10, 7, 0]) == [1]  # more arrived


def test_an_applied_offset_that_stops_below_the_end_is_a_suspect_after_the_stall() -> None:
    progress = InputProgress(2, stall_s=30)
    assert progress.not_moving(0.0, [100, 50], [200, 50], paused=set()) == []
    assert progress.not_moving(20.0, [150, 50], [200, 50], paused=set()) == []  # moving
    assert progress.not_moving(49.0, [150, 50], [200, 50], paused=set()) == []
    assert progress.not_moving(50.0, [150, 50], [200, 50], paused=set()) == [0]


def test_a_paused_partition_waits_on_purpose() -> None:
    progress = InputProgress(1, stall_s=30)
    assert progress.not_moving(0.0, [100], [200], paused={0}) == []
    assert progress.not_moving(60.0, [100], [200], paused={0}) == []
    assert progress.not_moving(89.0, [100], [200], paused=set()) == []  # resumed at 60
    assert progress.not_moving(90.0, [100], [200], paused=set()) == [0]


def test_an_end_reached_resets_the_wait() -> None:
    progress = InputProgress(1, stall_s=30)
    progress.not_moving(0.0, [100], [100], paused=set())
    progress.not_moving(35.0, [100], [100], paused=set())  # at its end: nothing waits
    assert progress.not_moving(40.0, [100], [101], paused=set()) == []  # a new record
    assert progress.not_moving(64.0, [100], [101], paused=set()) == []
    assert progress.not_moving(70.0, [100], [101], paused=set()) == [0]
    progress.vouch(0, applied=100, end=101)
    assert progress.not_moving(200.0, [100], [101], paused=set()) == []
