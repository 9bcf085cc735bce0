#!/usr/bin/env bash
# A streaming hot standby of the embedded PostgreSQL cluster (scripts/pg.sh), for the tests and benchmarks that
# read from a replica (tests/replica, bench/map_replica_bench.py; docs/database.md).
#   scripts/replica.sh start DIR   pg_basebackup -R -X stream of the primary into DIR/data, started as a hot standby
#                                  that listens on DIR/run/.s.PGSQL.5432 only (no TCP); prints DIR/run
#   scripts/replica.sh stop DIR    stop the standby started in DIR (DIR is left: the caller removes it)
# Debian's PostgreSQL 15. A unix socket in a directory of its own, so two standbys never clash. The standby is made
# from the whole cluster, every database in it; it follows the primary over a replication connection of the
# superuser `postgres` (pg_hba.conf from scripts/pg.sh lets only the cluster's owner make it). As root, it is owned
# and run by the `postgres` user, as the cluster is. OURCITY_REPLICA_SHARED_BUFFERS sizes its cache (default 64MB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_RUN=${OURCITY_PG_RUN:-$ROOT/var/pg/run}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir=$1 buffers=${OURCITY_REPLICA_SHARED_BUFFERS:-64MB}
  [ -x $PGBIN/pg_basebackup ] || { echo "error: PostgreSQL 15 is not installed (run make setup)" >&2; exit 1; }
  [[ "$buffers" =~ ^[0-9]+(kB|MB|GB)$ ]] || { echo "error: OURCITY_REPLICA_SHARED_BUFFERS: e.g. 256MB" >&2; exit 2; }
  [ ! -e "$dir/data" ] || { echo "error: $dir/data exists: stop and remove the old standby first" >&2; exit 1; }
  mkdir -p "$dir/run"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir" "$dir/run"; fi
  chmod 0700 "$dir/run"
  as_owner $PGBIN/pg_basebackup -h "$PG_RUN" -p 5432 -U postgres -D "$dir/data" -R -X stream -c fast
  # After the primary's settings (postgresql.auto.conf is read last): these win.
  printf "unix_socket_directories = '%s'\nlisten_addresses = ''\nhot_standby = on\nshared_buffers = %s\n" \
    "$dir/run" "$buffers" | as_owner tee -a "$dir/data/postgresql.auto.conf" >/dev/null
  as_owner $PGBIN/pg_ctl -D "$dir/data" -l "$dir/standby.log" -w -t 120 start >/dev/null \
    || { tail -20 "$dir/standby.log" >&2; exit 1; }
  echo "$dir/run"
}

stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || { echo "no standby is running in $dir"; exit 0; }
  as_owner $PGBIN/pg_ctl -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

case "${1:-}" in
  start) [ $# -eq 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }; start "$(realpath -m "$2")" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$(realpath -m "$2")" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
