"""Pipeline health: ingest, processor and sink from their Prometheus metrics (plus the
stale frames the sink stored, from the database)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from heatmap.grafana import live_heat, styles
from heatmap.grafana.board import Board
from heatmap.grafana.datasources import postgres_ref, prometheus_ref
from heatmap.grafana.queries import Sql, promql

UID = live_heat.PIPELINE_UID

# Job names of infra/prometheus/prometheus.yml.
INGEST_JOB = "heat-ingest"
PROCESS_JOB = "heat-process"
SINK_JOB = "heat-sink"


def _stat(title: str, expr: str, unit: str, description: str,
          limits: dash.ThresholdsConfig | None = None) -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).datasource(prometheus_ref())
             .with_target(promql(expr, title, instant=True)).unit(unit)
             .graph_mode(common.BigValueGraphMode.NONE))
    if limits is not None:
        panel = (panel.thresholds(limits).color_scheme(styles.from_thresholds())
                 .color_mode(common.BigValueColorMode.BACKGROUND))
    return panel


def _series(title: str, unit: str, description: str,
            *queries: tuple[str, str]) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description)
             .datasource(prometheus_ref()).unit(unit)
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM)))
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(promql(expr, legend, ref_id=chr(ord("A") + index)))
    return panel


RATE = "$__rate_interval"
LATENCY = f"sum by (le) (rate(heat_process_frame_latency_seconds_bucket[{RATE}]))"
CHECKPOINT_AGE = "time() - max(heat_process_checkpoint_timestamp_seconds > 0)"

STALE_FRAMES = """
    SELECT $__timeGroupAlias(ts, $__interval),
           count(*) FILTER (WHERE stale) AS stale_frames,
           count(*) AS frames
    FROM heat_api.frames
    WHERE $__timeFilter(ts)
    GROUP BY 1
    ORDER BY 1
"""


def build() -> Board:
    dashboard = (dash.Dashboard("Portfolio heat: pipeline health").tags(["heat", "pipeline"])
                 .time("now-1h", "now").refresh("30s").timezone("utc").editable()
                 .tooltip(model.DashboardCursorSync.CROSSHAIR)
                 .description("Ingest, processor and sink: rates, dead letters, lag, "
                              "latency, takeovers and checkpoints.")
                 .links([dash.DashboardLink("Live heat").type(model.DashboardLinkType.LINK)
                         .url(f"/d/{live_heat.UID}").icon("dashboard").keep_time(True)]))
    board = Board(UID, dashboard)
    board.add(_stat("Active engines", "sum(heat_process_active)", "none",
                    "Workers running the engine: exactly 1 when healthy.",
                    styles.thresholds(("red", None), ("green", 1), ("red", 2))), 1, 4, 4)
    board.add(_stat("Takeovers in range",
                    "sum(increase(heat_process_takeovers_total[$__range]))", "none",
                    "Times a worker rebuilt the engine from the committed state.",
                    styles.thresholds(("green", None), ("orange", 1), ("red", 3))), 2, 4, 4)
    board.add(_stat("Checkpoint age", CHECKPOINT_AGE, "s",
                    "Seconds since the active engine's last committed checkpoint.",
                    styles.thresholds(("green", None), ("orange", 300), ("red", 900))),
              3, 4, 4)
    board.add(_stat("Input → frame p99",
                    f"histogram_quantile(0.99, {LATENCY})", "s",
                    "From the append time of the input that released a frame to its commit.",
                    styles.thresholds(("green", None), ("orange", 1), ("red", 2.5))), 4, 4, 4)
    board.add(_stat("Targets up", 'sum(up{job=~"heat-.*"})', "none",
                    "Ingest, processor and sink endpoints Prometheus reaches."), 5, 4, 4)
    board.add(_stat("Frames / s", f"sum(rate(heat_process_frames_total[{RATE}]))", "none",
                    "Heat frames committed to Kafka per second."), 6, 4, 4)
    board.row(100, "Ingest")
    board.add(_series("Ingest rate", "rps", "Records acknowledged by Kafka, per topic.",
                      (f"sum by (topic) (rate(heat_ingest_records_sent_total[{RATE}]))",
                       "{{topic}}")), 7, 12, 8)
    board.add(_series("Dead letters", "rps", "Records refused with a reason, per service.",
                      (f"sum by (source_topic) (rate(heat_ingest_deadlettered_total[{RATE}]))",
                       "ingest {{source_topic}}"),
                      (f"sum by (topic) (rate(heat_process_deadletters_total[{RATE}]))",
                       "process {{topic}}"),
                      (f"sum by (topic) (rate(heat_sink_deadletters_total[{RATE}]))",
                       "stored from {{topic}}")), 8, 12, 8)
    board.row(101, "Processor")
    board.add(_series("Consumer lag", "short", "Records not yet read, per input topic.",
                      ("sum by (topic) (heat_process_input_lag_records)", "process {{topic}}"),
                      ("sum by (topic) (heat_sink_consumer_lag_records)", "sink {{topic}}")),
              9, 12, 8)
    board.add(_series("Input → frame latency", "s",
                      "Quantiles of heat_process_frame_latency_seconds.",
                      (f"histogram_quantile(0.5, {LATENCY})", "p50"),
                      (f"histogram_quantile(0.99, {LATENCY})", "p99"),
                      ("max(heat_process_input_delay_seconds)", "input delay")), 10, 12, 8)
    board.add(_series("Engines and takeovers", "none",
                      "heat_process_active per worker, and takeovers.",
                      ("heat_process_active", "active {{instance}}"),
                      (f"sum(increase(heat_process_takeovers_total[{RATE}]))", "takeovers")),
              11, 12, 8)
    board.add(_series("Checkpoints", "s", "Age of the newest checkpoint and its size.",
                      (CHECKPOINT_AGE, "age"),
                      ("max(heat_process_checkpoint_bytes)", "bytes"))
              .override_by_name("bytes", [styles.unit("bytes")]), 12, 12, 8)
    board.row(102, "Sink")
    board.add(_series("Sink rows / s", "rps", "Rows newly stored per table.",
                      (f"sum by (table) (rate(heat_sink_rows_total[{RATE}]))", "{{table}}")),
              13, 12, 8)
    board.add(_series("Sink commit latency", "s", "Batch poll to database and offset commit.",
                      ("histogram_quantile(0.99, sum by (le) "
                       f"(rate(heat_sink_commit_seconds_bucket[{RATE}])))", "p99")), 14, 6, 8)
    stale = (timeseries.Panel().title("Stale frames")
             .description("Frames computed with a price older than the staleness limit, "
                          "as stored by the sink.")
             .datasource(postgres_ref()).with_target(Sql(STALE_FRAMES, format="time_series"))
             .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60))
    board.add(stale, 15, 6, 8, {"A": ("time", "stale_frames", "frames")})
    return board
