#!/usr/bin/env bash
# Redis suite (docs/redis.md): installs Debian's redis-server if missing, starts it on 127.0.0.1
# on a free port with no persistence, runs tollgate-redis's tests against it (the port in
# TOLLGATE_REDIS_PORT; the fault tests start and kill their own servers with the same binary),
# lints the crate with its Redis-only tests included, and stops the server on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q redis-server
fi
REDIS_SERVER=$(command -v redis-server)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d)
"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
  --dir "$workdir" --logfile "$workdir/redis.log" &
redis_pid=$!
cleanup() {
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG

export TOLLGATE_REDIS_PORT=$port TOLLGATE_REDIS_SERVER=$REDIS_SERVER
cargo clippy -p tollgate-redis --all-targets --locked -- -D warnings
# The Redis tests are #[ignore]d in the plain workspace run (no server there); here they run.
cargo test -p tollgate-redis --locked -- --include-ignored
# The tower layer's Redis backend: two servers, one limit (tollgate-tower, feature `redis`).
cargo test -p tollgate-tower --features redis --locked --test redis -- --include-ignored
# `cargo test` also builds the benchmark and hammer binaries (the benchmark is run by hand: docs/redis.md).
