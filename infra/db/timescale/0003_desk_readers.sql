-- TimescaleDB layer, part 3: the rollup views of heat_api keep a desk reader to
-- its desks' books, as the other heat_api views do (core 0006_desk_readers.sql):
-- continuous aggregates support no row security, so the views filter by
-- heat.book_desks themselves, with their owner's rights (desk readers have no
-- privilege on the aggregates). Same names and columns as before.

CREATE OR REPLACE VIEW heat_api.frame_metrics_1m WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1m_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.frame_metrics_1h WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1h_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.frame_metrics_1d WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, frames,
           correlated_exposure_avg, correlated_exposure_max, max_cluster_concentration_max,
           effective_bets_min, var99_1d_max, regime_break_max, liq_distance_min,
           gross_avg, net_avg
    FROM heat.frame_metrics_1d_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1m WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1m_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1h WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1h_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.cluster_metrics_1d WITH (security_barrier = true) AS
    SELECT bucket, book_kind, book, timeframe, params_hash, cluster, frames,
           concentration_avg, concentration_max, stress_concentration_max, liq_sigma_min
    FROM heat.cluster_metrics_1d_cagg
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

GRANT SELECT ON heat_api.frame_metrics_1m, heat_api.frame_metrics_1h, heat_api.frame_metrics_1d,
                heat_api.cluster_metrics_1m, heat_api.cluster_metrics_1h, heat_api.cluster_metrics_1d
    TO heat_desk_reader;
