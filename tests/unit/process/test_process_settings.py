"""The processor's settings: environment names, defaults, Kafka's session minimum."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from heatmap.engine.params import EngineParams
from heatmap.process.settings import ProcessSettings

VARIABLES = ("HEAT_BAR_INTERVAL", "HEAT_TIMEFRAMES", "HEAT_WEB_HOST", "HEAT_WEB_PORT",
             "HEAT_SESSION_TIMEOUT_S", "HEAT_HEARTBEAT_INTERVAL_S", "HEAT_EPOCH_MAX_MS",
             "HEAT_EPOCH_MAX_EVENTS", "HEAT_ALIGN_MS", "HEAT_CHECKPOINT_EVERY_S",
             "HEAT_WATCHDOG_S", "HEAT_KAFKA_BOOTSTRAP", "HEAT_ENGINE_NAME",
             "HEAT_ENGINE_DESKS")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_the_products(env: pytest.MonkeyPatch) -> None:
    settings = ProcessSettings()
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 0)
    assert (settings.session_timeout_s, settings.heartbeat_interval_s) == (6.0, 1.0)
    assert (settings.epoch_max_ms, settings.epoch_max_events, settings.align_ms) == (
        250, 5000, 1000)
    assert (settings.watchdog_s, settings.checkpoint_every_s, settings.idle_after_ms) == (
        60.0, 10.0, 100)
    assert settings.app_id == settings.transactional_id == "heat.process-engine"
    assert settings.engine_params() == EngineParams()
    assert settings.book_share() is None  # one engine frames every book


def test_engines_sharing_the_desks_read_one_map(env: pytest.MonkeyPatch) -> None:
    env.setenv("HEAT_ENGINE_DESKS", '{"east": ["alpha", "beta"], "west": ["gamma"]}')
    env.setenv("HEAT_ENGINE_NAME", "west")
    west = ProcessSettings().book_share()
    env.setenv("HEAT_ENGINE_NAME", "east")
    east = ProcessSettings().book_share()
    assert west is not None and east is not None
    assert west.desks == {"gamma"} and not west.home
    assert east.desks == {"alpha", "beta"} and east.home  # listed first
    assert east.claimed == west.claimed == {"alpha", "beta", "gamma"}
    assert ProcessSettings().app_id == "heat.process-east"


def test_every_setting_comes_from_its_variable(env: pytest.MonkeyPatch) -> None:
    for name, value in {"HEAT_BAR_INTERVAL": "5m", "HEAT_TIMEFRAMES": " 4h, 1d ,",
                        "HEAT_WEB_HOST": "127.0.0.2", "HEAT_WEB_PORT": "8080",
                        "HEAT_SESSION_TIMEOUT_S": "10", "HEAT_HEARTBEAT_INTERVAL_S": "2.5",
                        "HEAT_EPOCH_MAX_MS": "100", "HEAT_EPOCH_MAX_EVENTS": "1000",
                        "HEAT_ALIGN_MS": "0", "HEAT_CHECKPOINT_EVERY_S": "300",
                        "HEAT_WATCHDOG_S": "45", "HEAT_KAFKA_BOOTSTRAP": "k1:9092"}.items():
        env.setenv(name, value)
    settings = ProcessSettings()
    assert settings.engine_params() == EngineParams(bar_interval_s=300,
                                                    timeframes={"4h": 14400, "1d": 86400})
    assert (settings.web_host, settings.web_port) == ("127.0.0.2", 8080)
    assert (settings.session_timeout_s, settings.heartbeat_interval_s) == (10.0, 2.5)
    assert (settings.epoch_max_ms, settings.epoch_max_events, settings.align_ms) == (
        100, 1000, 0)
    assert (settings.checkpoint_every_s, settings.watchdog_s) == (300.0, 45.0)
    assert settings.kafka.bootstrap_servers == "k1:9092"


def test_a_session_below_kafkas_minimum_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("HEAT_SESSION_TIMEOUT_S", "5.9")
    with pytest.raises(ValidationError, match="must be at least 6 s: Kafka brokers refuse"):
        ProcessSettings()
    assert ProcessSettings(session_timeout_s=6).session_timeout_s == 6.0


@pytest.mark.parametrize(("values", "message"), [
    ({"heartbeat_interval_s": 6.0}, "heartbeat_interval_s must be below session_timeout_s"),
    ({"bar_interval": "5x"}, "not a duration: '5x'"),
    ({"bar_interval": "1h", "timeframes": "30m,1d"}, "at least one bar long"),
    ({"timeframes": " , "}, "at least one timeframe"),
    ({"web_port": 70000}, "less than or equal to 65535"),
    ({"epoch_max_events": 0}, "greater than 0"),
    ({"engine_desks": {"a": ["alpha"]}}, "names no desks for this engine \\('engine'\\)"),
    ({"engine_desks": {"engine": ["alpha"], "b": ["beta", "alpha"]}},
     "gives desk 'alpha' to both 'engine' and 'b'"),
])
def test_bad_values_fail_at_start_up(env: pytest.MonkeyPatch, values: dict[str, object],
                                     message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProcessSettings(**values)  # type: ignore[arg-type]
