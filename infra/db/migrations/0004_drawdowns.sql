-- Drawdowns of account books over stored history, each with the heat that preceded it:
-- for books already in the database, the comparison `heat compare` makes over files
-- (its `asis` scenario without a rule). Plain SQL over heat_api views, so the same on
-- plain PostgreSQL and on TimescaleDB.
--
-- Equity is marked to market from the stored positions and prices, at every bar frame
-- of the timeframe from the book's first position on:
--   equity(t) = equity_0 + sum_i q_i(t) P_i(t) - sum over trades at or before t of dq * price
-- q_i(t) P_i(t) are the frame's position notionals; a trade is a change of quantity
-- between consecutive position messages of one (account, symbol, strategy), made at the
-- symbol's latest stored price at or before it (its first price when it had none yet);
-- equity_0 is the account's latest recorded equity at or before its first position
-- (without one: the equity of the frame made at that position, its gross notional).
-- Recorded equity after the first position is not used: P&L moves equity. Where the
-- sink thinned prices, a trade between two stored ticks uses the older one.
--
-- An episode starts at a bar whose equity is at or above every bar before it and runs
-- to the next such bar (recovery_ts, NULL if none yet); its trough is its lowest bar
-- (the first on ties) and depth = 1 - trough / peak. The p_n deepest per book are
-- returned, ranked. The heat before each is the bar frame of the timeframe within
-- p_heat_window before the peak (peak included) with the highest max cluster
-- concentration (the latest on ties), its effective bets and its most concentrated
-- cluster. Those are as the frames were stored: against the equity the account reported.

CREATE FUNCTION heat_api.drawdowns(
    p_from timestamptz, p_to timestamptz, p_timeframe text DEFAULT '1h',
    p_n integer DEFAULT 3, p_book text DEFAULT NULL,
    p_heat_window interval DEFAULT '1 hour', p_params_hash text DEFAULT NULL)
RETURNS TABLE (book text, rank bigint, peak_ts timestamptz, trough_ts timestamptz,
               recovery_ts timestamptz, peak_equity double precision,
               trough_equity double precision, depth double precision,
               heat_ts timestamptz, max_cluster_concentration double precision,
               effective_bets double precision, top_cluster text,
               top_cluster_members text[])
