"""Panel queries: raw SQL against the heat database and PromQL against Prometheus.

The foundation SDK has no PostgreSQL query type, so :class:`SqlQuery` is the query
object Grafana's PostgreSQL data source reads (``rawSql`` in code mode).
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

from heatmap.grafana.datasources import POSTGRES_TYPE, POSTGRES_UID, prometheus_ref

SqlFormat = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """One raw SQL query of the heat database data source."""

    def __init__(self, ref_id: str, raw_sql: str, format: SqlFormat) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = format

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": {"type": POSTGRES_TYPE, "uid": POSTGRES_UID},
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of :class:`SqlQuery` for panels and alert rules.

    ``raw_sql`` may use Grafana's macros (``$__timeFilter(ts)``...) and template
    variables; string variables must be written ``${name:sqlstring}`` (quoted and
    escaped by Grafana).
    """

    def __init__(self, raw_sql: str, format: SqlFormat = "table", ref_id: str = "A") -> None:
        self.sql = SqlQuery(ref_id, _tidy(raw_sql), format)

    def build(self) -> cogvariants.Dataquery:
        return self.sql

    def ref_id(self, ref_id: str) -> Self:
        self.sql.ref_id = ref_id
        return self


def promql(expr: str, legend: str, ref_id: str = "A", instant: bool = False
           ) -> prometheus.Dataquery:
    """A PromQL query of the pipeline metrics data source."""
    query = (prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)
             .datasource(prometheus_ref()))
    return query.instant() if instant else query.range()


def _tidy(sql: str) -> str:
    """SQL as written in the generator, without its common indentation."""
    lines = [line.rstrip() for line in sql.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line), default=0)
    return "\n".join(line[indent:] for line in lines)
