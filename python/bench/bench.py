"""Per-decision cost of tollgate against `limits` and `pyrate-limiter` (a benchmark, not a test).

    python3 python/bench/bench.py [--venv DIR] [--n N]

Creates (or reuses) a virtual environment (default: target/python-bench-venv), installs
`limits`, `pyrate-limiter` and this repository's `tollgate` (`pip install ./python`) into it,
re-runs itself there and prints the nanoseconds per decision of each limiter, for one key and
for 100 000 keys, and the ratio to tollgate. All limiters run in memory, in one thread, at
50 requests per second per key, on their default (real) clocks:

- one key: N decisions on the same key in a tight loop (after the first 50 nearly all are
  refusals: a hot key under abuse);
- 100 000 keys: N decisions cycling over 100 000 (app, shop) keys (nearly all admitted; the first
  100 000 insert their key).

Compared: tollgate's leaky bucket, fixed window and sliding log (single limiters) and its key
table (bucket and window tiers), through `allow` (a bool, like the others) and `decide` (a full
Decision), against `limits` (MemoryStorage with FixedWindowRateLimiter and
MovingWindowRateLimiter) and `pyrate-limiter` (Limiter over InMemoryBucket, non-blocking
try_acquire; for many keys a BucketFactory routing each name to its own bucket, the library's
documented way to limit per key).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MARK = "TOLLGATE_BENCH_INNER"
KEYS = 100_000
RATE = 50


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "limits", "pyrate-limiter"], check=True)
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(REPO / "python")], check=True)
    return py


def best_ns_per_op(run, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        run(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def inner(n: int) -> None:
    import limits
    import pyrate_limiter as pr
    from limits import RateLimitItemPerSecond
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    import tollgate as tg

    SECOND = tg.NANOS_PER_SECOND
    item = RateLimitItemPerSecond(RATE)
    results: dict[str, dict[str, float]] = {"one key": {}, "100 000 keys": {}}

    # ---- one key -------------------------------------------------------------------------------
    def one(name: str, make):
        def run(count: int) -> None:
            decide = make()
            for _ in range(count):
                decide()

        results["one key"][name] = best_ns_per_op(run, n)

    def ctypes_floor():
        """The bare ctypes call under LeakyBucket.allow: tg_bucket_check on a raw address with
        integers already converted, no checks, no clock read (the binding's floor)."""
        import ctypes

        from tollgate._ffi import lib

        bucket = tg.LeakyBucket(RATE, RATE, SECOND)
        func = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)(
            ctypes.cast(lib.tg_bucket_check, ctypes.c_void_p).value
        )
        address = ctypes.addressof(bucket._raw)
        now = time.monotonic_ns()
        return lambda: func(address, now, 1)

    def clock_and_allow():
        bucket = tg.LeakyBucket(RATE, RATE, SECOND)
        return lambda: bucket.allow(1, time.monotonic_ns())

    one("ctypes floor (tg_bucket_check)", ctypes_floor)
    one("tollgate LeakyBucket.allow", lambda: tg.LeakyBucket(RATE, RATE, SECOND).allow)
    one("tollgate LeakyBucket.allow(1, now)", clock_and_allow)
    one("tollgate LeakyBucket.decide", lambda: tg.LeakyBucket(RATE, RATE, SECOND).decide)
    one("tollgate FixedWindow.allow", lambda: tg.FixedWindow(RATE, SECOND).allow)
    one("tollgate SlidingLog.allow", lambda: tg.SlidingLog(RATE, SECOND).allow)
    one(
        "tollgate KeyTable.allow",
        lambda: (lambda t: lambda: t.allow((1, 1)))(
            tg.KeyTable(1024, tg.Quota(RATE, RATE, SECOND))
        ),
    )

    def limits_one(strategy):
        def make():
            limiter = strategy(MemoryStorage())
            return lambda: limiter.hit(item, "1", "1")

        return make

    one("limits fixed window", limits_one(FixedWindowRateLimiter))
    one("limits moving window", limits_one(MovingWindowRateLimiter))

    def pyrate_one():
        limiter = pr.Limiter(pr.Rate(RATE, pr.Duration.SECOND))
        return lambda: limiter.try_acquire("1", blocking=False)

    one("pyrate-limiter", pyrate_one)

    # ---- 100 000 keys -----------------------------------------------------------------------------
    pairs = [(1, i) for i in range(KEYS)]
    names = [f"1:{i}" for i in range(KEYS)]

    def many(name: str, make, keys):
        def run(count: int) -> None:
            decide = make()
            m = len(keys)
            for i in range(count):
                decide(keys[i % m])

        results["100 000 keys"][name] = best_ns_per_op(run, n, repeats=2)

    many(
        "tollgate KeyTable.allow",
        lambda: tg.KeyTable(1 << 18, tg.Quota(RATE, RATE, SECOND)).allow,
        pairs,
    )
    many(
        "tollgate KeyTable.decide",
        lambda: tg.KeyTable(1 << 18, tg.Quota(RATE, RATE, SECOND)).decide,
        pairs,
    )
    many(
        "tollgate KeyTable.allow (window)",
        lambda: tg.KeyTable(1 << 18, tg.WindowQuota(RATE, SECOND)).allow,
        pairs,
    )

    def limits_many(strategy):
        def make():
            limiter = strategy(MemoryStorage())
            return lambda key: limiter.hit(item, key)

        return make

    many("limits fixed window", limits_many(FixedWindowRateLimiter), names)
    many("limits moving window", limits_many(MovingWindowRateLimiter), names)

    class PerName(pr.BucketFactory):
        """One InMemoryBucket per name (pyrate-limiter's documented per-key routing)."""

        def __init__(self) -> None:
            self.clock = pr.MonotonicClock()
            self.buckets: dict[str, pr.InMemoryBucket] = {}
            self.rates = [pr.Rate(RATE, pr.Duration.SECOND)]

        def wrap_item(self, name: str, weight: int = 1) -> pr.RateItem:
            return pr.RateItem(name, self.clock.now(), weight=weight)

        def get(self, item: pr.RateItem) -> pr.AbstractBucket:
            bucket = self.buckets.get(item.name)
            if bucket is None:
                bucket = self.buckets[item.name] = pr.InMemoryBucket(self.rates)
            return bucket

    def pyrate_many():
        limiter = pr.Limiter(PerName())
        return lambda key: limiter.try_acquire(key, blocking=False)

    many("pyrate-limiter", pyrate_many, names)

    # ---- report -----------------------------------------------------------------------------------
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {cpu_model()}, {os.cpu_count()} cores"
    )
    print(
        f"python {platform.python_version()}; limits {limits.__version__}; pyrate-limiter {pr.__version__}; tollgate {tg.__version__} ({tg.LIBRARY_PATH.name})"
    )
    print(f"decisions per measurement: {n}; best of several runs")
    print("ratios: cost / tollgate's cost (allow: a bool, like the others' hit/try_acquire;")
    print("decide: a full Decision with used/remaining/retry_after/reset_after)")
    for scenario, rows in results.items():
        kind = "LeakyBucket" if scenario == "one key" else "KeyTable"
        allow = rows[f"tollgate {kind}.allow"]
        decide = rows[f"tollgate {kind}.decide"]
        print(f"\n{scenario}:")
        print(f"  {'limiter':34} {'ns/decision':>12} {'vs allow':>9} {'vs decide':>10}")
        for name, ns in rows.items():
            print(f"  {name:34} {ns:12.0f} {ns / allow:8.1f}x {ns / decide:9.1f}x")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=REPO / "target" / "python-bench-venv")
    parser.add_argument("--n", type=int, default=200_000, help="decisions per measurement")
    args = parser.parse_args()
    if os.environ.get(MARK) == "1":
        inner(args.n)
        return
    py = ensure_venv(args.venv)
    env = dict(os.environ, **{MARK: "1"})
    env.pop("TOLLGATE_LIB", None)
    os.chdir(args.venv)  # import the installed tollgate, not the source tree
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), "--n", str(args.n)], env)


if __name__ == "__main__":
    main()
