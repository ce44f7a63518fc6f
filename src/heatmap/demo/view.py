"""The demo's terminal picture (rich), and its one-line form for logs and pipes.

Every name that came from data (books, symbols, clusters, alert messages) is put in
``rich.text.Text``, never into markup, so a book called ``[bold]x`` prints as written.
Heat is coloured like ``heat snapshot``'s pictures: blue hedges, yellow to red heat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.color import Color
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from heatmap.demo.board import DEFAULT_LINES, Board, BookKey
from heatmap.schema import ms_to_rfc3339

# Concentration bars span 0..twice the critical line, at least 0..50 %: SPEC's 20 % and
# 25 % lines sit at 40 % and 50 % of the width.
BAR_SCALE = 0.50
BAR_WIDTH = 24
HEAT_BAR_WIDTH = 10
# RdYlBu reversed, as the snapshots draw it: cold (hedging) blue, neutral pale, hot red.
_COLD = (49, 54, 149)
_NEUTRAL = (255, 255, 191)
_HOT = (165, 0, 38)


@dataclass(frozen=True)
class ServiceView:
    """One child service as the footer shows it."""

    name: str
    running: bool
    healthy: bool | None  # None: not answering yet
    detail: str


@dataclass(frozen=True)
class RunView:
    """What the header says about the run."""

    source: str
    speed: float
    live_url: str
    snapshot_dir: str
    snapshots: int
    elapsed_s: float
    duration_s: float | None
    input_done: bool
    stopping: bool = False
    api_token: str = ""  # the run's own token, to log in to the live page


# -- small pieces --------------------------------------------------------------------------------


def heat_colour(heat: float, limit: float) -> Color:
    """The colour of ``heat`` on a scale of +-``limit`` (blue -limit, pale 0, red +limit)."""
    if not (math.isfinite(heat) and limit > 0):
        return Color.from_rgb(*_NEUTRAL)
    x = max(-1.0, min(1.0, heat / limit))
    end = _HOT if x >= 0 else _COLD
    a = abs(x)
    return Color.from_rgb(*(round(n + (e - n) * a) for n, e in zip(_NEUTRAL, end, strict=True)))


def heat_bar(heat: float, limit: float, width: int = HEAT_BAR_WIDTH) -> Text:
    """A block of ``|heat| / limit`` of ``width`` cells in the heat's colour."""
    share = min(abs(heat) / limit, 1.0) if limit > 0 and math.isfinite(heat) else 0.0
    cells = max(1, round(share * width)) if share > 0 else 0
    text = Text("█" * cells, style=Style(color=heat_colour(heat, limit)))
    text.append(" " * (width - cells))
    return text


def concentration_colour(value: float, lines: tuple[float, float] = DEFAULT_LINES) -> str:
    """Red at or above the critical line, yellow at or above the warning line (``lines``:
    the desk's warning and critical concentration, fractions of equity)."""
    warning, critical = lines
    if value >= critical:
        return "red"
    if value >= warning:
        return "yellow"
    return "green"


def concentration_bar(value: float, lines: tuple[float, float] = DEFAULT_LINES,
                      width: int = BAR_WIDTH, scale: float | None = None) -> Text:
    """``value`` as a bar over 0..``scale`` (default: twice the critical line, at least
    ``BAR_SCALE``) with the desk's warning and critical ``lines`` drawn through it; a
    value beyond the scale ends in an arrow."""
    warning, critical = lines
    scale = scale if scale is not None else max(BAR_SCALE, 2.0 * critical)
    cell = scale / width
    # A line is drawn in the cell whose right edge reaches its threshold.
    warn_cell = math.ceil(warning / cell - 1e-9) - 1
    critical_cell = math.ceil(critical / cell - 1e-9) - 1
    colour = concentration_colour(value, lines)
    filled = min(width, round(value / cell)) if math.isfinite(value) else 0
    text = Text()
    for index in range(width):
        line = "yellow" if index == warn_cell else "red" if index == critical_cell else None
        if index < filled:
            overflow = index == width - 1 and value > scale
            text.append("▶" if overflow else ("│" if line else " "),
                        style=Style(color="white" if line else None, bgcolor=colour))
        elif line:
            text.append("│", style=line)
        else:
            text.append("·", style="bright_black")
    return text


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}%}"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def sigmas(value: float | None) -> Text:
    if value is None or not math.isfinite(value):
        return Text("-")
    style = "bold red" if value < 1 else "yellow" if value < 3 else ""
    return Text(f"{value:.1f} σ", style=style)


