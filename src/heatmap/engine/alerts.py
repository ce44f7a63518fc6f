"""Alert state machines over frames: hysteresis and ``min_frames`` debounce, pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from heatmap.schema import (
    Alert,
    AlertKind,
    AlertLevels,
    AlertState,
    Frame,
    Severity,
    ms_to_rfc3339,
    rfc3339_to_ms,
)

LEVELS: tuple[Severity, ...] = ("warning", "critical")
# The kinds whose subject is a cluster: they step down only once recovered for a while
# (AlertThresholds.resolve_after_s), as clusters split and re-form around a line.
HELD_KINDS: frozenset[AlertKind] = frozenset({"cluster_concentration",
                                              "liquidation_proximity"})


class AlertThresholds(msgspec.Struct, frozen=True, kw_only=True):
    """Alert thresholds of one desk (or the defaults).

    ``cluster_concentration_*`` and ``regime_break`` fire at or above the
    value; ``liquidation_sigma_*`` fire below it (distance to liquidation in
    standard deviations of the cluster's 1-day move); ``stale_heat_after_s`` fires
    when a frame has been stale for longer than that many seconds (a frame turns
    stale when a held symbol's price is older than the engine's
    ``EngineParams.price_stale_after_s``). ``timeframes``: the timeframes whose frames
    alert (None: every one); a book's machines of another timeframe resolve.
    ``resolve_after_s``: a cluster alert (concentration, liquidation proximity) steps
    down a level, or resolves, only once its value has stayed recovered past
    ``resolve_ratio`` x the level (or its cluster has been gone) for this many seconds
    of frame time; 0 steps down at the first recovered frame.
    """

    cluster_concentration_warning: float = 0.20
    cluster_concentration_critical: float = 0.25
    liquidation_sigma_warning: float = 3.0
    liquidation_sigma_critical: float = 1.0
    stale_heat_after_s: float = 5.0
    regime_break: float = 0.3
    min_frames: int = 3
    resolve_ratio: float = 0.9
    resolve_after_s: float = 3600.0
    timeframes: tuple[str, ...] | None = None


@dataclass
class _Machine:
    level: int = -1  # -1 none, else an index into the reading's thresholds
    streak: dict[int, int] = field(default_factory=dict)
    severity: Severity = "warning"  # of the level that fired, reported again on resolve
    threshold: float = 0.0
    # Frame time (ms) since which a held kind's value has been recovered past its level.
    recovered_since_ms: int | None = None


AlertBook = tuple[str, str, str]  # ("account" or "desk", its name, timeframe)


@dataclass(frozen=True, kw_only=True)
class ExportedMachine:
    """One alert machine, copied out of its monitor.

    Attributes
    ----------
    level : int
        -1 when nothing fires, else the index of the firing level in the reading's
        thresholds (ascending severity).
    streak : dict of int to int
        Per level, the consecutive frames at or beyond its threshold.
    severity : str
        Of the level that fired last, reported again when it resolves.
    threshold : float
        Of the level that fired last.
    recovered_since_ms : int or None
        Frame time (ms since the epoch) since which the value has been recovered past
        the firing level, while a held kind waits to step down; else None.
    """

    level: int
    streak: dict[int, int]
    severity: Severity
    threshold: float
    recovered_since_ms: int | None = None


# Every machine of a monitor, per book and timeframe, then per (kind, subject), each in
# insertion order: the order vanished subjects resolve in.
ExportedAlerts = dict[AlertBook, dict[tuple[AlertKind, str], ExportedMachine]]


@dataclass(frozen=True)
class _Reading:
    kind: AlertKind
    subject: str
    value: float | None
    thresholds: tuple[float, ...]  # one per level, ascending severity
    above: bool  # True: fires at or above; False: fires below


def _breaches(value: float, threshold: float, above: bool) -> bool:
    return value >= threshold if above else value < threshold


def _recovered(value: float, threshold: float, above: bool, ratio: float) -> bool:
    # Resolve only clearly past the threshold, so a value hovering on it cannot flap.
    return value < ratio * threshold if above else value > threshold / ratio


class AlertMonitor:
    """Turns a stream of frames into alert transitions.

    One machine per (account or desk, timeframe, kind, subject). A level
    fires after ``min_frames`` consecutive frames at or beyond its threshold
    and is left as soon as the value recovers past ``resolve_ratio`` times
    the threshold; every change of level is one :class:`Alert`. The book-wide
    kinds (``stale_heat``, ``regime_break``) run on one timeframe per book (see
    :func:`_carries_book_alerts`).
    """

    def __init__(self, defaults: AlertThresholds | None = None,
                 per_desk: dict[str, AlertThresholds] | None = None) -> None:
        self.defaults = defaults or AlertThresholds()
        self.per_desk = per_desk or {}
        # Machines per book and timeframe (see _book), then per (kind, subject).
        self._machines: dict[AlertBook, dict[tuple[AlertKind, str], _Machine]] = {}

    def thresholds(self, desk: str | None) -> AlertThresholds:
        return self.per_desk.get(desk or "", self.defaults)

    def levels(self, ts_ms: int) -> list[AlertLevels]:
        """The thresholds in effect at ``ts_ms`` (ms since the epoch) as published: the
        defaults (``desk`` None) first, then each desk that has its own, by name."""
        ts = ms_to_rfc3339(ts_ms)
        tables = [(None, self.defaults), *sorted(self.per_desk.items())]
        return [AlertLevels(ts=ts, desk=desk, **{
                    **msgspec.structs.asdict(limits),
                    "timeframes": None if limits.timeframes is None
                    else list(limits.timeframes)})
                for desk, limits in tables]

    def export_state(self) -> ExportedAlerts:
        """A copy of every machine (thresholds are configuration, not state)."""
        return {book: {(kind, subject): ExportedMachine(
                           level=machine.level, streak=dict(machine.streak),
                           severity=machine.severity, threshold=machine.threshold,
                           recovered_since_ms=machine.recovered_since_ms)
                       for (kind, subject), machine in machines.items()}
                for book, machines in self._machines.items()}

    def restore_state(self, state: ExportedAlerts) -> None:
        """Take over the machines of ``state``; only a fresh monitor, that has observed
        no frame yet, can (ValueError)."""
        if self._machines:
            raise ValueError("only a fresh alert monitor takes over an exported state")
        self._machines = {
            book: {(kind, subject): _Machine(level=machine.level, streak=dict(machine.streak),
                                             severity=machine.severity,
                                             threshold=machine.threshold,
                                             recovered_since_ms=machine.recovered_since_ms)
                   for (kind, subject), machine in machines.items()}
            for book, machines in state.items()}

    def observe(self, frame: Frame) -> list[Alert]:
        """Feed one frame; returns the transitions it causes (usually none)."""
        limits = self.thresholds(frame.desk)
        machines = self._machines.setdefault(_book(frame), {})
        seen: set[tuple[AlertKind, str]] = set()
        alerts = []
        alerting = limits.timeframes is None or frame.timeframe in limits.timeframes
        for reading in self._readings(frame, limits) if alerting else ():
            seen.add((reading.kind, reading.subject))
            machine = machines.setdefault((reading.kind, reading.subject), _Machine())
            alerts.extend(self._step(frame, limits, reading, machine, hold=True))
        # A subject that vanished (cluster split off or closed, or its timeframe no longer
        # alerts) reads as fully recovered. A cluster's alert waits out its hold, as the
        # same coins may re-form under it; a flat book's, or one of a timeframe that no
        # longer alerts, resolves at once.
        hold = alerting and bool(frame.positions)
        for (kind, subject), machine in list(machines.items()):
            if (kind, subject) not in seen:
                if machine.level >= 0:
                    gone = _Reading(kind, subject, None, (), True)
                    alerts.extend(self._step(frame, limits, gone, machine, hold=hold))
                if machine.level < 0:
                    del machines[(kind, subject)]
        return alerts

    def _readings(self, frame: Frame, limits: AlertThresholds) -> Iterator[_Reading]:
        concentration = (limits.cluster_concentration_warning,
                         limits.cluster_concentration_critical)
        liquidation = (limits.liquidation_sigma_warning, limits.liquidation_sigma_critical)
        for cluster in frame.clusters:
            yield _Reading("cluster_concentration", cluster.cluster, cluster.concentration,
                           concentration, True)
            yield _Reading("liquidation_proximity", cluster.cluster, cluster.liq_sigma,
                           liquidation, False)
        if not _carries_book_alerts(frame, limits):
            return
        # A frame has been stale since its oldest price crossed the price staleness age,
        # which the engine echoes in every frame's params under SPEC's name.
        echoed = frame.params.get("stale_after_s")
        price_stale_after_s = float(echoed) if isinstance(echoed, int | float) else 0.0
        stale_s = (max((frame.max_price_age_s or 0.0) - price_stale_after_s, 0.0)
                   if frame.stale else 0.0)
        # "Stale for more than N s" fires strictly above N: a tiny step past it counts.
        yield _Reading("stale_heat", "frame", stale_s,
                       (limits.stale_heat_after_s + 1e-9,), True)
        yield _Reading("regime_break", "portfolio", frame.regime_break, (limits.regime_break,),
                       True)

    def _step(self, frame: Frame, limits: AlertThresholds, reading: _Reading,
              machine: _Machine, hold: bool) -> list[Alert]:
        value, thresholds, above = reading.value, reading.thresholds, reading.above
        target = machine.level
        if value is None:
            target = -1
            machine.streak.clear()
        else:
            # Step down while the value has recovered past the current level's threshold.
            while target >= 0 and _recovered(value, thresholds[target], above,
                                             limits.resolve_ratio):
                target -= 1
            # Step up only after min_frames consecutive breaches of the higher level.
            for level in range(len(thresholds)):
                if _breaches(value, thresholds[level], above):
                    machine.streak[level] = machine.streak.get(level, 0) + 1
                else:
                    machine.streak[level] = 0
                if level > target and machine.streak[level] >= limits.min_frames:
                    target = level
        if target < machine.level and hold and reading.kind in HELD_KINDS \
                and limits.resolve_after_s > 0:
            now_ms = rfc3339_to_ms(frame.ts)
            if machine.recovered_since_ms is None:
                machine.recovered_since_ms = now_ms
            if now_ms - machine.recovered_since_ms < limits.resolve_after_s * 1000.0:
                return []
        machine.recovered_since_ms = None
        if target == machine.level:
            return []
        machine.level = target
        if target < 0:
            return [self._alert(frame, reading, "resolved", machine.severity, machine.threshold,
                                limits)]
        machine.severity = (LEVELS[target] if len(thresholds) > 1
                            else _single_severity(reading.kind))
        machine.threshold = thresholds[target]
        return [self._alert(frame, reading, "firing", machine.severity, machine.threshold,
                            limits)]

    @staticmethod
    def _alert(frame: Frame, reading: _Reading, state: AlertState, severity: Severity,
               threshold: float, limits: AlertThresholds) -> Alert:
        book = frame.account or f"desk {frame.desk}"
        value = "n/a" if reading.value is None else f"{reading.value:.4g}"
        relation = ">=" if reading.above else "<"
        message = (f"{book} {frame.timeframe}: {reading.kind.replace('_', ' ')} of "
                   f"{reading.subject} {value} "
                   + (f"{relation} {threshold:.4g}" if state == "firing" else "recovered"))
        return Alert(ts=frame.ts, account=frame.account, desk=frame.desk,
                     timeframe=frame.timeframe, kind=reading.kind, subject=reading.subject,
                     severity=severity, state=state, value=reading.value, threshold=threshold,
                     message=message, **_levels(reading.kind, limits))


def _carries_book_alerts(frame: Frame, limits: AlertThresholds) -> bool:
    """Whether ``frame`` is of the timeframe that carries its book's book-wide alerts.

    A stale feed and a regime break (the fastest against the slowest timeframe's
    correlations) are one fact about the book, the same number in the frames of every
    timeframe: they alert once, on the fastest timeframe that alerts for the book's desk
    (by the half-lives the frame echoes), not once per timeframe. A frame that does not
    echo the engine's timeframes carries them itself.
    """
    halflives = frame.params.get("timeframes")
    if not isinstance(halflives, dict) or not halflives:
        return True
    alerting = [name for name in halflives
                if limits.timeframes is None or name in limits.timeframes]
    if not alerting:
        return True
    fastest = min(alerting, key=lambda name: (float(halflives[name]), name))
    return bool(frame.timeframe == fastest)


def _book(frame: Frame) -> AlertBook:
    """The alert book of a frame: an account (whatever its desk) or a desk."""
    if frame.account is not None:
        return ("account", frame.account, frame.timeframe)
    return ("desk", frame.desk or "", frame.timeframe)


def _levels(kind: AlertKind, limits: AlertThresholds) -> dict[str, float | None]:
    """The configured levels of ``kind`` under ``limits``, as an alert carries them."""
    if kind == "cluster_concentration":
        return {"warning_threshold": limits.cluster_concentration_warning,
                "critical_threshold": limits.cluster_concentration_critical}
    if kind == "liquidation_proximity":
        return {"warning_threshold": limits.liquidation_sigma_warning,
                "critical_threshold": limits.liquidation_sigma_critical}
    if kind == "stale_heat":
        return {"warning_threshold": None, "critical_threshold": limits.stale_heat_after_s}
    return {"warning_threshold": limits.regime_break, "critical_threshold": None}


def _single_severity(kind: AlertKind) -> Severity:
    return "critical" if kind == "stale_heat" else "warning"
