#!/usr/bin/env bash
# `make up`: run the whole system on this machine in the foreground — one gateway node, the
# persist worker, the translation worker with Apertium (an apertium-apy of its own) and the
# notify worker (its webhook pointing at a local sink that prints each notification:
# scripts/webhook_sink.py) — against the local RabbitMQ and Redis (started by `make
# services`), after applying rabbitmq/definitions.json to the broker (rabbitmq/apply.py says
# what it changed). Ctrl-C (or SIGTERM) drains and stops everything.
#
# With no settings it runs in development mode: --auth dev (logins guest, alice and bob, each
# with its name as passcode: the demo page at / signs in as any of them), history in
# var/messages.sqlite3, WebSocket on :15680, STOMP/TCP on :61613, the persist worker's health
# on :9108, the translation worker's on :9109 and apertium-apy on :2737 (each on a free port
# instead when that one is taken, or on TRANSLATE_WORKER_METRICS_PORT / APERTIUM_PORT), the
# notify worker's health and the webhook sink on free ports (or NOTIFY_HEALTH_PORT /
# WEBHOOK_SINK_PORT). The demo room `lobby` (Spanish, every dev login a member:
# scripts/demo_room.py) is made in the store, so the demo page shows English posts translated.
# Every STOMPGATE_* variable of the gateway (`python -m gateway --help`) and of the workers
# (workers/README.md) is honoured, e.g. STOMPGATE_HTTP_PORT, STOMPGATE_STOMP_PORT,
# STOMPGATE_AMQP_URL, STOMPGATE_REDIS_URL, STOMPGATE_REDIS_PREFIX, STOMPGATE_STORE,
# STOMPGATE_WORKER_METRICS_PORT (the persist worker's). With STOMPGATE_TRANSLATE_PROVIDER set
# to another provider, or STOMPGATE_TRANSLATE_APERTIUM_URL set, no apertium-apy is started.
# Extra arguments go to the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export STOMPGATE_AUTH=${STOMPGATE_AUTH:-dev}
export STOMPGATE_DEV_USERS=${STOMPGATE_DEV_USERS:-guest:guest,alice:alice,bob:bob}
export STOMPGATE_LOG_FORMAT=${STOMPGATE_LOG_FORMAT:-console}
export STOMPGATE_STORE=${STOMPGATE_STORE:-sqlite:///$PWD/var/messages.sqlite3}
export STOMPGATE_WORKER_METRICS_HOST=${STOMPGATE_WORKER_METRICS_HOST:-127.0.0.1}
export STOMPGATE_WORKER_METRICS_PORT=${STOMPGATE_WORKER_METRICS_PORT:-9108}
mkdir -p var

# $1 if nothing listens on it on 127.0.0.1, else (and for 0) a free port the kernel picks.
free_port() {
  "$PY" -c '
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])' "$1"
}

# Until <url> answers 200 (at most <seconds>), while process <pid> lives: wait_ok pid url what s
wait_ok() {
  "$PY" - "$@" <<'PYWAIT'
import os, sys, time, urllib.request
pid, url, what, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"up: {what} exited")
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"up: {what} does not answer after {limit:g} s ({url})")
PYWAIT
}

# The exchanges, queues and policies of rabbitmq/definitions.json, on the broker of
# STOMPGATE_AMQP_URL: created if missing, said line by line; nothing else is touched.
"$PY" rabbitmq/apply.py
"$PY" -m scripts.demo_room

pids=()
groups=()  # process groups of their own (apertium-apy and the pipelines it starts)
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for group in "${groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

# The worker first, and healthy (its durable queue declared and bound) before the gateway
# takes posts: a message published before the queue exists would never be stored.
"$PY" -m workers persist &
pids+=($!)
if [[ "${STOMPGATE_WORKER_METRICS_PORT,,}" =~ ^(off|none|disabled|)$ ]]; then
  echo "up: worker health port off; not waiting for the persist worker" >&2
