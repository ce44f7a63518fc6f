"""Engine parameters: one frozen set per deployment, echoed (with a hash) in every frame."""

from __future__ import annotations

import hashlib
import re

import msgspec

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration_s(text: str) -> int:
    """Seconds in a duration like ``5m``, ``1h``, ``4h``, ``1d`` or ``90s``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 5m, 1h, 1d)")
    return int(match.group(1)) * _UNITS_S[match.group(2)]


def format_duration_s(seconds: float) -> str:
    """The shortest duration text :func:`parse_duration_s` reads back as ``seconds``."""
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"not a whole, positive number of seconds: {seconds!r}")
    whole = int(seconds)
    unit = max((name for name, size in _UNITS_S.items() if whole % size == 0),
               key=_UNITS_S.__getitem__)
    return f"{whole // _UNITS_S[unit]}{unit}"


class EngineParams(msgspec.Struct, frozen=True, kw_only=True):
    """Every number that shapes a frame, with the product defaults.

    Parameters
    ----------
    bar_interval_s : int
        Bar length; bars close on UTC multiples of it.
    timeframes : dict[str, int]
        Correlation horizons by name, in seconds; each is an EWMA whose
        half-life is ``horizon / bar_interval`` bars.
    min_periods : int
        Returns a symbol needs before its correlations count (else 0).
    size_threshold : float
        ``|share|`` at or above which a position is ``core`` (else ``speculative``).
    unsure_below : float
        Conviction below which a non-hedge is ``unsure``.
    missing_conviction : float
        Conviction assumed when a position has none.
    price_stale_after_s : float
        Price age beyond which a position is stale (SPEC's ``stale_after``; frames
        echo it as ``stale_after_s``). Not the ``stale_heat`` alert's delay, which is
        ``AlertThresholds.stale_heat_after_s``.
    rho_min : float
        Clusters join symbols whose average-linkage correlation is at least this.
    stress_kappa : float
        Stress correlation ``(1 - kappa) rho + kappa``.
    default_maintenance_rate : float
        Maintenance margin as a fraction of gross notional when an account has none.
    max_frame_rate_per_s : float
        At most this many change-triggered frames per account (or desk) per second.
    var_z : float
        One-sided 99 % normal quantile used for VaR.
    zero_tol : float
        Values below this are "~0".
    """

    bar_interval_s: int = 60
    timeframes: dict[str, int] = msgspec.field(
        default_factory=lambda: {"1h": 3600, "4h": 14400, "1d": 86400})
    min_periods: int = 20
    size_threshold: float = 0.10
    unsure_below: float = 0.4
    missing_conviction: float = 0.5
    price_stale_after_s: float = 2.0
    rho_min: float = 0.5
    stress_kappa: float = 0.5
    default_maintenance_rate: float = 0.005
    max_frame_rate_per_s: float = 2.0
    var_z: float = 2.326
    zero_tol: float = 1e-12

    def __post_init__(self) -> None:
        if self.bar_interval_s <= 0 or not self.timeframes:
            raise ValueError("bar_interval_s must be positive and timeframes non-empty")
        if any(horizon_s < self.bar_interval_s for horizon_s in self.timeframes.values()):
            raise ValueError("every timeframe must be at least one bar long")

    def halflife_bars(self, timeframe: str) -> float:
        return self.timeframes[timeframe] / self.bar_interval_s

    def alpha(self, timeframe: str) -> float:
        """EWMA weight of the newest return: ``1 - 2^(-1/h)``."""
        return 1.0 - 2.0 ** (-1.0 / self.halflife_bars(timeframe))

    @property
    def bars_per_day(self) -> float:
        return 86400.0 / self.bar_interval_s

    @property
    def fast_timeframe(self) -> str:
        return min(self.timeframes, key=lambda name: (self.timeframes[name], name))

    @property
    def slow_timeframe(self) -> str:
        return max(self.timeframes, key=lambda name: (self.timeframes[name], name))

    def frame_params(self, timeframe: str) -> dict[str, object]:
        """The parameters echoed in a frame of ``timeframe``."""
        return {
            "bar_interval_s": self.bar_interval_s,
            "timeframe": timeframe,
            "horizon_s": self.timeframes[timeframe],
            "halflife_bars": self.halflife_bars(timeframe),
            "timeframes": {name: self.halflife_bars(name) for name in self.timeframes},
            "min_periods": self.min_periods,
            "size_threshold": self.size_threshold,
            "unsure_below": self.unsure_below,
            "missing_conviction": self.missing_conviction,
            # SPEC's name; the key is part of the params_hash of stored frames.
            "stale_after_s": self.price_stale_after_s,
            "rho_min": self.rho_min,
            "stress_kappa": self.stress_kappa,
            "default_maintenance_rate": self.default_maintenance_rate,
            "max_frame_rate_per_s": self.max_frame_rate_per_s,
            "var_z": self.var_z,
        }

    def params_hash(self, timeframe: str) -> str:
        """A short, stable hash of :meth:`frame_params` (sorted-key JSON, sha256)."""
        canonical = msgspec.json.encode(self.frame_params(timeframe), order="sorted")
        return hashlib.sha256(canonical).hexdigest()[:16]
