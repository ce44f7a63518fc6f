"""Epoch records: compact, versioned, and enough to repeat the applied order exactly."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmap.process.epochs import (
    FORMAT_VERSION,
    Epoch,
    EpochError,
    SourceSlice,
    decode_epoch,
    encode_epoch,
    make_epoch,
    replay_order,
)
from heatmap.process.sequencer import Sequencer, SourcePosition, SourceRecord
from heatmap.schema import Price, ms_to_datetime
from support.sequencer_feed import add_all

T0 = 1_767_323_045_000


def price(source: int, offset: int, ts_ms: int, symbol: str) -> SourceRecord:
    message = Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=1.0, source="test")
    return SourceRecord.of(source, offset, message)


def test_an_epoch_round_trips_through_bytes() -> None:
    applied = [price(1, 500, T0, "A"), price(0, 7, T0 + 1, "B"), price(1, 501, T0 + 2, "A")]
    positions = [SourcePosition(8, ()), SourcePosition(500, (502, 505)), SourcePosition(0, ())]
    epoch = make_epoch(41, T0 + 2, applied, positions)
    assert epoch.order == [1, 0, 1]
    assert epoch.sources == [SourceSlice(0, [7, 1], 8, []), SourceSlice(1, [500, 2], 500,
                                                                        [502, 505]),
                             SourceSlice(2, [], 0, [])]
    assert decode_epoch(encode_epoch(epoch)) == epoch
    assert epoch.format_version == FORMAT_VERSION
    _, second, idle = epoch.sources
    assert (second.first_offset, second.last_offset, second.count) == (500, 501, 2)
    assert (idle.first_offset, idle.last_offset, idle.count) == (None, None, 0)


def test_runs_keep_gaps_and_offsets_applied_out_of_order() -> None:
    offsets = [10, 11, 12, 15, 16, 13, 20]
    epoch = make_epoch(0, None, [price(0, offset, T0, "A") for offset in offsets],
                       [SourcePosition(21, ())])
    (source,) = epoch.sources
    assert source.runs == [10, 3, 2, 2, -4, 1, 6, 1]
    assert source.offsets() == offsets
    assert (source.first_offset, source.last_offset) == (10, 20)


def test_replay_rebuilds_the_exact_order_from_each_sources_records() -> None:
    applied = [price(2, 9, T0, "C"), price(0, 4, T0, "A"), price(0, 3, T0 + 1, "A"),
               price(2, 11, T0 + 1, "C"), price(0, 5, T0 + 2, "A")]
    epoch = decode_epoch(encode_epoch(make_epoch(
        3, T0 + 2, applied, [SourcePosition(6, ()), SourcePosition(0, ()),
                             SourcePosition(12, ())])))
    # Each source's records as read back, in offset order, with neighbours and the
    # rejected offset 10 among them: only the applied ones come back, in applied order.
    by_source = {0: [price(0, offset, T0, "A") for offset in range(0, 8)],
                 2: [price(2, offset, T0, "C") for offset in range(8, 13)]}
    replayed = replay_order(epoch, by_source)
    assert [(r.source_index, r.offset) for r in replayed] == [(2, 9), (0, 4), (0, 3),
                                                              (2, 11), (0, 5)]


def test_replay_says_which_records_are_missing() -> None:
    epoch = make_epoch(8, T0, [price(0, 4, T0, "A"), price(0, 5, T0, "A")],
                       [SourcePosition(6, ())])
    with pytest.raises(EpochError, match=r"epoch 8: 1 records of source 0 are missing "
                                         r"\(first offset 4\)"):
        replay_order(epoch, {0: [price(0, 5, T0, "A")]})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2)), max_size=30),
                min_size=1, max_size=5), st.data())
def test_epochs_cut_from_a_sequencer_replay_its_order(
        streams: list[list[tuple[int, int]]], data: st.DataObject) -> None:
    """Unsorted sources (runs applied out of offset order), rejections (gaps), epochs cut
    at arbitrary points: replaying the decoded epochs gives the applied order again, and
    the last epoch's positions let a successor skip exactly what was done."""
    records = [[price(source, 100 + offset, T0 + ts, f"K{key}")
                for offset, (ts, key) in enumerate(stream)]
               for source, stream in enumerate(streams)]
    sequencer = Sequencer([100] * len(records))
    pending = [list(source_records) for source_records in records]
    epochs: list[bytes] = []
    applied: list[SourceRecord] = []
    epoch_applied: list[SourceRecord] = []
    while any(pending):
        source = data.draw(st.sampled_from([i for i, rest in enumerate(pending) if rest]))
        batch, pending[source] = pending[source][:3], pending[source][3:]
        add_all(sequencer, batch)
        epoch_applied += sequencer.release(data.draw(st.sets(st.integers(0, len(records)))))
        if data.draw(st.booleans()):
            epochs.append(encode_epoch(make_epoch(len(epochs), sequencer.watermark_ms,
                                                  epoch_applied, sequencer.positions())))
            applied += epoch_applied
            epoch_applied = []
    epochs.append(encode_epoch(make_epoch(len(epochs), sequencer.watermark_ms,
                                          epoch_applied, sequencer.positions())))
    applied += epoch_applied

    by_source = dict(enumerate(records))
    replayed = [record for blob in epochs for record in replay_order(decode_epoch(blob),
                                                                     by_source)]
    assert replayed == applied
    # Resume from the last epoch: every record is done exactly once across both owners.
    last = decode_epoch(epochs[-1])
    successor = Sequencer([slice_.resume_offset for slice_ in last.sources],
                          done_ahead={s.source_index: s.done_ahead for s in last.sources},
                          applied_ts_by_key=sequencer.applied_ts_by_key)
    for slice_, source_records in zip(last.sources, records, strict=True):
        add_all(successor, [r for r in source_records if r.offset >= slice_.resume_offset])
    rest = successor.release(set(range(len(records))))
    assert sequencer.buffered == len(rest)
    done = {(r.source_index, r.offset) for r in applied + rest}
    assert len(done) == len(applied) + len(rest)


