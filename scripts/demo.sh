#!/usr/bin/env bash
# README command 1: the demo. Builds the gateway and the load program, starts the
# gateway on a free port of 127.0.0.1, drives it for 15 s of real traffic (a client built on the
# tollgate client toolkit, a naive client, and bursts that trip the concurrency cap), prints the
# load program's summary, then stops the gateway with SIGINT so it prints its own counters.
# TOLLGATE_DEMO_SECONDS changes the length of the traffic. See docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# A debug build: the demo needs correctness, not speed, and a debug build of hyper and tokio
# takes half the CPU time of an optimised one (about 15 s against 30 s); the test suite builds
# the same binaries. For wrk, build with --release (docs/demo.md).
bin="${CARGO_TARGET_DIR:-target}/debug"
echo "building tollgate-gateway and tollgate-load ..."
cargo build -q --locked -p tollgate-gateway --bins

log=$(mktemp)
gw=""
cleanup() {
  if [ -n "$gw" ]; then kill "$gw" 2>/dev/null || true; fi
  rm -f "$log"
}
trap cleanup EXIT

"$bin/tollgate-gateway" --port 0 --max-in-flight 16 >"$log" &
gw=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$log")
  [ -n "$addr" ] && break
  sleep 0.1
done
if [ -z "$addr" ]; then
  cat "$log"
  echo "demo: the gateway did not start" >&2
  exit 1
fi
echo "== gateway"
cat "$log"
echo "== load (${TOLLGATE_DEMO_SECONDS:-15} s)"
"$bin/tollgate-load" --target "$addr" --duration "${TOLLGATE_DEMO_SECONDS:-15}"
echo "== gateway counters (after SIGINT)"
kill -INT "$gw"
wait "$gw"
gw=""
sed -n '/^stopping/,$p' "$log"
