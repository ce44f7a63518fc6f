"""The event-time sequencer: watermark, ties, alignment, rejections, resume positions."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.process.sequencer import (
    Alignment,
    Sequencer,
    SourcePosition,
    SourceRecord,
    event_key,
)
from heatmap.schema import Account, Position, Price, ms_to_datetime
from support.sequencer_feed import add_all

T0 = 1_767_323_045_000  # 2026-01-02T03:04:05Z
YEAR_MS = 366 * 86_400_000


def price(source: int, offset: int, ts_ms: int, symbol: str = "BTCUSDT") -> SourceRecord:
    message = Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=100.0, source="test")
    return SourceRecord.of(source, offset, message)


def position(source: int, offset: int, ts_ms: int, account: str = "a1") -> SourceRecord:
    message = Position(account=account, symbol="BTCUSDT", ts=ms_to_datetime(ts_ms), qty=1.0)
    return SourceRecord.of(source, offset, message)


def account(source: int, offset: int, ts_ms: int, name: str = "a1") -> SourceRecord:
    return SourceRecord.of(source, offset,
                           Account(account=name, ts=ms_to_datetime(ts_ms), equity=1e6))


def keys(records: list[SourceRecord]) -> list[tuple[int, int, int]]:
    return [(record.ts_ms - T0, record.source_index, record.offset) for record in records]


def test_records_of_every_source_come_out_in_time_order() -> None:
    sequencer = Sequencer([0, 0])
    assert add_all(sequencer, [price(0, 0, T0 + 10, "A"), price(0, 1, T0 + 30, "A"),
                              price(0, 2, T0 + 50, "A")]) == []
    assert add_all(sequencer, [price(1, 0, T0 + 20, "B"), price(1, 1, T0 + 40, "B")]) == []
    # Source 1 may still send more at 40: only what lies before it is released.
    assert keys(sequencer.release(caught_up=())) == [(10, 0, 0), (20, 1, 0), (30, 0, 1)]
    assert sequencer.watermark_ms == T0 + 40
    assert keys(sequencer.release(caught_up={0, 1})) == [(40, 1, 1), (50, 0, 2)]


def test_nothing_is_released_beyond_the_watermark() -> None:
    sequencer = Sequencer([0, 0])
    add_all(sequencer, [price(0, offset, T0 + 100 * offset, "A") for offset in range(6)])
    sequencer.add(price(1, 0, T0 + 250, "B"))
    released = sequencer.release(caught_up=())
    assert max(record.ts_ms for record in released) < T0 + 250 == sequencer.watermark_ms
    assert keys(released) == [(0, 0, 0), (100, 0, 1), (200, 0, 2)]
    assert sequencer.buffered == 4
    assert sequencer.release(caught_up=()) == []  # nothing new: no clock moves it


def test_a_source_not_caught_up_that_showed_nothing_holds_everything() -> None:
    sequencer = Sequencer([0, 0, 0])
    add_all(sequencer, [price(0, 0, T0, "A"), price(0, 1, T0 + 10, "A"),
                       price(1, 0, T0 + 5, "B")])
    assert sequencer.release(caught_up=()) == []
    assert sequencer.watermark_ms is None
    assert keys(sequencer.release(caught_up={2})) == [(0, 0, 0)]


def test_caught_up_sources_do_not_hold_the_watermark_back() -> None:
    sequencer = Sequencer([0, 0])
    add_all(sequencer, [price(0, 0, T0, "A"), price(0, 1, T0 + 1000, "A"),
                       price(0, 2, T0 + 2000, "A")])
    sequencer.add(price(1, 0, T0 + 10, "B"))
    assert keys(sequencer.release(caught_up=())) == [(0, 0, 0)]
    # Source 1 has nothing more to read: it no longer holds source 0 back.
    assert keys(sequencer.release(caught_up={1})) == [(10, 1, 0), (1000, 0, 1)]


def test_a_record_waits_until_every_caught_up_source_vouched_for_its_arrival() -> None:
    # Prices (source 0) ran past a position (source 1) that a producer appended to
    # its partition a moment later: the prices wait until source 1, caught up, was
    # seen at its end long enough after they arrived.
    sequencer = Sequencer([0, 0])
    add_all(sequencer, [price(0, 0, T0 + 10), price(0, 1, T0 + 30)], arrived=5.0)
    assert sequencer.release(caught_up={0, 1}, settled_before=4.9) == []
    sequencer.add(position(1, 0, T0 + 20), arrived=5.05)
    # The position arrived in time: merged in event-time order, each once settled.
    assert keys(sequencer.release(caught_up={0, 1}, settled_before=5.0)) == [(10, 0, 0)]
    assert keys(sequencer.release(caught_up={0, 1}, settled_before=5.1)) == [(20, 1, 0),
                                                                            (30, 0, 1)]


def test_when_every_source_is_caught_up_everything_is_released() -> None:
    sequencer = Sequencer([0, 0, 0])
    add_all(sequencer, [price(2, 0, T0 + 7, "C"), price(0, 0, T0 + 3, "A"),
                       price(0, 1, T0 + 9, "A")])
    assert keys(sequencer.release(caught_up={0, 1, 2})) == [(3, 0, 0), (7, 2, 0), (9, 0, 1)]
    assert sequencer.buffered == 0 and sequencer.watermark_ms == T0 + 9
    assert sequencer.release(caught_up={0, 1, 2}) == []


def test_equal_times_go_by_source_then_offset() -> None:
    sequencer = Sequencer([0, 0, 0])
    add_all(sequencer, [price(2, 0, T0, "C"), price(1, 5, T0, "B"), price(1, 6, T0, "B"),
                       price(0, 9, T0, "A")])
    assert keys(sequencer.release(caught_up={0, 1, 2})) == [(0, 0, 9), (0, 1, 5), (0, 1, 6),
                                                            (0, 2, 0)]


def test_the_watermark_never_moves_back() -> None:
    sequencer = Sequencer([0, 0])
    add_all(sequencer, [price(0, 0, T0 + 100, "A"), price(1, 0, T0 + 50, "B")])
    sequencer.release(caught_up={0, 1})
    assert sequencer.watermark_ms == T0 + 100
    # Source 1 wakes up with a record older than the watermark (another key): it is applied
    # at once, not held until source 1 catches up with source 0.
    sequencer.add(price(1, 1, T0 + 60, "C"))
    assert keys(sequencer.release(caught_up={0})) == [(60, 1, 1)]
    assert sequencer.watermark_ms == T0 + 100


def test_sources_far_ahead_are_paused_until_the_slowest_catches_up() -> None:
    sequencer = Sequencer([0, 0, 0], align_ms=1000)
    add_all(sequencer, [price(0, 0, T0 + 5000, "A"), price(1, 0, T0 + 1000, "B"),
                       price(2, 0, T0 + 1900, "C")])
    sequencer.release(caught_up=())
    assert sequencer.alignment() == Alignment(pause=frozenset({0}),
                                              resume=frozenset({1, 2}))
    sequencer.add(price(1, 1, T0 + 4500, "B"))
    sequencer.release(caught_up=())
    # Source 2 (1.9 s) is the slowest now: sources 0 and 1 are more than 1 s ahead of it.
    assert sequencer.alignment() == Alignment(pause=frozenset({0, 1}), resume=frozenset({2}))
    sequencer.add(price(2, 1, T0 + 4200, "C"))
    sequencer.release(caught_up=())
    assert sequencer.alignment() == Alignment(pause=frozenset(), resume=frozenset({0, 1, 2}))
    # A caught-up source is not the slowest: only sources still reading set the pace.
    sequencer.add(price(0, 1, T0 + 9000, "A"))
    sequencer.release(caught_up={1, 2})
    assert sequencer.alignment().pause == frozenset()


def test_alignment_pauses_nothing_before_any_record() -> None:
    assert Sequencer([0, 0]).alignment() == Alignment(frozenset(), frozenset({0, 1}))


def test_a_record_older_than_its_keys_last_applied_one_is_late() -> None:
    sequencer = Sequencer([0, 0, 0])
    add_all(sequencer, [price(0, 0, T0 + 100, "ETHBTC"), position(1, 0, T0 + 100, "a1")])
    sequencer.release(caught_up={0, 1, 2})
    late_price = price(0, 1, T0 + 99, "ETHBTC")
    rejection = sequencer.add(late_price)
    assert rejection is not None and rejection.record == late_price
    assert rejection.reason == ("late for its key: prices 'ETHBTC' at 2026-01-02T03:04:05.099Z "
                                "is before 2026-01-02T03:04:05.100Z, already applied")
    late_position = sequencer.add(position(1, 1, T0 + 50, "a1"))
    assert late_position is not None and "positions 'a1'" in late_position.reason
    # Not late: the same time again, another symbol, and the account's equity (a key of
    # its own topic) older than the watermark.
    assert add_all(sequencer, [price(0, 2, T0 + 100, "ETHBTC"), price(0, 3, T0 + 20, "XRPETH"),
                              account(2, 0, T0 + 50, "a1")]) == []
    assert keys(sequencer.release(caught_up={0, 1, 2})) == [(20, 0, 3), (50, 2, 0),
                                                            (100, 0, 2)]


def test_buffered_records_of_a_key_are_ordered_not_late() -> None:
    sequencer = Sequencer([0, 0])
    sequencer.add(price(1, 0, T0, "B"))
    assert add_all(sequencer, [price(0, 0, T0 + 30, "A"), price(0, 1, T0 + 10, "A")]) == []
    assert keys(sequencer.release(caught_up={0, 1})) == [(0, 1, 0), (10, 0, 1), (30, 0, 0)]


def test_a_jump_of_over_a_year_is_rejected_but_a_key_back_after_a_year_is_not() -> None:
    sequencer = Sequencer([0, 0])
    sequencer.add(position(0, 0, T0, "dormant"))
    sequencer.add(price(1, 0, T0, "A"))
    rejection = sequencer.add(price(1, 1, T0 + YEAR_MS + 1, "A"))
    assert rejection is not None
    assert rejection.reason == "more than a year after the newest event (2026-01-02T03:04:05.000Z)"
    sequencer.release(caught_up={0, 1})
    # The stream moves on month by month; the dormant account comes back a year later.
    for month in range(1, 14):
        assert sequencer.add(price(1, 1 + month, T0 + month * 30 * 86_400_000, "A")) is None
    assert sequencer.add(position(0, 1, T0 + 13 * 30 * 86_400_000, "dormant")) is None
    assert len(sequencer.release(caught_up={0, 1})) == 14


def test_offsets_of_a_source_must_increase() -> None:
    sequencer = Sequencer([10])
    with pytest.raises(ValueError, match="offsets of a source must increase"):
        sequencer.add(price(0, 9, T0))
    sequencer.add(price(0, 10, T0))
    with pytest.raises(ValueError, match="offsets of a source must increase"):
        sequencer.skip(0, 10)


def test_positions_say_where_a_new_owner_resumes() -> None:
    sequencer = Sequencer([10, 0])
    assert sequencer.positions() == [SourcePosition(10, ()), SourcePosition(0, ())]
    # Offset 10 (ts 100) waits while 11 (ts 50) is released; 12 is undecodable; 13 is late.
    add_all(sequencer, [price(0, 10, T0 + 100, "A"), price(0, 11, T0 + 50, "B")])
    assert sequencer.skip(0, 12)
    sequencer.add(price(1, 0, T0 + 60, "C"))
    assert keys(sequencer.release(caught_up={1})) == [(50, 0, 11), (60, 1, 0)]
    assert sequencer.add(price(0, 13, T0 + 40, "B")) is not None
    assert sequencer.positions() == [SourcePosition(10, (11, 12, 13)), SourcePosition(1, ())]

    # A new owner starts from those positions: the done offsets are skipped when fed again.
    positions = sequencer.positions()
    successor = Sequencer([position.resume_offset for position in positions],
                          done_ahead={index: position.done_ahead
                                      for index, position in enumerate(positions)},
                          applied_ts_by_key=sequencer.applied_ts_by_key)
    assert successor.positions() == positions
    add_all(successor, [price(0, 10, T0 + 100, "A"), price(0, 11, T0 + 50, "B")])
    assert not successor.skip(0, 12)  # refused before: not to be dead-lettered again
    assert successor.add(price(0, 13, T0 + 40, "B")) is None  # done before: no second rejection
    successor.add(price(0, 14, T0 + 120, "B"))
    assert keys(successor.release(caught_up={0, 1})) == [(100, 0, 10), (120, 0, 14)]
    assert successor.positions() == [SourcePosition(15, ()), SourcePosition(1, ())]


def test_lateness_continues_from_remembered_records() -> None:
    sequencer = Sequencer([0])
    sequencer.remember(price(0, 0, T0 + 100, "A"))
    assert sequencer.applied_ts_by_key == {("prices", "A"): T0 + 100}
    assert sequencer.add(price(0, 1, T0 + 99, "A")) is not None
    assert sequencer.add(price(0, 2, T0 + 100 + YEAR_MS + 1, "B")) is not None


def test_keys_are_the_kafka_key_on_each_topic() -> None:
    assert event_key(price(0, 0, T0, "X").message) == ("prices", "X")
    assert event_key(position(0, 0, T0, "X").message) == ("positions", "X")
    assert event_key(account(0, 0, T0, "X").message) == ("accounts", "X")


# -- properties -----------------------------------------------------------------------------

# Per source, a list of (ts offset from T0 in ms, key number).
STREAMS = st.lists(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 3)), max_size=25),
                   min_size=1, max_size=4)


def _records(streams: list[list[tuple[int, int]]], *, sort: bool, shared_keys: bool
             ) -> list[list[SourceRecord]]:
    """Records per source; keys stay on one source unless ``shared_keys`` (as in Kafka)."""
    result = []
    for source, stream in enumerate(streams):
        rows = sorted(stream) if sort else stream
        result.append([price(source, offset, T0 + ts, f"K{key}" if shared_keys
                             else f"S{source}K{key}")
                       for offset, (ts, key) in enumerate(rows)])
    return result


@settings(max_examples=150, deadline=None)
@given(STREAMS, st.data())
def test_in_order_sources_merge_into_one_sorted_stream(streams: list[list[tuple[int, int]]],
                                                       data: st.DataObject) -> None:
    """Each source in time order (as a partition of one producer is): whatever the
    fetch batches, the released order is sorted and holds every record exactly once."""
    records = _records(streams, sort=True, shared_keys=False)
    sequencer = Sequencer([0] * len(records), align_ms=data.draw(st.integers(0, 2000)))
    fed = [0] * len(records)
    released: list[SourceRecord] = []
    while any(fed[source] < len(records[source]) for source in range(len(records))):
        source = data.draw(st.sampled_from([index for index in range(len(records))
                                            if fed[index] < len(records[index])]))
        batch = data.draw(st.integers(1, 5))
        assert add_all(sequencer, records[source][fed[source]:fed[source] + batch]) == []
        fed[source] = min(fed[source] + batch, len(records[source]))
        # Truthful flags: only a source fed to its end is caught up.
        caught_up = {index for index in range(len(records))
                     if fed[index] == len(records[index])}
        released += sequencer.release(caught_up)
        # Alignment never pauses every source still reading: the slowest goes on.
        reading = set(range(len(records))) - caught_up
        assert not reading or reading - sequencer.alignment().pause
    released += sequencer.release(set(range(len(records))))
    assert keys(released) == sorted(keys(released))
    assert sorted(keys(released)) == sorted(keys([r for rs in records for r in rs]))
    assert sequencer.buffered == 0


@settings(max_examples=150, deadline=None)
@given(STREAMS, st.data())
def test_any_input_is_released_or_rejected_exactly_once(streams: list[list[tuple[int, int]]],
                                                        data: st.DataObject) -> None:
    """Unsorted sources, keys spread over sources, arbitrary caught-up flags: every record
    is released once or rejected once, each key's applied times never go back, each
    release is sorted, and once everything is released every source resumes after its end."""
    records = _records(streams, sort=False, shared_keys=True)
    sequencer = Sequencer([0] * len(records))
    pending = [list(source_records) for source_records in records]
    released: list[SourceRecord] = []
    rejected: list[SourceRecord] = []
    while any(pending):
        source = data.draw(st.sampled_from([index for index, rest in enumerate(pending)
                                            if rest]))
        batch, pending[source] = pending[source][:2], pending[source][2:]
        rejected += [rejection.record for rejection in add_all(sequencer, batch)]
        caught_up = data.draw(st.sets(st.integers(0, len(records) - 1)))
        out = sequencer.release(caught_up)
        assert keys(out) == sorted(keys(out))
        released += out
    released += sequencer.release(set(range(len(records))))
    everything = [record for source_records in records for record in source_records]
    assert sorted(keys(released + rejected)) == sorted(keys(everything))
    applied: dict[tuple[str, str], list[int]] = defaultdict(list)
    for record in released:
        applied[event_key(record.message)].append(record.ts_ms)
    assert all(times == sorted(times) for times in applied.values())
    assert sequencer.positions() == [SourcePosition(len(source_records), ())
                                     for source_records in records]


def test_a_record_refused_a_year_ahead_does_not_move_the_watermark_after_a_takeover() -> None:
    sequencer = Sequencer([0, 0])
    sequencer.add(price(0, 0, T0 + 100, "A"))
    assert sequencer.add(price(0, 1, T0 + 2 * YEAR_MS, "B")) is not None
    positions = sequencer.positions()
    assert positions[0] == SourcePosition(0, (1,))

    successor = Sequencer([position.resume_offset for position in positions],
                          done_ahead={index: position.done_ahead
                                      for index, position in enumerate(positions)})
    add_all(successor, [price(0, 0, T0 + 100, "A"), price(0, 1, T0 + 2 * YEAR_MS, "B")])
    assert successor.release(caught_up={1}) == []  # source 0 may still send more at ts 100
    assert successor.watermark_ms == T0 + 100
