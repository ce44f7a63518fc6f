"""Live heat: where one account's risk is concentrated now, and over the chosen range."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries, xychart
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import xychart as xy_model

from heatmap.grafana import styles
from heatmap.grafana.board import Board
from heatmap.grafana.datasources import postgres_ref
from heatmap.grafana.queries import Sql, SqlQuery
from heatmap.grafana.variables import (
    ACCOUNT,
    BOOK_FILTER,
    DESK_LEVELS,
    LATEST_FRAME,
    PARAMS_HASH,
    TIMEFRAME,
    book_variables,
)

UID = "heat-live"
HISTORY_UID = "heat-history"
PIPELINE_UID = "heat-pipeline"

# Panel ids: alert rules link to some of them, so they never change.
CONCENTRATION_PANEL = 12
CLUSTERS_PANEL = 13


def _kpi(title: str, column: str, unit: str, description: str,
         thresholds: dash.ThresholdsConfig | None = None) -> tuple[stat.Panel, Sql]:
    query = Sql(f"""
        SELECT ts AS "time", {column}
        FROM heat_api.frames
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        ORDER BY ts DESC, trigger
        LIMIT 1
    """)
    panel = (stat.Panel().title(title).description(description).datasource(postgres_ref())
             .with_target(query).unit(unit).decimals(3 if unit == "none" else 1)
             .graph_mode(common.BigValueGraphMode.NONE)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"])
                             .fields(f"/^{column}$/"))
             .color_mode(common.BigValueColorMode.BACKGROUND if thresholds
                         else common.BigValueColorMode.NONE))
    if thresholds is not None:
        panel = panel.thresholds(thresholds).color_scheme(styles.from_thresholds())
    return panel, query


KPIS = [
    ("Gross", "gross", "percentunit", "Sum of |position notional| over equity.", None),
    ("Correlated exposure", "correlated_exposure", "percentunit",
     "sqrt(s' rho s): the book's size once correlations are counted; heats sum to it.", None),
    ("Effective bets", "effective_bets", "none",
     "(gross / correlated exposure)^2: how many independent bets the book amounts to.",
     styles.thresholds(("red", None), ("orange", 2.0), ("green", 4.0))),
    ("VaR99 1d", "var99_1d", "none",
     "Parametric one-day 99% value at risk in the settlement currency.", None),
    ("Liquidation distance", "liq_distance", "percentunit",
     "Uniform adverse move of the whole book that takes equity to maintenance margin.",
     styles.thresholds(("red", None), ("orange", 0.10), ("green", 0.25))),
    ("Max cluster concentration", "max_cluster_concentration", "percentunit",
     "The most concentrated correlated cluster (warning 20%, critical 25%).",
     styles.concentration_thresholds()),
    ("Staleness", "max_price_age_s", "s",
     "Age of the oldest price the frame used.",
     styles.thresholds(("green", None), ("orange", 2.0), ("red", 7.0))),
    ("Regime break", "regime_break", "none",
     "RMS difference of the fastest and slowest timeframes' correlations (alert at 0.3).",
     styles.thresholds(("green", None), ("orange", 0.2), ("red", styles.REGIME_BREAK))),
]


def _positions() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        WITH {LATEST_FRAME.strip()}
        SELECT symbol, heat, abs(share) AS size, notional, heat_share, cluster, quadrant,
               stale
        FROM heat_api.frame_positions
        JOIN latest USING (ts, trigger)
        WHERE {BOOK_FILTER}
        ORDER BY heat DESC, symbol
    """)
    panel = (table.Panel().title("Heat per position")
             .description("Colour: the position's heat (share of equity weighted by its "
                          "correlation with the book; blue hedges). Bar: its absolute size "
                          "(|notional| / equity).")
             .datasource(postgres_ref()).with_target(query)
             .override_by_name("heat", [styles.cell("color-background", mode="gradient"),
                                        styles.threshold_override(styles.heat_thresholds()),
                                        styles.unit("percentunit"), styles.decimals(1)])
             .override_by_name("size", [styles.cell("gauge", mode="basic"),
                                        styles.unit("percentunit"),
                                        *styles.min_max(0, 1)])
             .override_by_name("heat_share", [styles.unit("percentunit")])
             .override_by_name("notional", [styles.decimals(4)]))
    return panel, query


