#!/usr/bin/env bash
# `make services` (run by `make up` and the benchmarks): make sure what the running system
# needs is there, and touch a running RabbitMQ only as far as that needs:
#
# - Redis on $REDIS_PORT (6379): started if nothing listens there;
# - RabbitMQ's AMQP on $RABBIT_AMQP_PORT (5672): started if nothing listens there;
# - RabbitMQ's management plugin on $RABBIT_MGMT_PORT (15672): rabbitmq/apply.py declares the
#   exchanges, queues and policies through its HTTP API. Enabled if it is off, which starts it
#   on the running broker: nothing else restarts and no connection is dropped.
#
# Every change is said on its own line; when nothing had to change it says so. What only the
# tests need (RabbitMQ's STOMP and Web-STOMP plugins, its STOMP listener moved off 61613) is
# scripts/ensure-test-plugins.sh, run by `make test`. Idempotent; safe to run again and again.
set -euo pipefail
SAY_TAG=services
. "$(dirname "$0")/lib.sh"

REDIS_PORT=${REDIS_PORT:-6379}
RABBIT_AMQP_PORT=${RABBIT_AMQP_PORT:-5672}
RABBIT_MGMT_PORT=${RABBIT_MGMT_PORT:-15672}
changed=0

ensure_redis() {
  if port_open "$REDIS_PORT"; then return 0; fi
  if ! command -v redis-server >/dev/null; then
    say "Redis is not installed (apt-get install redis-server) and nothing listens on $REDIS_PORT"
    exit 1
  fi
  say "starting Redis on 127.0.0.1:$REDIS_PORT (no persistence: --save '' --appendonly no)"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port "$REDIS_PORT" 30 Redis
  changed=1
}

ensure_rabbitmq() {
  if ! port_open "$RABBIT_AMQP_PORT"; then
    if ! command -v rabbitmq-server >/dev/null; then
      say "RabbitMQ is not installed (apt-get install rabbitmq-server) and nothing listens on $RABBIT_AMQP_PORT"
      exit 1
    fi
    say "starting RabbitMQ (rabbitmq-server -detached, its own configuration)"
    # RabbitMQ allows ~0.8 sockets per file descriptor: raise the limit first so thousands of
    # STOMP connections (make bench compares against Web-STOMP) fit.
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; rabbitmq-server -detached)
    wait_port "$RABBIT_AMQP_PORT" 90 RabbitMQ
    changed=1
  fi
  if port_open "$RABBIT_MGMT_PORT"; then return 0; fi
  if ! command -v rabbitmq-plugins >/dev/null; then
    say "nothing listens on $RABBIT_MGMT_PORT and rabbitmq-plugins is not here:" \
      "enable rabbitmq_management on the broker by hand (rabbitmq/apply.py needs its HTTP API)"
    exit 1
  fi
  local missing
  missing=$(missing_plugins rabbitmq_management)
  if [[ -n "$missing" ]]; then
    say "enabling RabbitMQ's management plugin (rabbitmq/apply.py uses its HTTP API on" \
      "$RABBIT_MGMT_PORT); it starts on the running broker, nothing else restarts"
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
    changed=1
  fi
  wait_port "$RABBIT_MGMT_PORT" 60 "RabbitMQ management"
}

ensure_redis
ensure_rabbitmq
if ((changed)); then
  say "Redis ($REDIS_PORT) and RabbitMQ ($RABBIT_AMQP_PORT, management $RABBIT_MGMT_PORT) are up"
else
  say "Redis ($REDIS_PORT) and RabbitMQ ($RABBIT_AMQP_PORT, management $RABBIT_MGMT_PORT) were" \
    "already up; nothing changed"
fi
