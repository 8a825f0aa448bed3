#!/usr/bin/env bash
# Firmware (docs/firmware.md): the engine on emulated Cortex-M3 (thumbv7m-none-eabi,
# QEMU lm3s6965evb), Cortex-M0 (thumbv6m-none-eabi, QEMU microbit) and RISC-V
# (riscv32imac-unknown-none-elf, QEMU virt), from Rust (firmware/), and on the Cortex-M3 from C
# (firmware/c, linking libtollgate.a built from ffi/ for thumbv7m).
#
# - Installs the Debian packages it needs (once; idempotent).
# - Cross-builds with Debian's rustc (rustc-web) and -Zbuild-std=core. RUSTC, RUSTDOC and
#   RUSTC_BOOTSTRAP are set on the firmware build commands only: host builds and tests keep
#   rustup's toolchain.
# - Runs every firmware under QEMU with a timeout and checks the exit status AND the verdict
#   line; builds a firmware with a deliberately wrong expectation and checks that it fails.
# - Prints the footprint of one leaky-bucket decision and the time each step takes.
#
# TOLLGATE_FIRMWARE_HAZARD=N additionally runs, N times, a Cortex-M3 build with portable-atomic's
# lock-based fallback (no atomics feature chosen) and counts the runs that hang (not in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

steps_start=$(date +%s)
step_t0=$steps_start
step() {
  local now
  now=$(date +%s)
  echo "--- firmware: $1 ($((now - step_t0)) s)"
  step_t0=$now
}

# ---- Debian packages --------------------------------------------------------------------------
# rustc-web + rust-web-src: a rustc (>= 1.87) whose library sources -Zbuild-std can build `core`
# from for any built-in target; rust-web-llvm ships /usr/bin/rust-lld -> lld-22, which it does
# not depend on. The C firmware needs only gcc's freestanding headers and libgcc (no newlib).
packages=(rustc-web rust-web-src rust-web-llvm lld-22 qemu-system-arm qemu-system-misc
  binutils-arm-none-eabi gcc-arm-none-eabi)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
