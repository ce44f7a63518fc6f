"""When the demo draws a snapshot, and what the file is called."""

from __future__ import annotations

from heatmap.demo.snapshots import due_moment, file_name
from heatmap.schema import rfc3339_to_ms

HOUR_MS = 3_600_000
START = rfc3339_to_ms("2018-01-16T12:10:00Z")


def test_a_moment_is_due_once_event_time_reaches_it() -> None:
    assert due_moment(START, START, HOUR_MS, None) is None  # 12:00 is before the first frame
    assert due_moment(START + 49 * 60_000, START, HOUR_MS, None) is None
    assert due_moment(START + 50 * 60_000, START, HOUR_MS, None) == START + 50 * 60_000
    assert due_moment(START + 55 * 60_000, START, HOUR_MS, START + 50 * 60_000) is None


def test_moments_skipped_by_a_fast_replay_are_not_drawn_late() -> None:
    moment = due_moment(START + 10 * HOUR_MS, START, HOUR_MS, START + 50 * 60_000)
    assert moment == rfc3339_to_ms("2018-01-16T22:00:00Z")


def test_file_names_are_safe_for_any_account_name() -> None:
    at = rfc3339_to_ms("2018-01-16T12:00:00Z")
    assert file_name(at, "acct-a1") == "20180116T1200Z-acct-a1.png"
    odd = file_name(at, "../o'brien/x")
    assert "/" not in odd and odd.startswith("20180116T1200Z-") and odd.endswith(".png")
    assert file_name(at, "a/b") != file_name(at, "a_b")
    assert "東京" in file_name(at, "東京")
