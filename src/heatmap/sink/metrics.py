"""Prometheus metrics of the sink (served on ``/metrics`` by its Faust web server).

Rows per second per table is ``rate(heat_sink_rows_total[1m])``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("heat_sink_records_total", "Kafka records consumed", ["topic"])
ROWS = Counter("heat_sink_rows_total", "Rows newly stored (repeats count 0)", ["table"])
DEADLETTERS = Counter("heat_sink_deadletters_total",
                      "Dead-letter rows stored, by the topic the record sat in", ["topic"])
BATCH_SECONDS = Histogram(
    "heat_sink_commit_seconds",
    "Seconds from a batch's poll to its database commit and offset commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
STORED_OFFSET = Gauge("heat_sink_stored_offset",
                      "Per partition, the offset up to which everything is stored (the "
                      "committed offset): equals the end once caught up, less held ticks",
                      ["topic", "partition"])
END_OFFSET = Gauge("heat_sink_end_offset",
                   "Per partition, its end (last stable offset) as last fetched",
                   ["topic", "partition"])
STALLS = Counter("heat_sink_stalls_total",
                 "Times a partition with records waiting was not read for the stall limit",
                 ["topic", "partition"])
LAG = Gauge("heat_sink_consumer_lag_records",
            "Records between the last committed offset and the last stable offset", ["topic"])
FAILED_COMMITS = Counter("heat_sink_offset_commit_failures_total",
                         "Offset commits refused (a rebalance moved the partitions)")
SKIPPED_INPUTS = Counter("heat_sink_skipped_inputs_total",
                         "Undecodable input records not stored (the processor dead-letters "
                         "them)", ["topic"])
