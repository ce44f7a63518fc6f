-- TimescaleDB layer, part 1: hypertables, compression, retention.
--
-- Every heat.* table becomes a hypertable partitioned by range on ts. Tables
-- keep their names, columns, keys and grants, so heat_api and the writers do
-- not change. Runs in one transaction; every step is safe to repeat.
--
-- Settings read here (session settings, all required):
--   heat.compress_after           age after which chunks are compressed
--   heat.retention_prices         prices
--   heat.retention_frames         frames, frame_positions, frame_clusters, correlations
--   heat.retention_events         positions, account_equity, alerts
--   heat.retention_deadletters    deadletters
--
-- API level: create_hypertable(relation, by_range(...)) is the interface of
-- TimescaleDB >= 2.13. Compression uses ALTER TABLE ... SET (timescaledb.compress,
-- timescaledb.compress_segmentby, timescaledb.compress_orderby) and
-- add_compression_policy(); since 2.18 the same features are also named
-- "columnstore" (timescaledb.enable_columnstore / timescaledb.segmentby /
-- timescaledb.orderby, add_columnstore_policy()), and the compression names
-- remain supported, so this file works unchanged from 2.13 to current 2.2x.

-- Chunk intervals
-- ---------------
-- Rule: the indexes of the chunks being written at the same moment (one per
-- table) should together fit in about a quarter of RAM (shared_buffers), and
-- chunks should not be so small that planning over months of retention has to
-- consider thousands of them. Volumes at the design scale (1,000 accounts x 20
-- positions x 3 timeframes, framed every 1-minute bar) and approximate index
-- bytes per row (primary key plus secondary indexes):
--
--   table            rows/day      index/day   interval   chunks kept   index per chunk
--   frame_positions  ~86 M         ~14 GB      4 hours    ~1,080        ~2.3 GB
--   frame_clusters   ~20 M (*)     ~1.8 GB     1 day      ~180          ~1.8 GB
--   frames           ~4.3 M        ~0.5 GB     1 day      ~180          ~0.5 GB
--   prices           ~1-5 M        ~0.3 GB     1 day      ~90           ~0.3 GB
--   correlations     ~4.3 k (**)   tiny        7 days     ~26           tiny
--   positions, account_equity, alerts:  small  30 days    ~37 (3 years)
--   deadletters      small                     7 days     ~5
--
--   (*)  about five clusters per frame.
--   (**) one row per timeframe and bar, each up to ~80 kB of arrays (TOAST),
--        ~350 MB/day of heap, but an index of a few hundred kB.
--
-- The chunks written concurrently need roughly 5 GB of index, which fits the
-- shared_buffers of a 64 GB host (16 GB) with room for the previous chunk and
-- for queries. Retention drops whole chunks, so data is kept up to one chunk
-- interval longer than its retention setting.
--
-- frames and frame_clusters, the sources of the rollups, use chunks of exactly
-- one day: chunk boundaries then fall on UTC midnight, which is also a bucket
-- boundary of every rollup (1 minute, 1 hour, 1 day), so the rollups can be
-- refreshed from the start of the oldest remaining chunk without touching a
-- partly dropped bucket (see 0002_continuous_aggregates.sql). Keep any new
-- interval for them a whole number of days.
--
-- Default indexes: create_default_indexes => false. The time index TimescaleDB
-- would add on (ts DESC) is not needed for chunk exclusion, compression or
-- retention, and on frame_positions alone it would cost ~2 GB a day; the
-- queries of heat_api all filter by book, symbol or timeframe first, which the
-- primary keys serve. frames and alerts keep their own (ts DESC) indexes from
-- the storage migration.

