"""Limiters shared by processes: multiprocessing (fork and spawn), mismatches, leases, keys."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

import tollgate as tg
from tollgate import shared

SECOND = 1_000_000_000
WORKERS = 4


def _decide_n(limiter: shared.SharedBucket, n: int, now: int) -> int:
    return sum(limiter.decide(1, now=now).allowed for _ in range(n))


def _acquire_and_exit(leases: shared.SharedLeases) -> bool:
    decision, _lease = leases.acquire(100, now=0)
    return decision.allowed  # the lease is never released: the process ends holding it


def run_forked(target, args: tuple, n: int) -> list:
    """Runs ``target(*args)`` in ``n`` forked processes (arguments inherited, not pickled)."""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=lambda: results.put(target(*args))) for _ in range(n)
    ]
    for p in procs:
        p.start()
    out = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out


@pytest.fixture
def region(tmp_path: Path) -> Path:
    return tmp_path / "region"


def test_an_anonymous_bucket_is_one_limit_for_forked_workers() -> None:
    bucket = shared.SharedBucket(tg.Quota(30, 2, SECOND))
    assert bucket.created and bucket.path is None
    admitted = run_forked(_decide_n, (bucket, 30, 0), WORKERS)
    assert sum(admitted) == 30, admitted
    d = bucket.decide(now=0)
    assert (d.outcome, d.used, d.retry_after) == (tg.Outcome.LIMITED, 30, SECOND // 2)
    assert bucket.peek(now=10 * SECOND).used == 10
    bucket.reset()
    assert bucket.peek(now=0).used == 0
    bucket.close()
    bucket.close()  # idempotent


def test_a_named_bucket_travels_to_spawned_processes_by_path(region: Path) -> None:
    bucket = shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region)
    assert bucket.created
    assert stat.S_IMODE(os.stat(region).st_mode) == 0o600
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        admitted = pool.starmap(_decide_n, [(bucket, 20, 0)] * 2)
    assert sum(admitted) == 30, admitted
    again = shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region)
    assert not again.created
    assert again.decide(now=0).outcome is tg.Outcome.LIMITED


def test_anonymous_regions_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError, match="inherited by fork only"):
        pickle.dumps(shared.SharedLog(5, SECOND))


def test_opening_with_other_parameters_names_the_difference(region: Path) -> None:
    shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region)
    with pytest.raises(tg.RegionError, match="burst is 30 in the region, 31 was asked for") as e:
        shared.SharedBucket(tg.Quota(31, 2, SECOND), path=region)
    assert (e.value.found, e.value.expected) == (30, 31)
    assert e.value.status == 212
    with pytest.raises(tg.RegionError, match="holds a leaky bucket, not a fixed window"):
        shared.SharedWindow(30, SECOND, path=region)
    with pytest.raises(tg.RegionError, match="already exists"):
        shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region, create=shared.CREATE_NEW)
    with pytest.raises(tg.RegionError):
        shared.SharedBucket(
            tg.Quota(30, 2, SECOND), path=region.with_name("missing"), create="existing"
        )
    os.chmod(region, 0o644)
    with pytest.raises(tg.RegionError, match="mode 644 grants more than the 600 asked for"):
        shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region)
    shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region, mode=0o644)
    region.write_bytes(b"x" * 4096)
    with pytest.raises(tg.RegionError, match="not a tollgate region"):
        shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region, mode=0o644)
    with pytest.raises(ValueError):
        shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region, create="sometimes")


def test_log_and_window_decide_as_their_private_counterparts() -> None:
    log = shared.SharedLog(2, 10)
    private = tg.SlidingLog(2, 10)
    window = shared.SharedWindow(2, 10)
    private_window = tg.FixedWindow(2, 10)
    for now, cost in [(0, 1), (5, 1), (9, 1), (10, 1), (14, 2), (30, 3), (31, 1), (20, 1)]:
        assert log.decide(cost, now=now) == private.decide(cost, now=now)
        assert window.decide(cost, now=now) == private_window.decide(cost, now=now)


def test_a_lease_held_by_a_dead_process_expires() -> None:
    leases = shared.SharedLeases(2, SECOND)
    assert run_forked(_acquire_and_exit, (leases,), 2) == [True, True]
    assert leases.in_flight(now=50) == 2
    decision, lease = leases.acquire(10, now=50)
    assert decision.outcome is tg.Outcome.OVERLOADED and lease is None
    assert decision.retry_after == 50
    decision, lease = leases.acquire(10, now=100)
    assert decision.allowed and lease is not None and lease.deadline == 110
    leases.renew(lease, 20, now=105)
    assert lease.deadline == 125
    leases.release(lease)
    with pytest.raises(tg.NotAcquiredError):
        leases.release(lease)
    with pytest.raises(tg.InvalidArgumentError):
        leases.acquire(SECOND + 1, now=0)  # longer than max_lease


def _keys_worker(directory: str, n: int) -> int:
    keys = shared.SharedKeys(directory, tg.Quota(5, 1, 3600 * SECOND))
    return sum(keys.decide((7, 1)).allowed for _ in range(n)) * 100 + sum(
        keys.decide((7, 2)).allowed for _ in range(n)
    )


def test_shared_keys_one_bucket_per_key_across_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_keys_worker, [(str(tmp_path / "keys"), 4)] * 3)
    assert sum(r // 100 for r in results) == 5
    assert sum(r % 100 for r in results) == 5
    keys = shared.SharedKeys(tmp_path / "keys", tg.Quota(5, 1, 3600 * SECOND), max_keys=2)
    assert not keys.decide((7, 1)).allowed
    assert keys.decide((8, 1)).allowed
    refused = keys.decide((9, 1))  # a third key in this process: over max_keys
    assert refused.outcome is tg.Outcome.OVERLOADED
    keys.close()


def _table_worker(table: shared.SharedKeyTable, n: int) -> int:
    """``n`` attempts on each of three shops (an exact pair, a hashed string, a hashed
    triple) at t = 0: how many were admitted in all."""
    keys = [(7, 1), "shop-2", (7, 3, 9)]
    return sum(table.allow(k, now=0) for _ in range(n) for k in keys)


def test_a_named_key_table_is_one_limit_per_key_for_spawned_processes(region: Path) -> None:
    tiers = [tg.Quota(30, 2, SECOND), tg.Quota(60, 2, SECOND)]
    table = shared.SharedKeyTable(100, tiers, path=region)
    assert table.created and table.path == str(region)
    assert stat.S_IMODE(os.stat(region).st_mode) == 0o600
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        admitted = pool.starmap(_table_worker, [(table, 20)] * 3)
    # 30 per key in all, for each of the three keys: the hashed ones agree across processes
    # because every process adopted the region's seed.
    assert sum(admitted) == 90, admitted
    again = shared.SharedKeyTable(100, tiers, path=region)
    assert not again.created
    for k in [(7, 1), "shop-2", (7, 3, 9)]:
        d = again.decide(k, now=0)
        assert (d.outcome, d.used, d.limit) == (tg.Outcome.LIMITED, 30, 30), k
    d = again.decide((7, 1), now=0, tier=1)  # premium: the level carries over
    assert (d.outcome, d.used, d.limit) == (tg.Outcome.ALLOWED, 31, 60)
    assert again.stats.occupied == 3
    assert again.allow_many([(7, 1), (7, 4)], now=0) == [False, True]
    assert again.key("shop-2") == table.key("shop-2")
    again.close()
    with pytest.raises(tg.TollgateError):
        again.decide((7, 1), now=0)  # closed: refused, never decided on unmapped memory
    table.close()


def test_a_forked_anonymous_window_table_counts_once() -> None:
    table = shared.SharedKeyTable(10, tg.table.WindowQuota(50, SECOND), seed=(1, 2))
    assert table.path is None
    admitted = run_forked(lambda: sum(table.allow((1, 1), now=0) for _ in range(30)), (), WORKERS)
    assert sum(admitted) == 50, admitted
    assert not table.allow((1, 1), now=SECOND - 1)
    assert table.allow((1, 1), now=SECOND)
    with pytest.raises(TypeError, match="inherited by fork only"):
        import pickle

        pickle.dumps(table)
    with pytest.raises(TypeError, match="cannot be copied"):
        table.copy()
    table.close()


def test_a_key_table_region_names_each_difference(region: Path) -> None:
    tiers = [tg.Quota(30, 2, SECOND)]
    shared.SharedKeyTable(100, tiers, path=region).close()

    def refused(*args, **kwargs) -> str:
        with pytest.raises(tg.RegionError) as e:
            shared.SharedKeyTable(*args, path=region, **kwargs)
        return str(e.value)

    assert "capacity is 100 in the region, 200 was asked for" in refused(200, tiers)
    assert "tier count" in refused(100, tiers * 2)
    assert "tiers (digest)" in refused(100, [tg.Quota(31, 2, SECOND)])
    assert "full-table policy" in refused(100, tiers, policy=tg.table.FullPolicy.FAIL_OPEN)
    assert "seed (digest)" in refused(100, tiers, seed=(1, 2))
    assert "window table" in refused(100, tg.table.WindowQuota(30, SECOND))
    with pytest.raises(tg.RegionError, match="bucket table"):
        shared.SharedBucket(tg.Quota(30, 2, SECOND), path=region)
    with pytest.raises(tg.InvalidArgumentError):
        shared.SharedKeyTable(100, [])
