#!/usr/bin/env bash
# Instructions per call under callgrind, for cases whose ratio must be trusted on a shared,
# noisy machine: each case runs with n = 1 000 and n = 101 000 calls and the difference is
# divided by 100 000, so set-up and process start cancel out. Not part of the test command.
#   bash scripts/instructions.sh                 # every case
#   bash scripts/instructions.sh direct/allow    # cases whose name contains a word
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --profile bench --locked -p tollgate-benches --example instructions 2>&1 | tail -n 1
bin=target/release/examples/instructions
cases=(
  direct/allow/tollgate_check direct/allow/tollgate_full direct/allow/governor_fake_clock
  direct/deny/tollgate_check direct/deny/tollgate_full direct/deny/governor_fake_clock
  window/allow/tollgate_check window/allow/tollgate_full
  window/deny/tollgate_check window/deny/tollgate_full
)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
printf '%-36s %s\n' case instructions/call
for c in "${cases[@]}"; do
  if [ $# -gt 0 ] && [[ "$c" != *"$1"* ]]; then continue; fi
  a=$(count "$c" 1000)
  b=$(count "$c" 101000)
  printf '%-36s %s\n' "$c" "$(echo "scale=1; ($b - $a) / 100000" | bc)"
done