SELECT create_hypertable('heat.prices', by_range('ts', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.positions', by_range('ts', INTERVAL '30 days'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.account_equity', by_range('ts', INTERVAL '30 days'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.frames', by_range('ts', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.frame_positions', by_range('ts', INTERVAL '4 hours'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.frame_clusters', by_range('ts', INTERVAL '1 day'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.correlations', by_range('ts', INTERVAL '7 days'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.alerts', by_range('ts', INTERVAL '30 days'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

SELECT create_hypertable('heat.deadletters', by_range('ts', INTERVAL '7 days'),
                         create_default_indexes => false, if_not_exists => true,
                         migrate_data => true);

-- Compression
-- -----------
-- segmentby: the book (or symbol, topic) columns every query filters on, so a
-- compressed segment is one book's series and a lookup decompresses only it.
-- orderby: the remaining primary-key columns, so that every key column is
-- either a segmentby or an orderby column: a write that hits a compressed
-- chunk (INSERT ... ON CONFLICT DO NOTHING from a replay or backfill) then
-- checks the key against segment and batch min/max metadata instead of
-- decompressing whole segments. Their order decides how well the values
-- compress: each column is compressed along the orderby order (delta-of-delta
-- for times, XOR for floats, runs and dictionaries for the rest), so rows that
-- follow each other must be one series. A frame has one row per symbol (or
-- cluster); ordered by ts first, consecutive rows would jump between symbols
-- and every float and quantity would look like noise. Ordered by symbol (or
-- cluster) first, then ts, a batch holds a few whole per-symbol series:
-- quantities and convictions become runs, prices and shares smooth sequences.
-- Measured on a synthetic desk (`heat bench storage`: 20 accounts x 20
-- positions x 3 timeframes, one day of 1-minute bars, random-walk prices),
-- compressed frame_positions take 0.16 of their uncompressed bytes (heap,
-- indexes and TOAST), against 0.21 with ts first; frame_clusters 0.14
-- against 0.16. On the replay of data/ (5-minute bars, a few accounts, 4-hour
-- chunks of a few hundred rows per book) frame_positions take ~0.30 against
-- ~0.37. A chunk of only a few pages cannot shrink whatever the settings: a
-- compressed chunk has its own heap, index and TOAST pages.
--
--   frames: one segment per book and timeframe (~1,440 frames a day per
--     segment), ordered by ts: one row per frame, so ts first is one series.
--   frame_positions: one segment per book and timeframe (20 rows per frame,
--     ~4,800 rows per segment in a 4-hour chunk at 1-minute bars), ordered by
--     symbol, then ts: a lookup of one symbol prunes batches by the symbol's
--     min/max. Segmenting by symbol as well measured worse (~0.17): segments
--     of ~240 rows pay the per-batch metadata more often.
--   frame_clusters: likewise, ordered by cluster, then ts.
--   prices: one segment per symbol and source.
--   positions: segment per account, ordered by symbol, strategy, then ts, so
--     the "latest position of (account, symbol, strategy) at or before t"
--     lookup of heat_with_pnl prunes batches by symbol. Few rows per
--     (account, symbol), so segmenting by symbol too would make tiny segments.
--   alerts: segment per book; deadletters: per topic and partition, ordered
--     by offset (the natural key of a replay).
--   correlations: not compressed. Its volume is large arrays that PostgreSQL
--     already stores compressed in TOAST; columnar batches of up to 1,000
--     such rows would make heat_api.correlation_matrix(), which reads one bar,
--     decompress tens of megabytes. It still gets a retention policy.
--
-- Changing the settings of a hypertable that already has compressed chunks is
-- refused by older 2.x releases, so the settings are only (re)applied while no
-- chunk is compressed.

DO $$
DECLARE
    cfg record;
BEGIN
    FOR cfg IN
        SELECT * FROM (VALUES
            ('prices',          'symbol, source',
                                'ts DESC'),
            ('positions',       'account',
                                'symbol, strategy, ts DESC'),
            ('account_equity',  'account',
                                'ts DESC'),
            ('frames',          'book_kind, book, timeframe',
                                'ts DESC, trigger, params_hash'),
            ('frame_positions', 'book_kind, book, timeframe',
                                'symbol, ts DESC, trigger, params_hash'),
            ('frame_clusters',  'book_kind, book, timeframe',
                                'cluster, ts DESC, trigger, params_hash'),
            ('alerts',          'book_kind, book',
                                'ts DESC, timeframe, kind, subject, state'),
            ('deadletters',     'topic, kafka_partition',
                                'kafka_offset, ts DESC')
        ) AS c (table_name, segmentby, orderby)
    LOOP
        IF NOT EXISTS (
            SELECT FROM timescaledb_information.chunks ch
            WHERE ch.hypertable_schema = 'heat'
              AND ch.hypertable_name = cfg.table_name
              AND ch.is_compressed)
        THEN
            EXECUTE format(
                'ALTER TABLE heat.%I SET (timescaledb.compress, '
                'timescaledb.compress_segmentby = %L, timescaledb.compress_orderby = %L)',
                cfg.table_name, cfg.segmentby, cfg.orderby);
        END IF;
    END LOOP;
END
$$;

-- Compress chunks once all their rows are older than heat.compress_after.
-- Writes into compressed chunks stay possible (late data, replays).
SELECT add_compression_policy('heat.prices',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.positions',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.account_equity',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.frames',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.frame_positions',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.frame_clusters',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.alerts',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);
SELECT add_compression_policy('heat.deadletters',
    compress_after => current_setting('heat.compress_after')::interval, if_not_exists => true);

-- Retention
-- ---------
-- Drops whole chunks whose rows are all older than the setting. The rollups
-- of frames and clusters (continuous aggregates, next file) keep their own,
-- longer retention: their refresh windows stay well inside
-- heat.retention_frames, so dropping raw chunks never removes rollup rows.
SELECT add_retention_policy('heat.prices',
    drop_after => current_setting('heat.retention_prices')::interval, if_not_exists => true);

SELECT add_retention_policy('heat.frames',
    drop_after => current_setting('heat.retention_frames')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.frame_positions',
    drop_after => current_setting('heat.retention_frames')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.frame_clusters',
    drop_after => current_setting('heat.retention_frames')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.correlations',
    drop_after => current_setting('heat.retention_frames')::interval, if_not_exists => true);

SELECT add_retention_policy('heat.positions',
    drop_after => current_setting('heat.retention_events')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.account_equity',
    drop_after => current_setting('heat.retention_events')::interval, if_not_exists => true);
SELECT add_retention_policy('heat.alerts',
    drop_after => current_setting('heat.retention_events')::interval, if_not_exists => true);

SELECT add_retention_policy('heat.deadletters',
    drop_after => current_setting('heat.retention_deadletters')::interval, if_not_exists => true);
