#!/usr/bin/env bash
# README command 1: the demo. Builds the gateway, the stand-in upstream and the load program,
# starts the upstream and the gateway (its built-in config: ShopBase and TikTok Shop in front of
# that upstream) on free ports of 127.0.0.1, drives the gateway for 15 s of real traffic (a
# client built on the tollgate client toolkit, a naive client, and bursts that trip the
# concurrency cap), prints the load program's summary, then stops the gateway with SIGINT so it
# prints its own counters. TOLLGATE_DEMO_SECONDS changes the length of the traffic.
# See docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# A debug build: the demo needs correctness, not speed, and a debug build of hyper and tokio
# takes half the CPU time of an optimised one; the test suite builds the same binaries. For
# load tests, build with --release (BENCHMARKS.md, scripts/bench-gateway.sh).
bin="${CARGO_TARGET_DIR:-target}/debug"
echo "building tollgate-gateway, tollgate-upstream and tollgate-load ..."
cargo build -q --locked -p tollgate-gateway --bins

gw_log=$(mktemp)
up_log=$(mktemp)
gw=""
up=""
cleanup() {
  if [ -n "$gw" ]; then kill "$gw" 2>/dev/null || true; fi
  if [ -n "$up" ]; then kill "$up" 2>/dev/null || true; fi
  rm -f "$gw_log" "$up_log"
}
trap cleanup EXIT

# Prints the address a program announces with `listening on ADDR` in log $1 (waits up to 10 s).
address() {
  local addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$1" | head -n 1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  echo "$addr"
}

"$bin/tollgate-upstream" --port 0 --latency-ms 20 >"$up_log" &
up=$!
up_addr=$(address "$up_log")
if [ -z "$up_addr" ]; then
  echo "demo: the upstream did not start" >&2
  exit 1
fi

"$bin/tollgate-gateway" --port 0 --upstream "http://$up_addr" --max-in-flight 16 >"$gw_log" &
gw=$!
addr=$(address "$gw_log")
if [ -z "$addr" ]; then
  cat "$gw_log"
  echo "demo: the gateway did not start" >&2
  exit 1
fi
echo "== upstream (stand-in) on $up_addr"
echo "== gateway"
cat "$gw_log"
echo "== load (${TOLLGATE_DEMO_SECONDS:-15} s)"
"$bin/tollgate-load" --target "$addr" --duration "${TOLLGATE_DEMO_SECONDS:-15}"
echo "== gateway counters (after SIGINT)"
kill -INT "$gw"
wait "$gw"
gw=""
sed -n '/^stopping/,$p' "$gw_log"
