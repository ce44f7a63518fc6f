#!/bin/bash
# First start: a cluster in PGDATA whose superuser is POSTGRES_USER (password from
# POSTGRES_PASSWORD or the file POSTGRES_PASSWORD_FILE names), SCRAM over TCP, local
# socket trusted inside the container, the database POSTGRES_DB, timescaledb preloaded.
set -euo pipefail
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}"
  password_file=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
  initdb --username="$user" --pwfile="$password_file" --encoding=UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 16
max_worker_processes = 27
CONF
  pg_ctl --wait --silent --options="-c listen_addresses=''" start
  if [ "$database" != postgres ]; then
    createdb --username="$user" -- "$database"
  fi
  psql --username="$user" --dbname="$database" --quiet \
    --command="CREATE EXTENSION IF NOT EXISTS timescaledb"
  pg_ctl --wait --silent --mode=fast stop
fi
exec "$@"
