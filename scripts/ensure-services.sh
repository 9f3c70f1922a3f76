#!/usr/bin/env bash
# Make sure the services stompgate needs on this machine are running: RabbitMQ (with the
# STOMP, Web-STOMP and management plugins) and Redis. Starts the installed ones when they are
# stopped; says clearly what is missing. Idempotent; safe to run again and again.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 4; i++)); do port_open "$1" && return 0; sleep 0.25; done
  say "$3 did not open port $1 within $2 s"; return 1
}

ensure_redis() {
  if port_open 6379; then return 0; fi
  if ! command -v redis-server >/dev/null; then
    say "Redis is not installed (apt-get install redis-server) and nothing listens on 6379"; exit 1
  fi
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 30 Redis
}

ensure_rabbitmq() {
  if ! port_open 5672; then
    if ! command -v rabbitmq-server >/dev/null; then
      say "RabbitMQ is not installed (apt-get install rabbitmq-server) and nothing listens on 5672"
      exit 1
    fi
    say "starting RabbitMQ"
    # RabbitMQ allows ~0.8 sockets per file descriptor: raise the limit first so thousands of
    # STOMP connections (make bench compares against Web-STOMP) fit.
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; rabbitmq-server -detached)
    wait_port 5672 90 RabbitMQ
  fi
  command -v rabbitmq-plugins >/dev/null || { say "rabbitmq-plugins not found; enable rabbitmq_stomp, rabbitmq_web_stomp and rabbitmq_management by hand"; return 0; }
  local wanted=(rabbitmq_management rabbitmq_stomp rabbitmq_web_stomp) missing=() p enabled
  enabled=$(cat /etc/rabbitmq/enabled_plugins 2>/dev/null || true)
  for p in "${wanted[@]}"; do [[ "$enabled" == *"$p"* ]] || missing+=("$p"); done
  if ((${#missing[@]})); then
    say "enabling RabbitMQ plugins: ${missing[*]}"
    rabbitmq-plugins enable "${missing[@]}" >/dev/null
  fi
  wait_port 15672 60 "RabbitMQ management"
  wait_port 15674 60 "RabbitMQ Web-STOMP"
  # RabbitMQ's own STOMP listener defaults to 61613, the gateway's port. Move it (live, no
  # restart) to $RABBIT_STOMP_PORT so both can run here: tests use it for interop checks.
  local rport=${RABBIT_STOMP_PORT:-61614}
  local current
  current=$(rabbitmqctl -q eval 'application:get_env(rabbitmq_stomp, tcp_listeners).' 2>/dev/null || true)
  if [[ "$current" != *"$rport"* ]]; then
    say "moving RabbitMQ's STOMP listener to 127.0.0.1:$rport"
    rabbitmqctl -q eval "ok = application:stop(rabbitmq_web_stomp), ok = application:stop(rabbitmq_stomp), ok = application:set_env(rabbitmq_stomp, tcp_listeners, [{\"127.0.0.1\", $rport}]), ok = application:start(rabbitmq_stomp), ok = application:start(rabbitmq_web_stomp)." >/dev/null
  fi
  wait_port "$rport" 60 "RabbitMQ STOMP"
  wait_port 15674 60 "RabbitMQ Web-STOMP"
}

ensure_redis
ensure_rabbitmq
say "RabbitMQ and Redis are up"
