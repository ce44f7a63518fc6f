"""``heat whatif``: what an order would do to a book's heat, asked of ``heat process``."""

from __future__ import annotations

import math

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from heatmap.cli.errors import CommandFailed, UsageFailed
from heatmap.schema import Change, OrderLimit, WhatIf, WhatIfOrder, WhatIfRequest
from heatmap.web.client import ApiRefused, ApiUnreachable, post_what_if


def whatif(
    account: str | None = typer.Option(None, "--account", help="The account placing the "
                                       "order (and whose frame is shown, unless --desk)."),
    symbol: str = typer.Option(..., "--symbol", help="Symbol of the order."),
    qty: float = typer.Option(..., "--qty", help="Units bought (> 0) or sold (< 0)."),
    timeframe: str = typer.Option("1h", "--timeframe", help="Correlation timeframe."),
    desk: str | None = typer.Option(None, "--desk", help="Show this desk's frame (the order "
                                    "booked on --account, or on the desk as a whole)."),
    url: str = typer.Option(..., "--url", envvar="HEAT_PROCESS_URL", help="Web address of a "
                            "`heat process` worker (logged at its start), e.g. "
                            "http://127.0.0.1:6066; a standby redirects to the active one."),
    token: str | None = typer.Option(None, "--token", envvar="HEAT_API_TOKEN",
                                     show_default=False, help="A bot API token with the "
                                     "whatif scope (`heat token create`); prefer "
                                     "HEAT_API_TOKEN: an option shows in process lists."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON answer."),
) -> None:
    """Show a book's heat before and after a proposed order at live prices.

    The processor computes it on a copy of its live prices, correlations and
    holdings: nothing is booked.
    """
    if account is None and desk is None:
        raise UsageFailed("give --account or --desk")
    try:
        request = WhatIfRequest(account=account, desk=desk, timeframe=timeframe,
                                orders=[WhatIfOrder(symbol=symbol, qty=qty)])
    except (ValueError, msgspec.ValidationError) as error:
        raise UsageFailed(f"invalid order: {error}") from error
    try:
        answer = post_what_if(url, request, token)
    except ApiUnreachable as error:
        raise CommandFailed(f"cannot reach the processor's web server ({error}): check "
                            "--url against the `process web server` log line of "
                            "`heat process`") from error
    except ApiRefused as error:
        hint = {401: "; give a valid token with --token or HEAT_API_TOKEN",
                403: "; the token needs the whatif scope"}.get(error.status, "")
        raise CommandFailed(f"the processor refused the what-if ({error.status}): "
                            f"{error}{hint}") from error
    if as_json:
        print(msgspec.json.encode(answer).decode())
        return
    _print(answer)


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def _row(table: Table, name: str, change: Change, digits: int = 4) -> None:
    delta = "-" if change.delta is None else f"{change.delta:+.{digits}g}"
    table.add_row(name, _number(change.before, digits), _number(change.after, digits), delta)


def _print(answer: WhatIf) -> None:
    delta = answer.delta
    orders = ", ".join(f"{order.qty:+g} {order.symbol}" for order in answer.orders)
    table = Table(title=f"{answer.book_kind} {answer.book} {answer.timeframe}: {orders} "
                        f"(prices at {answer.ts})")
    for column in ("", "before", "after", "delta"):
        table.add_column(column, justify="left" if not column else "right")
    _row(table, "correlated exposure", delta.correlated_exposure)
    _row(table, "effective bets", delta.effective_bets, 3)
    _row(table, "max cluster concentration", delta.max_cluster_concentration)
    _row(table, "liquidation distance %", delta.liq_distance_pct, 3)
    _row(table, "min cluster liq. sigmas", delta.min_liq_sigma, 3)
    _row(table, "gross", delta.gross)
    _row(table, "net", delta.net)
    _row(table, "VaR99 1d", delta.var99_1d, 6)
    for position in delta.positions:
        if position.qty.delta != 0.0:
            _row(table, f"heat {position.symbol}", position.heat)
            _row(table, f"share {position.symbol}", position.share)
    console = Console()
    console.print(table)
    for cluster in delta.clusters:
        for line in cluster.crossed_up:
            console.print(f"cluster {cluster.cluster} crosses {line:g} concentration "
                          f"({_number(cluster.concentration.after)})")
        for line in cluster.crossed_down:
            console.print(f"cluster {cluster.cluster} falls below {line:g} concentration")
    for alert in delta.alert_changes:
        console.print(f"would {'fire' if alert.state == 'firing' else 'resolve'}: "
                      f"{alert.severity} {alert.message}")
    for limit in answer.limits:
        console.print(_limit_line(limit))


def _limit_line(limit: OrderLimit) -> str:
    """What the order's limit says, one line."""
    if limit.max_qty is None:
        return (f"limit {limit.symbol}: none (the book reports no equity, so its shares "
                "move with the order)")
    if limit.limited_by == "order_bound":
        return (f"limit {limit.symbol}: {limit.max_qty:+.6g} (no concentration line binds "
                "up to the largest order a what-if takes)")
    members = ", ".join(limit.members)
    return (f"limit {limit.symbol}: {limit.max_qty:+.6g} keeps cluster {limit.cluster} "
            f"({members}) at or under {limit.line:g} concentration on {limit.timeframe}")
