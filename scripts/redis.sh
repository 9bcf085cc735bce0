#!/usr/bin/env bash
# The embedded Redis under var/redis (used when REDIS_URL is not set): the shared cache of every app server
# (rate limits, login lockouts) and, later, the task queue.
#   scripts/redis.sh start    start it (a no-op when it already runs)
#   scripts/redis.sh stop     stop it
#   scripts/redis.sh status
# It listens on a unix socket in var/redis only (port 0: no TCP), so it never clashes with a Redis on 6379.
# As root it runs as the `redis` user that Debian's redis-server package creates (Redis 7.0 runs unprivileged
# from a command-line config; nothing here needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=$ROOT/var/redis
SOCK=$DIR/redis.sock
PIDFILE=$DIR/redis.pid
LOG=$DIR/redis.log
RUSER=redis
# The group whose members may use the socket: the service user of scripts/serve.py is in it (as for pg.sh).
GROUP=${OURCITY_DB_GROUP:-ourcity}

if [ -n "${REDIS_URL:-}" ]; then
  echo "REDIS_URL is set: using that server, not the embedded Redis"; exit 0
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUSER" -- "$@"; else "$@"; fi
}

prepare_dirs() {
  mkdir -p "$ROOT/var"
  if [ "$(id -u)" -eq 0 ]; then
    id "$RUSER" >/dev/null 2>&1 || { echo "error: user '$RUSER' is missing (is redis-server installed?)" >&2; exit 1; }
    if [ ! -e "$DIR" ] && ! runuser -u "$RUSER" -- test -x "$ROOT/var"; then
      # The checkout sits where the redis user can not reach (e.g. under /root): keep the data in a directory
      # it owns and link it into var/.
      alt=/var/lib/geo_ourcity/redis-$(echo -n "$ROOT" | md5sum | cut -c1-12)
      mkdir -p "$alt"; chown "$RUSER": "$alt"
      ln -sfn "$alt" "$DIR"
    fi
    getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
    mkdir -p "$DIR"; chown "$RUSER:$GROUP" "$DIR" "$(readlink -f "$DIR")"
    # setgid: the socket Redis creates belongs to the group, and --unixsocketperm 770 lets its members in.
    chmod 2750 "$(readlink -f "$DIR")"
  else
    mkdir -p "$DIR"; chmod 750 "$(readlink -f "$DIR")"
  fi
}

running() { [ -S "$SOCK" ] && redis-cli -s "$SOCK" ping >/dev/null 2>&1; }

start() {
  command -v redis-server >/dev/null || { echo "error: redis-server is not installed (run make setup)" >&2; exit 1; }
  running && return 0
  prepare_dirs
  # A cache and a queue, not a database: no snapshots. Keys with a timeout (cache entries, rate-limit windows)
  # are evicted first when memory runs out; keys without one (queued tasks) never are.
  as_owner redis-server --port 0 --bind 127.0.0.1 --unixsocket "$SOCK" --unixsocketperm 770 \
    --dir "$DIR" --pidfile "$PIDFILE" --logfile "$LOG" --daemonize yes \
    --save "" --appendonly no --maxmemory 256mb --maxmemory-policy volatile-lru
  for _ in $(seq 50); do running && return 0; sleep 0.1; done
  echo "error: the embedded Redis did not start" >&2; tail -20 "$LOG" >&2 || true; exit 1
}

stop() {
  if running; then
    redis-cli -s "$SOCK" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 50); do [ -S "$SOCK" ] || break; sleep 0.1; done
    echo "embedded Redis stopped"
  else
    echo "embedded Redis is not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (socket $SOCK)"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
