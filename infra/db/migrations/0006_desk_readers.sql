-- Per-desk readers: login roles that see only the rows of their desks.
--
-- heat_desk_reader (NOLOGIN) is the group every desk login role belongs to;
-- `heat db reader create --desk D` makes such a role and lists its desks in
-- heat.desk_readers. heat_reader (Grafana's and the risk manager's role) and
-- heat_writer keep seeing every row.
--
-- Which books belong to a desk: heat.book_desks, one row per (book, desk) the
-- frames have named, kept by a trigger on heat.frames. It outlives the raw
-- rows, as the rollups do. A book that moved desk stays visible to both desks.
--
-- The filter lives in the heat_api views, not in row-level security on the
-- tables: TimescaleDB refuses compression ("columnstore cannot be used on table
-- with row security") on a hypertable with row security, and continuous
-- aggregates support none. So the views keep their owner's rights (desk readers
-- have no privilege in schema heat at all: its tables, aggregates and
-- deadletters are out of their reach) and each view over a table that carries
-- a book or an account keeps only the caller's rows. Inside a view current_user
-- is still the caller. security_barrier: the caller's own conditions run after
-- the filter, so a function in them never sees another desk's row. The first
-- condition is a one-time test (an InitPlan): roles that are not desk readers,
-- and desk readers that are heat_reader as well, pay no filter per row.
--
-- prices and correlations are market data, not a desk's: every reader sees
-- them. Views built on other heat_api views (latest_frames, current_params,
-- latest_heat, heat_with_pnl) and the heat_api functions read the filtered
-- views, so they are filtered too. The TimescaleDB layer re-points the rollup
-- views at continuous aggregates with the same filter
-- (timescale/0003_desk_readers.sql).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'heat_desk_reader') THEN
        CREATE ROLE heat_desk_reader NOLOGIN;
    END IF;
END
$$;

CREATE TABLE heat.desk_readers (
    role name NOT NULL,
    desk text NOT NULL,
    PRIMARY KEY (role, desk)
);

CREATE TABLE heat.book_desks (
    book_kind text NOT NULL CHECK (book_kind IN ('account', 'desk')),
    book      text NOT NULL,
    desk      text NOT NULL,
    PRIMARY KEY (book_kind, book, desk)
);
CREATE INDEX book_desks_desk_idx ON heat.book_desks (desk);

INSERT INTO heat.book_desks (book_kind, book, desk)
    SELECT DISTINCT book_kind, book, desk FROM heat.frames WHERE desk IS NOT NULL
    ON CONFLICT DO NOTHING;

-- Row by row: TimescaleDB hypertables take no statement triggers with transition
-- tables. The lookup first keeps the common case (a known book) to one index probe.
CREATE FUNCTION heat.note_book_desk() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NOT EXISTS (SELECT FROM heat.book_desks b
                   WHERE b.book_kind = NEW.book_kind AND b.book = NEW.book
                     AND b.desk = NEW.desk) THEN
        INSERT INTO heat.book_desks (book_kind, book, desk)
        VALUES (NEW.book_kind, NEW.book, NEW.desk)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER frames_note_book_desk
    AFTER INSERT OR UPDATE OF desk ON heat.frames
    FOR EACH ROW WHEN (NEW.desk IS NOT NULL)
    EXECUTE FUNCTION heat.note_book_desk();

REVOKE ALL ON FUNCTION heat.note_book_desk() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heat.note_book_desk() TO heat_writer;
-- The default privileges of schema heat give the writer SELECT, INSERT, UPDATE on new
-- tables; it needs only to add books, and no one but the owner lists desk readers.
REVOKE ALL ON heat.book_desks, heat.desk_readers FROM heat_writer;
GRANT SELECT, INSERT ON heat.book_desks TO heat_writer;

GRANT USAGE ON SCHEMA heat_api TO heat_desk_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA heat_api TO heat_desk_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA heat_api TO heat_desk_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA heat_api GRANT SELECT ON TABLES TO heat_desk_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA heat_api GRANT EXECUTE ON FUNCTIONS TO heat_desk_reader;

-- The views over the tables (same columns as before).

