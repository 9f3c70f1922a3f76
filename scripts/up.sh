#!/usr/bin/env bash
# `make up`: run the whole system on this machine in the foreground — one gateway node and the
# persist worker — against the local RabbitMQ and Redis (started by `make services`), after
# applying rabbitmq/definitions.json to the broker (rabbitmq/apply.py says what it changed).
# Ctrl-C (or SIGTERM) drains and stops everything.
#
# With no settings it runs in development mode: --auth dev (logins guest, alice and bob, each
# with its name as passcode: the demo page at / signs in as any of them), history in
# var/messages.sqlite3, WebSocket on :15680, STOMP/TCP on :61613, worker health on :9108.
# Every STOMPGATE_* variable of the gateway (`python -m gateway --help`) and of the worker
# (workers/README.md) is honoured, e.g. STOMPGATE_HTTP_PORT, STOMPGATE_STOMP_PORT,
# STOMPGATE_AMQP_URL, STOMPGATE_REDIS_URL, STOMPGATE_REDIS_PREFIX, STOMPGATE_STORE,
# STOMPGATE_WORKER_METRICS_PORT. Extra arguments go to the gateway.
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

# The exchanges, queues and policies of rabbitmq/definitions.json, on the broker of
# STOMPGATE_AMQP_URL: created if missing, said line by line; nothing else is touched.
"$PY" rabbitmq/apply.py

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
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
  "$PY" - "${pids[0]}" <<'PYWAIT'
import os, sys, time, urllib.request
url = "http://127.0.0.1:%s/healthz" % os.environ["STOMPGATE_WORKER_METRICS_PORT"]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(int(sys.argv[1]), 0)
    except ProcessLookupError:
        sys.exit("up: the persist worker exited")
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"up: the persist worker is not healthy after 60 s ({url})")
PYWAIT
fi
"$PY" -m gateway "$@" &
pids+=($!)

cat <<MSG
stompgate is starting:
  WebSocket  ws://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/ws   (demo page: http://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/)
  STOMP/TCP  127.0.0.1:${STOMPGATE_STOMP_PORT:-61613}
  history    http://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/api/rooms/{room}/messages  ($STOMPGATE_STORE)
  auth mode  $STOMPGATE_AUTH  (dev users: $STOMPGATE_DEV_USERS)
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
