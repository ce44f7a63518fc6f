"""Render one book's heat from the database as a PNG.

At a moment (``at``): the newest frame at or before it, one bar per held symbol:
heat (coloured by heat, blue for hedges) with the position's absolute size beside it,
and the frame's KPIs in the title. Over a range (``span``): a heat map of symbols x
time from ``heat_api.heat_history``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
import psycopg
from matplotlib.colors import TwoSlopeNorm

CMAP = "RdYlBu_r"

LATEST = """
    SELECT ts, trigger, params_hash, gross, correlated_exposure, effective_bets,
           max_cluster_concentration, var99_1d
    FROM heat_api.frames
    WHERE book_kind = 'account' AND book = %(account)s AND timeframe = %(timeframe)s
      AND ts <= %(at)s
    ORDER BY ts DESC, trigger
    LIMIT 1
"""
POSITIONS = """
    SELECT symbol, heat, abs(share), cluster
    FROM heat_api.frame_positions
    WHERE book_kind = 'account' AND book = %(account)s AND timeframe = %(timeframe)s
      AND ts = %(ts)s AND trigger = %(trigger)s AND params_hash = %(params_hash)s
    ORDER BY heat DESC, symbol
"""
HISTORY = """
    SELECT bucket, symbol, heat_avg
    FROM heat_api.heat_history(%(account)s, %(timeframe)s, %(start)s, %(end)s,
                               %(resolution)s)
    ORDER BY bucket, symbol
"""


class NothingToDraw(LookupError):  # noqa: N818 - reads as what happened
    """The database has no frame of that book and timeframe in the asked time."""


@dataclass(frozen=True)
class Snapshot:
    """What to draw: a book, a timeframe, and a moment (``span`` None) or a range ending
    at ``at``."""

    account: str
    timeframe: str
    at: datetime
    span: timedelta | None = None


def render(url: str, snapshot: Snapshot, out: Path) -> Path:
    """Query the database at ``url`` (``heat_reader`` is enough) and write the PNG."""
    with psycopg.connect(url) as connection:
        if snapshot.span is None:
            figure = _moment(connection, snapshot)
        else:
            figure = _range(connection, snapshot, snapshot.span)
    figure.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return out


def _moment(connection: psycopg.Connection[Any], snapshot: Snapshot) -> Any:
    params = {"account": snapshot.account, "timeframe": snapshot.timeframe, "at": snapshot.at}
    frame = connection.execute(LATEST, params).fetchone()
    if frame is None:
        raise NothingToDraw(f"no {snapshot.timeframe} frame of {snapshot.account} at or "
                            f"before {snapshot.at:%Y-%m-%d %H:%M} UTC")
    ts, trigger, params_hash, gross, exposure, bets, concentration, var99 = frame
    rows = connection.execute(POSITIONS, {**params, "ts": ts, "trigger": trigger,
                                          "params_hash": params_hash}).fetchall()
    if not rows:
        raise NothingToDraw(f"{snapshot.account} held nothing at {ts:%Y-%m-%d %H:%M} UTC")
    symbols = [f"{row[0]}  [{row[3]}]" for row in rows]
    heat = np.array([row[1] for row in rows])
    size = np.array([row[2] for row in rows])
    limit = max(float(np.abs(heat).max()), 1e-9)
    colours = plt.get_cmap(CMAP)(TwoSlopeNorm(0.0, -limit, limit)(heat))
    figure, axis = plt.subplots(figsize=(9, 0.5 * len(rows) + 2))
    positions = np.arange(len(rows))
    axis.barh(positions - 0.2, heat, height=0.4, color=colours, label="heat")
    axis.barh(positions + 0.2, size, height=0.4, color="0.75", label="|size|")
    axis.set_yticks(positions, symbols)
    axis.invert_yaxis()
    axis.axvline(0, color="0.3", linewidth=0.8)
    axis.set_xlabel("share of equity")
    axis.legend(loc="lower right")
    bets_text = "-" if bets is None else f"{bets:.2f}"
    concentration_text = "-" if concentration is None else f"{concentration:.1%}"
    axis.set_title(f"{snapshot.account} · {snapshot.timeframe} · {ts:%Y-%m-%d %H:%M} UTC\n"
                   f"gross {gross:.1%}   correlated {exposure:.1%}   bets {bets_text}   "
                   f"max cluster {concentration_text}   VaR99 1d {var99:.4g}", fontsize=10)
    return figure


def _range(connection: psycopg.Connection[Any], snapshot: Snapshot, span: timedelta) -> Any:
    start = snapshot.at - span
    # About 100 columns, never finer than a minute.
    resolution = max(timedelta(minutes=1), span / 100)
    rows = connection.execute(HISTORY, {"account": snapshot.account,
                                        "timeframe": snapshot.timeframe, "start": start,
                                        "end": snapshot.at, "resolution": resolution}
                              ).fetchall()
    if not rows:
        raise NothingToDraw(f"no {snapshot.timeframe} frames of {snapshot.account} between "
                            f"{start:%Y-%m-%d %H:%M} and {snapshot.at:%Y-%m-%d %H:%M} UTC")
    buckets = sorted({row[0] for row in rows})
    symbols = sorted({row[1] for row in rows})
    grid = np.full((len(symbols), len(buckets)), np.nan)
    column = {bucket: index for index, bucket in enumerate(buckets)}
    line = {symbol: index for index, symbol in enumerate(symbols)}
    for bucket, symbol, heat in rows:
        grid[line[symbol], column[bucket]] = heat
    limit = max(float(np.nanmax(np.abs(grid))), 1e-9)
    figure, axis = plt.subplots(figsize=(11, 0.45 * len(symbols) + 2))
    image = axis.imshow(grid, aspect="auto", cmap=CMAP, norm=TwoSlopeNorm(0.0, -limit, limit),
                        interpolation="nearest")
    axis.set_yticks(np.arange(len(symbols)), symbols)
    ticks = np.linspace(0, len(buckets) - 1, num=min(8, len(buckets))).astype(int)
    axis.set_xticks(ticks, [f"{buckets[i]:%m-%d %H:%M}" for i in ticks], rotation=30)
    figure.colorbar(image, ax=axis, label="heat (share of equity)")
    axis.set_title(f"{snapshot.account} · {snapshot.timeframe} · heat per symbol, "
                   f"{start:%Y-%m-%d %H:%M} to {snapshot.at:%Y-%m-%d %H:%M} UTC", fontsize=10)
    return figure