LANGUAGE sql STABLE AS $$
    WITH first_position AS (
        SELECT pos.account AS book, min(pos.ts) AS start_ts
        FROM heat_api.positions pos
        WHERE pos.qty <> 0 AND (p_book IS NULL OR pos.account = p_book)
        GROUP BY pos.account
    ), start AS (
        SELECT fp.book, fp.start_ts, coalesce(
            (SELECT e.equity FROM heat_api.account_equity e
             WHERE e.account = fp.book AND e.ts <= fp.start_ts
             ORDER BY e.ts DESC LIMIT 1),
            (SELECT f.equity FROM heat_api.frames f
             WHERE f.book_kind = 'account' AND f.book = fp.book AND f.timeframe = p_timeframe
               AND f.ts >= fp.start_ts
             ORDER BY f.ts, f.trigger DESC LIMIT 1)) AS equity_0
        FROM first_position fp
    ), bars AS (
        SELECT f.book, f.ts, f.params_hash
        FROM heat_api.frames f
        JOIN heat_api.current_params c USING (book_kind, book, timeframe)
        JOIN start s ON s.book = f.book AND f.ts >= s.start_ts
        WHERE f.book_kind = 'account' AND f.timeframe = p_timeframe AND f.trigger = 'bar'
          AND f.ts >= p_from AND f.ts < p_to
          AND f.params_hash = coalesce(p_params_hash, c.params_hash)
    ), notional AS (
        SELECT b.book, b.ts, b.params_hash, coalesce(sum(p.notional), 0) AS notional
        FROM bars b
        LEFT JOIN heat_api.frame_positions p
          ON p.book_kind = 'account' AND p.book = b.book AND p.timeframe = p_timeframe
         AND p.ts = b.ts AND p.trigger = 'bar' AND p.params_hash = b.params_hash
        GROUP BY b.book, b.ts, b.params_hash
    ), trades AS (
        SELECT pos.account AS book, pos.ts,
               (pos.qty - coalesce(lag(pos.qty) OVER (
                    PARTITION BY pos.account, pos.symbol, pos.strategy ORDER BY pos.ts), 0))
               * coalesce(
                   (SELECT pr.price FROM heat_api.prices pr
                    WHERE pr.symbol = pos.symbol AND pr.ts <= pos.ts
                    ORDER BY pr.ts DESC, pr.source LIMIT 1),
                   (SELECT pr.price FROM heat_api.prices pr
                    WHERE pr.symbol = pos.symbol AND pr.ts > pos.ts
                    ORDER BY pr.ts, pr.source LIMIT 1)) AS cash_out
        FROM heat_api.positions pos
        WHERE pos.account IN (SELECT s.book FROM start s)
    ), events AS (
        -- Trades and bars in one stream: a bar sees every trade at or before it.
        SELECT t.book, t.ts, 0 AS kind, t.cash_out, NULL::double precision AS notional
        FROM trades t
        UNION ALL
        SELECT n.book, n.ts, 1, 0, n.notional FROM notional n
    ), marks AS (
        SELECT ev.book, ev.ts, ev.kind, ev.notional,
               sum(ev.cash_out) OVER (PARTITION BY ev.book ORDER BY ev.ts, ev.kind
                                      ROWS UNBOUNDED PRECEDING) AS cash_out
        FROM events ev
    ), curve AS (
        SELECT m.book, m.ts, s.equity_0 + m.notional - m.cash_out AS equity
        FROM marks m JOIN start s USING (book)
        WHERE m.kind = 1
    ), highs AS (
        SELECT c.book, c.ts, c.equity,
               max(c.equity) OVER (PARTITION BY c.book ORDER BY c.ts
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS high
        FROM curve c
    ), numbered AS (
        SELECT h.book, h.ts, h.equity,
               count(*) FILTER (WHERE h.high IS NULL OR h.equity >= h.high)
                   OVER (PARTITION BY h.book ORDER BY h.ts ROWS UNBOUNDED PRECEDING) AS episode
        FROM highs h
    ), starts AS (
        SELECT n.book, n.episode, min(n.ts) AS start_ts FROM numbered n GROUP BY 1, 2
    ), episodes AS (
        SELECT DISTINCT ON (n.book, n.episode) n.book, n.episode,
               first_value(n.ts) OVER w AS peak_ts, first_value(n.equity) OVER w AS peak_equity,
               n.ts AS trough_ts, n.equity AS trough_equity
        FROM numbered n
        WINDOW w AS (PARTITION BY n.book, n.episode ORDER BY n.ts)
        ORDER BY n.book, n.episode, n.equity, n.ts
    ), ranked AS (
        SELECT e.*, 1 - e.trough_equity / e.peak_equity AS depth, nx.start_ts AS recovery_ts,
               row_number() OVER (PARTITION BY e.book
                                  ORDER BY 1 - e.trough_equity / e.peak_equity DESC,
                                           e.peak_ts) AS rank,
               b.params_hash
        FROM episodes e
        LEFT JOIN starts nx ON nx.book = e.book AND nx.episode = e.episode + 1
        JOIN bars b ON b.book = e.book AND b.ts = e.peak_ts
        WHERE e.peak_equity > 0 AND e.trough_equity < e.peak_equity
    )
    SELECT r.book, r.rank, r.peak_ts, r.trough_ts, r.recovery_ts, r.peak_equity,
           r.trough_equity, r.depth, h.ts, h.max_cluster_concentration, h.effective_bets,
           h.cluster, h.members
    FROM ranked r
    LEFT JOIN LATERAL (
        SELECT f.ts, f.max_cluster_concentration, f.effective_bets, top.cluster, top.members
        FROM heat_api.frames f
        LEFT JOIN LATERAL (
            SELECT cl.cluster, cl.members FROM heat_api.frame_clusters cl
            WHERE cl.book_kind = f.book_kind AND cl.book = f.book
              AND cl.timeframe = f.timeframe AND cl.ts = f.ts AND cl.trigger = f.trigger
              AND cl.params_hash = f.params_hash
            ORDER BY cl.concentration DESC, cl.cluster LIMIT 1
        ) top ON true
        WHERE f.book_kind = 'account' AND f.book = r.book AND f.timeframe = p_timeframe
          AND f.trigger = 'bar' AND f.params_hash = r.params_hash
          AND f.ts >= r.peak_ts - p_heat_window AND f.ts <= r.peak_ts
          AND f.max_cluster_concentration IS NOT NULL
        ORDER BY f.max_cluster_concentration DESC, f.ts DESC LIMIT 1
    ) h ON true
    WHERE r.rank <= p_n
    ORDER BY r.book, r.rank
$$;

REVOKE ALL ON FUNCTION heat_api.drawdowns(timestamptz, timestamptz, text, integer, text,
                                          interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heat_api.drawdowns(timestamptz, timestamptz, text, integer, text,
                                             interval, text) TO heat_reader, heat_writer;