def book_text(book: BookKey) -> Text:
    """A book's name as text (desks marked), never markup."""
    kind, name = book
    text = Text(name)
    if kind == "desk":
        text.append(" (desk)", style="dim")
    return text


def event_time(ts_ms: int | None) -> str:
    return "-" if ts_ms is None else ms_to_rfc3339(ts_ms)[:19].replace("T", " ")


# -- tables --------------------------------------------------------------------------------------


def books_table(board: Board) -> Table:
    table = Table(title=f"books ({board.timeframe})", title_justify="left", expand=True,
                  box=None, header_style="bold")
    for column in ("book", "equity", "gross", "corr. exp.", "eff. bets", "max K",
                   "VaR99 1d", "liq. dist.", "staleness"):
        table.add_column(column, justify="left" if column == "book" else "right",
                         no_wrap=True)
    for book, frame in board.books():
        concentration = frame.max_cluster_concentration
        age = "warming up" if frame.warming_up else (
            f"stale {number(frame.max_price_age_s, 1)} s" if frame.stale
            else f"{number(frame.max_price_age_s, 1)} s")
        table.add_row(
            book_text(book), number(frame.equity), percent(frame.gross, 0),
            percent(frame.correlated_exposure, 0), number(frame.effective_bets),
            Text(percent(concentration),
                 style=concentration_colour(concentration, board.concentration_lines(book))
                 if concentration else ""),
            number(frame.var99_1d), percent(frame.liq_distance),
            Text(age, style="bold red" if frame.stale else "dim"))
    return table


