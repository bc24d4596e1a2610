#!/usr/bin/env bash
# Starts and stops the Redis the state tests share: Debian's redis-server on
# a free loopback port, with a fresh directory and no persistence. Tests
# that kill and restart a Redis, and the Redis Cluster test, start servers
# of their own (internal/redistest) once HELLOSIM_REDIS opts them in: a
# unix socket in a private directory for the first, three cluster nodes on
# 127.0.0.1 joined by redis-cli --cluster create for the second.
#
# Usage:
#   redis.sh start [PORT]  start on 127.0.0.1:PORT (default: the first free
#                          port from 6390); prints export lines for
#                          HELLOSIM_REDIS and HELLOSIM_REDIS_PORT, to eval
#   redis.sh stop [PORT]   stop it and remove its directory (PORT defaults to
#                          $HELLOSIM_REDIS_PORT)
set -euo pipefail

dir_for() { echo "${TMPDIR:-/tmp}/hellosim-redis-$1"; }
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2; exit 1; }
  local port=${1:-}
  if [[ -z $port ]]; then
    for p in $(seq 6390 6499); do
      if ! in_use "$p"; then port=$p; break; fi
    done
    [[ -n $port ]] || { echo "no free port for Redis in 6390-6499" >&2; exit 1; }
  elif in_use "$port"; then
    echo "port $port is in use" >&2; exit 1
  fi
  local dir
  dir=$(dir_for "$port")
  rm -rf "$dir"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
  for _ in $(seq 100); do
    if in_use "$port"; then
      echo "export HELLOSIM_REDIS=redis://127.0.0.1:$port/0 HELLOSIM_REDIS_PORT=$port"
      return 0
    fi
    sleep 0.05
  done
  echo "redis-server did not start; log:" >&2
  cat "$dir/redis.log" >&2 || true
  exit 1
}

stop() {
  local port=${1:-${HELLOSIM_REDIS_PORT:-}}
  [[ -n $port ]] || { echo "redis.sh stop: which port?" >&2; exit 1; }
  local dir
  dir=$(dir_for "$port")
  if [[ -f $dir/redis.pid ]]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  echo "redis on port $port stopped" >&2
}

case ${1:-} in
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start|stop [PORT]" >&2; exit 2 ;;
esac
