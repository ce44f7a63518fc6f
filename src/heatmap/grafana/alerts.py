"""Grafana alert rules over the heat database and the pipeline metrics.

Each rule is a query (A), a reduction to one value per series (B, ``last``) and a
threshold (C, the condition). SQL queries use the time-series format Grafana's
PostgreSQL alerting reads: a ``time`` column, one numeric value column and string
columns that become the alert instance's labels (book, cluster...), sorted by time.

The same rules are written two ways: as the provisioning API's JSON (``heat grafana
provision``) and as a file provisioning group file (``infra/grafana``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import alerting as alerting_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from heatmap.grafana import live_heat, styles
from heatmap.grafana.datasources import EXPRESSION_UID, POSTGRES_UID, PROMETHEUS_UID
from heatmap.grafana.queries import Sql, promql

FOLDER_UID = "heat"
FOLDER_TITLE = "Portfolio heat"
RISK_GROUP = "heat-risk"
PIPELINE_GROUP = "heat-pipeline"
GROUP_INTERVAL_S = 60
# How far back each rule's query looks (Grafana's relative time range).
LOOKBACK_S = 600
ORG_ID = 1

Comparison = Literal["gt", "lt"]


@dataclass(frozen=True)
class AlertSpec:
    """One rule: what it measures, per which labels, and when it fires."""

    uid: str
    title: str
    group: str
    query: cogbuilder.Builder[cogvariants.Dataquery]
    datasource_uid: str
    comparison: Comparison
    threshold: float
    severity: str
    summary: str
    columns: tuple[str, ...] = ()
    panel_id: int | None = None
    for_: str = "2m"
    no_data: Literal["Alerting", "NoData", "OK"] = "OK"


# Each frame's levels: those of its desk (accounts without a desk: the defaults' row,
# desk NULL) from heat_api.alert_thresholds, and the built-in ones while the processor
# has published none. A timeframe the desk does not alert on is left out, as the engine
# leaves it out.
_LEVELS = """
    LEFT JOIN heat_api.alert_thresholds t ON t.desk IS NOT DISTINCT FROM f.desk"""
_ALERTING_TIMEFRAME = "(t.timeframes IS NULL OR f.timeframe = ANY(t.timeframes))"


def _level(column: str, built_in: float) -> str:
    return f"COALESCE(t.{column}, {built_in!r})"


def _per_cluster(value: str, column: str) -> Sql:
    """``value`` per cluster over ``heat_api.frame_clusters`` (alias c), its frame (f)
    and the frame's levels (t)."""
    return Sql(f"""
        SELECT $__timeGroupAlias(c.ts, '1m'), c.book_kind, c.book, c.timeframe, c.cluster,
               {value} AS {column}
        FROM heat_api.frame_clusters c
        JOIN heat_api.frames f USING (ts, book_kind, book, timeframe, trigger, params_hash)
        {_LEVELS.strip()}
        WHERE $__timeFilter(c.ts) AND {_ALERTING_TIMEFRAME}
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1
    """, format="time_series")


def _per_book(value: str, column: str) -> Sql:
    """``value`` per book (every timeframe: the book-wide kinds alert once per book)."""
    return Sql(f"""
        SELECT $__timeGroupAlias(f.ts, '1m'), f.book_kind, f.book, {value} AS {column}
        FROM heat_api.frames f
        {_LEVELS.strip()}
        WHERE $__timeFilter(f.ts) AND {_ALERTING_TIMEFRAME}
        GROUP BY 1, 2, 3
        ORDER BY 1
    """, format="time_series")


CLUSTER_LABELS = ("time", "book_kind", "book", "timeframe", "cluster")
BOOK_LABELS = ("time", "book_kind", "book")


def _of_line(aggregate: str, value: str, level: str, built_in: float) -> str:
    """``aggregate`` of ``value`` as a fraction of the desk's ``level``: 1 is the line,
    whatever the desk set it to."""
    return f"{aggregate}({value} / {_level(level, built_in)})"


_CONCENTRATION_CRITICAL = _of_line("max", "c.concentration", "cluster_concentration_critical",
                                   styles.CONCENTRATION_CRITICAL)
_CONCENTRATION_WARNING = _of_line("max", "c.concentration", "cluster_concentration_warning",
                                  styles.CONCENTRATION_WARN)
_LIQUIDATION = _of_line("min", "c.liq_sigma", "liquidation_sigma_warning",
                        styles.LIQ_SIGMA_WARN)
# Seconds a frame has been stale beyond the desk's line: its oldest price's age past the
# engine's staleness age (echoed in params) and the line.
_STALE_BEYOND = ("max(f.max_price_age_s - COALESCE((f.params->>'stale_after_s')::float8, 2.0) "
                 f"- {_level('stale_heat_after_s', 5.0)})")
_REGIME = _of_line("max", "f.regime_break", "regime_break", styles.REGIME_BREAK)
_OF_LINE = ("{{ $labels.book }} ({{ $labels.timeframe }}): cluster {{ $labels.cluster }} "
            "at {{ humanizePercentage $values.B.Value }} of its desk's ")

