#!/usr/bin/env bash
# A pgbouncer (Debian's) in transaction mode in front of the embedded PostgreSQL cluster (scripts/pg.sh), for the
# tests and benchmarks that must run through a pooler (docs/database.md).
#   scripts/pgbouncer.sh start DIR PORT   write DIR/pgbouncer.ini and start it; it listens on DIR/run/.s.PGSQL.PORT
#   scripts/pgbouncer.sh stop DIR         stop the one started in DIR
# Unix socket only (no TCP): the port number only names the socket, in a directory of its own, so two of them never
# clash. Every database of the cluster is reachable through it by name; `pgbouncer` is its admin console (user
# postgres). pgbouncer refuses to run as root: as root, it runs as the `postgres` user, as the cluster does.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PG_RUN=${OURCITY_PG_RUN:-$ROOT/var/pg/run}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir=$1 port=$2
  command -v pgbouncer >/dev/null || { echo "error: pgbouncer is not installed (run make setup)" >&2; exit 1; }
  mkdir -p "$dir/run"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
  # trust: no passwords, but a user must be listed: the admin console's and the application's role (scripts/pg.sh)
  printf '"postgres" ""\n"%s" ""\n' "${OURCITY_DB_USER:-geo_ourcity}" > "$dir/userlist.txt"
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$PG_RUN port=5432
[pgbouncer]
pool_mode = transaction
listen_addr =
listen_port = $port
unix_socket_dir = $dir/run
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
; fewer server connections than clients, as in production: consecutive transactions of one client land on
; different server connections, which is what session state does not survive
default_pool_size = ${PGBOUNCER_POOL_SIZE:-4}
max_client_conn = 500
; the test databases are dropped after the run: hand idle server connections back soon
server_idle_timeout = 10
ignore_startup_parameters = extra_float_digits,options
; An import's COPY is one long stream on one connection: process it to its end instead of moving on after 5
; buffers (the default). Suspected cause of one COPY seen stalled in the tests (1 run in 4) with no traffic on
; either side while nothing else was active (cf. pgbouncer issue #98); 0 is the documented "no limit".
sbuf_loopcnt = 0
INI
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/pgbouncer.ini" "$dir/userlist.txt"; fi
  as_owner pgbouncer -q -d "$dir/pgbouncer.ini" || { tail -20 "$dir/pgbouncer.log" >&2; exit 1; }
  for _ in $(seq 100); do [ -S "$dir/run/.s.PGSQL.$port" ] && exit 0; sleep 0.1; done
  echo "error: pgbouncer did not open $dir/run/.s.PGSQL.$port" >&2; tail -20 "$dir/pgbouncer.log" >&2; exit 1
}

stop() {
  local dir=$1 pid
  [ -f "$dir/pgbouncer.pid" ] || { echo "pgbouncer is not running in $dir"; exit 0; }
  pid=$(cat "$dir/pgbouncer.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "error: pgbouncer ($pid) did not stop" >&2; exit 1
}

case "${1:-}" in
  start) [ $# -eq 3 ] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }; start "$(realpath -m "$2")" "$3" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$(realpath -m "$2")" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
