#!/usr/bin/env bash
# `make test` (and `make bench`): what only the tests and benchmarks need from RabbitMQ, on
# top of scripts/ensure-services.sh. Every change is said on its own line, tagged "tests:".
#
# - RabbitMQ's STOMP and Web-STOMP plugins (interoperability tests compare the gateway with
#   them; `make bench` measures against Web-STOMP): enabled if they are off.
# - RabbitMQ's own STOMP listener on 127.0.0.1:$RABBIT_STOMP_PORT (61614), because its default,
#   61613, is the gateway's port. Before the STOMP plugin is first enabled its listener is set
#   there, so it never takes 61613; if it already runs elsewhere it is moved, live, which
#   stops and starts RabbitMQ's rabbitmq_stomp and rabbitmq_web_stomp plugins (their own
#   STOMP clients are disconnected; AMQP and the management API are untouched). That lasts
#   until the broker restarts; to keep it, add `stomp.listeners.tcp.1 = 127.0.0.1:61614` to
#   rabbitmq.conf (rabbitmq/README.md).
#
# rabbitmq-plugins and rabbitmqctl talk to the node RABBITMQ_NODENAME names (default: the
# local one). Idempotent: a second run changes nothing and says so.
set -euo pipefail
SAY_TAG=tests
. "$(dirname "$0")/lib.sh"

RABBIT_STOMP_PORT=${RABBIT_STOMP_PORT:-61614}
RABBIT_WEB_STOMP_PORT=${RABBIT_WEB_STOMP_PORT:-15674}
changed=0

if ! command -v rabbitmq-plugins >/dev/null || ! command -v rabbitmqctl >/dev/null; then
  if port_open "$RABBIT_STOMP_PORT" && port_open "$RABBIT_WEB_STOMP_PORT"; then
    say "RabbitMQ's STOMP ($RABBIT_STOMP_PORT) and Web-STOMP ($RABBIT_WEB_STOMP_PORT) listen; nothing to do"
    exit 0
  fi
  say "the tests need RabbitMQ's rabbitmq_stomp (on 127.0.0.1:$RABBIT_STOMP_PORT) and" \
    "rabbitmq_web_stomp (on $RABBIT_WEB_STOMP_PORT); rabbitmqctl is not here to set them up"
  exit 1
fi

listener="[{\"127.0.0.1\", $RABBIT_STOMP_PORT}]"
current_listener() {
  rabbitmqctl -q eval 'application:get_env(rabbitmq_stomp, tcp_listeners).' 2>/dev/null || true
}

mapfile -t missing < <(missing_plugins rabbitmq_stomp rabbitmq_web_stomp)
if ((${#missing[@]})); then
  if [[ " ${missing[*]} " == *" rabbitmq_stomp "* ]]; then
    say "setting RabbitMQ's STOMP listener to 127.0.0.1:$RABBIT_STOMP_PORT before its plugin" \
      "starts (its default, 61613, is the gateway's port)"
    rabbitmqctl -q eval "application:load(rabbitmq_stomp), ok = application:set_env(rabbitmq_stomp, tcp_listeners, $listener)." >/dev/null
  fi
  say "enabling RabbitMQ plugins ${missing[*]} (the tests compare the gateway with them);" \
    "they start on the running broker, nothing else restarts"
  rabbitmq-plugins -q enable "${missing[@]}" >/dev/null
  changed=1
fi

current=$(current_listener)
if [[ "$current" != *"$RABBIT_STOMP_PORT"* ]]; then
  say "moving RabbitMQ's STOMP listener (${current:-unknown}) to 127.0.0.1:$RABBIT_STOMP_PORT:" \
    "restarting its rabbitmq_stomp and rabbitmq_web_stomp plugins (their STOMP clients are" \
    "disconnected; AMQP is untouched), until RabbitMQ restarts"
  rabbitmqctl -q eval "ok = application:stop(rabbitmq_web_stomp), ok = application:stop(rabbitmq_stomp), ok = application:set_env(rabbitmq_stomp, tcp_listeners, $listener), ok = application:start(rabbitmq_stomp), ok = application:start(rabbitmq_web_stomp)." >/dev/null
  changed=1
fi
wait_port "$RABBIT_STOMP_PORT" 60 "RabbitMQ STOMP"
wait_port "$RABBIT_WEB_STOMP_PORT" 60 "RabbitMQ Web-STOMP"
if ((changed)); then
  say "RabbitMQ's STOMP (127.0.0.1:$RABBIT_STOMP_PORT) and Web-STOMP ($RABBIT_WEB_STOMP_PORT) are up"
else
  say "RabbitMQ's STOMP (127.0.0.1:$RABBIT_STOMP_PORT) and Web-STOMP ($RABBIT_WEB_STOMP_PORT)" \
    "were already set up; nothing changed"
fi
