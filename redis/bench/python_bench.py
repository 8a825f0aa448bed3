"""Decisions per second through Redis from Python (tollgate.redis), beside plain redis-py
commands on the same server: ``python redis/bench/python_bench.py URL [SECONDS]``.

Run by hand with the package installed with its ``redis`` extra (BENCHMARKS.md has the figures
and how they were taken). Each workload runs three times for SECONDS (default 2); the median and
the best rate are printed, as the Rust benchmark (tollgate-redis-bench) does.
"""

from __future__ import annotations

import os
import sys
import time

import redis

from tollgate import Quota, WindowQuota
from tollgate.redis import HybridLimiter, RedisLimiter, Request

SECOND = 1_000_000_000


def measure(name: str, seconds: float, work) -> None:
    rates = []
    for _ in range(3):
        done, i = 0, 0
        start = time.perf_counter()
        end = start + seconds
        while time.perf_counter() < end:
            done += work(i)
            i += 1
        rates.append(done / (time.perf_counter() - start))
    rates.sort()
    print(f"{name:<52} median {rates[1]:>10.0f}  best {rates[2]:>10.0f} per s", flush=True)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    raw = redis.Redis.from_url(url)
    prefix = f"pybench:{os.getpid()}:"
    measure("baseline: PING, one per round trip", seconds, lambda i: raw.ping() and 1)
    measure("ceiling: INCR, one per round trip", seconds, lambda i: raw.incr(prefix + "n") and 1)
    measure("ceiling: HSET, one per round trip", seconds,
            lambda i: raw.hset(prefix + "h", "f", i) >= 0 and 1)

    def incr16(i: int) -> int:
        p = raw.pipeline(transaction=False)
        for _ in range(16):
            p.incr(prefix + "n")
        return len(p.execute())

    measure("ceiling: INCR, pipelined 16", seconds, incr16)

    shopbase = Quota(30, 2, SECOND)
    tiktok = WindowQuota(50, SECOND)
    keys = [f"app:{k}" for k in range(10_000)]
    lim = RedisLimiter.from_url(url, shopbase, timeout=1.0, ticks_per_second=SECOND,
                                clock=time.monotonic_ns, prefix=prefix)
    measure("leaky bucket, one decision per round trip", seconds,
            lambda i: lim.decide(keys[i % 10_000]) and 1)
    measure("fixed window, one decision per round trip", seconds,
            lambda i: lim.decide(keys[i % 10_000], quota=tiktok) and 1)
    for batch in (16, 64):
        def batched(i: int, batch: int = batch) -> int:
            now = time.monotonic_ns()
            reqs = [Request(keys[(i * batch + j) % 10_000], shopbase, now) for j in range(batch)]
            return len(lim.decide_batch(reqs))

        measure(f"leaky bucket, pipelined batches of {batch}", seconds, batched)
    hot = Quota(5, 1, SECOND)
    measure("hot key over its limit, shared only", seconds,
            lambda i: lim.decide("hot", quota=hot) and 1)
    hybrid = HybridLimiter(RedisLimiter.from_url(url, timeout=1.0, ticks_per_second=SECOND,
                                                 clock=time.monotonic_ns, prefix=prefix), 10_000)
    measure("hot key over its limit, hybrid (local denials)", seconds,
            lambda i: hybrid.decide("hot2", quota=hot) and 1)
    measure("many keys under their limits, hybrid", seconds,
            lambda i: hybrid.decide(keys[i % 10_000], quota=shopbase) and 1)


if __name__ == "__main__":
    main()
