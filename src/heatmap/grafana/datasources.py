"""The two data sources every dashboard and alert rule names by uid: the heat database
(PostgreSQL or TimescaleDB, read as ``heat_reader``) and Prometheus (the pipeline's
metrics). The uids are fixed so provisioning files, generated JSON and the provisioning
client agree."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import DataSourceRef

POSTGRES_UID = "heat-postgres"
POSTGRES_TYPE = "grafana-postgresql-datasource"
POSTGRES_NAME = "Heat database"

PROMETHEUS_UID = "heat-prometheus"
PROMETHEUS_TYPE = "prometheus"
PROMETHEUS_NAME = "Heat pipeline metrics"

# Grafana's server-side expressions (reduce, threshold) in alert rules.
EXPRESSION_UID = "__expr__"

KNOWN_UIDS = frozenset({POSTGRES_UID, PROMETHEUS_UID, EXPRESSION_UID, "grafana"})


def postgres_ref() -> DataSourceRef:
    return DataSourceRef(type_val=POSTGRES_TYPE, uid=POSTGRES_UID)


def prometheus_ref() -> DataSourceRef:
    return DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)
