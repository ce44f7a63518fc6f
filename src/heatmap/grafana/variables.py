"""Template variables shared by the heat dashboards, and the SQL fragments that use them.

Every string variable reaches SQL as ``${name:sqlstring}``: Grafana quotes the value and
doubles its single quotes, so desk, account and symbol names with quotes, spaces or any
script are compared verbatim and cannot change the query.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import (
    VariableHide,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from heatmap.grafana.datasources import postgres_ref

DESK = "${desk:sqlstring}"
ACCOUNT = "${account:sqlstring}"
TIMEFRAME = "${timeframe:sqlstring}"
PARAMS_HASH = "${params_hash:sqlstring}"

# The chosen account's rows of one timeframe and parameter set (frames, frame positions,
# frame clusters and the rollups all have these columns).
BOOK_FILTER = (f"book_kind = 'account' AND book = {ACCOUNT} AND timeframe = {TIMEFRAME} "
               f"AND params_hash = {PARAMS_HASH}")

# The newest frame of the account in the time range: what the "now" panels show (the
# right edge of the time picker, so moving it back shows the heat of that moment).
LATEST_FRAME = f"""
    latest AS (
        SELECT ts, trigger, (params->>'missing_conviction')::double precision
                            AS missing_conviction
        FROM heat_api.frames
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        ORDER BY ts DESC, trigger
        LIMIT 1
    )"""

# The alert levels of the chosen desk (its own, else the defaults' row, desk NULL), as
# the processor last published them (heat_api.alert_thresholds).
DESK_LEVELS = f"""
    levels AS (
        SELECT *
        FROM heat_api.alert_thresholds
        WHERE desk = {DESK} OR desk IS NULL
        ORDER BY desk IS NULL
        LIMIT 1
    )"""

# Accounts of the chosen desk.
DESK_ACCOUNTS = (f"SELECT DISTINCT account FROM heat_api.account_equity "
                 f"WHERE desk = {DESK}")


def _query_variable(name: str, label: str, sql: str, refresh: VariableRefresh
                    ) -> dash.QueryVariable:
    return (dash.QueryVariable(name).label(label).datasource(postgres_ref()).query(sql)
            .refresh(refresh).sort(VariableSort.ALPHABETICAL_ASC)
            .current(VariableOption(text="", value="")))


def desk() -> dash.QueryVariable:
    return _query_variable(
        "desk", "Desk", "SELECT DISTINCT desk FROM heat_api.account_equity "
        "WHERE desk IS NOT NULL AND desk <> '' ORDER BY 1", VariableRefresh.ON_DASHBOARD_LOAD)


def account() -> dash.QueryVariable:
    return _query_variable("account", "Account", f"{DESK_ACCOUNTS} ORDER BY 1",
                           VariableRefresh.ON_DASHBOARD_LOAD)


def timeframe() -> dash.QueryVariable:
    return _query_variable(
        "timeframe", "Timeframe", "SELECT timeframe FROM heat_api.current_params "
        f"WHERE book_kind = 'account' AND book = {ACCOUNT} ORDER BY 1",
        VariableRefresh.ON_DASHBOARD_LOAD)


def params_hash() -> dash.QueryVariable:
    """The engine parameter set of the account's newest frames (hidden): history written
    with other parameters by a backfill is never mixed in."""
    return _query_variable(
        "params_hash", "Parameters", "SELECT params_hash FROM heat_api.current_params "
        f"WHERE book_kind = 'account' AND book = {ACCOUNT} AND timeframe = {TIMEFRAME}",
        VariableRefresh.ON_TIME_RANGE_CHANGED).hide(VariableHide.HIDE_VARIABLE)


def book_variables() -> list[cogbuilder.Builder[VariableModel]]:
    return [desk(), account(), timeframe(), params_hash()]
