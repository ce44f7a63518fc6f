"""The comparison as terminal tables (rich): one row per scenario, then the heat before the
worst drawdowns."""

from __future__ import annotations

from rich.table import Table

from heatmap.compare.report import CompareReport, HeatState


def _percent(value: float, signed: bool = False) -> str:
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _moment(ts: str) -> str:
    """``2018-01-16T22:25:00.000Z`` as ``2018-01-16 22:25``."""
    return ts[:16].replace("T", " ")


def scenario_table(report: CompareReport) -> Table:
    """Return, drawdown, liquidation and heat of every book x leverage x rule."""
    heat = report.params.heat_timeframe
    table = Table(title=f"Books under leverage and rules (heat on {heat} correlations)")
    for name in ("book", "leverage", "rule"):
        table.add_column(name)
    for name in ("return", "max DD"):
        table.add_column(name, justify="right")
    table.add_column("liquidated")
    table.add_column("near misses", justify="right")
    table.add_column(f"critical K>={report.params.critical_concentration:g} h", justify="right")
    table.add_column("worst cluster")
    table.add_column("median eff. bets", justify="right")
    for row in report.scenarios:
        table.add_row(
            row.book, row.leverage, row.rule, _percent(row.total_return, signed=True),
            _percent(row.max_drawdown),
            _moment(row.liquidation.ts) if row.liquidation else "no",
            str(row.near_misses), f"{row.critical_concentration_hours:.1f}",
            row.worst_cluster or "-", _number(row.median_effective_bets))
    return table


def _cluster(state: HeatState | None) -> str:
    if state is None or state.top_cluster is None:
        return "-"
    others = [member for member in state.members if member != state.top_cluster]
    return state.top_cluster + (f" (+{', '.join(others)})" if others else "")


def drawdown_table(report: CompareReport) -> Table:
    """The worst drawdowns of every scenario with the heat of the hour before each peak."""
    table = Table(title="Worst drawdowns and the heat in the hour before each peak")
    for name in ("book", "leverage", "rule", "#", "peak", "trough"):
        table.add_column(name, justify="right" if name == "#" else "left")
    table.add_column("depth", justify="right")
    table.add_column("max K", justify="right")
    table.add_column("eff. bets", justify="right")
    table.add_column("top cluster")
    table.add_column("lost most")
    for row in report.scenarios:
        for drawdown in row.drawdowns:
            state = drawdown.heat_before
            losses = drawdown.loss_by_cluster
            table.add_row(
                row.book, row.leverage, row.rule, str(drawdown.rank),
                _moment(drawdown.peak_ts), _moment(drawdown.trough_ts),
                _percent(drawdown.depth),
                _number(state.max_cluster_concentration if state else None),
                _number(state.effective_bets if state else None), _cluster(state),
                losses[0].cluster if losses and losses[0].loss > 0.0 else "-")
    return table
