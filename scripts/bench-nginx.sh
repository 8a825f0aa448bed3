#!/usr/bin/env bash
# nginx benchmark (not part of the test command; results in BENCHMARKS.md, "nginx / OpenResty"):
# tollgate's access handler beside limit_req and resty.limit.req in one nginx with 4 workers:
# worker CPU per request, throughput and latency (wrk), admitted counts for a hot key and for
# key floods into 32 KiB. Needs what scripts/test-nginx.sh installs.
#   bash scripts/bench-nginx.sh [--seconds 8] [--rounds 5] [--flood-seconds 10]
# resty.limit.req comes from lua-resty-limit-traffic, which Debian does not package: point
# RESTY_LIMIT_TRAFFIC at a checkout's lib/ directory to include it (skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p tollgate-ffi --release --locked
TOLLGATE_LIB="${CARGO_TARGET_DIR:-$PWD/target}/release/libtollgate.so" \
  timeout 1800 python3 tests/nginx/bench_nginx.py "$@"
