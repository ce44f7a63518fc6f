-- heat_writer: what the sink and backfills use (writes the raw tables, never DDL).
-- heat_reader: Grafana and desks (reads heat_api only). Both are created without
-- login; `heat db migrate` gives them LOGIN and a password when
-- HEAT_WRITER_PASSWORD / HEAT_READER_PASSWORD (or *_FILE) are set.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'heat_writer') THEN
        CREATE ROLE heat_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'heat_reader') THEN
        CREATE ROLE heat_reader NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA heat FROM PUBLIC;
REVOKE ALL ON SCHEMA heat_api FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA heat_api FROM PUBLIC;

GRANT USAGE ON SCHEMA heat TO heat_writer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA heat TO heat_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA heat GRANT SELECT, INSERT, UPDATE ON TABLES TO heat_writer;

GRANT USAGE ON SCHEMA heat_api TO heat_reader, heat_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA heat_api TO heat_reader, heat_writer;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA heat_api TO heat_reader, heat_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA heat_api GRANT SELECT ON TABLES TO heat_reader, heat_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA heat_api GRANT EXECUTE ON FUNCTIONS TO heat_reader, heat_writer;