def _heat_timeline() -> tuple[statetimeline.Panel, Sql]:
    query = Sql(f"""
        SELECT $__timeGroupAlias(ts, $__interval), symbol AS metric, avg(heat) AS heat
        FROM heat_api.frame_positions
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        GROUP BY 1, 2
        ORDER BY 1, 2
    """, format="time_series")
    panel = (statetimeline.Panel().title("Heat over time per symbol")
             .description("Average heat per symbol and interval, coloured like the table.")
             .datasource(postgres_ref()).with_target(query).unit("percentunit")
             .thresholds(styles.heat_thresholds()).color_scheme(styles.from_thresholds())
             .show_value(common.VisibilityMode.NEVER).merge_values(False))
    return panel, query


# The desk's own concentration lines across the time range: the series the
# concentration panel draws them from.
WARNING_LINE, CRITICAL_LINE = "warning line", "critical line"


def _concentration_lines() -> Sql:
    return Sql(f"""
        WITH {DESK_LEVELS.strip()}
        SELECT edge AS "time",
               levels.cluster_concentration_warning AS "{WARNING_LINE}",
               levels.cluster_concentration_critical AS "{CRITICAL_LINE}"
        FROM levels
        CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz))
                   AS range_edges(edge)
        ORDER BY 1
    """, format="time_series", ref_id="B")


def _concentration() -> tuple[timeseries.Panel, Sql]:
    query = Sql(f"""
        SELECT $__timeGroupAlias(ts, $__interval), cluster AS metric,
               max(concentration) AS concentration
        FROM heat_api.frame_clusters
        WHERE {BOOK_FILTER} AND $__timeFilter(ts)
        GROUP BY 1, 2
        ORDER BY 1, 2
    """, format="time_series")
    panel = (timeseries.Panel().title("Cluster concentration")
             .description("Concentration of each correlated cluster; the dashed lines are "
                          "the desk's own warning and critical alert levels (its alert "
                          "configuration, as the processor applies it).")
             .datasource(postgres_ref()).with_target(query)
             .with_target(_concentration_lines()).unit("percentunit")
             .override_by_name(WARNING_LINE, styles.dashed_line("orange"))
             .override_by_name(CRITICAL_LINE, styles.dashed_line("red"))
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.RIGHT).calcs(["max", "lastNotNull"])))
    return panel, query


