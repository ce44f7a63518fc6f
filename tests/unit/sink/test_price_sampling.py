"""The price sampler keeps bar opens and closes and at most one tick per interval."""

from __future__ import annotations

from heatmap.schema import Price, ms_to_datetime
from heatmap.sink.price_sampling import PriceSampler, bar_end_ms

BAR_MS = 60_000


def tick(ts_ms: int, symbol: str = "BTCUSDT", source: str = "binance") -> Price:
    return Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=100.0, source=source)


def kept_ms(sampler: PriceSampler, times_ms: list[int], **names: str) -> list[int]:
    out: list[int] = []
    for ts_ms in times_ms:
        out += [round(p.ts.timestamp() * 1000) for p in sampler.offer(tick(ts_ms, **names))]
    return out


def test_bar_end_is_the_boundary_at_or_after() -> None:
    assert bar_end_ms(60_000, BAR_MS) == 60_000
    assert bar_end_ms(60_001, BAR_MS) == 120_000
    assert bar_end_ms(0, BAR_MS) == 0


def test_at_most_one_tick_per_interval_between_boundaries() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    # 10 ticks per second over 5 s, well inside one bar.
    times = [61_000 + 100 * i for i in range(50)]
    assert kept_ms(sampler, times) == [61_000, 62_000, 63_000, 64_000, 65_000]


def test_bar_close_and_open_are_kept() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    times = [119_000, 119_400, 119_800, 120_300, 120_500]
    # 119_800 is the last tick at or before the 120_000 boundary (the close), emitted
    # when 120_300 (the next bar's opening tick) arrives.
    assert kept_ms(sampler, times) == [119_000, 119_800, 120_300]


def test_tick_on_the_boundary_closes_the_bar() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    # 120_000 is the close of the bar ending there; 119_900 was superseded by it.
    assert kept_ms(sampler, [119_500, 119_900, 120_000, 120_100]) == [119_500, 120_000,
                                                                       120_100]


def test_symbols_and_sources_are_sampled_apart() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    assert kept_ms(sampler, [61_000, 61_100]) == [61_000]
    assert kept_ms(sampler, [61_100], symbol="ETHUSDT") == [61_100]
    assert kept_ms(sampler, [61_200], source="kraken") == [61_200]


def test_zero_interval_keeps_everything() -> None:
    sampler = PriceSampler(interval_ms=0, bar_ms=BAR_MS)
    times = [61_000 + i for i in range(20)]
    assert kept_ms(sampler, times) == times


def test_flush_returns_held_ticks_once() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    kept_ms(sampler, [61_000, 61_200, 61_400])
    assert [p.ts for p in sampler.flush()] == [ms_to_datetime(61_400)]
    assert sampler.flush() == []
    assert sampler.dropped == 1


def test_a_late_tick_never_replaces_a_newer_held_one() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    assert kept_ms(sampler, [61_000, 61_500, 61_200, 125_000]) == [61_000, 61_500, 125_000]


def test_a_quiet_symbols_close_is_emitted_when_its_partition_reaches_the_next_bar() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    assert sampler.offer(tick(61_000, "QUIET"), ("prices", 0, 0)) != []  # first tick: kept
    assert sampler.offer(tick(61_500, "QUIET"), ("prices", 0, 1)) == []  # held
    assert sampler.offer(tick(119_000, "BUSY"), ("prices", 0, 2)) != []
    assert sampler.held_positions() == [("prices", 0, 1)]
    # Another partition's later bar says nothing about this one.
    assert [p.symbol for p in sampler.offer(tick(121_000, "OTHER"), ("prices", 1, 0))] \
        == ["OTHER"]
    # The next bar reaches partition 0: QUIET's held tick was its bar's close.
    released = sampler.offer(tick(121_000, "BUSY"), ("prices", 0, 3))
    assert [(p.symbol, round(p.ts.timestamp() * 1000)) for p in released] == [
        ("QUIET", 61_500), ("BUSY", 121_000)]
    assert sampler.held_positions() == []


def test_held_positions_name_where_held_ticks_were_read() -> None:
    sampler = PriceSampler(interval_ms=1000, bar_ms=BAR_MS)
    sampler.offer(tick(61_000), ("prices", 2, 40))
    sampler.offer(tick(61_200), ("prices", 2, 41))
    sampler.offer(tick(61_400), ("prices", 2, 42))  # supersedes the tick at offset 41
    assert sampler.held_positions() == [("prices", 2, 42)]
    assert len(sampler.flush()) == 1 and sampler.held_positions() == []
