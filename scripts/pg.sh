#!/usr/bin/env bash
# The embedded PostgreSQL + PostGIS cluster under var/pg (used when DATABASE_URL is not set).
#   scripts/pg.sh start   initialise (first time), start, create the database and the postgis extension
#   scripts/pg.sh stop    stop the cluster
#   scripts/pg.sh status
# The cluster listens on a unix socket in var/pg/run only (no TCP), so it never clashes with a server on 5432.
# initdb and postgres refuse to run as root: as root, the cluster is owned and run by the `postgres` user.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGBIN=/usr/lib/postgresql/15/bin
DBNAME=${OURCITY_DB_NAME:-geo_ourcity}
PGDIR=$ROOT/var/pg
DATA=$PGDIR/data
RUN=$PGDIR/run
LOG=$PGDIR/postgres.log

if [ -n "${DATABASE_URL:-}" ]; then
  echo "DATABASE_URL is set: using that server, not the embedded cluster"; exit 0
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

prepare_dirs() {
  mkdir -p "$ROOT/var"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "error: user 'postgres' is missing (is postgresql-15 installed?)" >&2; exit 1; }
    if [ ! -e "$PGDIR" ] && ! runuser -u postgres -- test -x "$ROOT/var"; then
      # The checkout sits where the postgres user can not reach (e.g. under /root): keep the cluster in a
      # directory it owns and link it into var/.
      alt=/var/lib/geo_ourcity/$(echo -n "$ROOT" | md5sum | cut -c1-12)
      mkdir -p "$alt"; chown postgres:postgres /var/lib/geo_ourcity "$alt"
      ln -sfn "$alt" "$PGDIR"
    fi
    mkdir -p "$PGDIR"; chown postgres:postgres "$PGDIR" "$(readlink -f "$PGDIR")"
  else
    mkdir -p "$PGDIR"
  fi
  as_owner mkdir -p "$RUN"
}

running() { [ -f "$DATA/postmaster.pid" ] && as_owner $PGBIN/pg_ctl -D "$DATA" status >/dev/null 2>&1; }

start() {
  [ -x $PGBIN/initdb ] || { echo "error: PostgreSQL 15 is not installed (run make setup)" >&2; exit 1; }
  prepare_dirs
  if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "Initialising the embedded PostgreSQL cluster in var/pg"
    as_owner $PGBIN/initdb -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$RUN'
port = 5432
shared_buffers = 256MB
work_mem = 64MB
maintenance_work_mem = 512MB
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
checkpoint_timeout = 30min
max_connections = 200
CONF
  fi
  replication_settings
  if ! running; then
    as_owner $PGBIN/pg_ctl -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  elif [ "$($PGBIN/psql -h "$RUN" -U postgres -d postgres -qAtc 'SHOW wal_level')" != replica ]; then
    echo "Restarting the embedded PostgreSQL cluster (wal_level replica)"
    as_owner $PGBIN/pg_ctl -D "$DATA" -l "$LOG" -w -t 60 -m fast restart >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  fi
  psql_() { $PGBIN/psql -h "$RUN" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
  if [ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$DBNAME'")" != 1 ]; then
    psql_ -d postgres -c "CREATE DATABASE $DBNAME"
  fi
  psql_ -d "$DBNAME" -c "CREATE EXTENSION IF NOT EXISTS postgis" 
  # The test database is created from template1: with postgis there, test set-up does not need to create it.
  psql_ -d template1 -c "CREATE EXTENSION IF NOT EXISTS postgis"
}

# A streaming standby can follow the cluster (tests/replica, docs/database.md): WAL for replication and senders for
# it, in a file of its own that postgresql.conf includes last, so that it also applies to a cluster initialised
# before (wal_level minimal). pg_hba.conf from initdb already lets local replication connections in.
replication_settings() {
  printf "wal_level = replica\nmax_wal_senders = 5\nwal_keep_size = 256MB\n" | as_owner tee "$DATA/replication.conf" >/dev/null
  grep -q "^include_if_exists = 'replication.conf'" "$DATA/postgresql.conf" \
    || echo "include_if_exists = 'replication.conf'" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
}

stop() {
  if [ -f "$DATA/postmaster.pid" ]; then as_owner $PGBIN/pg_ctl -D "$DATA" -m fast -w stop >/dev/null && echo "embedded PostgreSQL stopped"; else echo "embedded PostgreSQL is not running"; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (socket $RUN)"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
