-- heat:no-transaction
-- TimescaleDB layer, part 2: the frame and cluster rollups as continuous
-- aggregates, and the heat_api rollup views re-pointed at them.
--
-- Runs outside a transaction block, one statement at a time:
-- refresh_continuous_aggregate() refuses to run inside a transaction block
-- (including the implicit one of a multi-statement query string). Every
-- statement is idempotent, so a run interrupted half-way can simply be
-- repeated. Each statement ends with ";" at the end of a line and no other
-- line does.
--
-- Settings read here: heat.retention_rollups (retention of the aggregates)
-- and heat.compress_after (compression of the minute and hour aggregates).
--
-- Shape: each aggregate computes exactly the columns (names, types, order)
-- of the plain view of the same name in heat_api (0002_api.sql), from the raw
-- hypertable, with time_bucket in place of date_bin. time_bucket on
-- timestamptz aligns buckets to UTC (origin 2000-01-03 00:00 UTC); for 1-minute,
-- 1-hour and 1-day buckets these are the same boundaries as date_bin with
-- origin 2000-01-01 00:00 UTC (the origins are two whole days apart).
-- count(*) is bigint, avg/min/max of double precision are double precision,
-- exactly as in the plain views.
--
-- Real-time aggregation is switched on explicitly (materialized_only = false,
-- as it is off by default since TimescaleDB 2.13): a query returns the
-- materialized buckets below the aggregate's watermark plus the raw rows at
-- and above it, aggregated on the fly, so the API shows the current bucket.
-- Rows written later into buckets that are already materialized (below the
-- watermark) appear after the next refresh of that range.
--
-- Refresh policies: the window starts far enough back to absorb late frames,
-- ends one bucket (or an hour) before now so the bucket being written is
-- served by the real-time part, and runs often enough to keep the real-time
-- part small. Every start_offset is far below heat.retention_frames (180 days
-- by default): a refresh over a range whose raw chunks were dropped would
-- delete those rollup rows. Backfills older than the window need a manual
-- CALL refresh_continuous_aggregate(...) over the backfilled range.
--
--   resolution   start_offset   end_offset   schedule     compressed after
--   1 minute     1 day          1 minute     5 minutes    heat.compress_after (>= 2 days)
--   1 hour       3 days         1 hour       30 minutes   heat.compress_after (>= 6 days)
--   1 day        7 days         1 hour       1 hour       not compressed
--
-- The 1-day aggregates hold one row per book, timeframe and day; segments that
-- small gain nothing from compression. The minute and hour aggregates are
-- compressed once they are older than their refresh window (required before
-- TimescaleDB 2.18.1, where a refresh could not write into compressed chunks),
-- segmented by book and timeframe and ordered by bucket (then params_hash, and
-- cluster first for the cluster rollups, as in 0001_hypertables.sql). The
-- settings are explicit: by default an aggregate is not segmented at all but
-- ordered by bucket, then its group-by columns, so every batch would mix all
-- books and a one-book history (heat_api.frame_metrics_1h WHERE book = ...)
-- would decompress every book's rows of the range: one book's day of the
-- minute rollup, with 20 books stored, read 87 batches (86,400 rows) instead
-- of 2, 5.9 ms instead of 0.3 ms, growing with the number of books. Per-book
-- segments cost some bytes (0.27 of the uncompressed size against 0.22).
-- Since 2.18 the compression options are also named
-- timescaledb.enable_columnstore / segmentby / orderby; the old names remain.

