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

# The C libraries librdkafka is built against (Debian's packages): OpenSSL for TLS, SCRAM and
# OAUTHBEARER, Cyrus SASL for GSSAPI (Kerberos, with its MIT plugin at run time), libcurl for
# OAUTHBEARER's OIDC token requests; pkg-config finds them. Installed once when a header is missing.
BUILD_PACKAGES="pkg-config libssl-dev libsasl2-dev libsasl2-modules-gssapi-mit libcurl4-openssl-dev"
ensure_build_packages() {
  if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl libsasl2 libcurl &&
    ls /usr/lib/*/sasl2/libgssapiv2.so >/dev/null 2>&1; then
    return 0
  fi
  log "installing the libraries librdkafka builds with from Debian's packages ($BUILD_PACKAGES)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $BUILD_PACKAGES >/dev/null
}

# stunnel (Debian's package): the TLS terminator the TLS tests put in front of tansu. Exports
# CHOREOSCOPE_STUNNEL, the binary the tests start.
ensure_stunnel() {
  if ! command -v stunnel4 >/dev/null 2>&1 && ! command -v stunnel >/dev/null 2>&1; then
    log "installing stunnel from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null
  fi
  CHOREOSCOPE_STUNNEL=$(command -v stunnel4 || command -v stunnel)
  export CHOREOSCOPE_STUNNEL
}

# tansu: a Kafka-compatible broker from crates.io, with its in-memory engine (dynostore) and its
# SQLite engine (libsql). Built once (about 20 minutes), then reused.
ensure_tansu() {
  if command -v tansu >/dev/null 2>&1; then return 0; fi
  log "installing the tansu broker from crates.io (one time, ~20 minutes)"
  cargo install tansu --locked --features dynostore,libsql
}

# Starts tansu on a free port; exports CHOREOSCOPE_TEST_BROKERS and TANSU_PID. The caller's EXIT
# trap must call stop_broker.
#
# Storage: TANSU_STORAGE=memory (default) or sqlite. tansu 0.6's in-memory engine has one fault
# the tests must know: a fetch that starts inside a record batch is served from the *next* batch,
# so a consumer resuming mid-batch skips the rest of it (see docs/collector.md, "Test broker").
# The crash test therefore produces one record per batch. The SQLite engine is exact but about
# 25 times slower to produce to, too slow for the crash test's few hundred thousand records.
start_broker() {
  ensure_tansu
  local port; port=$(free_port)
  local storage="${TANSU_STORAGE:-memory}" url
  # On tmpfs when there is one: the broker's own fsyncs would otherwise dominate the tests.
  TANSU_DIR=$(mktemp -d -p "$(test -w /dev/shm && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
  export TANSU_DIR
  case "$storage" in
    sqlite) url="sqlite://tansu.db" ;;
    memory) url="memory://tansu/" ;;
    *) echo "TANSU_STORAGE must be sqlite or memory, not $storage" >&2; return 1 ;;
  esac
  log "starting tansu ($storage storage) on 127.0.0.1:$port"
  (cd "$TANSU_DIR" && exec tansu broker \
    --storage-engine "$url" \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    >"$ARTIFACTS/tansu.log" 2>&1) &
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
  if [ -n "${TANSU_DIR:-}" ]; then rm -rf "$TANSU_DIR"; unset TANSU_DIR; fi
}

# PostgreSQL: the tests create databases on a running server (CHOREOSCOPE_TEST_PG) and start
# private servers of their own from its binaries (CHOREOSCOPE_PG_BIN). Installs and starts one
# when the machine has none.
ensure_postgres() {
  if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
    log "installing PostgreSQL from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  CHOREOSCOPE_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  export CHOREOSCOPE_PG_BIN
  if ! "$CHOREOSCOPE_PG_BIN/pg_isready" -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 1 100); do "$CHOREOSCOPE_PG_BIN/pg_isready" -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  # Trust auth on 127.0.0.1 is how this machine's server is set up; otherwise use the socket as postgres.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    echo "cannot connect to PostgreSQL on 127.0.0.1:5432 as postgres without a password" >&2
    return 1
  fi
  export CHOREOSCOPE_TEST_PG="postgres://postgres@127.0.0.1:5432/postgres"
  # Databases earlier test and bench runs created (cs_test_*, cs_bench_*) are dropped here;
  # PostgreSQL refuses to drop one still in use (a concurrent run's), which is then left alone.
  psql -h 127.0.0.1 -U postgres -d postgres -Atc \
    "select datname from pg_database where datname ~ '^cs_(test|bench)_[0-9a-f]{32}$'" |
    while read -r db; do
      psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $db" >/dev/null 2>&1 || true
    done
}

# Node.js with npm (the machine's, else Debian's) and the viewer's npm packages (from its
# package-lock.json): what building and type-checking the viewer needs.
ensure_ui_packages() {
  if ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -d "$ROOT/ui/node_modules" ] || [ "$ROOT/ui/package-lock.json" -nt "$ROOT/ui/node_modules/.package-lock.json" ]; then
    log "installing the viewer's npm packages"
    # `npm install`, not `npm ci`: vite lists a Windows-only optional package the registry here does
    # not have, so the lock file cannot hold it and `npm ci` refuses the lock; `npm install` still
    # installs exactly the locked versions.
    (cd "$ROOT/ui" && npm install --no-audit --no-fund)
  fi
}

# The web viewer's tools: its npm packages, and Debian's Chromium for the browser tests (a test
# tool's own browser download does not work here).
ensure_ui_tools() {
  ensure_ui_packages
  if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    log "installing Chromium from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

# The test OpenID provider's npm packages (tests/oidc: oidc-provider, from its package-lock.json):
# collector/tests/oidc.rs and ui/e2e/oidc.test.mjs start it.
ensure_oidc_provider() {
  ensure_ui_packages
  if [ ! -d "$ROOT/tests/oidc/node_modules" ] || [ "$ROOT/tests/oidc/package-lock.json" -nt "$ROOT/tests/oidc/node_modules/.package-lock.json" ]; then
    log "installing the test OpenID provider's npm packages (tests/oidc)"
    (cd "$ROOT/tests/oidc" && npm ci --no-audit --no-fund)
  fi
}

# Builds the viewer into ui/dist (embedded by the choreoscope binary).
build_ui() {
  ensure_ui_tools
  log "building the web viewer (ui/dist)"
  (cd "$ROOT/ui" && npm run build)
}

# schemathesis (PyPI), pinned, in the project's own virtual environment (.venv-tools): the API
# contract tests (scripts/contract) run it against a live collector. Installed once, then reused.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$ROOT/.venv-tools"
  if [ -x "$venv/bin/schemathesis" ] &&
    [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$SCHEMATHESIS_VERSION" ]; then
    return 0
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# The OpenTelemetry-instrumented Python services of the OTLP end-to-end test (tests/otel): their
# pinned PyPI packages (tests/otel/requirements.txt) in their own virtual environment (.venv-otel).
# Installed when the requirements changed (a stamp holds their hash), then reused. Exports
# CHOREOSCOPE_OTEL_PYTHON, the interpreter the test runs tests/otel/services.py with.
ensure_otel_python() {
  local venv="$ROOT/.venv-otel" requirements="$ROOT/tests/otel/requirements.txt"
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the OpenTelemetry test services' Python packages into $venv"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      log "installing Python 3 with venv from Debian's packages"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    rm -f "$stamp"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
  fi
  export CHOREOSCOPE_OTEL_PYTHON="$venv/bin/python"
}
