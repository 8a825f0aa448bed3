#!/usr/bin/env bash
# The gateway suite (docs/gateway.md; the rust suite lints it): its tests boot the real
# tollgate-gateway binary on ephemeral ports in front of real upstreams started by the tests —
# proxying, the vendor policies, hardening against hostile clients, config errors, SIGHUP
# reload, metrics — and, with Debian's redis-server (installed if missing), two gateways sharing
# one Redis (fleet mode, Redis killed and restarted). Then the demo runs briefly and must print
# its summary and counters.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q redis-server
fi
TOLLGATE_REDIS_SERVER=$(command -v redis-server)
export TOLLGATE_REDIS_SERVER

# The fleet tests are #[ignore]d in a plain workspace run (no redis-server there); here they run.
cargo test -p tollgate-gateway --locked -- --include-ignored
out=$(TOLLGATE_DEMO_SECONDS=6 bash scripts/demo.sh)
echo "$out"
grep -q '^verdict: toolkit got ' <<<"$out"
grep -q '^shopbase table: 65536 slots, occupied ' <<<"$out"
grep -q '^naive    shopbase' <<<"$out"
echo "gateway: ok"
