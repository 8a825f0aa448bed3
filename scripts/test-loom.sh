#!/usr/bin/env bash
# loom models of every CAS loop, in their own target directory (a different cfg rebuilds deps).
# Runs every core/tests/*loom*.rs (each is `#![cfg(loom)]`). LOOM_MAX_PREEMPTIONS bounds the
# preemptions per execution (3 keeps the suite to a couple of minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=()
for f in core/tests/*loom*.rs; do
  tests+=(--test "$(basename "$f" .rs)")
done
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
  cargo test -p tollgate --release --locked "${tests[@]}" --target-dir target/loom