-- Frame metrics ------------------------------------------------------------

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.frame_metrics_1m_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
           book_kind, book, timeframe, params_hash,
           count(*) AS frames,
           avg(correlated_exposure) AS correlated_exposure_avg,
           max(correlated_exposure) AS correlated_exposure_max,
           max(max_cluster_concentration) AS max_cluster_concentration_max,
           min(effective_bets) AS effective_bets_min,
           max(var99_1d) AS var99_1d_max,
           max(regime_break) AS regime_break_max,
           min(liq_distance) AS liq_distance_min,
           avg(gross) AS gross_avg,
           avg(net) AS net_avg
    FROM heat.frames
    GROUP BY 1, book_kind, book, timeframe, params_hash
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.frame_metrics_1h_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
           book_kind, book, timeframe, params_hash,
           count(*) AS frames,
           avg(correlated_exposure) AS correlated_exposure_avg,
           max(correlated_exposure) AS correlated_exposure_max,
           max(max_cluster_concentration) AS max_cluster_concentration_max,
           min(effective_bets) AS effective_bets_min,
           max(var99_1d) AS var99_1d_max,
           max(regime_break) AS regime_break_max,
           min(liq_distance) AS liq_distance_min,
           avg(gross) AS gross_avg,
           avg(net) AS net_avg
    FROM heat.frames
    GROUP BY 1, book_kind, book, timeframe, params_hash
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.frame_metrics_1d_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 day', ts) AS bucket,
           book_kind, book, timeframe, params_hash,
           count(*) AS frames,
           avg(correlated_exposure) AS correlated_exposure_avg,
           max(correlated_exposure) AS correlated_exposure_max,
           max(max_cluster_concentration) AS max_cluster_concentration_max,
           min(effective_bets) AS effective_bets_min,
           max(var99_1d) AS var99_1d_max,
           max(regime_break) AS regime_break_max,
           min(liq_distance) AS liq_distance_min,
           avg(gross) AS gross_avg,
           avg(net) AS net_avg
    FROM heat.frames
    GROUP BY 1, book_kind, book, timeframe, params_hash
WITH NO DATA;

-- Cluster metrics ----------------------------------------------------------

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.cluster_metrics_1m_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.cluster_metrics_1h_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS heat.cluster_metrics_1d_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 day', ts) AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
WITH NO DATA;

-- Initial materialization ----------------------------------------------------
-- Materializes what is already in the raw tables (a database that ran on plain
-- PostgreSQL before the extension was added) up to the policies' end_offset.
-- Without it, history older than the policies' start_offset would never be
-- materialized and would drop out of the views as soon as the first policy
-- run moved the watermark past it.
--
-- The window starts at the oldest remaining chunk of the source table, never
-- at NULL (the beginning of time): dropping chunks (retention) records the
-- dropped range as changed, and a refresh over that range would delete the
-- rollup rows kept there after the raw rows are gone. Chunk boundaries of
-- frames and frame_clusters are whole UTC days and so bucket boundaries (see
-- 0001_hypertables.sql). On a repeated run this recomputes only ranges that
-- changed. The same rule applies to manual refreshes after a backfill: start
-- the window at or after the oldest remaining raw chunk. With no chunk at all
-- the window is the last week, which the policies cover anyway.

SELECT set_config('heat.rollup_refresh_from_frames',
    coalesce((SELECT min(range_start) FROM timescaledb_information.chunks
              WHERE hypertable_schema = 'heat' AND hypertable_name = 'frames'),
             now() - INTERVAL '7 days')::text,
    false);
SELECT set_config('heat.rollup_refresh_from_clusters',
    coalesce((SELECT min(range_start) FROM timescaledb_information.chunks
              WHERE hypertable_schema = 'heat' AND hypertable_name = 'frame_clusters'),
             now() - INTERVAL '7 days')::text,
    false);

CALL refresh_continuous_aggregate('heat.frame_metrics_1m_cagg',
    current_setting('heat.rollup_refresh_from_frames')::timestamptz, now() - INTERVAL '1 minute');
