#!/usr/bin/env bash
# Every benchmark, side by side with governor 0.10, in one run on this machine, then the ratios
# against the targets of BENCHMARKS.md. Not part of the test command (which only compiles the
# benches). Takes about 5 minutes on 2 vCPUs. Output: the raw lines, then a summary; all of it
# is also kept in target/bench-run/.
#   bash scripts/bench.sh            # everything
#   TOLLGATE_BENCH_ONLY="direct c" bash scripts/bench.sh   # some of: direct contention keyed shared memory c python tower
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/bench-run"
rm -rf "$out"
mkdir -p "$out"
export CRITERION_HOME="$out/criterion"
only="${TOLLGATE_BENCH_ONLY:-direct contention keyed shared memory c python tower}"
want() { [[ " $only " == *" $1 "* ]]; }

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) vCPUs"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rustc: $(rustc --version)"
  echo "gcc: $(gcc --version | head -n1)"
} | tee "$out/machine.txt"

for bench in direct contention keyed shared; do
  if want "$bench"; then
    echo "=== cargo bench -p tollgate-benches --bench $bench"
    cargo bench -p tollgate-benches --locked --bench "$bench" 2>&1 | tee "$out/$bench.txt"
  fi
done
if want memory; then
  echo "=== cargo bench -p tollgate-benches --bench memory"
  cargo bench -p tollgate-benches --locked --bench memory 2>&1 | tee "$out/memory.txt"
fi
if want c; then
  echo "=== C ABI from C: benches/c/bench.c against target/release/libtollgate.a"
  cargo build --release --locked -p tollgate-ffi
  gcc -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude benches/c/bench.c \
    target/release/libtollgate.a -lpthread -ldl -lm -o "$out/bench-c"
  "$out/bench-c" | tee "$out/c.txt"
