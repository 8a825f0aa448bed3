#!/usr/bin/env bash
# Publishing: the crates meant for crates.io package and build from their packaged sources alone
# (`cargo package` verifies by compiling the extracted .crate). Only `tollgate` (core/) is
# published; tollgate-ffi ships as a C library (scripts/install.sh), the Python bindings as the
# tollgate-ratelimit distribution (scripts/test-python.sh builds its sdist and wheel), and the
# other crates are `publish = false`.
set -euo pipefail
cd "$(dirname "$0")/.."
publishable=(tollgate)
passed=0
failed=0
for crate in "${publishable[@]}"; do
  echo "--- cargo package -p $crate"
  if cargo package -p "$crate" --locked 2>&1 | tail -3; then
    list="$(cargo package -p "$crate" --locked --list 2>/dev/null)"
    missing=()
    for f in README.md LICENSE-MIT LICENSE-APACHE Cargo.toml src/lib.rs; do
      grep -qx "$f" <<<"$list" || missing+=("$f")
    done
    if [ ${#missing[@]} -eq 0 ]; then
      passed=$((passed + 1))
    else
      echo "FAILED: $crate's package lacks ${missing[*]}"; failed=$((failed + 1))
    fi
  else
    echo "FAILED: cargo package -p $crate"; failed=$((failed + 1))
  fi
done
# Every workspace crate not in the list above must say publish = false (core/models/: the
# dev-only reference models).
for manifest in */Cargo.toml core/*/Cargo.toml; do
  name="$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -1)"
  [[ " ${publishable[*]} " == *" $name "* ]] && continue
  if grep -q '^publish = false' "$manifest"; then passed=$((passed + 1)); else
    echo "FAILED: $manifest ($name) is neither published nor publish = false"; failed=$((failed + 1))
  fi
done
echo "package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
