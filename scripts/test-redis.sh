#!/usr/bin/env bash
# Redis suite (docs/redis.md): installs Debian's redis-server if missing, starts it on 127.0.0.1
# on a free port with no persistence, runs tollgate-redis's tests against it (the port in
# TOLLGATE_REDIS_PORT; the fault tests start and kill their own servers with the same binary),
# lints the crate with its Redis-only tests included; then installs the Python package with its
# `redis` extra into a fresh virtual environment and runs python/tests/test_redis*.py against the
# same server, on the traces the Rust conformance suite wrote; and stops the servers on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

# redis-server (and redis-cli, for the cluster); openssl makes the TLS test's throwaway CA.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi
REDIS_SERVER=$(command -v redis-server)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
  --dir "$workdir" --logfile "$workdir/redis.log" &
redis_pid=$!
cluster_ports=()
cleanup() {
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  # Cluster nodes daemonize (the cluster test restarts one itself): stopped by their pid files.
  for p in "${cluster_ports[@]}"; do
    if [ -f "$workdir/cluster/$p/redis.pid" ]; then
      kill -9 "$(cat "$workdir/cluster/$p/redis.pid")" 2>/dev/null || true
    fi
  done
  rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG

# A local Redis Cluster of 3 primaries (no replicas) on free loopback ports, for
# tests/cluster.rs and the Python cluster tests. Partial coverage is allowed, so the primaries
# still up keep serving their slots while one is down (the configuration docs/redis.md advises).
cluster_nodes=()
# Each node also listens on its port + 10000 (the cluster bus), so both must be free and the
# port at most 55535.
cluster_port() {
  python3 - <<'PY'
import random, socket
for _ in range(1000):
    p = random.randrange(20000, 55000)
    try:
        for q in (p, p + 10000):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            s.close()
    except OSError:
        continue
    print(p)
    break
PY
}
for _ in 1 2 3; do
  p=$(cluster_port)
  mkdir -p "$workdir/cluster/$p"
  (cd "$workdir/cluster/$p" && "$REDIS_SERVER" --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-require-full-coverage no --save '' --appendonly no \
    --daemonize yes --logfile redis.log --pidfile redis.pid)
  cluster_ports+=("$p")
  cluster_nodes+=("127.0.0.1:$p")
done
for p in "${cluster_ports[@]}"; do
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1; then break; fi
    sleep 0.05
  done
done
redis-cli --cluster create "${cluster_nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 1 200); do
  if redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok'; then
    break
  fi
  sleep 0.05
done
redis-cli -h 127.0.0.1 -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok'
export TOLLGATE_REDIS_CLUSTER
TOLLGATE_REDIS_CLUSTER=$(IFS=,; echo "${cluster_nodes[*]}")
export TOLLGATE_REDIS_CLUSTER_DIR=$workdir/cluster

export TOLLGATE_REDIS_PORT=$port TOLLGATE_REDIS_SERVER=$REDIS_SERVER
# The conformance suite writes its generated traces and the core's answers here, for Python.
export TOLLGATE_TRACE_OUT=$workdir/traces.jsonl
cargo clippy -p tollgate-redis --all-targets --features tokio,tls --locked -- -D warnings
# The Redis tests are #[ignore]d in the plain workspace run (no server there); here they run.
cargo test -p tollgate-redis --features tokio,tls --locked -- --include-ignored
# The tower layer's Redis backend: two servers, one limit (tollgate-tower, feature `redis`).
cargo test -p tollgate-tower --features redis --locked --test redis -- --include-ignored
# `cargo test` also builds the benchmark and hammer binaries (the benchmark is run by hand: docs/redis.md).
test -s "$TOLLGATE_TRACE_OUT"

# Python: the package with its `redis` extra (redis-py from PyPI) in a fresh environment; the
# build reuses the workspace's target/ for libtollgate.
venv="$(pwd)/target/python-redis-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=7"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "./python[redis]"
repo=$(pwd)
# From outside the source tree, so `import tollgate` finds the installed package (with its
# lua/ package data) and `import redis` the client, not the crate's directory.
(cd "$venv" && unset TOLLGATE_LIB && TOLLGATE_REDIS_REQUIRED=1 TOLLGATE_TRACE_FILE=$TOLLGATE_TRACE_OUT \
  "$venv/bin/pytest" -p no:cacheprovider -q --rootdir "$repo/python" -c "$repo/python/pyproject.toml" \
  "$repo"/python/tests/test_redis*.py)