fi
if want python; then
  shopt -s nullglob
  scripts=(python/bench/*.py)
  if [ "${#scripts[@]}" -eq 0 ]; then
    echo "=== Python: no script in python/bench/ yet (pending)" | tee "$out/python.txt"
  else
    cargo build --release --locked -p tollgate-ffi
    for s in "${scripts[@]}"; do
      echo "=== Python: $s"
      TOLLGATE_LIB="$PWD/target/release/libtollgate.so" PYTHONPATH=python python3 "$s" \
        2>&1 | tee -a "$out/python.txt"
    done
  fi
fi
if want tower; then
  echo "=== cargo bench -p tollgate-tower --bench layer"
  cargo bench -p tollgate-tower --locked --bench layer 2>&1 | tee "$out/tower.txt"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"

python3 - "$out" <<'EOF' | tee "$out/summary.md"
import json, os, re, sys

out = sys.argv[1]
est = {}
for root, _, files in os.walk(os.path.join(out, "criterion")):
    if root.endswith("/new") and "benchmark.json" in files:
        with open(os.path.join(root, "benchmark.json")) as f:
            full_id = json.load(f)["full_id"]
        with open(os.path.join(root, "estimates.json")) as f:
            est[full_id] = json.load(f)["median"]["point_estimate"]

def ns(k):
    return est.get(k)

def fmt(v):
    return "—" if v is None else f"{v:.1f} ns"

def ratio(a, b):
    return None if a is None or b is None else a / b

def row(*cells):
    print("| " + " | ".join(cells) + " |")

def verdict(r, ok):
    return "—" if r is None else ("met" if ok(r) else "missed")

print("\n## Summary (medians)\n")
print("### Direct decision, one thread\n")
row("case", "tollgate", "governor", "tollgate / governor", "target", "")
row(*["---"] * 6)
for case in ["allow", "deny"]:
    g = ns(f"direct/caller_tick/{case}/governor_fake_clock")
    for ours in ["tollgate", "tollgate_full"]:
        t = ns(f"direct/caller_tick/{case}/{ours}")
        r = ratio(t, g)
        row(f"{case}, caller tick vs FakeRelativeClock ({ours})", fmt(t), fmt(g),
            "—" if r is None else f"{r:.2f}×", "≤ 1.1×", verdict(r, lambda x: x <= 1.1))
    g = ns(f"direct/real_clock/{case}/governor_default_clock")
    for ours in ["tollgate_tsc", "tollgate_instant"]:
        t = ns(f"direct/real_clock/{case}/{ours}")
        r = ratio(t, g)
        row(f"{case}, real clock ({ours}) vs default clock", fmt(t), fmt(g),
            "—" if r is None else f"{r:.2f}×", "report", "")
for c in ["quanta_raw", "std_instant", "governor_default"]:
    row(f"clock read alone: {c}", fmt(ns(f"direct/real_clock/clock/{c}")), "", "", "", "")

print("\n### Keyed decision, one thread (time per key, ratios in the same run)\n")
print("Targets: at 1 000 keys ≤ 1.3× the floor, ≥ 2.2× faster than governor with its fake clock")
print("and ≥ 3× with its default clock; at 1 000 000 keys ≤ 1.2× the floor and ≥ 3.5× faster than")
print("governor with its fake clock. `_load50`: our table at the floor's load, 0.5.\n")
row("keys / skew", "limiter", "time", "/ floor", "governor fake clock /", "governor default clock /")
row(*["---"] * 6)
targets = {"1000": (1.3, 2.2, 3.0), "1000000": (1.2, 3.5, None)}
def cell(r, ok):
    return "—" if r is None else f"{r:.2f}× " + ("met" if ok(r) else "missed")
for keys, (floor_max, fake_min, default_min) in targets.items():
    for skew in ["uniform", "zipf"]:
        at = f"{keys}/{skew}"
        f = ns(f"keyed/floor/{at}")
        g = ns(f"keyed/governor/{at}")
        gd = ns(f"keyed/governor_default_clock/{at}")
        for suffix in ["", "_load50"]:
            for name in ["tollgate", "tollgate_check", "tollgate_many", "tollgate_check_many"]:
                t = ns(f"keyed/{name}{suffix}/{at}")
                row(at, name + suffix, fmt(t),
                    cell(ratio(t, f), lambda x: x <= floor_max),
                    cell(ratio(g, t), lambda x: x >= fake_min),
                    "—" if default_min is None else cell(ratio(gd, t), lambda x: x >= default_min))
        for name, v in [("floor", f), ("governor", g), ("governor_default_clock", gd)]:
            row(at, name, fmt(v), "", "", "")

print("\n### Two threads (time per decision as one thread sees it)\n")
row("limiter", "one thread", "two threads, one key", "two threads, disjoint keys",
    "contention cost (one key / disjoint)")
row(*["---"] * 5)
for group in ["contention", "contention_keyed"]:
    for who in ["tollgate", "governor"]:
        one = ns(f"{group}/{who}/one_thread")
        same = ns(f"{group}/{who}/two_threads_one_key")
        apart = ns(f"{group}/{who}/two_threads_disjoint_keys")
        r = ratio(same, apart)
        row(f"{group}: {who}", fmt(one), fmt(same), fmt(apart),
            "—" if r is None else f"{r:.2f}×")

print("\n### The tower layer beside tower_governor (overhead = time minus the bare service's)\n")
row("case", "bare service", "tollgate", "tower_governor", "tower_governor use_headers",
    "overhead tollgate / tower_governor", "/ tower_governor use_headers")
row(*["---"] * 7)
for group in ["allow/1 key", "allow/1000 keys", "deny/1 key"]:
    base = ns(f"{group}/baseline (no layer)")
    t = ns(f"{group}/tollgate RateLimitLayer")
    g = ns(f"{group}/tower_governor")
    h = ns(f"{group}/tower_governor use_headers")
    over = lambda v: None if v is None or base is None else v - base
    r1, r2 = ratio(over(t), over(g)), ratio(over(t), over(h))
    row(group, fmt(base), fmt(t), fmt(g), fmt(h),
        "—" if r1 is None else f"{r1:.2f}×", "—" if r2 is None else f"{r2:.2f}×")

print("\n### Memory and the C ABI\n")
for name in ["memory.txt", "c.txt", "python.txt"]:
    path = os.path.join(out, name)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if re.match(r"^(memory|c|py)/|^=== Python", line):
                    print("    " + line.rstrip())
EOF
