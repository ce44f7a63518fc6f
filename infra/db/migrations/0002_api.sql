-- The read API for Grafana, desks and bots: schema heat_api, the only schema
-- heat_reader can read. The same view names and columns exist on plain
-- PostgreSQL and on TimescaleDB; there the rollup views read continuous
-- aggregates instead of grouping the raw tables (timescale/0002_continuous_aggregates.sql).

CREATE SCHEMA IF NOT EXISTS heat_api;

CREATE VIEW heat_api.prices AS
    SELECT ts, symbol, source, price, bid, ask FROM heat.prices;

CREATE VIEW heat_api.positions AS
    SELECT ts, account, symbol, strategy, qty, conviction, entry_price, leverage, desk, source
    FROM heat.positions;

CREATE VIEW heat_api.account_equity AS
    SELECT ts, account, equity, desk, maintenance_rate, currency FROM heat.account_equity;

CREATE VIEW heat_api.frames AS
    SELECT ts, book_kind, book, account, desk, timeframe, trigger, params_hash, equity, gross,
           net, correlated_exposure, stress_exposure, effective_bets, hhi,
           max_cluster_concentration, liq_distance, var99_1d, absorption_ratio, regime_break,
           stale, max_price_age_s, warming_up, params
    FROM heat.frames;

CREATE VIEW heat_api.frame_positions AS
    SELECT ts, book_kind, book, timeframe, trigger, params_hash, symbol, strategy, qty, price,
           notional, share, heat, heat_share, risk_contribution, cluster, quadrant, conviction,
           stale, price_age_s
    FROM heat.frame_positions;

CREATE VIEW heat_api.frame_clusters AS
    SELECT ts, book_kind, book, timeframe, trigger, params_hash, cluster, members, gross, net,
           concentration, stress_concentration, liq_distance, liq_sigma
    FROM heat.frame_clusters;

CREATE VIEW heat_api.alerts AS
    SELECT ts, book_kind, book, account, desk, timeframe, kind, subject, severity, state, value,
           threshold, message
    FROM heat.alerts;

-- The newest frame of every book, timeframe and parameter set.
CREATE VIEW heat_api.latest_frames AS
    SELECT DISTINCT ON (book_kind, book, timeframe, params_hash) *
    FROM heat_api.frames
    ORDER BY book_kind, book, timeframe, params_hash, ts DESC, trigger;

-- The parameter set of each book's newest frame per timeframe: what the API functions
-- use unless told otherwise (a backfill with new parameters adds a second set).
CREATE VIEW heat_api.current_params AS
    SELECT DISTINCT ON (book_kind, book, timeframe) book_kind, book, timeframe, params_hash
    FROM heat_api.frames
    ORDER BY book_kind, book, timeframe, ts DESC, params_hash;

-- Latest heat per account (or desk), one row per held symbol.
CREATE VIEW heat_api.latest_heat AS
    SELECT f.ts, f.book_kind, f.book, f.account, f.desk, f.timeframe, f.equity,
           f.correlated_exposure, p.symbol, p.strategy, p.qty, p.price, p.notional, p.share,
           p.heat, p.heat_share, p.risk_contribution, p.cluster, p.quadrant, p.conviction,
           p.stale
    FROM heat_api.latest_frames f
    JOIN heat_api.frame_positions p
      USING (book_kind, book, timeframe, ts, trigger, params_hash);

-- Rollups of frame and cluster metrics per minute, hour and day.
CREATE VIEW heat_api.frame_metrics_1m AS
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
    GROUP BY 1, book_kind, book, timeframe, params_hash;

CREATE VIEW heat_api.frame_metrics_1h AS
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
    GROUP BY 1, book_kind, book, timeframe, params_hash;

CREATE VIEW heat_api.frame_metrics_1d AS
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
    GROUP BY 1, book_kind, book, timeframe, params_hash;

CREATE VIEW heat_api.cluster_metrics_1m AS
    SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster;

