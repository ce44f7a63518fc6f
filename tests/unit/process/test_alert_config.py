"""The alert configuration file: per-desk thresholds over defaults, one line per error."""

from __future__ import annotations

from pathlib import Path

import pytest

from heatmap.engine.alerts import AlertThresholds
from heatmap.process.alert_config import AlertConfigError, load_alert_config, parse_alert_config

TIMEFRAMES = ("1h", "4h", "1d")

EXAMPLE = """
[defaults]
cluster_concentration_warning = 0.3
cluster_concentration_critical = 0.4
timeframes = ["1h", "4h"]

[desk."beta"]
cluster_concentration_critical = 0.6
min_frames = 2

[desk."币安 \\"spot\\" desk"]
timeframes = ["1d"]
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(AlertConfigError) as raised:
        parse_alert_config(text.encode(), TIMEFRAMES, "alerts.toml")
    assert str(raised.value) == "\n".join(raised.value.lines)
    return raised.value.lines


def test_desks_override_the_defaults_field_by_field() -> None:
    config = parse_alert_config(EXAMPLE.encode(), TIMEFRAMES)
    assert config.defaults == AlertThresholds(cluster_concentration_warning=0.3,
                                              cluster_concentration_critical=0.4,
                                              timeframes=("1h", "4h"))
    assert config.per_desk["beta"] == AlertThresholds(
        cluster_concentration_warning=0.3, cluster_concentration_critical=0.6, min_frames=2,
        timeframes=("1h", "4h"))
    assert config.per_desk['币安 "spot" desk'].timeframes == ("1d",)
    assert len(config.digest) == 16


def test_an_empty_file_is_the_built_in_thresholds() -> None:
    config = parse_alert_config(b"", TIMEFRAMES)
    assert config.defaults == AlertThresholds() and not config.per_desk


def test_an_unknown_key_is_one_line() -> None:
    assert _errors('[desk."beta"]\ncluster_concentration_warn = 0.3\n') == [
        'alerts.toml: desk."beta".cluster_concentration_warn: unknown key']
    assert _errors("[default]\nmin_frames = 2\n") == ["alerts.toml: default: unknown key"]


def test_a_wrong_type_is_one_line_per_value() -> None:
    lines = _errors('[defaults]\nmin_frames = "3"\nregime_break = true\n'
                    'timeframes = "1h"\n')
    assert lines == [  # in the order of the fields
        "alerts.toml: defaults.regime_break: input should be a valid number, not True",
        "alerts.toml: defaults.min_frames: input should be a valid integer, not '3'",
        "alerts.toml: defaults.timeframes: input should be a valid list, not '1h'",
    ]


def test_an_out_of_range_value_is_one_line() -> None:
    assert _errors("[defaults]\nmin_frames = 0\n") == [
        "alerts.toml: defaults.min_frames: input should be greater than or equal to 1, not 0"]


def test_a_warning_beyond_critical_is_one_line_per_desk() -> None:
    lines = _errors('[defaults]\ncluster_concentration_warning = 0.3\n'
                    '[desk."alpha"]\ncluster_concentration_critical = 0.5\n'
                    '[desk."beta"]\nliquidation_sigma_warning = 0.5\n')
    assert lines == [
        "alerts.toml: defaults: cluster_concentration_warning 0.3 is above "
        "cluster_concentration_critical 0.25",
        'alerts.toml: desk."beta": cluster_concentration_warning 0.3 is above '
        "cluster_concentration_critical 0.25",
        'alerts.toml: desk."beta": liquidation_sigma_warning 0.5 is below '
        "liquidation_sigma_critical 1 (the warning comes first, further from liquidation)",
    ]


def test_a_timeframe_the_engine_lacks_is_one_line() -> None:
    assert _errors('[defaults]\ntimeframes = ["1h", "2h"]\n') == [
        "alerts.toml: defaults: timeframes: 2h not among the engine's (1h, 4h, 1d)"]


def test_a_desk_name_must_be_printable() -> None:
    assert _errors('[desk."a\\tb"]\nmin_frames = 2\n') == [
        "alerts.toml: desk 'a\\tb': a desk name is printable text"]


def test_a_file_that_is_not_toml_or_missing_is_one_line(tmp_path: Path) -> None:
    (line,) = _errors("[defaults\n")
    assert line.startswith("alerts.toml: not a TOML file: ")
    with pytest.raises(AlertConfigError) as raised:
        load_alert_config(tmp_path / "absent.toml", TIMEFRAMES)
    assert raised.value.lines == [f"{tmp_path / 'absent.toml'}: cannot read the alert "
                                  "configuration (No such file or directory)"]