else
  wait_ok "${pids[0]}" "http://127.0.0.1:$STOMPGATE_WORKER_METRICS_PORT/healthz" \
    "the persist worker" 60
fi

# Translations, off the chat path: nothing waits for them (their queue collects messages
# from the start), and a provider that is not there yet only delays them.
translation="off"
provider=${STOMPGATE_TRANSLATE_PROVIDER:-apertium}
if [[ $provider == apertium && -z ${STOMPGATE_TRANSLATE_APERTIUM_URL:-} ]]; then
  if command -v apertium-apy >/dev/null && [[ -d /usr/share/apertium/modes ]]; then
    apy_port=$(free_port "${APERTIUM_PORT:-2737}")
    export STOMPGATE_TRANSLATE_APERTIUM_URL="http://127.0.0.1:$apy_port"
    LC_ALL=C.UTF-8 setsid apertium-apy --port "$apy_port" /usr/share/apertium/modes \
      >var/apertium-apy.log 2>&1 &
    groups+=($!)
    wait_ok "${groups[0]}" "$STOMPGATE_TRANSLATE_APERTIUM_URL/listPairs" "apertium-apy" 60
  else
    provider=""
    echo "up: apertium-apy is not installed (make install installs it): no translations" >&2
  fi
fi
if [[ -n $provider ]]; then
  if [[ "${STOMPGATE_WORKER_METRICS_PORT,,}" =~ ^(off|none|disabled|)$ ]]; then
    translate_port=off
  else
    translate_port=$(free_port "${TRANSLATE_WORKER_METRICS_PORT:-9109}")
  fi
  STOMPGATE_WORKER_METRICS_PORT=$translate_port "$PY" -m workers translate &
  pids+=($!)
  translation="$provider${STOMPGATE_TRANSLATE_APERTIUM_URL:+ at $STOMPGATE_TRANSLATE_APERTIUM_URL} (worker health :$translate_port)"
fi

# Push notifications: the webhook goes to the local sink unless one is configured (a fresh
# secret per run); Web Push, FCM and APNs are on when their STOMPGATE_NOTIFY_* are set. The
# sink and the notify worker's health server take free ports unless WEBHOOK_SINK_PORT and
# NOTIFY_HEALTH_PORT name them.
if [[ -z "${STOMPGATE_NOTIFY_WEBHOOK_URL:-}" ]]; then
  sink_port=${WEBHOOK_SINK_PORT:-$(free_port 0)}
  export STOMPGATE_NOTIFY_WEBHOOK_SECRET=${STOMPGATE_NOTIFY_WEBHOOK_SECRET:-$("$PY" -c 'import secrets; print(secrets.token_hex(16))')}
  export STOMPGATE_NOTIFY_WEBHOOK_URL=http://127.0.0.1:$sink_port/
  "$PY" -m scripts.webhook_sink --port "$sink_port" &
  pids+=($!)
fi
if [[ "${STOMPGATE_WORKER_METRICS_PORT,,}" =~ ^(off|none|disabled|)$ ]]; then
  notify_port=off
else
  notify_port=${NOTIFY_HEALTH_PORT:-$(free_port 0)}
fi
STOMPGATE_WORKER_METRICS_PORT=$notify_port "$PY" -m workers notify &
pids+=($!)

"$PY" -m gateway "$@" &
pids+=($!)

cat <<MSG
stompgate is starting:
  WebSocket  ws://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/ws   (demo page: http://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/)
  STOMP/TCP  127.0.0.1:${STOMPGATE_STOMP_PORT:-61613}
  history    http://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/api/rooms/{room}/messages  ($STOMPGATE_STORE)
  translate  $translation
  auth mode  $STOMPGATE_AUTH  (dev users: $STOMPGATE_DEV_USERS)
  push       notify worker (health :$notify_port); webhook -> $STOMPGATE_NOTIFY_WEBHOOK_URL
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" "${groups[@]}"
