#!/usr/bin/env bash
# Fuzzing: every cargo-fuzz target in fuzz/ for a short bounded time on its checked-in seed
# corpus (copied to a temporary directory, so the run never changes the repository).
# cargo-fuzz is installed into target/tools if missing; the nightly toolchain must be installed.
# TOLLGATE_FUZZ_SECONDS sets the time per target (default 15). A longer run: fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${TOLLGATE_FUZZ_SECONDS:-15}"
tools="$PWD/target/tools"
export PATH="$tools/bin:$PATH"
# The fuzz build is not the workspace's: its own flags, its own target directory.
unset RUSTFLAGS
fuzz=(cargo +nightly fuzz)
fuzz_dir=(--fuzz-dir fuzz --target-dir target/fuzz)

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --root "$tools"
fi

# The `ffi` target's shim manifest is generated from ffi/Cargo.toml (scripts/test-c.sh checks it
# too): a stale one would fuzz the C ABI with other features than it ships with.
python3 scripts/gen-ffi-shim.py --check

"${fuzz[@]}" build "${fuzz_dir[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
passed=0
for target in $("${fuzz[@]}" list --fuzz-dir fuzz); do
  corpus="$work/corpus/$target"
  artifacts="$work/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -r "fuzz/corpus/$target/." "$corpus/"
  fi
  echo "--- fuzz $target: ${seconds} s from $(find "$corpus" -type f | wc -l) seeds"
  if "${fuzz[@]}" run "${fuzz_dir[@]}" "$target" "$corpus" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts" >"$work/$target.log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units)' "$work/$target.log" || true
    passed=$((passed + 1))
  else
    failed+=("$target")
    grep -A 6 'panicked at' "$work/$target.log" | head -n 20 || true
    tail -n 30 "$work/$target.log"
    for crash in "$artifacts"*; do
      [ -f "$crash" ] || continue
      echo "--- input $crash (base64; reproduce with: cargo +nightly fuzz run --fuzz-dir fuzz $target FILE):"
      base64 -w0 "$crash"
      echo
      "${fuzz[@]}" fmt "${fuzz_dir[@]}" "$target" "$crash" 2>/dev/null | head -n 80 || true
    done
  fi
done
echo "fuzz: $passed passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ] || { echo "failed targets: ${failed[*]}"; exit 1; }
