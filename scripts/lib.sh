# Shared helpers for the project's scripts: install and start what the tests need.
# Sourced, not run. Every function is idempotent: it installs only what is missing.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
ARTIFACTS="${ARTIFACTS:-$ROOT/artifacts}"
mkdir -p "$ARTIFACTS"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# A TCP port nobody listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until HOST:PORT accepts connections, or fails after $3 seconds.
wait_for_port() {
  local host=$1 port=$2 secs=${3:-60}
  for _ in $(seq 1 $((secs * 10))); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $host:$port after ${secs}s" >&2
  return 1
}

# tansu: a Kafka-compatible broker from crates.io. Built once (about 13 minutes), then reused.
ensure_tansu() {
  if command -v tansu >/dev/null 2>&1; then return 0; fi
  log "installing the tansu broker from crates.io (one time, ~13 minutes)"
  cargo install tansu --locked --features dynostore
}

# Starts tansu on a free port with in-memory storage; exports CHOREOSCOPE_TEST_BROKERS and
# TANSU_PID. The caller's EXIT trap must call stop_broker.
start_broker() {
  ensure_tansu
  local port; port=$(free_port)
  log "starting tansu on 127.0.0.1:$port"
  tansu broker \
    --storage-engine "memory://tansu/" \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    >"$ARTIFACTS/tansu.log" 2>&1 &
  TANSU_PID=$!
  export TANSU_PID
  wait_for_port 127.0.0.1 "$port" 60 || { cat "$ARTIFACTS/tansu.log" >&2; return 1; }
  export CHOREOSCOPE_TEST_BROKERS="127.0.0.1:$port"
}

stop_broker() {
  if [ -n "${TANSU_PID:-}" ]; then
    kill "$TANSU_PID" 2>/dev/null || true
    wait "$TANSU_PID" 2>/dev/null || true
    unset TANSU_PID
  fi
}