CALL refresh_continuous_aggregate('heat.frame_metrics_1h_cagg',
    current_setting('heat.rollup_refresh_from_frames')::timestamptz, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('heat.frame_metrics_1d_cagg',
    current_setting('heat.rollup_refresh_from_frames')::timestamptz, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('heat.cluster_metrics_1m_cagg',
    current_setting('heat.rollup_refresh_from_clusters')::timestamptz, now() - INTERVAL '1 minute');
CALL refresh_continuous_aggregate('heat.cluster_metrics_1h_cagg',
    current_setting('heat.rollup_refresh_from_clusters')::timestamptz, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('heat.cluster_metrics_1d_cagg',
    current_setting('heat.rollup_refresh_from_clusters')::timestamptz, now() - INTERVAL '1 hour');

-- Refresh policies -------------------------------------------------------------

SELECT add_continuous_aggregate_policy('heat.frame_metrics_1m_cagg',
    start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '5 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('heat.frame_metrics_1h_cagg',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('heat.frame_metrics_1d_cagg',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('heat.cluster_metrics_1m_cagg',
    start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '5 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('heat.cluster_metrics_1h_cagg',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('heat.cluster_metrics_1d_cagg',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- Compression of the minute and hour aggregates ----------------------------------

ALTER MATERIALIZED VIEW heat.frame_metrics_1m_cagg SET (timescaledb.compress = true,
    timescaledb.compress_segmentby = 'book_kind, book, timeframe',
    timescaledb.compress_orderby = 'bucket DESC, params_hash');
ALTER MATERIALIZED VIEW heat.frame_metrics_1h_cagg SET (timescaledb.compress = true,
    timescaledb.compress_segmentby = 'book_kind, book, timeframe',
    timescaledb.compress_orderby = 'bucket DESC, params_hash');
ALTER MATERIALIZED VIEW heat.cluster_metrics_1m_cagg SET (timescaledb.compress = true,
    timescaledb.compress_segmentby = 'book_kind, book, timeframe',
    timescaledb.compress_orderby = 'cluster, bucket DESC, params_hash');
ALTER MATERIALIZED VIEW heat.cluster_metrics_1h_cagg SET (timescaledb.compress = true,
    timescaledb.compress_segmentby = 'book_kind, book, timeframe',
    timescaledb.compress_orderby = 'cluster, bucket DESC, params_hash');

SELECT add_compression_policy('heat.frame_metrics_1m_cagg',
    compress_after => greatest(current_setting('heat.compress_after')::interval, INTERVAL '2 days'),
    if_not_exists => true);
SELECT add_compression_policy('heat.frame_metrics_1h_cagg',
    compress_after => greatest(current_setting('heat.compress_after')::interval, INTERVAL '6 days'),
    if_not_exists => true);
SELECT add_compression_policy('heat.cluster_metrics_1m_cagg',
    compress_after => greatest(current_setting('heat.compress_after')::interval, INTERVAL '2 days'),
    if_not_exists => true);
SELECT add_compression_policy('heat.cluster_metrics_1h_cagg',
    compress_after => greatest(current_setting('heat.compress_after')::interval, INTERVAL '6 days'),
    if_not_exists => true);

-- Retention of the aggregates (independent of the raw tables' retention) ----------

SELECT add_retention_policy('heat.frame_metrics_1m_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.frame_metrics_1h_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.frame_metrics_1d_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.cluster_metrics_1m_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.cluster_metrics_1h_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.cluster_metrics_1d_cagg',
    drop_after => current_setting('heat.retention_rollups')::interval, if_not_exists => true);

-- The API views read the aggregates ------------------------------------------------
-- Same names and columns as on plain PostgreSQL (CREATE OR REPLACE VIEW would
-- refuse a different column list). Existing grants on the views are kept.

CREATE OR REPLACE VIEW heat_api.frame_metrics_1m AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1m_cagg;

CREATE OR REPLACE VIEW heat_api.frame_metrics_1h AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1h_cagg;

CREATE OR REPLACE VIEW heat_api.frame_metrics_1d AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1d_cagg;

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1m AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1m_cagg;

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1h AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1h_cagg;

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1d AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1d_cagg;

-- Privileges ---------------------------------------------------------------------
-- The heat_api views run with their owner's rights, and so does each
-- aggregate's own view over its materialization and the raw hypertable, so
-- heat_reader needs nothing in schema heat. The default privileges of schema
-- heat (0003_roles.sql) give heat_writer SELECT, INSERT, UPDATE on every new
-- relation there, aggregates included, and TimescaleDB passes grants on an
-- aggregate down to its materialization hypertable: revoke them, the
-- aggregates are written by refreshes only.

REVOKE ALL ON heat.frame_metrics_1m_cagg, heat.frame_metrics_1h_cagg, heat.frame_metrics_1d_cagg,
              heat.cluster_metrics_1m_cagg, heat.cluster_metrics_1h_cagg, heat.cluster_metrics_1d_cagg
    FROM heat_writer;

GRANT SELECT ON heat_api.frame_metrics_1m, heat_api.frame_metrics_1h, heat_api.frame_metrics_1d,
                heat_api.cluster_metrics_1m, heat_api.cluster_metrics_1h, heat_api.cluster_metrics_1d
    TO heat_reader, heat_writer;
