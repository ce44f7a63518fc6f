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
    params = report.params
    table = Table(
        title=f"Books under leverage and rules (heat on {params.heat_timeframe} correlations)",
        caption=f"near miss: bars with a cluster under {params.near_miss_sigma:g} sigma of its "
                f"1-day move from liquidation; K h: hours a critical cluster concentration "
                f"alert (K >= {params.critical_concentration:g}) was firing")
    for name in ("book", "leverage", "rule"):
        table.add_column(name, no_wrap=True)
    table.add_column("return", justify="right", no_wrap=True)
    table.add_column("max DD", justify="right", no_wrap=True)
    table.add_column("liquidated", no_wrap=True)
    table.add_column("near miss", justify="right")
    table.add_column("K h", justify="right")
    table.add_column("worst cluster", no_wrap=True)
    table.add_column("eff. bets (median)", justify="right")
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
    table = Table(title="Worst drawdowns and the heat in the hour before each peak",
                  caption="max K, eff. bets, top cluster: the hottest bar frame of that hour; "
                          "lost most: the cluster whose members lost most, peak to trough")
    for name in ("book", "leverage", "rule"):
        table.add_column(name, no_wrap=True)
    table.add_column("#", justify="right")
    table.add_column("peak", no_wrap=True)
    table.add_column("trough", no_wrap=True)
    table.add_column("depth", justify="right")
    table.add_column("max K", justify="right")
    table.add_column("eff. bets", justify="right")
    table.add_column("top cluster")
    table.add_column("lost most", no_wrap=True)
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
