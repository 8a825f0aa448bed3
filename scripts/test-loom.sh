#!/usr/bin/env bash
# loom models of every CAS loop, in their own target directory (a different cfg rebuilds deps).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p tollgate --release --locked --test loom --target-dir target/loom
