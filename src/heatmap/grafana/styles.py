"""Colours, thresholds and field overrides shared by the dashboards."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

# Cluster concentration: the engine's warning and critical defaults (0.20 / 0.25).
CONCENTRATION_WARN = 0.20
CONCENTRATION_CRITICAL = 0.25
REGIME_BREAK = 0.3
LIQ_SIGMA_WARN = 3.0
LIQ_SIGMA_CRITICAL = 1.0


def thresholds(*steps: tuple[str, float | None]) -> dash.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (from minus infinity)."""
    return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(color=color, value=value) for color, value in steps])


def concentration_thresholds() -> dash.ThresholdsConfig:
    return thresholds(("green", None), ("orange", CONCENTRATION_WARN),
                      ("red", CONCENTRATION_CRITICAL))


def heat_thresholds() -> dash.ThresholdsConfig:
    """Heat (share of equity, correlation-weighted): blue hedges, then green to red."""
    return thresholds(("blue", None), ("green", 0.0), ("yellow", 0.05), ("orange", 0.10),
                      ("red", 0.20))


def liq_sigma_thresholds() -> dash.ThresholdsConfig:
    return thresholds(("red", None), ("orange", LIQ_SIGMA_CRITICAL), ("green", LIQ_SIGMA_WARN))


def from_thresholds() -> dash.FieldColor:
    return dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS)


def cell(display: str, **extra: object) -> model.DynamicConfigValue:
    """A table column's cell type (``color-background``, ``gauge``...)."""
    return model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": display, **extra})


def unit(name: str) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="unit", value=name)


def decimals(count: int) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="decimals", value=count)


def threshold_override(config: dash.ThresholdsConfig) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="thresholds", value=config.build())


def min_max(low: float, high: float) -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="min", value=low),
            model.DynamicConfigValue(id_val="max", value=high)]


def display_name(name: str) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val="displayName", value=name)


def dashed_line(color: str) -> list[model.DynamicConfigValue]:
    """A series drawn as a fixed-colour dashed line (an alert level across the range)."""
    return [model.DynamicConfigValue(id_val="color", value={"mode": "fixed",
                                                            "fixedColor": color}),
            model.DynamicConfigValue(id_val="custom.lineStyle",
                                     value={"fill": "dash", "dash": [10, 10]}),
            model.DynamicConfigValue(id_val="custom.lineWidth", value=2)]
