"""The client toolkit over the C ABI (docs/semantics.md#client-toolkit)."""

from __future__ import annotations

import threading

import pytest

import tollgate as tg
from tollgate import client as c

from conftest import SECOND

MS = 1_000_000


def test_bucket_pacer_mirror_with_jitter_margin() -> None:
    # ShopBase, 30 and 2/s, 200 ms of jitter: a mirror of 29.
    pacer = c.BucketPacer(30, 2, SECOND, 200 * MS)
    paces = [pacer.acquire(now=0) for _ in range(30)]
    assert all(p.send and p.at == 0 for p in paces[:29])
    assert paces[29] == c.Pace(c.PaceAction.WAIT, SECOND // 2)
    assert pacer.next_send(now=0) == SECOND // 2
    assert pacer.acquire(now=SECOND // 2).send
    assert pacer.acquire(31, now=SECOND).action is c.PaceAction.NEVER
    assert pacer.acquire(31, now=SECOND).at is None
    assert pacer.next_send(31, now=SECOND) is None
    with pytest.raises(tg.ZeroCostError):
        pacer.acquire(0, now=0)
    with pytest.raises(tg.CapacityExceededError):
        c.BucketPacer(1, 2, SECOND, SECOND)  # the margin leaves no burst


def test_reserve_books_a_schedule() -> None:
    pacer = c.BucketPacer(2, 1, 100)
    assert [pacer.reserve(now=0) for _ in range(5)] == [0, 0, 100, 200, 300]
    assert pacer.reserve(3, now=0) is None


def test_sync_with_server_headers() -> None:
    pacer = c.BucketPacer(30, 2, SECOND)
    assert pacer.next_send(now=0) == 0
    # the server counted 30 of 30 for a request sent at 0: the mirror is full
    pacer.sync(0, call_limit="30/30", now=0, now_unix=1_000)
    assert pacer.next_send(now=0) == SECOND // 2
    # a 429 with Retry-After: 5 received at t=1 s blocks until 6 s
    pacer.sync(0, retry_after="5", now=SECOND, now_unix=1_000)
    assert pacer.next_send(now=SECOND) == 6 * SECOND
    # an HTTP-date Retry-After, 10 s after now_unix
    pacer.sync(0, retry_after="Thu, 01 Jan 1970 00:16:50 GMT", now=SECOND, now_unix=1_000)
    assert pacer.next_send(now=SECOND) == 11 * SECOND
    # a garbled count is reported, the Retry-After next to it still honoured
    with pytest.raises(tg.MalformedError):
        pacer.sync(0, call_limit="lots", retry_after="20", now=SECOND, now_unix=1_000)
    assert pacer.next_send(now=SECOND) == 21 * SECOND
    # the pacer needs its ticks per second for Retry-After
    raw = c.BucketPacer(1, 1, 1, clock=lambda: 0)
    with pytest.raises(tg.ArgumentTypeError):
        raw.sync(0, retry_after="1")


def test_observe_call_limit_and_block_until() -> None:
    pacer = c.BucketPacer(10, 1, 100)
    pacer.observe_call_limit(0, 10, 10)
    assert pacer.next_send(now=0) == 100
    pacer.observe_call_limit(0, 0, 10)  # never lowers the level
    assert pacer.next_send(now=0) == 100
    pacer.block_until(1_000)
    pacer.block_until(500)  # never shortens
    assert pacer.next_send(now=0) == 1_000
    with pytest.raises(tg.InvalidArgumentError, match="TG_STATUS_INVALID_ARGUMENT"):
        pacer.observe_call_limit(0, 11, 10)


def test_log_pacer_for_tiktok() -> None:
    # 50 per 1000 ms with 25 ms of jitter: 50 per 1025 ms
    pacer = c.LogPacer(50, 1000 * MS, 25 * MS)
    for _ in range(50):
        assert pacer.acquire(now=0).send
    assert pacer.acquire(now=0) == c.Pace(c.PaceAction.WAIT, 1025 * MS)
    pacer.sync(0, retry_after="2", now=0, now_unix=0)  # a window server sends only Retry-After
    assert pacer.next_send(now=0) == 2 * SECOND
    with pytest.raises(tg.CapacityExceededError):
        c.LogPacer(tg.SLIDING_LOG_CAPACITY + 1, 10)


def test_parsers() -> None:
    assert c.parse_call_limit("22/30") == c.CallLimit(22, 30)
    assert c.parse_call_limit(b" 0/1\t") == c.CallLimit(0, 1)
    for bad in ("", "31/30", "1/0", "a/b", "1/2/3", f"{2**64}/1"):
        with pytest.raises(tg.MalformedError):
            c.parse_call_limit(bad)
    assert c.parse_retry_after("120") == 120
    imf = "Sun, 06 Nov 1994 08:49:37 GMT"  # 784111777
    assert c.parse_retry_after(imf, now_unix=784111777 - 30) == 30
    assert c.parse_retry_after(imf, now_unix=784111777 + 30) == 0
    assert c.parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now_unix=784111777 - 1) == 1
    assert c.parse_retry_after("Sun Nov  6 08:49:37 1994", now_unix=784111777 - 2) == 2
    for bad in ("", "-1", "soon", "Mon, 06 Nov 1994 08:49:37 GMT"):
        with pytest.raises(tg.MalformedError):
            c.parse_retry_after(bad, now_unix=0)
    with pytest.raises(tg.InvalidArgumentError):
        c.parse_retry_after("1", now_unix=-1)


def test_backoff() -> None:
    b = c.Backoff(100, 1_000, 5, c.Jitter.NONE)
    assert [b.next_delay() for _ in range(6)] == [100, 200, 400, 800, 1_000, None]
    assert b.retries == 5
    b.reset()
    assert b.retries == 0
    assert b.next_delay(retry_after=5_000) == 5_000  # never shorter than Retry-After
    for jitter in c.Jitter:
        seeded = [c.Backoff(100, 10_000, 8, jitter, seed=42) for _ in range(2)]
        delays = [[s.next_delay() for _ in range(8)] for s in seeded]
        assert delays[0] == delays[1]  # a seed makes it reproducible
        assert all(d is not None and 0 <= d <= 10_000 for d in delays[0])
    full = c.Backoff(100, 10_000, 50, c.Jitter.FULL, seed=1)
    assert len({full.next_delay() for _ in range(50)}) > 10  # randomised
    with pytest.raises(tg.InvalidArgumentError):
        c.Backoff(0, 10, 1)
    with pytest.raises(tg.InvalidArgumentError):
        c.Backoff(10, 5, 1)
    with pytest.raises(tg.InvalidArgumentError):
        c.Backoff(10, 50, 1, 7)  # type: ignore[arg-type]


def test_retry_budget() -> None:
    budget = c.RetryBudget(10 * SECOND, 100, 2)  # 10 % of successes plus 2
    assert budget.available(now=0) == 2
    assert budget.try_retry(now=0) and budget.try_retry(now=0)
    assert not budget.try_retry(now=0)
    for _ in range(20):
        budget.record_success(now=SECOND)
    assert budget.available(now=SECOND) == 2  # 2 + 20 × 10 % − 2 used
    assert budget.try_retry(now=SECOND)
    with pytest.raises(tg.InvalidArgumentError):
        c.RetryBudget(c.RETRY_BUDGET_SLOTS - 1, 100, 1)


def test_retry_classification_and_next_step() -> None:
    assert c.retry_class_of_status(200) is c.RetryClass.SUCCESS
    assert c.retry_class_of_status(429) is c.RetryClass.RETRYABLE
    assert c.retry_class_of_status(503) is c.RetryClass.RETRYABLE
    assert c.retry_class_of_status(404) is c.RetryClass.FATAL
    assert c.retry_class_of_status(99) is c.RetryClass.FATAL
    assert c.retry_class_of_outcome(tg.Outcome.NEVER) is c.RetryClass.FATAL
    assert c.retry_class_of_outcome(tg.Outcome.LIMITED) is c.RetryClass.RETRYABLE
    assert c.retry_class_of_transport_error() is c.RetryClass.RETRYABLE
    with pytest.raises(tg.InvalidArgumentError):
        c.retry_class_of_outcome(9)  # type: ignore[arg-type]

    backoff = c.Backoff(100, 1_000, 2, c.Jitter.NONE)
    budget = c.RetryBudget(10 * SECOND, 0, 5)
    step = c.next_step(c.RetryClass.RETRYABLE, backoff, budget, retry_after=500, now=1_000)
    assert step == c.Next(c.NextAction.RETRY, c.GiveUp.NONE, 1_500)
    assert c.next_step(c.RetryClass.RETRYABLE, backoff, budget, now=2_000).at == 2_200
    assert (
        c.next_step(c.RetryClass.RETRYABLE, backoff, budget, now=3_000).give_up
        is c.GiveUp.ATTEMPTS_EXHAUSTED
    )
    assert c.next_step(c.RetryClass.FATAL, backoff, budget, now=3_000).give_up is c.GiveUp.FATAL
    assert c.next_step(c.RetryClass.SUCCESS, backoff, budget, now=3_000).action is c.NextAction.DONE
    empty = c.RetryBudget(10 * SECOND, 0, 0)
    fresh = c.Backoff(100, 1_000, 2)
    assert (
        c.next_step(c.RetryClass.RETRYABLE, fresh, empty, now=0).give_up
        is c.GiveUp.BUDGET_EXHAUSTED
    )
    assert fresh.retries == 0  # nothing counted when the budget refuses


def test_request_queue() -> None:
    q = c.RequestQueue()
    assert len(q) == 0 and q.pop() is None
    pacer = c.BucketPacer(2, 1, 100)
    assert q.release(pacer, now=0) == c.Release(c.ReleaseAction.EMPTY, None, None)
    for i in range(c.REQUEST_QUEUE_CAPACITY):
        q.push(i)
    with pytest.raises(tg.CapacityExceededError):
        q.push(999)
    assert len(q) == c.REQUEST_QUEUE_CAPACITY
    assert q.release(pacer, now=0) == c.Release(c.ReleaseAction.SEND, 0, None)
    assert q.release(pacer, now=0) == c.Release(c.ReleaseAction.SEND, 1, None)
    assert q.release(pacer, now=0) == c.Release(c.ReleaseAction.WAIT, None, 100)
    assert q.pop() == 2  # cancel the next one
    assert q.release(c.LogPacer(1, 10), now=0).id == 3
    with pytest.raises(tg.ArgumentTypeError):
        q.release(tg.LeakyBucket(1, 1, 1), now=0)  # type: ignore[arg-type]


def test_queue_shared_by_threads_loses_no_id() -> None:
    q = c.RequestQueue()
    taken: list[int] = []
    lock = threading.Lock()

    def producer(base: int) -> None:
        for i in range(200):
            while True:
                try:
                    q.push(base + i)
                    break
                except tg.CapacityExceededError:
                    pass

    def consumer() -> None:
        got = 0
        while got < 200:
            item = q.pop()
            if item is not None:
                with lock:
                    taken.append(item)
                got += 1

    threads = [threading.Thread(target=producer, args=(k * 1_000,)) for k in range(4)]
    threads += [threading.Thread(target=consumer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == sorted(k * 1_000 + i for k in range(4) for i in range(200))


def test_shared_pacer_is_serialised() -> None:
    pacer = c.BucketPacer(100, 1, 2**40)
    sends = [0] * 8

    def worker(i: int) -> None:
        for _ in range(50):
            sends[i] += pacer.acquire(now=0).send

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sends) == 100
