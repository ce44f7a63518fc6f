"""Alert thresholds per desk from a TOML file (``HEAT_ALERT_CONFIG``, ``--alert-config``).

The file has a ``[defaults]`` table and one ``[desk."<name>"]`` table per desk that
differs, each with any of the :class:`~heatmap.engine.alerts.AlertThresholds` fields
and ``timeframes`` (the timeframes that alert; every one when absent). A desk's table
overrides the defaults field by field; a desk the file does not name alerts with the
defaults, and a desk the file names but the input never shows is fine. Every error is
one line: an unknown key, a value of the wrong type or out of range, a warning level
beyond its critical level, a timeframe the engine lacks.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heatmap.engine.alerts import AlertThresholds


class AlertConfigError(ValueError):
    """The alert configuration cannot be used; ``lines`` says why, one error per line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Thresholds(BaseModel):
    """One table of the file: every field optional (absent: inherited)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    cluster_concentration_warning: float | None = Field(default=None, gt=0)
    cluster_concentration_critical: float | None = Field(default=None, gt=0)
    liquidation_sigma_warning: float | None = Field(default=None, gt=0)
    liquidation_sigma_critical: float | None = Field(default=None, gt=0)
    stale_heat_after_s: float | None = Field(default=None, ge=0)
    regime_break: float | None = Field(default=None, gt=0)
    min_frames: int | None = Field(default=None, ge=1)
    resolve_ratio: float | None = Field(default=None, gt=0, le=1)
    resolve_after_s: float | None = Field(default=None, ge=0)
    timeframes: list[str] | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    defaults: _Thresholds = _Thresholds()
    desk: dict[str, _Thresholds] = Field(default_factory=dict)


@dataclass(frozen=True)
class AlertConfig:
    """Validated thresholds: the defaults, and per desk the defaults with its overrides.

    Attributes
    ----------
    defaults : AlertThresholds
    per_desk : dict of str to AlertThresholds
    digest : str
        sha256 of the file's bytes (16 hex digits), "" for the built-in defaults: says
        which file the alerts were judged with.
    """

    defaults: AlertThresholds = field(default_factory=AlertThresholds)
    per_desk: Mapping[str, AlertThresholds] = field(default_factory=dict)
    digest: str = ""


def load_alert_config(path: Path, timeframes: Collection[str]) -> AlertConfig:
    """Read and validate the alert configuration at ``path`` for an engine with
    ``timeframes``.

    Raises
    ------
    AlertConfigError
        The file cannot be read or is not valid; one line per error, each naming the file.
    """
    try:
        content = path.read_bytes()
    except OSError as error:
        raise AlertConfigError([f"{path}: cannot read the alert configuration "
                                f"({error.strerror or error})"]) from error
    return parse_alert_config(content, timeframes, str(path))


def parse_alert_config(content: bytes, timeframes: Collection[str],
                       source: str = "alert configuration") -> AlertConfig:
    """:func:`load_alert_config` of the file's bytes; ``source`` names it in errors."""
    try:
        document = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise AlertConfigError([f"{source}: not a TOML file: {error}"]) from error
    try:
        parsed = _File.model_validate(document)
    except ValidationError as error:
        raise AlertConfigError([f"{source}: {_where(e['loc'])}: {_what(e)}"
                                for e in error.errors()]) from error
    lines: list[str] = []
    defaults = _merged(AlertThresholds(), parsed.defaults)
    lines += [f"{source}: defaults: {problem}" for problem in _problems(defaults, timeframes)]
    per_desk = {}
    for desk, table in parsed.desk.items():
        if not desk or not desk.isprintable():
            lines.append(f"{source}: desk {desk!r}: a desk name is printable text")
            continue
        per_desk[desk] = _merged(defaults, table)
        lines += [f"{source}: desk.{_quoted(desk)}: {problem}"
                  for problem in _problems(per_desk[desk], timeframes)]
    if lines:
        raise AlertConfigError(lines)
    return AlertConfig(defaults, per_desk, hashlib.sha256(content).hexdigest()[:16])


def _merged(base: AlertThresholds, table: _Thresholds) -> AlertThresholds:
    changes: dict[str, Any] = table.model_dump(exclude_none=True)
    if "timeframes" in changes:
        changes["timeframes"] = tuple(changes["timeframes"])
    return msgspec.structs.replace(base, **changes)


def _problems(limits: AlertThresholds, timeframes: Collection[str]) -> list[str]:
    """What is wrong with a desk's thresholds as a whole (after the defaults apply)."""
    problems = []
    # Concentration fires at or above its levels, so warning must not exceed critical;
    # liquidation fires below them, so its warning distance is the larger one.
    if limits.cluster_concentration_warning > limits.cluster_concentration_critical:
        problems.append(f"cluster_concentration_warning {limits.cluster_concentration_warning:g}"
                        " is above cluster_concentration_critical "
                        f"{limits.cluster_concentration_critical:g}")
    if limits.liquidation_sigma_warning < limits.liquidation_sigma_critical:
        problems.append(f"liquidation_sigma_warning {limits.liquidation_sigma_warning:g} is "
                        f"below liquidation_sigma_critical {limits.liquidation_sigma_critical:g}"
                        " (the warning comes first, further from liquidation)")
    unknown = [name for name in limits.timeframes or () if name not in timeframes]
    if unknown:
        problems.append(f"timeframes: {', '.join(unknown)} not among the engine's "
                        f"({', '.join(timeframes)})")
    return problems


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the TOML key it points at: desk."x".min_frames."""
    parts = []
    for index, part in enumerate(loc):
        if index == 1 and loc[0] == "desk":
            parts.append(_quoted(str(part)))
        elif isinstance(part, int):
            parts[-1] += f"[{part}]"
        else:
            parts.append(part)
    return ".".join(parts) or "(top level)"


def _what(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return f"{error['msg'].lower()}, not {error['input']!r}"
