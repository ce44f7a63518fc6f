"""Sink settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from heatmap.sink.settings import SinkSettings


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_SINK_PRICE_INTERVAL", "0.5")
    monkeypatch.setenv("HEAT_BAR_INTERVAL", "5m")
    monkeypatch.setenv("HEAT_SINK_BATCH_MAX_RECORDS", "100")
    monkeypatch.setenv("HEAT_SINK_WEB_PORT", "7001")
    settings = SinkSettings()
    assert settings.price_interval_ms == 500
    assert settings.bar_interval_ms == 300_000
    assert settings.batch_max_records == 100
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 7001)


def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_BAR_INTERVAL", "soon")
    with pytest.raises(ValidationError):
        SinkSettings()
    monkeypatch.setenv("HEAT_BAR_INTERVAL", "1m")
    monkeypatch.setenv("HEAT_SINK_PRICE_INTERVAL", "-1")
    with pytest.raises(ValidationError):
        SinkSettings()
