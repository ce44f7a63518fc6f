"""Quiet runs of prices are conflated: the host's outputs and state equal the engine's
when it applies every record one by one in the same order (what `heat replay` does)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.checkpoint import export_state
from heatmap.engine.engine import HeatEngine
from heatmap.process.epochs import replay_order
from heatmap.process.host import EngineHost, HostConfig, RawRecord
from heatmap.schema import CorrelationSnapshot, Price, datetime_to_ms, decode, encode
from support.dense_streams import KINDS, PARAMS, dense_stream, run_in_fetches


def _one_by_one(order: list[RawRecord]
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
    records = dense_stream(seed)
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS))
    skipped = 0
    apply_run = host.engine.on_quiet_prices

    def counting(prices: Sequence[Price], ts_ms: Sequence[int]) -> None:
        nonlocal skipped
        skipped += len(prices) - len({price.symbol for price in prices})
        apply_run(prices, ts_ms)

    host.engine.on_quiet_prices = counting  # type: ignore[method-assign]
    outputs = run_in_fetches(host, records, seed)
    assert not host.sequencer.buffered
    frames = [encode(frame) for output in outputs for frame in output.frames]
    alerts = [encode(alert) for output in outputs for alert in output.alerts]
    correlations = [encode(item) for output in outputs for item in output.correlations]
    by_offset = {index: [record for record in records if record.source_index == index]
                 for index in range(len(KINDS))}
    order = [record for output in outputs for record in replay_order(output.epoch, by_offset)]
    assert len(order) == len(records)  # every record applied, none dropped from the order
    expected_frames, expected_alerts, expected_state = _one_by_one(order)
    assert skipped > len(records) // 4  # most runs held a symbol more than once
    assert len(frames) > 100 and alerts  # bars, position and equity frames, transitions
    assert frames + correlations == expected_frames
    assert alerts == expected_alerts
    assert export_state(host.engine, host.monitor) == expected_state
