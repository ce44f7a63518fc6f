"""History and review: heat next to P&L, concentration before the worst drawdowns,
accounts side by side, and the timeframes side by side."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from heatmap.grafana import live_heat, styles
from heatmap.grafana.board import Board
from heatmap.grafana.datasources import postgres_ref
from heatmap.grafana.queries import Sql
from heatmap.grafana.variables import (
    ACCOUNT,
    BOOK_FILTER,
    DESK,
    DESK_ACCOUNTS,
    PARAMS_HASH,
    TIMEFRAME,
    book_variables,
)

UID = live_heat.HISTORY_UID

# Mark-to-market P&L of the account's positions from bar to bar: the quantity held at the
# previous bar times the price change, only between consecutive bars (a symbol closed
# and reopened later earns nothing while flat), summed over symbols, cumulated.
PNL_CURVE = f"""
    bar AS (
        SELECT (params->>'bar_interval_s')::double precision AS bar_s
        FROM heat_api.frames
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        ORDER BY ts DESC
        LIMIT 1
    ),
    legs AS (
        SELECT ts, qty, price, lag(ts) OVER w AS prev_ts, lag(qty) OVER w AS prev_qty,
               lag(price) OVER w AS prev_price
        FROM heat_api.frame_positions
        WHERE {BOOK_FILTER} AND trigger = 'bar' AND $__timeFilter(ts)
        WINDOW w AS (PARTITION BY symbol ORDER BY ts)
    ),
    bars AS (
        SELECT ts, sum(CASE WHEN ts - prev_ts <= make_interval(secs => bar.bar_s)
                            THEN prev_qty * (price - prev_price) ELSE 0 END) AS pnl_change
        FROM legs, bar
        GROUP BY ts
    ),
    curve AS (
        SELECT ts, sum(pnl_change) OVER (ORDER BY ts) AS pnl FROM bars
    )"""


def _heat_state() -> tuple[statetimeline.Panel, Sql]:
    query = Sql(f"""
        SELECT $__timeGroupAlias(ts, $__interval),
               max(max_cluster_concentration) AS concentration
        FROM heat_api.frames
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        GROUP BY 1
        ORDER BY 1
    """, format="time_series")

    def band(low: float, high: float, text: str, color: str) -> model.RangeMap:
        return model.RangeMap(options=model.DashboardRangeMapOptions(
            from_val=low, to=high, result=model.ValueMappingResult(text=text, color=color)))

    panel = (statetimeline.Panel().title("Heat state")
             .description("The book's largest cluster concentration per interval: cool "
                          "below 20%, warm to 25%, hot above.")
             .datasource(postgres_ref()).with_target(query)
             .mappings([band(-1e9, styles.CONCENTRATION_WARN, "cool", "green"),
                        band(styles.CONCENTRATION_WARN, styles.CONCENTRATION_CRITICAL,
                             "warm", "orange"),
                        band(styles.CONCENTRATION_CRITICAL, 1e9, "hot", "red")])
             .thresholds(styles.concentration_thresholds())
             .color_scheme(styles.from_thresholds()).merge_values(True))
    return panel, query


def _symbol_heat() -> tuple[statetimeline.Panel, Sql]:
    query = Sql(f"""
        SELECT bucket AS "time", symbol AS metric, heat_avg AS heat
        FROM heat_api.heat_history({ACCOUNT}, {TIMEFRAME}, $__timeFrom(), $__timeTo(),
                                   make_interval(secs => $__interval_ms / 1000.0), NULL,
                                   'account', {PARAMS_HASH})
        ORDER BY 1, 2
    """, format="time_series")
    panel = (statetimeline.Panel().title("Heat per symbol")
             .datasource(postgres_ref()).with_target(query).unit("percentunit")
             .thresholds(styles.heat_thresholds()).color_scheme(styles.from_thresholds())
             .show_value(common.VisibilityMode.NEVER).merge_values(False))
    return panel, query


def _pnl() -> tuple[timeseries.Panel, Sql]:
    query = Sql(f"""
        WITH {PNL_CURVE.strip()}
        SELECT $__timeGroupAlias(ts, $__interval), (array_agg(pnl ORDER BY ts DESC))[1] AS pnl
        FROM curve
        GROUP BY 1
        ORDER BY 1
    """, format="time_series")
    panel = (timeseries.Panel().title("P&L (mark to market, cumulative)")
             .description("Bar-to-bar P&L of the positions held (previous bar's quantity "
                          "times the price change), summed from the start of the range, in "
                          "the settlement currency.")
             .datasource(postgres_ref()).with_target(query).decimals(4)
             .fill_opacity(10))
    return panel, query


def _drawdowns() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        WITH {PNL_CURVE.strip()},
        peaks AS (
            SELECT ts, pnl, max(pnl) OVER (ORDER BY ts) AS peak FROM curve
        ),
        episodes AS (
            SELECT ts, pnl - peak AS drawdown,
                   max(CASE WHEN pnl = peak THEN ts END) OVER (ORDER BY ts) AS peak_ts
            FROM peaks
        ),
        worst AS (
            SELECT DISTINCT ON (peak_ts) peak_ts, ts AS trough_ts, drawdown
            FROM episodes
            WHERE drawdown < 0
            ORDER BY peak_ts, drawdown, ts
        )
        SELECT w.peak_ts AS drawdown_start, w.trough_ts AS trough, w.drawdown,
               before.concentration_max, before.concentration_avg, before.exposure_avg,
               before.effective_bets_min
        FROM worst AS w
        CROSS JOIN LATERAL (
            SELECT max(max_cluster_concentration) AS concentration_max,
                   avg(max_cluster_concentration) AS concentration_avg,
                   avg(correlated_exposure) AS exposure_avg,
                   min(effective_bets) AS effective_bets_min
            FROM heat_api.frames
            WHERE {BOOK_FILTER}
              AND ts > w.peak_ts - ${{lookback:sqlstring}}::interval AND ts <= w.peak_ts
        ) AS before
        ORDER BY w.drawdown, w.peak_ts
        LIMIT 5
    """)
    panel = (table.Panel().title("Concentration before the worst drawdowns")
             .description("The five deepest peak-to-trough falls of the P&L curve in the "
                          "range, with the book's concentration over the lookback before "
                          "each peak.")
             .datasource(postgres_ref()).with_target(query)
             .override_by_name("concentration_max", [
                 styles.cell("color-background"), styles.unit("percentunit"),
                 styles.threshold_override(styles.concentration_thresholds())])
             .override_by_name("concentration_avg", [styles.unit("percentunit")])
             .override_by_name("exposure_avg", [styles.unit("percentunit")])
             .override_by_name("drawdown", [styles.decimals(4)]))
    return panel, query


