#!/usr/bin/env bash
# The demo gateway: its tests boot the real binary on ephemeral ports and check real HTTP
# answers (headers, 429 + Retry-After, 503 from the concurrency cap, pagination, 400 for
# malformed requests, shadow mode, table counters) and that the toolkit client gets no 429;
# then the demo itself runs briefly and must report no 429 for the toolkit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p tollgate-gateway --locked
out=$(TOLLGATE_DEMO_SECONDS=6 bash scripts/demo.sh)
echo "$out"
grep -q '^verdict: toolkit got ' <<<"$out"
grep -q '^shopbase table: 65540 slots, occupied ' <<<"$out"
grep -q '^naive    shopbase' <<<"$out"
echo "gateway: ok"
