#!/usr/bin/env bash
# `make up`: run the whole system on this machine in the foreground — one gateway node and the
# persist worker — against the local RabbitMQ and Redis (started by `make services`).
# Ctrl-C (or SIGTERM) drains and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export STOMPGATE_AUTH=${STOMPGATE_AUTH:-dev}
export STOMPGATE_LOG_FORMAT=${STOMPGATE_LOG_FORMAT:-console}
export STOMPGATE_STORE=${STOMPGATE_STORE:-sqlite:///$PWD/var/messages.sqlite3}
mkdir -p var

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

if [[ -f workers/persist.py ]]; then
  "$PY" -m workers persist &
  pids+=($!)
fi
"$PY" -m gateway "$@" &
pids+=($!)

cat <<MSG
stompgate is starting:
  WebSocket  ws://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/ws   (demo page: http://127.0.0.1:${STOMPGATE_HTTP_PORT:-15680}/)
  STOMP/TCP  127.0.0.1:${STOMPGATE_STOMP_PORT:-61613}
  auth mode  $STOMPGATE_AUTH  (dev users: ${STOMPGATE_DEV_USERS:-guest:guest})
  history    $STOMPGATE_STORE
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