def _comparison() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        SELECT book_kind, book, frames, concentration_p50, concentration_p90,
               concentration_max, effective_bets_p10, effective_bets_p50
        FROM heat_api.strategy_comparison($__timeFrom(), $__timeTo(), {TIMEFRAME})
        WHERE (book_kind = 'account' AND book IN ({DESK_ACCOUNTS}))
           OR (book_kind = 'desk' AND book = {DESK})
        ORDER BY book_kind DESC, book
    """)
    concentration = [styles.cell("color-background"), styles.unit("percentunit"),
                     styles.threshold_override(styles.concentration_thresholds())]
    panel = (table.Panel().title("Accounts side by side")
             .description("Distribution of max cluster concentration and effective bets "
                          "per account of the desk (and the desk as one book).")
             .datasource(postgres_ref()).with_target(query)
             .override_by_name("concentration_p50", concentration)
             .override_by_name("concentration_p90", concentration)
             .override_by_name("concentration_max", concentration))
    return panel, query


def _accounts_concentration() -> tuple[timeseries.Panel, Sql]:
    query = Sql(f"""
        SELECT m.bucket AS "time", m.book AS metric,
               m.max_cluster_concentration_max AS concentration
        FROM heat_api.frame_metrics_1h AS m
        JOIN heat_api.current_params AS c USING (book_kind, book, timeframe, params_hash)
        WHERE m.book_kind = 'account' AND m.timeframe = {TIMEFRAME}
          AND m.book IN ({DESK_ACCOUNTS}) AND $__timeFilter(m.bucket)
        ORDER BY 1, 2
    """, format="time_series")
    panel = (timeseries.Panel().title("Max cluster concentration by account (hourly)")
             .datasource(postgres_ref()).with_target(query).unit("percentunit")
             .thresholds(styles.concentration_thresholds())
             .thresholds_style(common_builders.GraphThresholdsStyleConfig()
                               .mode(common.GraphThresholdsStyleMode.DASHED)))
    return panel, query


def _per_timeframe() -> tuple[timeseries.Panel, Sql]:
    query = Sql(f"""
        SELECT m.bucket AS "time", m.correlated_exposure_avg AS correlated_exposure,
               m.max_cluster_concentration_max AS max_cluster_concentration,
               m.regime_break_max AS regime_break
        FROM heat_api.frame_metrics_1h AS m
        JOIN heat_api.current_params AS c USING (book_kind, book, timeframe, params_hash)
        WHERE m.book_kind = 'account' AND m.book = {ACCOUNT}
          AND m.timeframe = ${{timeframes:sqlstring}} AND $__timeFilter(m.bucket)
        ORDER BY 1
    """, format="time_series")
    panel = (timeseries.Panel().title("Timeframe ${timeframes}")
             .description("Hourly rollup of the account's frames for one correlation "
                          "horizon; the panel repeats for every timeframe.")
             .datasource(postgres_ref()).with_target(query).unit("percentunit")
             .repeat("timeframes").repeat_direction("h").max_per_row(3)
             .override_by_name("regime_break", [styles.unit("none")]))
    return panel, query


def _extra_variables() -> list[cogbuilder.Builder[model.VariableModel]]:
    lookback = (dash.CustomVariable("lookback").label("Lookback before a drawdown")
                .values("4 hours,1 day,3 days")
                .current(model.VariableOption(text="1 day", value="1 day")))
    timeframes = (dash.QueryVariable("timeframes").label("Timeframes side by side")
                  .datasource(postgres_ref())
                  .query("SELECT timeframe FROM heat_api.current_params "
                         f"WHERE book_kind = 'account' AND book = {ACCOUNT} ORDER BY 1")
                  .multi(True).include_all(True)
                  .current(model.VariableOption(text="All", value="$__all"))
                  .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD))
    return [lookback, timeframes]


def build() -> Board:
    dashboard = (dash.Dashboard("Portfolio heat: history and review").tags(["heat"])
                 .time("now-7d", "now").timezone("utc").editable()
                 .tooltip(model.DashboardCursorSync.CROSSHAIR)
                 .description("Heat next to P&L, concentration before drawdowns, accounts "
                              "and timeframes side by side.")
                 .variables([*book_variables(), *_extra_variables()])
                 .annotation(live_heat.alert_annotation())
                 .links([dash.DashboardLink("Live heat").type(model.DashboardLinkType.LINK)
                         .url(f"/d/{live_heat.UID}").icon("dashboard").keep_time(True)
                         .include_vars(True)]))
    board = Board(UID, dashboard)
    board.row(100, "Heat and P&L")
    panel, _ = _heat_state()
    board.add(panel, 1, 24, 4, {"A": ("time", "concentration")})
    panel2, _ = _symbol_heat()
    board.add(panel2, 2, 24, 8, {"A": ("time", "metric", "heat")})
    panel3, _ = _pnl()
    board.add(panel3, 3, 24, 8, {"A": ("time", "pnl")})
    panel4, _ = _drawdowns()
    board.add(panel4, 4, 24, 7, {"A": (
        "drawdown_start", "trough", "drawdown", "concentration_max", "concentration_avg",
        "exposure_avg", "effective_bets_min")})
    board.row(101, "Accounts side by side")
    panel5, _ = _comparison()
    board.add(panel5, 5, 12, 9, {"A": (
        "book_kind", "book", "frames", "concentration_p50", "concentration_p90",
        "concentration_max", "effective_bets_p10", "effective_bets_p50")})
    panel6, _ = _accounts_concentration()
    board.add(panel6, 6, 12, 9, {"A": ("time", "metric", "concentration")})
    board.row(102, "Timeframes side by side")
    panel7, _ = _per_timeframe()
    board.add(panel7, 7, 8, 8, {"A": ("time", "correlated_exposure",
                                      "max_cluster_concentration", "regime_break")})
    return board
