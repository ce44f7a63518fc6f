-- Alerts carry the levels configured for their book's desk when they happened (per-desk
-- thresholds from the alert configuration), next to the level that fired: the warning
-- and critical level of the kind, NULL for a level the kind does not have and for
-- alerts stored before this migration.
ALTER TABLE heat.alerts
    ADD COLUMN warning_threshold  double precision,
    ADD COLUMN critical_threshold double precision;

CREATE OR REPLACE VIEW heat_api.alerts AS
    SELECT ts, book_kind, book, account, desk, timeframe, kind, subject, severity, state, value,
           threshold, message, warning_threshold, critical_threshold
    FROM heat.alerts;
