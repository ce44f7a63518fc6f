"""Quiet runs of prices are conflated: the host's outputs and state equal the engine's
when it applies every record one by one in the same order (what `heat replay` does)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.checkpoint import export_state
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.process.epochs import replay_order
from heatmap.process.host import EngineHost, HostConfig, MessageKind, RawRecord
from heatmap.schema import (
    Account,
    CorrelationSnapshot,
    Position,
    Price,
    datetime_to_ms,
    decode,
    encode,
    ms_to_datetime,
)

PARAMS = EngineParams(bar_interval_s=60, timeframes={"5m": 300, "15m": 900}, min_periods=5)
KINDS: list[MessageKind] = [Price, Price, Account, Position]
SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]
T0_MS = 1_767_323_100_000  # on a minute boundary


def _stream(seed: int) -> list[RawRecord]:
    """Dense ticks (several per symbol between moments, equal times, a symbol appearing
    late), account terms and position changes within the rate limit's gap, 40 bars."""
    rng = random.Random(seed)
    offsets = [0] * len(KINDS)
    records: list[tuple[int, RawRecord]] = []

    def add(source: int, ts_ms: int, message: Price | Position | Account) -> None:
        records.append((ts_ms, RawRecord(source, offsets[source], None, encode(message))))
        offsets[source] += 1

    for account, desk in (("acct-1", "desk-a"), ("acct-2", "desk-a"), ("acct-3", None)):
        add(2, T0_MS, Account(account=account, ts=ms_to_datetime(T0_MS), equity=1e6, desk=desk))
    prices = {symbol: 100.0 * (index + 1) for index, symbol in enumerate(SYMBOLS)}
    ts_ms = T0_MS
    for _ in range(4000):
        ts_ms += rng.choice([0, 0, 1, 7, 250, 900])
        symbol = rng.choice(SYMBOLS[:4] if ts_ms < T0_MS + 600_000 else SYMBOLS)
        prices[symbol] *= 1 + rng.gauss(0, 0.004)
        add(SYMBOLS.index(symbol) % 2, ts_ms, Price(symbol=symbol, ts=ms_to_datetime(ts_ms),
                                                    price=prices[symbol], source="test"))
        draw = rng.random()
        if draw < 0.02:
            account = rng.choice(["acct-1", "acct-2", "acct-3"])
            add(3, ts_ms, Position(account=account, symbol=rng.choice(SYMBOLS[:4]),
                                   ts=ms_to_datetime(ts_ms), qty=rng.uniform(-3000, 3000)))
        elif draw < 0.025:
            add(2, ts_ms, Account(account="acct-2", ts=ms_to_datetime(ts_ms),
                                  equity=rng.uniform(5e5, 2e6),
                                  desk=rng.choice(["desk-a", "desk-b"])))
    # Per source in offset order; the host merges them by (ts, source, offset).
    return [record for _, record in sorted(records, key=lambda item: (item[1].source_index,
                                                                      item[1].offset))]


def _one_by_one(records: list[RawRecord], order: list[RawRecord]
                ) -> tuple[list[bytes], list[bytes], bytes]:
    """Frames and alerts (JSON) and the final state of an engine fed ``order`` record by
    record, frames judged as they come."""
    correlations: list[CorrelationSnapshot] = []
    engine = HeatEngine(PARAMS, on_bar_close=lambda boundary_ms: correlations.extend(
        engine.correlation_snapshots(boundary_ms)))
    monitor = AlertMonitor()
    outputs: list[bytes] = []
    alerts: list[bytes] = []
    for raw in order:
        message = decode(KINDS[raw.source_index], raw.value)
        ts_ms = datetime_to_ms(message.ts)
        for frame in [*engine.advance_to(ts_ms), *engine.on_message(message, ts_ms)]:
            outputs.append(encode(frame))
            alerts.extend(encode(alert) for alert in monitor.observe(frame))
    outputs.extend(encode(snapshot) for snapshot in correlations)
    return outputs, alerts, export_state(engine, monitor)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_conflated_host_equals_one_by_one_application(seed: int) -> None:
    records = _stream(seed)
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS))
    skipped = 0
    apply_run = host.engine.on_quiet_prices

    def counting(prices: Sequence[Price], ts_ms: Sequence[int]) -> None:
        nonlocal skipped
        skipped += len(prices) - len({price.symbol for price in prices})
        apply_run(prices, ts_ms)

    host.engine.on_quiet_prices = counting  # type: ignore[method-assign]
    # Fed in fetches of a few hundred, every source caught up once its records are in.
    remaining = [sum(1 for record in records if record.source_index == index)
                 for index in range(len(KINDS))]
    rng = random.Random(seed)
    fetches: list[list[RawRecord]] = []
    by_source = [[record for record in records if record.source_index == index]
                 for index in range(len(KINDS))]
    while any(by_source):
        fetch = []
        for queue in by_source:
            take = rng.randint(0, 300)
            fetch.extend(queue[:take])
            del queue[:take]
        fetches.append(fetch)
    frames: list[bytes] = []
    alerts: list[bytes] = []
    correlations: list[bytes] = []
    epochs = []
    for fetch in [*fetches, []]:
        for record in fetch:
            remaining[record.source_index] -= 1
        caught_up = [index for index, left in enumerate(remaining) if left == 0]
        host.step(fetch, caught_up)
        output = host.cut_epoch()
        epochs.append(output.epoch)
        frames.extend(encode(frame) for frame in output.frames)
        alerts.extend(encode(alert) for alert in output.alerts)
        correlations.extend(encode(snapshot) for snapshot in output.correlations)
    assert not host.sequencer.buffered
    by_offset = {index: [record for record in records if record.source_index == index]
                 for index in range(len(KINDS))}
    order = [record for epoch in epochs for record in replay_order(epoch, by_offset)]
    assert len(order) == len(records)  # every record applied, none dropped from the order
    expected_frames, expected_alerts, expected_state = _one_by_one(records, order)
    assert skipped > len(records) // 4  # most runs held a symbol more than once
    assert len(frames) > 100 and alerts  # bars, position and equity frames, transitions
    assert frames + correlations == expected_frames
    assert alerts == expected_alerts
    assert export_state(host.engine, host.monitor) == expected_state
