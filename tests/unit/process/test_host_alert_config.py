"""A change of alert thresholds is part of the applied order: it takes effect at the next
bar boundary, its epoch record carries it, and a new owner re-applying the epochs (from a
checkpoint or from scratch) judges every frame as the first owner did, whatever the alert
file says by then."""

from __future__ import annotations

import numpy as np
import pytest

from heatmap.engine.params import EngineParams
from heatmap.process.alert_config import AlertConfigError
from heatmap.process.host import EngineHost, EpochOutput, HostConfig, RawRecord, decode_checkpoint
from heatmap.schema import (
    Account,
    Alert,
    Position,
    Price,
    encode,
    ms_to_datetime,
    ms_to_rfc3339,
    rfc3339_to_ms,
)

PARAMS = EngineParams(bar_interval_s=60, timeframes={"10m": 600, "1h": 3600}, min_periods=3)
KINDS = [Price, Account, Position]
T0_MS = 1_767_323_100_000  # on a minute boundary
BARS = 12
# Resolved at once, so the boundary where the new lines apply shows in the alerts.
RAISED = (b'[desk."d1"]\ncluster_concentration_warning = 0.5\n'
          b'cluster_concentration_critical = 0.6\nresolve_after_s = 0\n')
STAGE_BEFORE = 12  # the epoch (one record each) the change is staged before: a mid-bar price


def _records() -> list[RawRecord]:
    """Desk d1's account holding two coins (shares 0.2 and 0.3: over the default lines),
    then two prices a minute; in applied order, offsets per source."""
    rng = np.random.default_rng(5)
    offsets = [0, 0, 0]

    def raw(source: int, message: Price | Account | Position) -> RawRecord:
        offsets[source] += 1
        return RawRecord(source, offsets[source] - 1, None, encode(message))

    at = ms_to_datetime
    records = [raw(1, Account(account="a1", ts=at(T0_MS), equity=1000.0, desk="d1")),
               raw(2, Position(account="a1", symbol="S0", ts=at(T0_MS + 1), qty=2.0)),
               raw(2, Position(account="a1", symbol="S1", ts=at(T0_MS + 2), qty=3.0))]
    for bar in range(BARS):
        for index, symbol in enumerate(["S0", "S1"]):
            price = 100.0 * float(np.exp(rng.normal(0, 0.001)))
            records.append(raw(0, Price(symbol=symbol, ts=at(T0_MS + bar * 60_000 + 1000
                                                               + index * 1000),
                                        price=price, source="test")))
    return records


RECORDS = _records()
BY_SOURCE = {index: [r for r in RECORDS if r.source_index == index] for index in range(3)}


def _run(host: EngineHost, stage: dict[int, bytes]) -> list[EpochOutput]:
    """One epoch per record, a checkpoint with each; ``stage``: content staged before the
    epoch of that index."""
    outputs = []
    for index, record in enumerate(RECORDS):
        if index in stage:
            host.stage_alert_config(stage[index])
        host.step([record], {0, 1, 2})
        outputs.append(host.cut_epoch(checkpoint=True))
    return outputs


def _alerts(outputs: list[EpochOutput]) -> list[Alert]:
    return [alert for output in outputs for alert in output.alerts]


def test_a_staged_configuration_applies_from_the_next_bar_boundary() -> None:
    outputs = _run(EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS)),
                   {STAGE_BEFORE: RAISED})
    assert [i for i, out in enumerate(outputs) if out.epoch.alert_config is not None] == [
        0, STAGE_BEFORE]
    assert outputs[0].epoch.alert_config == b"" and outputs[STAGE_BEFORE].epoch.alert_config
    # Staged before a mid-bar price: waiting in that epoch's checkpoint, applied when the
    # next epoch's price closes the bar.
    assert decode_checkpoint(outputs[STAGE_BEFORE].checkpoint or b"").pending_alert_config \
        == RAISED
    boundary_ms = T0_MS + (STAGE_BEFORE - 3) // 2 * 60_000 + 60_000
    alerts = _alerts(outputs)
    before = [a for a in alerts if rfc3339_to_ms(a.ts) < boundary_ms]
    after = [a for a in alerts if rfc3339_to_ms(a.ts) >= boundary_ms]
    assert before and {(a.warning_threshold, a.critical_threshold) for a in before
                       if a.kind == "cluster_concentration"} == {(0.2, 0.25)}
    concentration = [a for a in after if a.kind == "cluster_concentration"]
    # The bar that closes first after the staging resolves S1 (0.3, critical before) under
    # the new lines, in the account's book and in the desk's.
    assert [(a.account, a.subject, a.state, a.ts, a.warning_threshold, a.critical_threshold)
            for a in concentration if a.timeframe == "10m"] == [
        (account, "S1", "resolved", ms_to_rfc3339(boundary_ms), 0.5, 0.6)
        for account in ("a1", None)]


@pytest.mark.parametrize("checkpoint_after", [None, 5, STAGE_BEFORE, STAGE_BEFORE + 4])
def test_a_new_owner_judges_as_the_first_did(checkpoint_after: int | None) -> None:
    outputs = _run(EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS)),
                   {STAGE_BEFORE: RAISED})
    # By the takeover the file says something else again: the log decides, not the file.
    changed = HostConfig(params=PARAMS, source_kinds=KINDS,
                         alert_config=b"[defaults]\nmin_frames = 1\n")
    blob = None if checkpoint_after is None else outputs[checkpoint_after].checkpoint
    resumed = EngineHost.resume(changed, blob, [out.epoch for out in outputs], BY_SOURCE)
    start = 0 if checkpoint_after is None else checkpoint_after + 1
    assert _alerts(resumed.replayed) == _alerts(outputs[start:])
    assert [out.frames for out in resumed.replayed] == [out.frames for out in outputs[start:]]
    assert resumed.host.alert_config == RAISED
    # The host goes on from there: nothing staged twice.
    assert resumed.host.cut_epoch().epoch.alert_config is None


def test_an_invalid_configuration_is_refused_when_staged() -> None:
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS))
    with pytest.raises(AlertConfigError):
        host.stage_alert_config(b"[defaults]\nmin_frames = 0\n")
    host.step([RECORDS[0]], {0, 1, 2})
    with pytest.raises(ValueError, match="right after cut_epoch"):
        host.stage_alert_config(RAISED)


def test_every_bar_close_publishes_the_levels_in_effect() -> None:
    outputs = _run(EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS)),
                   {STAGE_BEFORE: RAISED})
    published = [levels for output in outputs for levels in output.alert_levels]
    boundary_ms = T0_MS + (STAGE_BEFORE - 3) // 2 * 60_000 + 60_000
    by_bar: dict[str, list[tuple[str | None, float]]] = {}
    for levels in published:
        by_bar.setdefault(levels.ts, []).append(
            (levels.desk, levels.cluster_concentration_critical))
    bars = sorted(by_bar)
    assert len(bars) >= 3 and all(rfc3339_to_ms(ts) % 60_000 == 0 for ts in bars)
    # The defaults alone before the change; from its bar on, desk d1's own as well.
    assert {ts: rows for ts, rows in by_bar.items() if rfc3339_to_ms(ts) < boundary_ms} \
        == {ts: [(None, 0.25)] for ts in bars if rfc3339_to_ms(ts) < boundary_ms}
    assert by_bar[ms_to_rfc3339(boundary_ms)] == [(None, 0.25), ("d1", 0.6)]
