"""Client pacers in shared memory: the in-process pacers' answers, for several processes at once.

Times are passed explicitly (``now=``), so every count here is exact.
"""

from __future__ import annotations

import multiprocessing
import pickle
import random
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import tollgate as tg
from tollgate.client import BucketPacer, LogPacer, Pace, PaceAction
from tollgate.http import Pacing, SharedPacers, Vendor, shopbase, tiktok_shop
from tollgate.shared_pacer import BLOCK_SUFFIX, SharedBucketPacer, SharedLogPacer

S = 1_000_000_000
WORKERS = 4
SB_URL = "https://shop42.example/admin/orders.json"
SB_IDS = {"X-App-Id": "7", "X-Shop-Id": "42"}


def shopbase_pair(path: Path | None) -> tuple[SharedBucketPacer, BucketPacer]:
    return SharedBucketPacer(30, 2, S, S // 5, path=path), BucketPacer(30, 2, S, S // 5)


def tiktok_pair(path: Path | None) -> tuple[SharedLogPacer, LogPacer]:
    return SharedLogPacer(50, S, S // 20, path=path), LogPacer(50, S, S // 20)


def run_in_processes(
    method: str, target: Callable[..., Any], args: tuple[Any, ...], n: int
) -> list[Any]:
    """``target(*args)`` in ``n`` processes started with ``method`` (with ``fork`` the
    arguments are inherited, not pickled), all at once; their results."""
    ctx: Any = multiprocessing.get_context(method)
    results = ctx.Queue()
    procs = [ctx.Process(target=_put, args=(results, target, args)) for _ in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out


def _put(results: Any, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    results.put(target(*args))


# Run in child processes (module level, so that `spawn` can import them).


def _acquire_n(pacer: Any, n: int, now: int) -> int:
    return sum(pacer.acquire(1, now).send for _ in range(n))


def _sync(pacer: Any, sent_at: int, headers: dict[str, str], now: int) -> None:
    pacer.sync(sent_at, now=now, **headers)


def _first_answer(pacer: Any, now: int) -> tuple[int, int | None]:
    pace = pacer.acquire(1, now)
    return int(pace.action), pace.at


def _pacing_sends(directory: str, n: int) -> tuple[int, str]:
    pacing = Pacing(shopbase(), shared=directory)
    sent = sum(pacing.call("GET", SB_URL, SB_IDS).ready() is None for _ in range(n))
    factory = SharedPacers(directory, shopbase())
    return sent, str(factory.path(("shop42.example", "7", "42")))


# The same answers as the in-process pacers.


@pytest.mark.parametrize("kind", ["shopbase", "tiktok"])
def test_answers_match_the_in_process_pacer(kind: str, tmp_path: Path) -> None:
    """A random walk of sends, header syncs (counts and Retry-After, at the time a request was
    sent, in the past) and queries: every answer is the in-process pacer's."""
    rng = random.Random(7)
    shared, private = (shopbase_pair if kind == "shopbase" else tiktok_pair)(tmp_path / "p")
    sent: list[int] = []
    now = 0
    for step in range(3000):
        now += rng.choice([0, 0, 1, 997, S // 50, S // 7, S // 3])
        op = rng.random()
        if op < 0.6:
            a, b = shared.acquire(1, now), private.acquire(1, now)
            assert a == b, (step, a, b)
            if a.send:
                sent.append(now)
        elif op < 0.75 and sent:
            sent_at = rng.choice(sent[-20:])
            limit = 30 if kind == "shopbase" else 50
            used = rng.randint(0, limit)
            shared.observe_call_limit(sent_at, used, limit)
            private.observe_call_limit(sent_at, used, limit)
        elif op < 0.78:
            header = str(rng.choice([0, 1, 2]))
            shared.sync(now, retry_after=header, now=now)
            private.sync(now, retry_after=header, now=now)
        elif op < 0.9:
            assert shared.next_send(1, now) == private.next_send(1, now), step
            cost = rng.randint(1, 60)
            assert shared.next_send(cost, now) == private.next_send(cost, now), (step, cost)
        else:
            a_t, b_t = shared.reserve(1, now), private.reserve(1, now)
            assert a_t == b_t, (step, a_t, b_t)
            if a_t is not None:
                sent.append(a_t)
    shared.close()


def test_never_zero_cost_and_arguments(tmp_path: Path) -> None:
    pacer = SharedBucketPacer(30, 2, S, S // 5, path=tmp_path / "p")
    assert pacer.capacity == 29 and pacer.path == str(tmp_path / "p")
    assert pacer.acquire(30, 0) == Pace(PaceAction.NEVER, None)
    assert pacer.next_send(30, 0) is None and pacer.reserve(30, 0) is None
    with pytest.raises(tg.ZeroCostError):
        pacer.acquire(0, 0)
    with pytest.raises(tg.InvalidArgumentError):
        pacer.observe_call_limit(0, 31, 30)
    with pytest.raises(tg.MalformedError):
        pacer.sync(0, call_limit="lots", now=0)
    with pytest.raises(tg.CapacityExceededError):
        SharedBucketPacer(30, 2, S, 15 * S, path=tmp_path / "q")  # the margin eats the burst
    assert (tmp_path / ("p" + BLOCK_SUFFIX)).exists()
    pacer.close()
    pacer.close()  # idempotent


def test_a_garbled_count_next_to_a_retry_after_still_blocks(tmp_path: Path) -> None:
    pacer = SharedBucketPacer(30, 2, S, path=tmp_path / "p")
    with pytest.raises(tg.MalformedError):
        pacer.sync(0, call_limit="30 of 30", retry_after="3", now=S)
    assert pacer.blocked_until(S) == 4 * S
    assert pacer.acquire(1, 2 * S) == Pace(PaceAction.WAIT, 4 * S)
    pacer.block_until(2 * S)  # a later, shorter block never shortens it
    assert pacer.blocked_until(3 * S) == 4 * S
    assert pacer.acquire(1, 4 * S).send
    assert pacer.blocked_until(4 * S) == 0


def test_other_parameters_are_refused(tmp_path: Path) -> None:
    SharedBucketPacer(30, 2, S, S // 5, path=tmp_path / "p").close()
    with pytest.raises(tg.RegionError):
        SharedBucketPacer(30, 2, S, 0, path=tmp_path / "p")  # another margin: another mirror
    with pytest.raises(tg.RegionError):
        SharedLogPacer(29, S, path=tmp_path / "p")


def test_anonymous_pacers_are_fork_only() -> None:
    pacer = SharedLogPacer(50, S)
    with pytest.raises(TypeError, match="fork"):
        pickle.dumps(pacer)
    assert sum(run_in_processes("fork", _acquire_n, (pacer, 20, 0), WORKERS)) == 50


# Several processes, one pace.


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_one_bucket_mirror(method: str, tmp_path: Path) -> None:
    """Four processes asking 30 sends each at one instant get 29 in all (ShopBase's mirror
    with its margin), then exactly what drained: one more half a second later."""
    pacer, _ = shopbase_pair(tmp_path / "shop")
    counts = run_in_processes(method, _acquire_n, (pacer, 30, 0), WORKERS)
    assert sum(counts) == 29, counts
    assert sum(run_in_processes(method, _acquire_n, (pacer, 5, S // 2), WORKERS)) == 1
    assert pacer.acquire(1, S // 2) == Pace(PaceAction.WAIT, S)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_share_one_log_mirror(method: str, tmp_path: Path) -> None:
    pacer, _ = tiktok_pair(tmp_path / "api")
    assert sum(run_in_processes(method, _acquire_n, (pacer, 20, 0), WORKERS)) == 50
    # Nothing until the first entries leave the log of 1.05 s.
    assert sum(run_in_processes(method, _acquire_n, (pacer, 20, S), WORKERS)) == 0
    assert sum(run_in_processes(method, _acquire_n, (pacer, 20, S + S // 20), WORKERS)) == 50


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_header_synced_in_one_process_holds_back_the_others(method: str, tmp_path: Path) -> None:
    """One process sends at 0 and learns "25/30" from ShopBase: the shared mirror (29 with the
    margin) is raised so that its remaining is the server's, 5, for all the processes; a later
    "3/30" never lowers it."""
    pacer, _ = shopbase_pair(tmp_path / "shop")
    assert run_in_processes(method, _acquire_n, (pacer, 1, 0), 1) == [1]
    run_in_processes(method, _sync, (pacer, 0, {"call_limit": "25/30"}, S // 10), 1)
    assert sum(run_in_processes(method, _acquire_n, (pacer, 10, 0), WORKERS)) == 5
    run_in_processes(method, _sync, (pacer, 0, {"call_limit": "3/30"}, S // 10), 1)
    assert sum(run_in_processes(method, _acquire_n, (pacer, 10, 0), WORKERS)) == 0
    # Half a second later one request's worth has drained: one more, whoever asks.
    assert sum(run_in_processes(method, _acquire_n, (pacer, 10, S // 2), WORKERS)) == 1


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_retry_after_from_one_process_blocks_every_process(method: str, tmp_path: Path) -> None:
    pacer, _ = tiktok_pair(tmp_path / "api")
    run_in_processes(method, _sync, (pacer, 5 * S, {"retry_after": "2"}, 5 * S), 1)
    answers = run_in_processes(method, _first_answer, (pacer, 6 * S), WORKERS)
    assert answers == [(int(PaceAction.WAIT), 7 * S)] * WORKERS
    assert sum(run_in_processes(method, _acquire_n, (pacer, 20, 7 * S), WORKERS)) == 50


def test_pacing_shared_directory_across_spawned_processes(tmp_path: Path) -> None:
    """Pacing(shared=...) in four spawned processes (each with its own hash seed): one region
    per key, found by the same name everywhere, and one mirror: 29 sends at once in all, plus
    what drained while the test ran."""
    start = time.monotonic()
    results = run_in_processes("spawn", _pacing_sends, (str(tmp_path), 30), WORKERS)
    elapsed = time.monotonic() - start
    sent = sum(n for n, _ in results)
    assert 29 <= sent <= 29 + 2 * elapsed + 1, (sent, elapsed)
    paths = {p for _, p in results}
    assert len(paths) == 1
    (path,) = paths
    assert path.startswith(str(tmp_path / "shopbase-"))
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        [Path(path).name, Path(path).name + BLOCK_SUFFIX]
    )


def test_shared_pacers_keys_and_bounds(tmp_path: Path) -> None:
    factory = SharedPacers(tmp_path, tiktok_shop(), max_keys=2)
    a = factory(("h", "app", "1", "/x"))
    assert isinstance(a, SharedLogPacer)
    assert factory.path(("h", "app", "1", "/x")) != factory.path(("h", "app", "1", "/y"))
    assert factory.path(("1",)) != factory.path((1,)) != factory.path(("1", None))
    factory(("h", "app", "2", "/x"))
    with pytest.raises(tg.CapacityExceededError):
        factory(("h", "app", "3", "/x"))
    with pytest.raises(TypeError, match="str, bytes, int"):
        factory.path((object(),))
    no_shared = Vendor("mine", lambda: BucketPacer(1, 1, S), lambda m, u, h: u)
    with pytest.raises(TypeError, match="new_shared_pacer"):
        Pacing(no_shared, shared=tmp_path)
    with pytest.raises(TypeError, match="not both"):
        Pacing(shopbase(), shared=tmp_path, pacer_factory=lambda key: BucketPacer(1, 1, S))


def test_answers_read_through_one_pacing_pace_another(tmp_path: Path) -> None:
    """Two Pacings on one directory (as two worker processes would be): the headers of an
    answer given to one (a full count, a 429's Retry-After) make the other's calls wait."""
    one = Pacing(shopbase(jitter=0), shared=tmp_path)
    two = Pacing(shopbase(jitter=0), shared=tmp_path)
    call = one.call("GET", SB_URL, SB_IDS)
    assert call.ready() is None
    assert call.answered(200, {"X-Sb-Shop-Api-Call-Limit": "30/30"}) is None
    wait = two.call("GET", SB_URL, SB_IDS).ready()
    assert wait is not None and wait <= 0.51, wait  # a mirror of its own would send now
    other = {"X-App-Id": "7", "X-Shop-Id": "43"}
    call = two.call("GET", SB_URL, other)
    assert call.ready() is None
    retry = call.answered(429, {"Retry-After": "3"})
    assert retry is not None and retry > 1.0
    wait = one.call("GET", SB_URL, other).ready()
    assert wait is not None and 1.0 < wait <= 3.01, wait
    assert len(one) == len(two) == 2