def test_about_one_byte_per_event() -> None:
    """10,000 events over 18 sources (6 partitions each of prices, positions, accounts)."""
    chooser = random.Random(7)
    next_offset = [5_000_000 + 1_000 * source for source in range(18)]
    applied = []
    for _ in range(10_000):
        source = chooser.randrange(18)
        applied.append(price(source, next_offset[source], T0, "A"))
        next_offset[source] += 1
    positions = [SourcePosition(offset, ()) for offset in next_offset]
    blob = encode_epoch(make_epoch(123_456, T0, applied, positions))
    assert len(blob) <= 10_000 * 1.05, len(blob)


def test_another_format_version_is_refused_with_a_clear_error() -> None:
    future = msgspec.msgpack.encode({"format_version": 99, "epoch": 1, "something": "new"})
    with pytest.raises(EpochError, match="epoch record format version 99 is not the "
                                         "supported version 2"):
        decode_epoch(future)
    with pytest.raises(EpochError, match="not an epoch record"):
        decode_epoch(b"\x93\x01\x02\x03")
    with pytest.raises(EpochError, match="not an epoch record"):
        decode_epoch(b"{}")


def test_a_version_1_record_reads_as_an_epoch_without_alert_configuration() -> None:
    older = msgspec.msgpack.encode({"format_version": 1, "epoch": 3, "watermark_ms": 7,
                                    "order": [0], "sources": [[0, [10, 1], 11, []]]})
    epoch = decode_epoch(older)
    assert (epoch.epoch, epoch.order, epoch.alert_config) == (3, [0], None)
    staged = make_epoch(4, 8, [], [SourcePosition(11, ())], alert_config=b"[defaults]\n")
    assert decode_epoch(encode_epoch(staged)).alert_config == b"[defaults]\n"


def test_an_order_that_does_not_match_the_runs_is_refused() -> None:
    epoch = Epoch(epoch=5, watermark_ms=None, order=[0, 0, 1],
                  sources=[SourceSlice(0, [10, 1], 11, []), SourceSlice(1, [3, 1], 4, [])])
    with pytest.raises(EpochError, match="epoch 5: the order does not match"):
        decode_epoch(encode_epoch(epoch))
    broken_runs = Epoch(epoch=6, watermark_ms=None, order=[0],
                        sources=[SourceSlice(0, [10, 0, 1], 11, [])])
    with pytest.raises(EpochError, match="malformed runs"):
        decode_epoch(encode_epoch(broken_runs))


def test_an_applied_source_must_be_one_of_the_positions() -> None:
    with pytest.raises(EpochError, match="source 3 is not one of the 2 sources"):
        make_epoch(0, None, [price(3, 0, T0, "A")], [SourcePosition(0, ())] * 2)
