# Shared by scripts/ensure-services.sh and scripts/ensure-test-plugins.sh (sourced, not run).
# Every line a script prints about what it does starts with its own tag: "$SAY_TAG: ...".

say() { printf '%s: %s\n' "${SAY_TAG:-services}" "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 4; i++)); do port_open "$1" && return 0; sleep 0.25; done
  say "$3 did not open port $1 within $2 s"; return 1
}

# The plugins of the wanted list that are not enabled on the running node (one per line).
# rabbitmq-plugins asks the node itself (RABBITMQ_NODENAME, if set, names it).
missing_plugins() {
  local p
  for p in "$@"; do
    rabbitmq-plugins -q is_enabled "$p" >/dev/null 2>&1 || printf '%s\n' "$p"
  done
}