SPECS = [
    AlertSpec("heat-cluster-concentration-critical", "Cluster concentration critical",
              RISK_GROUP, _per_cluster(_CONCENTRATION_CRITICAL, "of_critical_line"),
              POSTGRES_UID, "gt", 1.0, "critical", _OF_LINE + "critical concentration line",
              (*CLUSTER_LABELS, "of_critical_line"), live_heat.CONCENTRATION_PANEL),
    AlertSpec("heat-cluster-concentration-warning", "Cluster concentration high",
              RISK_GROUP, _per_cluster(_CONCENTRATION_WARNING, "of_warning_line"),
              POSTGRES_UID, "gt", 1.0, "warning", _OF_LINE + "warning concentration line",
              (*CLUSTER_LABELS, "of_warning_line"), live_heat.CONCENTRATION_PANEL),
    AlertSpec("heat-liquidation-proximity", "Liquidation proximity", RISK_GROUP,
              _per_cluster(_LIQUIDATION, "of_warning_line"), POSTGRES_UID, "lt", 1.0,
              "warning", "{{ $labels.book }}: cluster {{ $labels.cluster }} is "
              "{{ humanizePercentage $values.B.Value }} of its desk's warning distance "
              "from liquidation", (*CLUSTER_LABELS, "of_warning_line"),
              live_heat.CLUSTERS_PANEL),
    AlertSpec("heat-stale", "Stale heat", RISK_GROUP, _per_book(_STALE_BEYOND, "beyond_s"),
              POSTGRES_UID, "gt", 0.0, "warning", "{{ $labels.book }}: heat computed from "
              "prices stale {{ $values.B.Value }} s beyond its desk's line",
              (*BOOK_LABELS, "beyond_s"), for_="1m"),
    AlertSpec("heat-regime-break", "Correlation regime break", RISK_GROUP,
              _per_book(_REGIME, "of_line"), POSTGRES_UID, "gt", 1.0, "warning",
              "{{ $labels.book }}: fast and slow correlations differ by "
              "{{ humanizePercentage $values.B.Value }} of its desk's regime-break line",
              (*BOOK_LABELS, "of_line")),
    AlertSpec("heat-pipeline-input-delay", "Processor input delay", PIPELINE_GROUP,
              promql("max(heat_process_input_delay_seconds)", "delay", instant=True),
              PROMETHEUS_UID, "gt", 60.0, "critical",
              "The engine is {{ $values.B.Value }} s behind its input", for_="5m"),
    AlertSpec("heat-pipeline-sink-lag", "Sink consumer lag", PIPELINE_GROUP,
              promql("sum(heat_sink_consumer_lag_records)", "lag", instant=True),
              PROMETHEUS_UID, "gt", 10000.0, "warning",
              "The sink is {{ $values.B.Value }} records behind", for_="5m"),
]


_EXPRESSIONS = DataSourceRef(type_val=EXPRESSION_UID, uid=EXPRESSION_UID)


def _rule(spec: AlertSpec) -> alerting.Rule:
    source = (alerting.Query("A").datasource_uid(spec.datasource_uid).model(spec.query)
              .relative_time_range(alerting_model.RelativeTimeRange(from_val=LOOKBACK_S, to=0)))
    reduce = (alerting.Query("B").datasource_uid(EXPRESSION_UID)
              .relative_time_range(alerting_model.RelativeTimeRange(from_val=0, to=0))
              .model(expr.TypeReduce().ref_id("B").datasource(_EXPRESSIONS).expression("A").reducer("last")
                     .settings(expr.ExprTypeReduceSettings().mode("dropNN"))))
    threshold = (alerting.Query("C").datasource_uid(EXPRESSION_UID)
                 .relative_time_range(alerting_model.RelativeTimeRange(from_val=0, to=0))
                 .model(expr.TypeThreshold().ref_id("C").datasource(_EXPRESSIONS).expression("B").conditions([
                     expr.ExprTypeThresholdConditions().evaluator(
                         expr.ExprTypeThresholdConditionsEvaluator().type(spec.comparison)
                         .params([spec.threshold]))])))
    annotations = {"summary": spec.summary}
    if spec.panel_id is not None:
        annotations["__dashboardUid__"] = live_heat.UID
        annotations["__panelId__"] = str(spec.panel_id)
    return (alerting.Rule(spec.title).uid(spec.uid).folder_uid(FOLDER_UID)
            .rule_group(spec.group).org_id(ORG_ID).condition("C")
            .queries([source, reduce, threshold]).for_val(spec.for_)
            .no_data_state(spec.no_data).exec_err_state("Error")
            .labels({"severity": spec.severity, "service": "portfolio-heat"})
            .annotations(annotations).is_paused(False))


def api_rules() -> list[dict[str, Any]]:
    """Every rule as the provisioning API takes it (``POST /api/v1/provisioning/alert-rules``)."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return [json.loads(json.dumps(_rule(spec).build(), cls=JSONEncoder)) for spec in SPECS]


_FILE_RULE_KEYS = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for",
                   "annotations", "labels", "isPaused")


def provisioning_file() -> dict[str, Any]:
    """The rules as a Grafana alerting provisioning file (``apiVersion: 1``, groups)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in api_rules():
        groups.setdefault(rule["ruleGroup"], []).append(
            {key: rule[key] for key in _FILE_RULE_KEYS if key in rule})
    return {"apiVersion": 1, "groups": [
        {"orgId": ORG_ID, "name": name, "folder": FOLDER_TITLE,
         "interval": f"{GROUP_INTERVAL_S}s", "rules": rules}
        for name, rules in groups.items()]}
