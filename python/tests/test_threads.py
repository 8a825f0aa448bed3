"""Sharing limiters between threads: exact totals (ctypes releases the GIL around each call, so
the C side's lock-free decisions really run concurrently)."""

from __future__ import annotations

import threading

import tollgate as tg

THREADS = 8


def run(worker, n: int = THREADS) -> list:
    results: list = [None] * n
    barrier = threading.Barrier(n)

    def target(i: int) -> None:
        barrier.wait()
        results[i] = worker(i)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_shared_bucket_admits_exactly_its_burst() -> None:
    burst = 1000
    bucket = tg.LeakyBucket(burst, 1, 2**40)
    # All at one instant: nothing drains, so exactly the burst passes. (Different `now`s per
    # thread would make time go backwards between threads, where the engine is conservative.)
    admitted = run(lambda i: sum(bucket.decide(now=0).allowed for _ in range(400)))
    assert sum(admitted) == burst


def test_shared_bucket_with_drain_admits_burst_plus_drained() -> None:
    # 100 burst, 1 per 10 ticks; every thread decides at times 0..999: the exact total is the
    # burst plus what drains by the latest time (999 // 10 = 99), whatever the interleaving.
    bucket = tg.LeakyBucket(100, 1, 10)
    admitted = run(lambda i: sum(bucket.decide(now=t).allowed for t in range(1000)))
    assert sum(admitted) == 100 + 99


def test_shared_table_exact_per_key() -> None:
    keys = 16
    table = tg.KeyTable(256, tg.Quota(50, 1, 2**40))

    def worker(i: int) -> dict:
        counts = {k: 0 for k in range(keys)}
        for r in range(200):
            k = (i + r) % keys
            counts[k] += table.decide((1, k), now=0).allowed
        return counts

    results = run(worker)
    for k in range(keys):
        assert sum(res[k] for res in results) == 50
    assert table.stats.occupied == keys


def test_shared_window_and_concurrency_limit() -> None:
    window = tg.FixedWindow(777, 10**12)
    admitted = run(lambda i: sum(window.decide(now=5).allowed for _ in range(300)))
    assert sum(admitted) == 777

    limit = tg.ConcurrencyLimit(3)
    peak = [0]
    lock = threading.Lock()

    def worker(i: int) -> int:
        done = 0
        for _ in range(300):
            with limit.try_permit() as d:
                if d.allowed:
                    with lock:
                        peak[0] = max(peak[0], limit.in_flight)
                    done += 1
        return done

    assert sum(run(worker)) > 0
    assert peak[0] <= 3
    assert limit.in_flight == 0


def test_shared_sliding_log_is_serialised() -> None:
    log = tg.SlidingLog(100, 10**12)
    admitted = run(lambda i: sum(log.decide(now=1).allowed for _ in range(100)))
    assert sum(admitted) == 100