debian_rustc_version=$(/usr/bin/rustc --version)
echo "cross compiler: $debian_rustc_version"
minor=$(echo "$debian_rustc_version" | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$minor" -lt 87 ]; then
  echo "error: /usr/bin/rustc is older than 1.87 (the workspace's rust-version); the" \
    "bookworm-security suite provides rustc-web 1.96" >&2
  exit 1
fi
step "packages"

# ---- builds -----------------------------------------------------------------------------------
# The firmware toolchain, on these commands only. RUSTFLAGS is cleared: it would replace the
# `-Tlink.x` that firmware/.cargo/config.toml passes.
cross=(env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
  RUSTC_BOOTSTRAP=1)
fw_target="$root/target/firmware"
out="$fw_target/elf"
mkdir -p "$out"

build_rust() { # package target features elf-suffix bins...
  local package=$1 target=$2 features=$3 suffix=$4
  shift 4
  # Not --locked: firmware/Cargo.lock pins the firmware's own crates, but a dependency added to
  # core/ must not turn this suite red until someone refreshes a lock file outside the main
  # workspace; cargo adds what is missing and keeps every pinned version.
  (cd firmware && "${cross[@]}" cargo build --release -p "$package" --target "$target" \
    -Zbuild-std=core --features "$features")
  for bin in "$@"; do
    cp "$fw_target/$target/release/$bin" "$out/$bin-$suffix.elf"
  done
}

# Each deliberately wrong build first: the right one then overwrites cargo's output names.
cm=tollgate-firmware-cortex-m
build_rust $cm thumbv7m-none-eabi atomics-single-core,wrong-expectation m3-wrong selftest
build_rust $cm thumbv7m-none-eabi atomics-single-core m3 selftest footprint footprint-check \
  footprint-baseline
step "Rust firmware, Cortex-M3 (atomics: unsafe-assume-single-core)"
build_rust $cm thumbv6m-none-eabi atomics-critical-section,wrong-expectation m0-wrong selftest
build_rust $cm thumbv6m-none-eabi atomics-critical-section m0 selftest footprint footprint-check \
  footprint-baseline
step "Rust firmware, Cortex-M0 (atomics: critical-section)"
rv=tollgate-firmware-riscv
build_rust $rv riscv32imac-unknown-none-elf atomics-single-core,wrong-expectation rv-wrong selftest
build_rust $rv riscv32imac-unknown-none-elf atomics-single-core rv selftest
step "Rust firmware, RISC-V riscv32imac (atomics: unsafe-assume-single-core)"

# libtollgate.a for the C firmware: the ffi crate, no_std, with the firmware's atomics choice.
"${cross[@]}" cargo rustc --locked -p tollgate-ffi --release --target thumbv7m-none-eabi \
  -Zbuild-std=core --no-default-features --features unsafe-assume-single-core \
  --crate-type staticlib --config 'profile.release.opt-level="s"' \
  --target-dir "$root/target/firmware-c"
libtollgate="$root/target/firmware-c/thumbv7m-none-eabi/release/libtollgate.a"
gcc_include=$(arm-none-eabi-gcc -print-file-name=include)
build_c() { # elf extra-flags...
  local elf=$1
  shift
  arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -g -std=c11 -Wall -Wextra -Wpedantic -Werror \
    -ffreestanding -nostdinc -isystem "$gcc_include" -fno-tree-loop-distribute-patterns \
    -ffunction-sections -fdata-sections -I include "$@" \
    -nostdlib -T firmware/c/link.ld -Wl,--gc-sections -Wl,-z,noexecstack \
    -o "$elf" firmware/c/startup.c firmware/c/main.c "$libtollgate" -lgcc
}
build_c "$out/selftest-c-m3.elf"
build_c "$out/selftest-c-m3-wrong.elf" -DTG_WRONG_EXPECTATION
step "C firmware, Cortex-M3 (libtollgate.a, atomics: unsafe-assume-single-core)"

# ---- runs -------------------------------------------------------------------------------------
m3=(qemu-system-arm -machine lm3s6965evb -cpu cortex-m3)
m0=(qemu-system-arm -machine microbit)
rv=(qemu-system-riscv32 -machine virt -bios none)
passed=0
failed=0

run() { # name pass|fail elf qemu...
  local name=$1 want=$2 elf=$3
  shift 3
  local log="$out/$name.log" rc=0
  # stdin from /dev/null: with -nographic QEMU attaches its console to stdio and refuses to
  # start when stdin is closed (as it may be in CI).
  timeout 60 "$@" -nographic -semihosting-config enable=on,target=native -kernel "$elf" \
    </dev/null >"$log" 2>&1 || rc=$?
  sed 's/^/    /' "$log"
  local ok=0
  if [ "$want" = pass ]; then
    [ "$rc" -eq 0 ] && grep -Eq '^tollgate firmware .*: PASS \([0-9]+ checks\)$' "$log" && ok=1
  else
    # A wrong expectation must fail the run: exit status 1 and a FAIL verdict; a hang (124) or
    # a crash does not count as the harness catching it.
    [ "$rc" -eq 1 ] && grep -Eq '^tollgate firmware .*: FAIL \([0-9]+ of [0-9]+ checks failed\)$' \
      "$log" && ok=1
  fi
  if [ "$ok" -eq 1 ]; then
    passed=$((passed + 1))
    echo "ok: $name (exit $rc, expected to $want)"
  else
    failed=$((failed + 1))
    echo "FAILED: $name (exit $rc, expected to $want)"
  fi
}

run rust-m3 pass "$out/selftest-m3.elf" "${m3[@]}"
run rust-m0 pass "$out/selftest-m0.elf" "${m0[@]}"
run rust-riscv32 pass "$out/selftest-rv.elf" "${rv[@]}"
run c-m3 pass "$out/selftest-c-m3.elf" "${m3[@]}"
run rust-m3-wrong-expectation fail "$out/selftest-m3-wrong.elf" "${m3[@]}"
run rust-m0-wrong-expectation fail "$out/selftest-m0-wrong.elf" "${m0[@]}"
run rust-riscv32-wrong-expectation fail "$out/selftest-rv-wrong.elf" "${rv[@]}"
run c-m3-wrong-expectation fail "$out/selftest-c-m3-wrong.elf" "${m3[@]}"
step "QEMU runs"

# ---- footprint --------------------------------------------------------------------------------
# One leaky-bucket decision: `footprint` (a bucket in a static, one full decide) and
# `footprint-check` (the outcome-only check) minus `footprint-baseline` (the same firmware
# without it), per section.
echo "footprint of one leaky-bucket decision (bytes; probe minus baseline, opt-level s, LTO):"
printf '    %-40s %-22s %6s %6s %6s\n' target decision .text .data .bss
for pair in "m3:thumbv7m (unsafe-assume-single-core)" "m0:thumbv6m (critical-section)"; do
  suffix=${pair%%:*}
  read -r bt bd bb _ < <(arm-none-eabi-size "$out/footprint-baseline-$suffix.elf" | awk 'NR==2')
  for probe in "footprint:full (decide)" "footprint-check:outcome-only (check)"; do
    read -r ft fd fb _ < <(arm-none-eabi-size "$out/${probe%%:*}-$suffix.elf" | awk 'NR==2')
    printf '    %-40s %-22s %6d %6d %6d\n' "${pair#*:}" "${probe#*:}" $((ft - bt)) $((fd - bd)) \
      $((fb - bb))
    if [ $((ft - bt)) -gt 2048 ]; then
      echo "    warning: above the 2 KiB goal for one decision (docs/firmware.md)"
    fi
  done
done
step "footprint"

# ---- optional: the lock-based fallback hazard -------------------------------------------------
if [ -n "${TOLLGATE_FIRMWARE_HAZARD:-}" ]; then
  (cd firmware && "${cross[@]}" cargo build --release -p $cm --target thumbv7m-none-eabi \
    -Zbuild-std=core --features atomics-lock-fallback --target-dir "$root/target/firmware-locks")
  hung=0
  for _ in $(seq "$TOLLGATE_FIRMWARE_HAZARD"); do
    rc=0
    timeout 10 "${m3[@]}" -nographic -semihosting-config enable=on,target=native \
      -kernel "$root/target/firmware-locks/thumbv7m-none-eabi/release/selftest" </dev/null \
      >/dev/null 2>&1 ||
      rc=$?
    [ "$rc" -ne 124 ] || hung=$((hung + 1))
  done
  echo "lock-based fallback on Cortex-M3: $hung of $TOLLGATE_FIRMWARE_HAZARD runs hung (deadlock)"
  step "hazard demonstration"
fi

echo "firmware steps took $(($(date +%s) - steps_start)) s"
echo "firmware runs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
