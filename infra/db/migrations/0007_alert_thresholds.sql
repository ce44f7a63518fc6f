-- The alert thresholds in effect per desk, as the processor publishes them at every
-- bar close (topic alert-levels; `heat replay --to-db` writes them too): one row per
-- desk the alert configuration names, and '' for the defaults. Replaced in place:
-- the alerts themselves carry the levels that applied when they happened.
CREATE TABLE heat.alert_levels (
    desk                           text             NOT NULL,
    ts                             timestamptz      NOT NULL,
    cluster_concentration_warning  double precision NOT NULL,
    cluster_concentration_critical double precision NOT NULL,
    liquidation_sigma_warning      double precision NOT NULL,
    liquidation_sigma_critical     double precision NOT NULL,
    stale_heat_after_s             double precision NOT NULL,
    regime_break                   double precision NOT NULL,
    min_frames                     bigint           NOT NULL,
    resolve_ratio                  double precision NOT NULL,
    resolve_after_s                double precision NOT NULL,
    timeframes                     text[],
    PRIMARY KEY (desk)
);

-- Every desk's levels, for Grafana's threshold lines and rules and for desks' SQL:
-- the desks the configuration names and every desk the frames have named (those use
-- the defaults: own_levels false), and a row with desk NULL for the defaults
-- themselves (accounts without a desk). ts: the bar close they were last published at.
-- A desk reader sees its own desks and the defaults.
CREATE VIEW heat_api.alert_thresholds WITH (security_barrier = true) AS
    SELECT d.desk, l.desk <> '' AS own_levels, l.ts,
           l.cluster_concentration_warning, l.cluster_concentration_critical,
           l.liquidation_sigma_warning, l.liquidation_sigma_critical,
           l.stale_heat_after_s, l.regime_break, l.min_frames, l.resolve_ratio,
           l.resolve_after_s, l.timeframes
    FROM (SELECT NULL::text AS desk
          UNION ALL
          (SELECT desk FROM heat.alert_levels WHERE desk <> ''
           UNION
           SELECT desk FROM heat.book_desks)) d
    CROSS JOIN LATERAL (
        SELECT * FROM heat.alert_levels l
        WHERE l.desk IN (COALESCE(d.desk, ''), '')
        ORDER BY l.desk = '' LIMIT 1) l
    WHERE (SELECT NOT pg_has_role('heat_desk_reader', 'MEMBER')
                   OR pg_has_role('heat_reader', 'MEMBER'))
       OR d.desk IS NULL
       OR d.desk IN (SELECT r.desk FROM heat.desk_readers r WHERE r.role = current_user);
