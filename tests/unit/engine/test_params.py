"""Engine parameters: duration text both ways, and `heat replay` defaulting to them."""

from __future__ import annotations

import pytest
import typer

from heatmap.cli import replay as replay_cli
from heatmap.cli.main import app
from heatmap.engine.params import EngineParams, format_duration_s, parse_duration_s


@pytest.mark.parametrize(("seconds", "text"), [(2, "2s"), (60, "1m"), (300, "5m"),
                                                (3600, "1h"), (14400, "4h"), (86400, "1d"),
                                                (90, "90s"), (604800, "1w"), (2.0, "2s")])
def test_durations_format_to_their_shortest_text_and_back(seconds: float, text: str) -> None:
    assert format_duration_s(seconds) == text
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("seconds", [0, -60, 1.5])
def test_only_whole_positive_seconds_have_a_text(seconds: float) -> None:
    with pytest.raises(ValueError):
        format_duration_s(seconds)


def test_replay_defaults_are_the_engine_defaults() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands["replay"]
    defaults = {param.name: param.default for param in command.params}
    built = replay_cli.engine_params(
        defaults["bar"], defaults["timeframes"], defaults["min_periods"],
        defaults["price_stale_after"], defaults["rho_min"], defaults["size_threshold"],
        defaults["stress_kappa"])
    assert built == EngineParams()