CREATE VIEW heat_api.cluster_metrics_1h AS
    SELECT date_bin('1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster;

CREATE VIEW heat_api.cluster_metrics_1d AS
    SELECT date_bin('1 day', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           book_kind, book, timeframe, params_hash, cluster,
           count(*) AS frames,
           avg(concentration) AS concentration_avg,
           max(concentration) AS concentration_max,
           max(stress_concentration) AS stress_concentration_max,
           min(liq_sigma) AS liq_sigma_min
    FROM heat.frame_clusters
    GROUP BY 1, book_kind, book, timeframe, params_hash, cluster;

-- Heat next to unrealized P&L: each frame row with the P&L of the account's positions
-- in that symbol, summed over strategies, each at the entry price of its latest
-- position message at or before the frame; entry_price is their net-quantity-weighted
-- average (desk rows: null).
CREATE VIEW heat_api.heat_with_pnl AS
    SELECT p.ts, p.book_kind, p.book, p.timeframe, p.trigger, p.params_hash, p.symbol,
           p.strategy, p.qty, p.price, p.share, p.heat, p.heat_share, p.cluster,
           e.entry_price, e.unrealized_pnl
    FROM heat_api.frame_positions p
    LEFT JOIN LATERAL (
        SELECT sum(leg.qty * leg.entry_price) / nullif(sum(leg.qty), 0) AS entry_price,
               sum(leg.qty * (p.price - leg.entry_price)) AS unrealized_pnl
        FROM (
            SELECT DISTINCT ON (pos.strategy) pos.qty, pos.entry_price
            FROM heat.positions pos
            WHERE p.book_kind = 'account' AND pos.account = p.book AND pos.symbol = p.symbol
              AND pos.ts <= p.ts
            ORDER BY pos.strategy, pos.ts DESC
        ) leg
    ) e ON true;

-- Heat history of one book at a chosen resolution (all symbols, or one).
CREATE FUNCTION heat_api.heat_history(
    p_book text, p_timeframe text, p_from timestamptz, p_to timestamptz,
    p_resolution interval DEFAULT '1 hour', p_symbol text DEFAULT NULL,
    p_book_kind text DEFAULT 'account', p_params_hash text DEFAULT NULL)
RETURNS TABLE (bucket timestamptz, symbol text, frames bigint, heat_avg double precision,
               heat_max double precision, share_avg double precision,
               heat_share_avg double precision)
LANGUAGE sql STABLE AS $$
    SELECT date_bin(p_resolution, p.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'), p.symbol, count(*),
           avg(p.heat), max(p.heat), avg(p.share), avg(p.heat_share)
    FROM heat_api.frame_positions p
    WHERE p.book_kind = p_book_kind AND p.book = p_book AND p.timeframe = p_timeframe
      AND p.ts >= p_from AND p.ts < p_to
      AND (p_symbol IS NULL OR p.symbol = p_symbol)
      AND p.params_hash = coalesce(p_params_hash, (
          SELECT c.params_hash FROM heat_api.current_params c
          WHERE c.book_kind = p_book_kind AND c.book = p_book AND c.timeframe = p_timeframe))
    GROUP BY 1, 2
    ORDER BY 1, 2
$$;

-- The N moments with the highest cluster concentration in a range, with what was held.
CREATE FUNCTION heat_api.most_concentrated(
    p_from timestamptz, p_to timestamptz, p_n integer DEFAULT 10,
    p_timeframe text DEFAULT '1h', p_params_hash text DEFAULT NULL)
RETURNS TABLE (ts timestamptz, book_kind text, book text, max_cluster_concentration
               double precision, correlated_exposure double precision, holdings jsonb)
LANGUAGE sql STABLE AS $$
    SELECT f.ts, f.book_kind, f.book, f.max_cluster_concentration, f.correlated_exposure,
           (SELECT jsonb_agg(jsonb_build_object('symbol', p.symbol, 'share', p.share,
                                                'heat', p.heat, 'cluster', p.cluster)
                             ORDER BY p.heat DESC)
            FROM heat_api.frame_positions p
            WHERE p.book_kind = f.book_kind AND p.book = f.book AND p.timeframe = f.timeframe
              AND p.ts = f.ts AND p.trigger = f.trigger AND p.params_hash = f.params_hash)
    FROM heat_api.frames f
    JOIN heat_api.current_params c USING (book_kind, book, timeframe)
    WHERE f.timeframe = p_timeframe AND f.ts >= p_from AND f.ts < p_to
      AND f.params_hash = coalesce(p_params_hash, c.params_hash)
      AND f.max_cluster_concentration IS NOT NULL
    ORDER BY f.max_cluster_concentration DESC, f.ts, f.book_kind, f.book
    LIMIT p_n
$$;

-- Books side by side: the distribution of max cluster concentration and effective bets.
CREATE FUNCTION heat_api.strategy_comparison(
    p_from timestamptz, p_to timestamptz, p_timeframe text DEFAULT '1h',
    p_params_hash text DEFAULT NULL)
RETURNS TABLE (book_kind text, book text, frames bigint,
               concentration_p50 double precision, concentration_p90 double precision,
               concentration_max double precision, effective_bets_p10 double precision,
               effective_bets_p50 double precision)
LANGUAGE sql STABLE AS $$
    SELECT f.book_kind, f.book, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.max_cluster_concentration),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY f.max_cluster_concentration),
           max(f.max_cluster_concentration),
           percentile_cont(0.1) WITHIN GROUP (ORDER BY f.effective_bets),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY f.effective_bets)
    FROM heat_api.frames f
    JOIN heat_api.current_params c USING (book_kind, book, timeframe)
    WHERE f.timeframe = p_timeframe AND f.ts >= p_from AND f.ts < p_to
      AND f.params_hash = coalesce(p_params_hash, c.params_hash)
    GROUP BY f.book_kind, f.book
    ORDER BY f.book_kind, f.book
$$;

CREATE VIEW heat_api.correlations AS
    SELECT ts, timeframe, params_hash, symbols, rho FROM heat.correlations;

-- The correlation matrix of a timeframe at the latest bar at or before p_ts, as rows
-- (both orders of every pair, and the diagonal).
CREATE FUNCTION heat_api.correlation_matrix(p_ts timestamptz, p_timeframe text,
                                            p_params_hash text DEFAULT NULL)
RETURNS TABLE (ts timestamptz, symbol_a text, symbol_b text, rho double precision)
LANGUAGE sql STABLE AS $$
    WITH bar AS (
        SELECT c.ts, c.symbols, c.rho
        FROM heat_api.correlations c
        WHERE c.timeframe = p_timeframe AND c.ts <= p_ts
          AND (p_params_hash IS NULL OR c.params_hash = p_params_hash)
        ORDER BY c.ts DESC, c.params_hash
        LIMIT 1
    ), pairs AS (
        SELECT bar.ts, i, j, bar.symbols, bar.rho
        FROM bar,
             generate_series(1, cardinality(bar.symbols)) AS i,
             generate_series(1, cardinality(bar.symbols)) AS j
    )
    SELECT ts, symbols[i], symbols[j],
           CASE WHEN i = j THEN 1.0
                -- position of (min, max) in the row-major upper triangle (1-based)
                ELSE rho[(least(i, j) - 1) * cardinality(symbols)
                         - (least(i, j) - 1) * least(i, j) / 2
                         + greatest(i, j) - least(i, j)]::double precision
           END
    FROM pairs
    ORDER BY 2, 3
$$;
