#!/usr/bin/env bash
# The embedded PostgreSQL + PostGIS cluster under var/pg (used when DATABASE_URL is not set).
#   scripts/pg.sh start   initialise (first time), start, create the application's role, database and postgis
#   scripts/pg.sh stop    stop the cluster
#   scripts/pg.sh status
# The cluster listens on a unix socket in var/pg/run only (no TCP), so it never clashes with a server on 5432.
# initdb and postgres refuse to run as root: as root, the cluster is owned and run by the `postgres` user.
#
# Who may connect (written again on every start, so an older cluster is brought up to date):
# - the socket and its directory are for the cluster's owner only; as root, also for the group
#   $OURCITY_DB_GROUP (default `ourcity`: put the user that runs the service in it) and root itself;
# - the superuser `postgres` only for the cluster's owner (peer authentication), and only this script uses it;
# - the application connects as its own role $OURCITY_DB_USER (default geo_ourcity; peer authentication: whoever
#   can reach the socket), which owns the database and is no superuser. It may create databases (CREATEDB), for
#   the tests' and the benchmarks' own databases, and checkpoint (pg_checkpoint), for the import benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGBIN=/usr/lib/postgresql/15/bin
DBNAME=${OURCITY_DB_NAME:-geo_ourcity}
APP_ROLE=${OURCITY_DB_USER:-geo_ourcity}
GROUP=${OURCITY_DB_GROUP:-ourcity}
PGDIR=$ROOT/var/pg
DATA=$PGDIR/data
RUN=$PGDIR/run
LOG=$PGDIR/postgres.log

if [ -n "${DATABASE_URL:-}" ]; then
  echo "DATABASE_URL is set: using that server, not the embedded cluster"; exit 0
fi
for name in "$DBNAME" "$APP_ROLE"; do
  [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "error: $name: use a plain lower-case SQL name" >&2; exit 2; }
done

if [ "$(id -u)" -eq 0 ]; then OWNER=postgres; else OWNER=$(id -un); fi

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
    getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
  else
    mkdir -p "$PGDIR"
  fi
  as_owner mkdir -p "$RUN"
  if [ "$(id -u)" -eq 0 ]; then
    # The group may pass through var/pg (not read the log) and reach the socket; the directory's setgid bit
    # gives the socket the group, so the postgres user need not be a member.
    chgrp "$GROUP" "$(readlink -f "$PGDIR")" "$RUN"
    chmod 0710 "$(readlink -f "$PGDIR")"
    chmod 2710 "$RUN"
  else
    chmod 0700 "$PGDIR" "$RUN"
  fi
}

# The access rules, as files of the cluster (its owner writes them: the data directory is its alone).
if [ "$(id -u)" -eq 0 ]; then SOCKET_MODE=0770; else SOCKET_MODE=0700; fi

write_access_rules() {
  as_owner tee "$DATA/ourcity.conf" >/dev/null <<CONF
# Written by scripts/pg.sh on every start: who can reach the cluster. Edits here are overwritten.
listen_addresses = ''
unix_socket_directories = '$RUN'
unix_socket_permissions = $SOCKET_MODE
password_encryption = scram-sha-256
CONF
  grep -q "^include_if_exists = 'ourcity.conf'" "$DATA/postgresql.conf" ||
    echo "include_if_exists = 'ourcity.conf'  # scripts/pg.sh: access rules, last so that they win" |
      as_owner tee -a "$DATA/postgresql.conf" >/dev/null
  as_owner tee "$DATA/pg_hba.conf" >/dev/null <<HBA
# Written by scripts/pg.sh on every start. The unix socket only (listen_addresses = ''); nothing else is let in.
# TYPE  DATABASE  USER         METHOD
local   all       postgres     peer map=superuser
local   replication postgres   peer map=superuser
local   all       $APP_ROLE  peer map=application
HBA
  as_owner tee "$DATA/pg_ident.conf" >/dev/null <<IDENT
# Written by scripts/pg.sh on every start.
# The superuser: the cluster's owner only. The application's role: whoever can reach the socket at all (its
# directory lets in only the owner, root and the group $GROUP).
# MAPNAME      SYSTEM-USERNAME  PG-USERNAME
superuser      $OWNER         postgres
application    /^.*\$           $APP_ROLE
IDENT
}