def _clusters() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        WITH {LATEST_FRAME.strip()}
        SELECT cluster, array_to_string(members, ', ') AS members, gross, net,
               concentration, stress_concentration, 100 * liq_distance AS liq_distance_pct,
               liq_sigma
        FROM heat_api.frame_clusters
        JOIN latest USING (ts, trigger)
        WHERE {BOOK_FILTER}
        ORDER BY concentration DESC, cluster
    """)
    panel = (table.Panel().title("Clusters now")
             .description("Correlated clusters of the newest frame. Liquidation distance: "
                          "the cluster's uniform adverse move to maintenance margin, in % and "
                          "in sigmas of its one-day move.")
             .datasource(postgres_ref()).with_target(query)
             .override_by_name("concentration", [
                 styles.cell("color-background"), styles.unit("percentunit"),
                 styles.threshold_override(styles.concentration_thresholds())])
             .override_by_name("stress_concentration", [styles.unit("percentunit")])
             .override_by_name("gross", [styles.unit("percentunit")])
             .override_by_name("net", [styles.unit("percentunit")])
             .override_by_name("liq_distance_pct", [styles.display_name("liq distance %"),
                                                    styles.decimals(1)])
             .override_by_name("liq_sigma", [
                 styles.display_name("liq distance σ"), styles.cell("color-text"),
                 styles.decimals(2), styles.threshold_override(styles.liq_sigma_thresholds())]))
    return panel, query


def _quadrants() -> tuple[xychart.Panel, Sql]:
    query = Sql(f"""
        WITH {LATEST_FRAME.strip()}
        SELECT symbol, coalesce(conviction, latest.missing_conviction) AS conviction,
               abs(share) AS size, heat, quadrant
        FROM heat_api.frame_positions
        JOIN latest USING (ts, trigger)
        WHERE {BOOK_FILTER}
        ORDER BY symbol
    """)

    def by_name(name: str) -> xychart.MatcherConfig:
        return xychart.MatcherConfig().id("byName").options(name)

    series = (xychart.XYSeriesConfig()
              .x(xychart.XychartXYSeriesConfigX().matcher(by_name("conviction")))
              .y(xychart.XychartXYSeriesConfigY().matcher(by_name("size")))
              .color(xychart.XychartXYSeriesConfigColor().matcher(by_name("heat"))))
    panel = (xychart.Panel().title("Quadrants: conviction × size")
             .description("x: conviction (missing counts as 0.5), y: |share| of equity, "
                          "colour: heat. Core (sure and large), speculative (sure, small), "
                          "unsure (conviction < 0.4) and hedges (negative heat).")
             .datasource(postgres_ref()).with_target(query)
             .mapping(xy_model.SeriesMapping.MANUAL).series([series])
             .show(xy_model.XYShowMode.POINTS)
             .point_size(xychart.XychartFieldConfigPointSize().fixed(10))
             .thresholds(styles.heat_thresholds()).color_scheme(styles.from_thresholds())
             .override_by_name("conviction", styles.min_max(0, 1))
             .override_by_name("size", [styles.unit("percentunit")]))
    return panel, query


def _correlations() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        WITH {LATEST_FRAME.strip()},
        held AS (
            SELECT symbol
            FROM heat_api.frame_positions
            JOIN latest USING (ts, trigger)
            WHERE {BOOK_FILTER}
        )
        SELECT m.symbol_a AS symbol, m.symbol_b, m.rho
        FROM heat_api.correlation_matrix($__timeTo(), {TIMEFRAME}, {PARAMS_HASH}) AS m
        WHERE m.symbol_a IN (SELECT symbol FROM held) AND m.symbol_b IN (SELECT symbol FROM held)
        ORDER BY 1, 2
    """)
    panel = (table.Panel().title("Correlations of the held symbols")
             .description("The timeframe's EWMA correlation matrix at the newest bar.")
             .datasource(postgres_ref()).with_target(query)
             .with_transformation(model.DataTransformerConfig(
                 id_val="groupingToMatrix",
                 options={"columnField": "symbol_b", "rowField": "symbol", "valueField": "rho",
                          "emptyValue": "null"}))
             .cell_options(common.TableColoredBackgroundCellOptions(
                 mode=common.TableCellBackgroundDisplayMode.GRADIENT))
             .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.CONTINUOUS_BL_YL_RD))
             .min(-1).max(1).decimals(2)
             .override_by_name("symbol\\symbol_b", [styles.cell("auto"),
                                                    styles.display_name("symbol")]))
    return panel, query


def _alerts() -> tuple[table.Panel, Sql]:
    query = Sql(f"""
        SELECT ts AS "time", kind, subject, severity, state, value, threshold, message
        FROM heat_api.alerts
        WHERE book_kind = 'account' AND book = {ACCOUNT} AND timeframe = {TIMEFRAME}
          AND $__timeFilter(ts)
        ORDER BY ts DESC
        LIMIT 100
    """)
    panel = (table.Panel().title("Alerts").datasource(postgres_ref()).with_target(query)
             .description("Alert transitions of the account (the engine's state machines).")
             .override_by_name("state", [styles.cell("color-text"), model.DynamicConfigValue(
                 id_val="mappings", value=[{"type": "value", "options": {
                     "firing": {"color": "red", "index": 0},
                     "resolved": {"color": "green", "index": 1}}}])]))
    return panel, query


