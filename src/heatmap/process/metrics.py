"""Prometheus metrics of the processor (served on ``/metrics`` by every worker).

Frames per second is ``rate(heat_process_frames_total[1m])``; a standby reports
``heat_process_active 0`` and nothing else moves.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ACTIVE = Gauge("heat_process_active", "1 on the worker running the engine, else 0")
EVENTS = Counter("heat_process_events_total", "Input records applied to the engine")
EPOCHS = Counter("heat_process_epochs_total", "Epochs committed (one Kafka transaction each)")
FRAMES = Counter("heat_process_frames_total", "Heat frames committed to Kafka")
ALERTS = Counter("heat_process_alerts_total", "Alert transitions committed to Kafka")
CORRELATIONS = Counter("heat_process_correlation_snapshots_total",
                       "Bar-close correlation matrices committed to Kafka")
DEADLETTERS = Counter("heat_process_deadletters_total",
                      "Input records refused (undecodable, late for their key, a year ahead)",
                      ["topic"])
INPUT_LAG = Gauge("heat_process_input_lag_records",
                  "Records between the engine's read position and the end of each input "
                  "partition", ["topic", "partition"])
INPUT_DELAY = Gauge("heat_process_input_delay_seconds",
                    "Wall clock minus the append time of the newest record read (0 when "
                    "every input partition is read to its end)")
INPUT_END = Gauge("heat_process_input_end_offset",
                  "End (last stable offset) of each input partition, as last seen",
                  ["topic", "partition"])
INPUT_APPLIED = Gauge("heat_process_input_applied_offset",
                      "Lowest offset of each input partition the engine has not yet applied "
                      "or refused: equals the end once everything is applied",
                      ["topic", "partition"])
INPUT_NOT_APPLIED = Counter("heat_process_input_not_applied_total",
                            "Times input records were found that the live engine had not "
                            "applied and would not (the engine was restarted)",
                            ["topic", "partition"])
WATERMARK = Gauge("heat_process_watermark_timestamp_seconds",
                  "Event time (epoch s) up to which input has been applied")
STEP_SECONDS = Histogram("heat_process_compute_seconds",
                         "Seconds the engine spent on one fetched batch (frames included)",
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                  1.0, 2.5, 5.0))
COMMIT_SECONDS = Histogram("heat_process_commit_seconds",
                           "Seconds to send and commit one epoch's transaction",
                           buckets=_LATENCY_BUCKETS_S)
FRAME_LATENCY = Histogram(
    "heat_process_frame_latency_seconds",
    "From the append time of the input record that released a frame to its commit on Kafka",
    buckets=_LATENCY_BUCKETS_S)
CHECKPOINT_BYTES = Gauge("heat_process_checkpoint_bytes", "Size of the latest checkpoint")
CHECKPOINT_TIME = Gauge("heat_process_checkpoint_timestamp_seconds",
                        "Wall clock (epoch s) of the latest committed checkpoint")
TAKEOVERS = Counter("heat_process_takeovers_total",
                    "Times this worker rebuilt the engine from the committed state")
RECOVERY_SECONDS = Gauge("heat_process_recovery_seconds",
                         "Seconds the latest takeover took (producer start to live)")
