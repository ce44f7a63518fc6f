"""What one ``heat demo`` run does, checked before anything starts.

Two sources feed the pipeline: the simulator (a market and desks made up as it runs) or
recorded files (the real January 2018 Binance bars with the example books). Each has
its own bar length and sensible pace; every number the user can change is here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import heatmap

TIMEFRAMES = ("1h", "4h", "1d")
# The simulator ticks every 250 ms of market: 1-minute bars; the recorded bars are 5-minute.
SIMULATOR_BAR = "1m"
REPLAY_BAR = "5m"
# A minute of market per second: a bar closes every second, warm-up (20 bars) in 20 s.
SIMULATOR_SPEED = 60.0
# An hour of market per second: the 16-17 January crash arrives after about 2.5 minutes.
REPLAY_SPEED = 3600.0
SIMULATOR_SNAPSHOT_EVERY_MIN = 30.0
REPLAY_SNAPSHOT_EVERY_MIN = 720.0
# The alert thresholds of the simulator's desks, as `heat alerts calibrate` suggested them
# (docs/demo.md says how the file was made); the processor of a simulated run uses it.
SIMULATOR_ALERT_CONFIG = Path(__file__).with_name("alerts.toml")
# The example books of the recorded bars, in the checkout the project runs from.
PROJECT_ROOT = Path(heatmap.__file__).resolve().parents[2]
EXAMPLE_BOOKS = PROJECT_ROOT / "tests" / "data" / "replay"


class DemoOptionError(ValueError):
    """An option is wrong; ``str()`` names it and says what to give instead."""


@dataclass(frozen=True)
class DemoOptions:
    """One run, resolved: the source, its pace and where pictures go.

    Parameters
    ----------
    replay : Path or None
        Folder (or files) of recorded prices; None runs the simulator.
    positions, accounts : Path or None
        The books replayed with ``replay`` (None with the simulator).
    speed : float
        Event time per wall time (60: a minute of market per second); for a replay
        0 means as fast as possible.
    duration_s : float or None
        Wall seconds to run from the first frame shown, then stop; None runs until Ctrl-C.
    snapshot_every_min : float
        Minutes of event time between PNG snapshots.
    snapshot_dir : Path
        Where snapshots are written.
    timeframe : str
        The correlation timeframe the terminal and the snapshots show.
    seed : int
        The simulator's seed.
    """

    replay: Path | None
    positions: Path | None
    accounts: Path | None
    speed: float
    duration_s: float | None
    snapshot_every_min: float
    snapshot_dir: Path
    timeframe: str
    seed: int

    @property
    def source(self) -> str:
        return "simulator" if self.replay is None else "replay"

    @property
    def bar(self) -> str:
        return SIMULATOR_BAR if self.replay is None else REPLAY_BAR

    @property
    def snapshot_every_ms(self) -> int:
        return round(self.snapshot_every_min * 60_000)


def resolve(*, replay: Path | None, positions: Path | None, accounts: Path | None,
            speed: float | None, duration_s: float | None, snapshot_every_min: float | None,
            snapshot_dir: Path, timeframe: str, seed: int,
            example_books: Path = EXAMPLE_BOOKS) -> DemoOptions:
    """The options of one run, with the source's defaults filled in.

    Raises DemoOptionError naming the first wrong option.
    """
    if timeframe not in TIMEFRAMES:
        raise DemoOptionError(f"--timeframe {timeframe!r}: choose one of {', '.join(TIMEFRAMES)}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise DemoOptionError(f"--duration {duration_s:g}: give a positive number of seconds")
    if snapshot_every_min is not None and not (
            math.isfinite(snapshot_every_min) and snapshot_every_min > 0):
        raise DemoOptionError(f"--snapshot-every-min {snapshot_every_min:g}: give a positive "
                              "number of minutes")
    if speed is not None and not (math.isfinite(speed) and speed >= 0):
        raise DemoOptionError(f"--speed {speed:g}: give a positive factor (60: a minute of "
                              "market per second)")
    if replay is None:
        if positions is not None or accounts is not None:
            raise DemoOptionError("--positions and --accounts go with --replay")
        if speed == 0:
            raise DemoOptionError("--speed 0: the simulator needs a pace; give e.g. 60")
        return DemoOptions(None, None, None, SIMULATOR_SPEED if speed is None else speed,
                           duration_s, snapshot_every_min or SIMULATOR_SNAPSHOT_EVERY_MIN,
                           snapshot_dir, timeframe, seed)
    if not replay.exists():
        raise DemoOptionError(f"--replay {replay}: no such file or folder (the real bars are "
                              "in data/binance-5m)")
    positions = _books_file(positions, example_books / "positions.csv", "--positions")
    accounts = _books_file(accounts, example_books / "accounts.csv", "--accounts")
    return DemoOptions(replay, positions, accounts, REPLAY_SPEED if speed is None else speed,
                       duration_s, snapshot_every_min or REPLAY_SNAPSHOT_EVERY_MIN,
                       snapshot_dir, timeframe, seed)


def _books_file(given: Path | None, example: Path, option: str) -> Path:
    path = given or example
    if not path.is_file():
        hint = "" if given else " (the example books are not in this installation)"
        raise DemoOptionError(f"{option} {path}: no such file{hint}; give one with {option}")
    return path