CREATE OR REPLACE VIEW heat_api.positions WITH (security_barrier = true) AS
    SELECT ts, account, symbol, strategy, qty, conviction, entry_price, leverage, desk, source
    FROM heat.positions
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user)
            OR account IN (SELECT b.book FROM heat.book_desks b
                           WHERE b.book_kind = 'account'
                             AND b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user)));

CREATE OR REPLACE VIEW heat_api.account_equity WITH (security_barrier = true) AS
    SELECT ts, account, equity, desk, maintenance_rate, currency FROM heat.account_equity
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user)
            OR account IN (SELECT b.book FROM heat.book_desks b
                           WHERE b.book_kind = 'account'
                             AND b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user)));

CREATE OR REPLACE VIEW heat_api.frames WITH (security_barrier = true) AS
    SELECT ts, book_kind, book, account, desk, timeframe, trigger, params_hash, equity, gross,
           net, correlated_exposure, stress_exposure, effective_bets, hhi,
           max_cluster_concentration, liq_distance, var99_1d, absorption_ratio, regime_break,
           stale, max_price_age_s, warming_up, params
    FROM heat.frames
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.frame_positions WITH (security_barrier = true) AS
    SELECT ts, book_kind, book, timeframe, trigger, params_hash, symbol, strategy, qty, price,
           notional, share, heat, heat_share, risk_contribution, cluster, quadrant, conviction,
           stale, price_age_s
    FROM heat.frame_positions
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.frame_clusters WITH (security_barrier = true) AS
    SELECT ts, book_kind, book, timeframe, trigger, params_hash, cluster, members, gross, net,
           concentration, stress_concentration, liq_distance, liq_sigma
    FROM heat.frame_clusters
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

CREATE OR REPLACE VIEW heat_api.alerts WITH (security_barrier = true) AS
    SELECT ts, book_kind, book, account, desk, timeframe, kind, subject, severity, state, value,
           threshold, message, warning_threshold, critical_threshold
    FROM heat.alerts
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR (book_kind, book) IN (
               SELECT b.book_kind, b.book FROM heat.book_desks b
               WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user));

-- The rollup views, on plain PostgreSQL (grouped from the tables). Where the
-- TimescaleDB layer already re-pointed them at continuous aggregates, its own
-- migration filters them, so they are left alone here.

DO $do$
BEGIN
    IF to_regclass('heat.frame_metrics_1m_cagg') IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.frame_metrics_1m WITH (security_barrier = true) AS
            SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
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
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash
    $v$;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.frame_metrics_1h WITH (security_barrier = true) AS
            SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
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
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash
    $v$;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.frame_metrics_1d WITH (security_barrier = true) AS
            SELECT date_bin('1 day', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
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
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash
    $v$;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.cluster_metrics_1m WITH (security_barrier = true) AS
            SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   book_kind, book, timeframe, params_hash, cluster,
                   count(*) AS frames,
                   avg(concentration) AS concentration_avg,
                   max(concentration) AS concentration_max,
                   max(stress_concentration) AS stress_concentration_max,
                   min(liq_sigma) AS liq_sigma_min
            FROM heat.frame_clusters
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
    $v$;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.cluster_metrics_1h WITH (security_barrier = true) AS
            SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   book_kind, book, timeframe, params_hash, cluster,
                   count(*) AS frames,
                   avg(concentration) AS concentration_avg,
                   max(concentration) AS concentration_max,
                   max(stress_concentration) AS stress_concentration_max,
                   min(liq_sigma) AS liq_sigma_min
            FROM heat.frame_clusters
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
    $v$;
    EXECUTE $v$
        CREATE OR REPLACE VIEW heat_api.cluster_metrics_1d WITH (security_barrier = true) AS
            SELECT date_bin('1 day', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   book_kind, book, timeframe, params_hash, cluster,
                   count(*) AS frames,
                   avg(concentration) AS concentration_avg,
                   max(concentration) AS concentration_max,
                   max(stress_concentration) AS stress_concentration_max,
                   min(liq_sigma) AS liq_sigma_min
            FROM heat.frame_clusters
            WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                           OR pg_has_role('heat_reader', 'MEMBER'))
               OR (book_kind, book) IN (
                       SELECT b.book_kind, b.book FROM heat.book_desks b
                       WHERE b.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user))
            GROUP BY 1, book_kind, book, timeframe, params_hash, cluster
    $v$;
END
$do$;
