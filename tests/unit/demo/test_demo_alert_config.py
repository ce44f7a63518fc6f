"""The simulated desks alert with the thresholds calibrated for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from heatmap.demo.options import SIMULATOR_ALERT_CONFIG, TIMEFRAMES, resolve
from heatmap.demo.services import DemoPipeline
from heatmap.engine.alerts import AlertThresholds
from heatmap.ingest.simulator import MarketSimulator
from heatmap.process.alert_config import load_alert_config

ROOT = Path(__file__).parents[3]


def test_the_shipped_file_sets_every_simulated_desk() -> None:
    config = load_alert_config(SIMULATOR_ALERT_CONFIG, TIMEFRAMES)
    desks = {spec.desk for spec in MarketSimulator().accounts}
    assert set(config.per_desk) == desks
    # Calibrated: the desks page less often than with SPEC's lines.
    for limits in config.per_desk.values():
        assert limits != AlertThresholds()
    assert config.defaults == AlertThresholds()


def _pipeline(tmp_path: Path, replay: Path | None,
              passthrough: dict[str, str]) -> DemoPipeline:
    options = resolve(replay=replay, positions=None, accounts=None, speed=None,
                      duration_s=None, snapshot_every_min=None, snapshot_dir=tmp_path,
                      timeframe="1h", seed=7)
    return DemoPipeline(options, "127.0.0.1:9092", "postgresql://heat@127.0.0.1:5432/heat",
                        tmp_path / "logs", "127.0.0.1", 8080, passthrough,
                        tmp_path / "api-tokens.json")


@pytest.mark.parametrize(("replay", "passthrough", "expected"), [
    (None, {}, str(SIMULATOR_ALERT_CONFIG)),
    (None, {"HEAT_ALERT_CONFIG": "/etc/heat/alerts.toml"}, None),
    (ROOT / "data" / "binance-5m", {}, None),
])
def test_the_processor_of_a_simulated_run_gets_it(tmp_path: Path, replay: Path | None,
                                                  passthrough: dict[str, str],
                                                  expected: str | None) -> None:
    settings = _pipeline(tmp_path, replay, passthrough).process_settings()
    assert settings.get("HEAT_ALERT_CONFIG") == expected