def alert_annotation() -> _SqlAnnotation:
    """Alert transitions of the account drawn on every time axis."""
    return _SqlAnnotation("Heat alerts", "red", Sql(f"""
        SELECT ts AS "time", kind || ' ' || state || ' (' || severity || '): ' || message
                             AS text,
               concat_ws(',', kind, severity, state) AS tags
        FROM heat_api.alerts
        WHERE book_kind = 'account' AND book = {ACCOUNT} AND timeframe = {TIMEFRAME}
          AND $__timeFilter(ts)
        ORDER BY ts
    """))


class _SqlTarget(model.AnnotationTarget):
    """An annotation's query as the SQL data source reads it (raw SQL, not tags)."""

    def __init__(self, query: Sql) -> None:
        super().__init__()
        self.query: SqlQuery = query.sql

    def to_json(self) -> dict[str, object]:
        return self.query.to_json()


class _SqlAnnotation(cogbuilder.Builder[model.AnnotationQuery]):
    def __init__(self, name: str, color: str, query: Sql) -> None:
        self._query = model.AnnotationQuery(name=name, datasource=postgres_ref(), enable=True,
                                            icon_color=color, target=_SqlTarget(query))

    def build(self) -> model.AnnotationQuery:
        return self._query


ANNOTATION_COLUMNS = ("time", "text", "tags")


def links() -> list[cogbuilder.Builder[model.DashboardLink]]:
    return [
        dash.DashboardLink("History and review").type(model.DashboardLinkType.LINK)
        .url(f"/d/{HISTORY_UID}").icon("dashboard").keep_time(True).include_vars(True)
        .tooltip("The same account over a longer range: P&L, drawdowns, comparisons"),
        dash.DashboardLink("Pipeline health").type(model.DashboardLinkType.LINK)
        .url(f"/d/{PIPELINE_UID}").icon("dashboard").keep_time(True),
    ]


def build() -> Board:
    dashboard = (dash.Dashboard("Portfolio heat: live").tags(["heat"]).time("now-6h", "now")
                 .refresh("10s").timezone("utc").editable()
                 .tooltip(model.DashboardCursorSync.CROSSHAIR)
                 .description("Where the account's risk is concentrated: heat per position, "
                              "correlated clusters, KPIs and alerts.")
                 .variables(book_variables()).annotation(alert_annotation())
                 .links(links()))
    board = Board(UID, dashboard)
    for panel_id, (title, column, unit, description, limits) in enumerate(KPIS, start=1):
        kpi, _ = _kpi(title, column, unit, description, limits)
        board.add(kpi, panel_id, 3, 4, {"A": ("time", column)})
    board.row(100, "Positions")
    positions, _ = _positions()
    board.add(positions, 10, 12, 10, {"A": ("symbol", "heat", "size", "notional", "heat_share",
                                        "cluster", "quadrant", "stale")})
    quadrants, _ = _quadrants()
    board.add(quadrants, 14, 12, 10, {"A": ("symbol", "conviction", "size", "heat",
                                            "quadrant")})
    timeline, _ = _heat_timeline()
    board.add(timeline, 11, 24, 9, {"A": ("time", "metric", "heat")})
    board.row(101, "Clusters")
    concentration, _ = _concentration()
    board.add(concentration, CONCENTRATION_PANEL, 14, 9,
              {"A": ("time", "metric", "concentration"),
               "B": ("time", WARNING_LINE, CRITICAL_LINE)})
    clusters, _ = _clusters()
    board.add(clusters, CLUSTERS_PANEL, 10, 9, {"A": (
        "cluster", "members", "gross", "net", "concentration", "stress_concentration",
        "liq_distance_pct", "liq_sigma")})
    correlations, _ = _correlations()
    board.add(correlations, 15, 12, 10, {"A": ("symbol", "symbol_b", "rho")})
    alerts, _ = _alerts()
    board.add(alerts, 16, 12, 10, {"A": ("time", "kind", "subject", "severity", "state",
                                         "value", "threshold", "message")})
    return board
