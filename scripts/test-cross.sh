#!/usr/bin/env bash
# Other Linux platforms under qemu-user: the core's tests and the C ABI's tests, cross-built for
# 64-bit ARM (aarch64-unknown-linux-gnu) and 32-bit x86 (i686-unknown-linux-gnu, where 64-bit
# atomics and 64-bit division take other code paths), and run by qemu-aarch64 / qemu-i386.
#
# The machines that run the test command cannot download rustup targets, so the standard library
# for each target is compiled from Debian's sources: Debian's rustc (rustc-web, 1.96) with
# rust-web-src and `-Zbuild-std` (RUSTC_BOOTSTRAP=1 on these commands only), linked by Debian's
# cross gcc. With rustup, `rustup target add aarch64-unknown-linux-gnu` and a plain
# `cargo test --target ...` do the same (docs/firmware.md explains both routes).
# TOLLGATE_CROSS_TARGETS="aarch64" (or "i686") runs one target.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tdir="${CARGO_TARGET_DIR:-$root/target}/cross"
start=$(date +%s)

# --- Debian packages, idempotently.
missing=()
[ -x /usr/bin/rustc ] || missing+=(rustc-web)
[ -d /usr/lib/rustlib/src/rust/library ] || missing+=(rust-web-src)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v i686-linux-gnu-gcc >/dev/null || missing+=(gcc-i686-linux-gnu libc6-dev-i386-cross)
command -v qemu-aarch64 >/dev/null && command -v qemu-i386 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

# The core's tests that matter on another architecture: the unit tests, the worked examples,
# every proptest against the reference models (32 cases each here), the key table's model and
# thread tests (128-bit CAS), the client queue's threads, and the fuzz regressions; on i686 also
# the long runs (64-bit arithmetic and division done in 32-bit halves). Left to the native run:
# the multi-minute stress and simulation tests, and the doctests.
core_tests=(--lib --test spec_examples --test proptest_gcra --test proptest_fixed_window
  --test proptest_sliding_log --test table_model --test table_stress
  --test client_queue --test client_pacer --test client_sync --test fuzz_regressions)

passed=0
failed=0
step() { # step NAME COMMAND...
  local name="$1"; shift
  echo "--- $name"
  local t0; t0=$(date +%s)
  if "$@"; then passed=$((passed + 1)); echo "    ok ($(( $(date +%s) - t0 )) s)"
  else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

run_target() { # run_target TRIPLE GCC QEMU SYSROOT
  local triple="$1" gcc="$2" qemu="$3" sysroot="$4"
  local var; var="$(tr 'a-z-' 'A-Z_' <<<"$triple")"
  local out="$tdir/$triple/c"
  mkdir -p "$out"
  # Debian's compiler on these commands only; RUSTFLAGS cleared (the host's flags, such as
  # -D warnings, would also apply to the standard library built here).
  local -a env=(env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 RUSTFLAGS=
    "CARGO_TARGET_${var}_LINKER=$gcc" "CARGO_TARGET_${var}_RUNNER=$qemu -L $sysroot"
    PROPTEST_CASES="${PROPTEST_CASES:-32}")
  local -a cargo_args=(--locked --target "$triple" -Zbuild-std --target-dir "$tdir")

  local -a tests=("${core_tests[@]}")
  [ "$triple" != i686-unknown-linux-gnu ] || tests+=(--test longrun)
  step "$triple: core tests under $qemu" \
    "${env[@]}" cargo test "${cargo_args[@]}" -p tollgate "${tests[@]}"

  local lib="$tdir/$triple/debug"
  step "$triple: libtollgate (static and shared)" \
    "${env[@]}" cargo build "${cargo_args[@]}" -p tollgate-ffi
  local warn=(-std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -Iinclude -Itests/c)
  local syslibs=(-lpthread -ldl -lm)
  c_test() { # c_test NAME: the C test against the static library, under qemu
    "$gcc" "${warn[@]}" "tests/c/$1.c" "$lib/libtollgate.a" "${syslibs[@]}" -o "$out/$1" &&
      "$qemu" -L "$sysroot" "$out/$1" | tail -2
  }
  step "$triple: C API test (static library)" c_test test_api
  step "$triple: C client toolkit test (static library)" c_test test_client
  step "$triple: pthreads test, exact totals (static library)" c_test test_threads
  shared_api() { # the API test against the shared library, found by its SONAME
    local soname
    soname="$(readelf -d "$lib/libtollgate.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
    mkdir -p "$out/so" && ln -sfn "$lib/libtollgate.so" "$out/so/$soname" &&
      "$gcc" "${warn[@]}" tests/c/test_api.c -L"$lib" -ltollgate -o "$out/test_api_shared" &&
      "$qemu" -L "$sysroot" -E LD_LIBRARY_PATH="$out/so" "$out/test_api_shared" | tail -1
  }
  step "$triple: C API test (shared library, by its SONAME)" shared_api
  machine_is() { # the test binary really is for the target's machine (so qemu really ran it)
    local m; m="$(readelf -h "$out/test_api" | sed -n 's/^ *Machine: *//p')"
    echo "test_api: $m"; [ "$m" = "$1" ]
  }
  step "$triple: binaries are for $5" machine_is "$5"
}

targets="${TOLLGATE_CROSS_TARGETS:-aarch64 i686}"
for t in $targets; do
  case "$t" in
    aarch64) run_target aarch64-unknown-linux-gnu aarch64-linux-gnu-gcc qemu-aarch64 \
               /usr/aarch64-linux-gnu "AArch64" ;;
    i686) run_target i686-unknown-linux-gnu i686-linux-gnu-gcc qemu-i386 \
            /usr/i686-linux-gnu "Intel 80386" ;;
    *) echo "test-cross: unknown target $t (aarch64, i686)"; failed=$((failed + 1)) ;;
  esac
done
echo "=== cross suite ($targets): $passed passed, $failed failed ($(( $(date +%s) - start )) s)"
[ "$failed" -eq 0 ]
