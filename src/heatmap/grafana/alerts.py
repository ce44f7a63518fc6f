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


def _per_cluster(value: str, column: str) -> Sql:
    return Sql(f"""
        SELECT $__timeGroupAlias(ts, '1m'), book_kind, book, timeframe, cluster,
               {value} AS {column}
        FROM heat_api.frame_clusters
        WHERE $__timeFilter(ts)
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1
    """, format="time_series")


def _per_book(value: str, column: str) -> Sql:
    return Sql(f"""
        SELECT $__timeGroupAlias(ts, '1m'), book_kind, book, timeframe, {value} AS {column}
        FROM heat_api.frames
        WHERE $__timeFilter(ts)
        GROUP BY 1, 2, 3, 4
        ORDER BY 1
    """, format="time_series")


CLUSTER_LABELS = ("time", "book_kind", "book", "timeframe", "cluster")
BOOK_LABELS = ("time", "book_kind", "book", "timeframe")

SPECS = [
    AlertSpec("heat-cluster-concentration-critical", "Cluster concentration critical",
              RISK_GROUP, _per_cluster("max(concentration)", "concentration"), POSTGRES_UID,
              "gt", styles.CONCENTRATION_CRITICAL, "critical",
              "{{ $labels.book }} ({{ $labels.timeframe }}): cluster {{ $labels.cluster }} "
              "at {{ humanizePercentage $values.B.Value }} of equity",
              (*CLUSTER_LABELS, "concentration"), live_heat.CONCENTRATION_PANEL),
    AlertSpec("heat-cluster-concentration-warning", "Cluster concentration high",
              RISK_GROUP, _per_cluster("max(concentration)", "concentration"), POSTGRES_UID,
              "gt", styles.CONCENTRATION_WARN, "warning",
              "{{ $labels.book }} ({{ $labels.timeframe }}): cluster {{ $labels.cluster }} "
              "at {{ humanizePercentage $values.B.Value }} of equity",
              (*CLUSTER_LABELS, "concentration"), live_heat.CONCENTRATION_PANEL),
    AlertSpec("heat-liquidation-proximity", "Liquidation proximity", RISK_GROUP,
              _per_cluster("min(liq_sigma)", "liq_sigma"), POSTGRES_UID, "lt",
              styles.LIQ_SIGMA_WARN, "warning",
              "{{ $labels.book }}: cluster {{ $labels.cluster }} is {{ $values.B.Value }} "
              "one-day sigmas from liquidation", (*CLUSTER_LABELS, "liq_sigma"),
              live_heat.CLUSTERS_PANEL),
    # A frame is stale once a price is older than stale_after (2 s); stale for more than
    # 5 s means its oldest price is older than 7 s.
    AlertSpec("heat-stale", "Stale heat", RISK_GROUP,
              _per_book("max(max_price_age_s)", "price_age_s"), POSTGRES_UID, "gt", 7.0,
              "warning", "{{ $labels.book }}: heat computed from prices "
              "{{ $values.B.Value }} s old", (*BOOK_LABELS, "price_age_s"), for_="1m"),
    AlertSpec("heat-regime-break", "Correlation regime break", RISK_GROUP,
              _per_book("max(regime_break)", "regime_break"), POSTGRES_UID, "gt",
              styles.REGIME_BREAK, "warning",
              "{{ $labels.book }}: fast and slow correlations differ by "
              "{{ $values.B.Value }} (RMS)", (*BOOK_LABELS, "regime_break")),
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
