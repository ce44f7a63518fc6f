"""The comparison as a picture: per book, equity curves of every leverage and rule, with
liquidations marked, and the largest cluster concentration beneath on the same time axis."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Literal

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from heatmap.compare.report import CompareReport
from heatmap.compare.run import ScenarioSeries

RULE_STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")


def _times(ts_ms: np.ndarray) -> np.ndarray:
    return ts_ms.astype("datetime64[ms]")


def render(report: CompareReport, series: list[ScenarioSeries], path: Path | BinaryIO) -> None:
    """Write the picture to ``path`` (PNG; a path or a binary file): one panel pair per book,
    time on one axis."""
    books = sorted({item.result.book for item in series})
    leverages = report.params.leverages
    rules = ["none", *report.params.rules]
    colours = matplotlib.colormaps["tab10"]
    # A figure of its own on the Agg canvas: no pyplot state, no display needed.
    figure = Figure(figsize=(12, 0.8 + 4.0 * len(books)), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subfigures(len(books), 1, squeeze=False)[:, 0]
    times_all = [item.ts_ms for item in series if item.ts_ms.size]
    span = (_times(np.array([min(t[0] for t in times_all)])),
            _times(np.array([max(t[-1] for t in times_all)]))) if times_all else None
    critical = report.params.critical_concentration
    for panel, book in zip(panels, books, strict=True):
        equity_axis, heat_axis = panel.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
        for item in (s for s in series if s.result.book == book):
            result = item.result
            colour = colours(leverages.index(result.leverage) % 10)
            style = RULE_STYLES[rules.index(result.rule) % len(RULE_STYLES)]
            times = _times(item.ts_ms)
            relative = item.equity / result.equity_start
            equity_axis.plot(times, relative, style, color=colour, linewidth=1.1)
            heat_axis.plot(times, item.max_cluster_concentration, style, color=colour,
                           linewidth=0.9)
            if item.liquidation_ms is not None:
                at = np.flatnonzero(item.ts_ms == item.liquidation_ms)[0]
                equity_axis.plot(times[at], relative[at], "X", color=colour, markersize=11,
                                 markeredgecolor="black", zorder=5)
                # Labels of books liquidated close together are stacked, not overlaid.
                lift = 14 * leverages.index(result.leverage)
                equity_axis.annotate(f"{result.leverage} liquidated", (times[at], relative[at]),
                                     textcoords="offset points", xytext=(8, 4 + lift),
                                     fontsize=8, color=colour, fontweight="bold")
        equity_axis.axhline(1.0, color="grey", linewidth=0.6)
        equity_axis.axhline(0.0, color="black", linewidth=0.6)
        equity_axis.set_ylabel("equity / start")
        equity_axis.grid(alpha=0.3)
        heat_axis.axhline(critical, color="firebrick", linewidth=0.8, linestyle="--")
        heat_axis.annotate(f"critical {critical:g}", (1.0, critical),
                           xycoords=("axes fraction", "data"), xytext=(-4, 3),
                           textcoords="offset points", fontsize=7, color="firebrick",
                           ha="right")
        heat_axis.set_yscale("log")
        heat_axis.set_ylabel("max cluster K")
        heat_axis.grid(alpha=0.3, which="major")
        heat_axis.xaxis.set_major_locator(mdates.DayLocator(interval=2))
        heat_axis.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        if span is not None:
            heat_axis.set_xlim(span[0][0], span[1][0])
        panel.suptitle(book, x=0.01, ha="left", fontsize=11, fontweight="bold")
    handles = [Line2D([], [], color=colours(number % 10), label=f"leverage {label}")
               for number, label in enumerate(leverages)]
    handles += [Line2D([], [], color="black", linestyle=RULE_STYLES[number % len(RULE_STYLES)],
                       label=f"rule {label}") for number, label in enumerate(rules)]
    handles.append(Line2D([], [], color="grey", marker="X", linestyle="none",
                          markeredgecolor="black", markersize=9, label="liquidated"))
    figure.legend(handles=handles, loc="outside upper center", ncol=len(handles),
                  fontsize=9, frameon=False)
    figure.supxlabel(f"UTC; equity marked at every {report.params.bar_interval_s // 60}-minute "
                     f"bar close; heat on {report.params.heat_timeframe} correlations",
                     fontsize=9)
    figure.savefig(path, dpi=100, format="png")