running() { [ -f "$DATA/postmaster.pid" ] && as_owner $PGBIN/pg_ctl -D "$DATA" status >/dev/null 2>&1; }

psql_() { as_owner env PGOPTIONS="-c client_min_messages=warning" $PGBIN/psql -h "$RUN" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

# Objects in a database still owned by the superuser (a cluster made before the application had a role of its
# own) go to the application's role; PostGIS's own objects stay the superuser's.
reassign_objects() {
  psql_ -d "$1" <<SQL
DO \$\$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relowner = 'postgres'::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND (d.deptype = 'e' OR c.relkind = 'S' AND d.deptype IN ('a', 'i')))
             -- not PostGIS's own; a column's sequence goes with its table
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO $APP_ROLE', CASE r.relkind WHEN 'v' THEN 'VIEW'
      WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proowner = 'postgres'::regrole
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                             AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO $APP_ROLE', CASE r.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END,
                   r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE t.typowner = 'postgres'::regrole AND t.typtype IN ('e', 'd') AND t.typrelid = 0
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                             AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO $APP_ROLE', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name);
  END LOOP;
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspowner = 'postgres'::regrole AND n.nspname NOT IN ('information_schema', 'public')
             AND n.nspname NOT LIKE 'pg\_%'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                             AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO $APP_ROLE', r.nspname);
  END LOOP;
END
\$\$;
SQL
}

start() {
  [ -x $PGBIN/initdb ] || { echo "error: PostgreSQL 15 is not installed (run make setup)" >&2; exit 1; }
  prepare_dirs
  if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "Initialising the embedded PostgreSQL cluster in var/pg"
    as_owner $PGBIN/initdb -D "$DATA" -U postgres --auth-local=peer --auth-host=reject -E UTF8 --locale=C.UTF-8 >/dev/null
    as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<CONF
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
  write_access_rules
  if ! running; then
    as_owner $PGBIN/pg_ctl -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
  else
    # Already running (perhaps with an older script's rules): take the new rules; restart for those that need it.
    as_owner $PGBIN/pg_ctl -D "$DATA" reload >/dev/null
    sleep 0.5
    if [ "$(psql_ -d postgres -c "SELECT count(*) FROM pg_settings WHERE pending_restart")" != 0 ] ||
       [ "$(stat -c %a "$RUN/.s.PGSQL.5432")" != "${SOCKET_MODE#0}" ]; then
      echo "Restarting the embedded PostgreSQL cluster to apply its access rules"
      as_owner $PGBIN/pg_ctl -D "$DATA" -l "$LOG" -m fast -w -t 60 restart >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
    fi
  fi
  psql_ -d postgres <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') THEN CREATE ROLE $APP_ROLE; END IF;
END \$\$;
ALTER ROLE $APP_ROLE LOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS PASSWORD NULL;
GRANT pg_checkpoint TO $APP_ROLE;
SQL
  if [ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$DBNAME'")" != 1 ]; then
    psql_ -d postgres -c "CREATE DATABASE $DBNAME OWNER $APP_ROLE"
  fi
  # What the superuser still owns in the application's, the tests' and the benchmarks' databases (an older
  # cluster) goes to the application's role.
  for db in $(psql_ -d postgres -c "SELECT datname FROM pg_database WHERE datallowconn
                                     AND datname NOT IN ('postgres', 'template0', 'template1')"); do
    psql_ -d postgres -c "ALTER DATABASE \"$db\" OWNER TO $APP_ROLE"
    reassign_objects "$db"
  done
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