def positions_table(board: Board, limit: int) -> Table:
    rows = board.positions()
    shown = rows[:limit]
    table = Table(title=f"positions by heat ({len(shown)} of {len(rows)})", title_justify="left",
                  expand=True, box=None, header_style="bold")
    for column, justify in (("account", "left"), ("symbol", "left"), ("heat", "left"),
                            ("", "right"), ("|size|", "right"), ("cluster", "left"),
                            ("quadrant", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    limit_heat = max((abs(row.heat) for _, row in rows), default=0.0)
    for book, row in shown:
        table.add_row(book_text(book), Text(row.symbol), heat_bar(row.heat, limit_heat),
                      Text(f"{row.heat:+.1%}", style=Style(color=heat_colour(row.heat,
                                                                             limit_heat))),
                      percent(abs(row.share)), Text(row.cluster),
                      Text(row.quadrant + (" stale" if row.stale else ""),
                           style="red" if row.stale else "dim"))
    return table


def clusters_table(board: Board, limit: int) -> Table:
    rows = board.clusters()
    shown = rows[:limit]
    table = Table(title=f"clusters by concentration ({len(shown)} of {len(rows)}), "
                  "lines at each desk's warning and critical levels", title_justify="left",
                  expand=True, box=None, header_style="bold")
    for column, justify in (("book", "left"), ("cluster", "left"), ("concentration", "left"),
                            ("K", "right"), ("net", "right"), ("liq. dist.", "right"),
                            ("liq. σ", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for book, row in shown:
        members = Text(row.cluster)
        others = [member for member in row.members if member != row.cluster]
        if others:
            members.append(f" +{len(others)}", style="dim")
        lines = board.concentration_lines(book)
        table.add_row(book_text(book), members, concentration_bar(row.concentration, lines),
                      Text(percent(row.concentration), style=concentration_colour(
                          row.concentration, lines)),
                      percent(row.net, 0), percent(row.liq_distance), sigmas(row.liq_sigma))
    return table


def alerts_table(board: Board, limit: int) -> Table:
    alerts = board.alerts()
    table = Table(title=f"alerts firing ({len(alerts)})", title_justify="left", expand=True,
                  box=None, header_style="bold")
    for column in ("since", "book", "tf", "kind", "subject", "severity", "value"):
        table.add_column(column, no_wrap=True)
    for alert in alerts[:limit]:
        book: BookKey = ("account", alert.account) if alert.account is not None else (
            "desk", alert.desk or "")
        value = "-" if alert.value is None else (
            f"{alert.value:.2f} σ" if alert.kind == "liquidation_proximity"
            else f"{alert.value:.3g}")
        table.add_row(alert.ts[5:19].replace("T", " "), book_text(book), alert.timeframe,
                      alert.kind, Text(alert.subject),
                      Text(alert.severity,
                           style="bold red" if alert.severity == "critical" else "yellow"),
                      value)
    return table


def services_table(services: Sequence[ServiceView]) -> Table:
    table = Table(title="services", title_justify="left", expand=True, box=None,
                  header_style="bold")
    table.add_column("service", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("detail")
    for service in services:
        word = _state_word(service)
        state = Text(word, style={"exited": "bold red", "starting": "yellow",
                                  "healthy": "green", "finished": "dim"}.get(word, "red"))
        table.add_row(service.name, state, Text(service.detail))
    return table


def header(board: Board, run: RunView) -> Text:
    text = Text()
    text.append("Portfolio heat demo", style="bold")
    text.append(f"  {run.source} at {run.speed:g}x", style="cyan")
    text.append(f"  event time {event_time(board.event_ms)} UTC")
    text.append(f"  frames {board.frames_read:,}  alert transitions {board.alerts_read:,}")
    if board.undecodable:
        text.append(f"  undecodable {board.undecodable:,}", style="red")
    limit = "" if run.duration_s is None else f" of {run.duration_s:.0f}"
    text.append(f"  {run.elapsed_s:.0f}{limit} s", style="dim")
    text.append("\nlive page ")
    text.append(run.live_url, style="underline")
    if run.api_token:
        text.append(f"  token {run.api_token}")
    text.append(f"   snapshots {run.snapshots} in ")
    text.append(run.snapshot_dir)
    if run.stopping:
        text.append("   stopping: finishing the pipeline", style="bold yellow")
    elif run.input_done:
        text.append("   input finished", style="yellow")
    text.append("   Ctrl-C stops", style="dim")
    return text


def screen(board: Board, run: RunView, services: Sequence[ServiceView],
           height: int = 50) -> RenderableType:
    """The whole terminal picture, its tables trimmed to about ``height`` lines."""
    books = len(board.frames)
    # Fixed lines: header and panel (4), four table titles and headers (8), books, services.
    room = max(6, height - 12 - books - len(services) - 6)
    alerts = min(len(board.firing), max(2, room // 5))
    rest = room - alerts
    positions = max(3, rest // 2)
    clusters = max(3, rest - positions)
    return Group(
        Panel(header(board, run), border_style="blue"),
        books_table(board),
        positions_table(board, positions),
        clusters_table(board, clusters),
        alerts_table(board, alerts),
        services_table(services),
    )


def status_line(board: Board, run: RunView, services: Sequence[ServiceView]) -> str:
    """One plain line for logs and pipes: event time, counts, the hottest cluster, services."""
    parts = [f"[{run.elapsed_s:5.0f} s] event {event_time(board.event_ms)}",
             f"frames {board.frames_read}", f"alerts firing {len(board.firing)}"]
    clusters = board.clusters()
    if clusters:
        book, row = clusters[0]
        parts.append(f"hottest {book[1]}/{row.cluster} K {percent(row.concentration)}")
    stale = board.stale_books()
    if stale:
        parts.append(f"stale {len(stale)}")
    parts.extend(f"{service.name} {_state_word(service)}" for service in services)
    return " | ".join(parts)


def _state_word(service: ServiceView) -> str:
    if not service.running:
        return "finished" if service.detail == "finished" else "exited"
    if service.healthy is None:
        return "starting"
    return "healthy" if service.healthy else "unhealthy"
