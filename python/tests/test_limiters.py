"""The limiters over the C ABI: the worked examples of docs/semantics.md, edges, argument checks and errors."""

from __future__ import annotations

import dataclasses
import time

import pytest

import tollgate as tg
from tollgate import Outcome

from conftest import SECOND


# --- quotas -------------------------------------------------------------------------------------


def test_quota_params_and_derived_values() -> None:
    q = tg.Quota(30, 2, SECOND)
    assert (q.burst, q.count, q.period) == (30, 2, SECOND)
    assert q.exact
    assert q.drain_ticks == 15 * SECOND
    # ⌊(2^64 − 1 − B·P') / C'⌋ with gcd(2, 10^9) = 2: C' = 1, P' = 5·10^8
    assert q.exact_span == (2**64 - 1 - 30 * 500_000_000) // 1
    assert q == tg.Quota.per_second(30, 2)
    assert q == tg.presets.shopbase_quota()
    assert tg.Quota.per_minute(10, 60) == tg.Quota(10, 60, 60 * SECOND)
    assert repr(q) == "Quota(burst=30, count=2, period=1000000000)"


@pytest.mark.parametrize(
    ("args", "status"),
    [
        ((0, 1, 1), "TG_STATUS_ZERO_BURST"),
        ((1, 0, 1), "TG_STATUS_ZERO_COUNT"),
        ((1, 1, 0), "TG_STATUS_ZERO_PERIOD"),
        ((2**63, 1, 2**63 - 1), "TG_STATUS_QUOTA_OVERFLOW"),
    ],
)
def test_quota_errors_name_the_problem(args: tuple[int, int, int], status: str) -> None:
    with pytest.raises(tg.QuotaError) as info:
        tg.Quota(*args)
    assert status in str(info.value)
    assert "tg_quota_init" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, tg.TollgateError)


def test_span_too_short_and_the_approximation() -> None:
    # 999 983 per second on nanosecond ticks: C' = 999 983, the exact span is about 5 hours.
    with pytest.raises(tg.SpanTooShortError, match="TG_STATUS_SPAN_TOO_SHORT"):
        tg.Quota(10, 999_983, SECOND)
    exact = tg.Quota(10, 999_983, SECOND, min_span=0)
    assert exact.exact
    assert exact.exact_span < 6 * 3600 * SECOND
    approx = tg.Quota(10, 999_983, SECOND, approximate=True)
    assert not approx.exact
    assert approx.exact_span >= tg.DEFAULT_MIN_SPAN
    assert "approximate" in repr(approx)


@pytest.mark.parametrize("bad", [-1, 2**64, 2**70])
def test_out_of_range_ints_raise_before_c(bad: int) -> None:
    with pytest.raises(tg.InvalidArgumentError) as info:
        tg.Quota(bad, 1, 1)
    assert info.value.status is None  # raised in Python: never reached C
    bucket = tg.LeakyBucket(1, 1, 1)
    with pytest.raises(tg.InvalidArgumentError, match="now"):
        bucket.decide(now=bad)
    with pytest.raises(tg.InvalidArgumentError, match="cost"):
        bucket.decide(bad, now=0)


@pytest.mark.parametrize("bad", [1.0, "3", None, True, b"1"])
def test_wrong_types_raise_before_c(bad: object) -> None:
    bucket = tg.LeakyBucket(5, 1, 1)
    with pytest.raises(tg.ArgumentTypeError):
        bucket.decide(bad, now=0)  # type: ignore[arg-type]
    if bad is not None:  # now=None means "read the clock"
        with pytest.raises(tg.ArgumentTypeError):
            bucket.decide(now=bad)  # type: ignore[arg-type]
    assert isinstance(pytest.raises(tg.ArgumentTypeError, tg.Quota, bad, 1, 1).value, TypeError)


def test_int_subclasses_are_accepted() -> None:
    import enum

    class N(enum.IntEnum):
        FIVE = 5

    bucket = tg.LeakyBucket(N.FIVE, 1, 1)
    assert bucket.decide(N.FIVE, now=0).allowed


# --- leaky bucket (docs/semantics.md#leaky-bucket) ------------------------------------------------


def test_shopbase_worked_example() -> None:
    bucket = tg.LeakyBucket(30, 2, SECOND)
    for i in range(29):
        d = bucket.decide(now=0)
        assert d.allowed and d.used == i + 1
    assert tg.headers.shop_api_call_limit(d) == "29/30"
    peek = bucket.peek(now=10 * SECOND)
    assert (peek.used, peek.remaining, peek.outcome) == (9, 21, Outcome.ALLOWED)
    assert tg.headers.shop_api_call_limit(peek) == "9/30"


def test_thirty_first_request_waits_half_a_second() -> None:
    bucket = tg.presets.shopbase_bucket()
    results = [bucket.decide(now=0) for _ in range(31)]
    assert all(d.allowed for d in results[:30])
    last = results[30]
    assert last.outcome is Outcome.LIMITED and last.verdict is Outcome.LIMITED
    assert (last.limit, last.used, last.remaining) == (30, 30, 0)
    assert last.retry_after == SECOND // 2
    assert last.reset_after == 15 * SECOND
    assert last.http_status == 429
    assert bucket.decide(now=SECOND // 2 - 1).outcome is Outcome.LIMITED
    assert bucket.decide(now=SECOND // 2).allowed


def test_never_and_zero_cost() -> None:
    bucket = tg.LeakyBucket(3, 1, 10)
    never = bucket.decide(4, now=0)
    assert never.outcome is Outcome.NEVER
    assert never.retry_after is None
    assert never.used == 0  # state unchanged
    with pytest.raises(tg.ZeroCostError, match="TG_STATUS_ZERO_COST"):
        bucket.decide(0, now=0)
    with pytest.raises(tg.ZeroCostError):
        bucket.peek(0, now=0)


def test_a_denial_costs_nothing_and_peek_spends_nothing() -> None:
    bucket = tg.LeakyBucket(2, 1, 10)
    assert bucket.decide(2, now=0).allowed
    assert bucket.peek(now=0).outcome is Outcome.LIMITED
    assert bucket.decide(now=0).outcome is Outcome.LIMITED
    assert bucket.decide(now=10).allowed  # exactly one unit drained, none spent by the denials


def test_is_drained_reset_and_set_quota() -> None:
    bucket = tg.LeakyBucket(10, 1, 10)
    assert bucket.is_drained(now=0)
    bucket.decide(5, now=0)
    assert not bucket.is_drained(now=49)
    assert bucket.is_drained(now=50)
    bucket.decide(5, now=100)
    bucket.reset()
    assert bucket.is_drained(now=100)
    bucket.decide(6, now=100)
    bucket.set_quota(tg.Quota(8, 1, 10), now=100)  # the level carries over: no free burst
    assert bucket.quota == tg.Quota(8, 1, 10)
    d = bucket.peek(now=100)
    assert (d.used, d.limit) == (6, 8)
    with pytest.raises(tg.ArgumentTypeError):
        bucket.set_quota((8, 1, 10), now=100)  # type: ignore[arg-type]


def test_clock_out_of_range() -> None:
    bucket = tg.LeakyBucket(tg.Quota(10, 999_983, SECOND, min_span=0))
    span = bucket.quota.exact_span
    assert bucket.decide(now=span).allowed
    with pytest.raises(tg.ClockOutOfRangeError, match="TG_STATUS_CLOCK_OUT_OF_RANGE"):
        bucket.decide(now=span + 1)


def test_default_clock_is_monotonic_ns() -> None:
    bucket = tg.LeakyBucket.per_second(5, 1)
    before = time.monotonic_ns()
    d = bucket.decide()
    assert d.allowed and bucket.ticks_per_second == SECOND
    # an explicit `now` just after the default clock's reading sees the same level
    assert bucket.peek(now=max(before, time.monotonic_ns())).used >= 1


def test_custom_clock() -> None:
    ticks = [0]
    bucket = tg.LeakyBucket.per_second(1, 1, clock=lambda: ticks[0], ticks_per_second=1000)
    assert bucket.decide().allowed
    assert bucket.decide().retry_after == 1000
    ticks[0] = 1000
    assert bucket.decide().allowed
    with pytest.raises(tg.ArgumentTypeError):
        tg.LeakyBucket(1, 1, 1, ticks_per_second=1000)  # a rate without its clock
    with pytest.raises(tg.ArgumentTypeError):
        tg.LeakyBucket(1, 1, 1, clock=5)  # type: ignore[arg-type]
    ticks[0] = -1
    with pytest.raises(tg.InvalidArgumentError):
        bucket.decide()


def test_shadow_mode_reports_but_allows() -> None:
    bucket = tg.LeakyBucket(1, 1, 100, shadow=True)
    first = bucket.decide(now=0)
    assert first.allowed and first.shadow and not first.would_limit
    second = bucket.decide(now=0)
    assert second.allowed and second.shadow
    assert second.verdict is Outcome.LIMITED and second.would_limit
    assert second.retry_after == 100


def test_check_raises_refusals() -> None:
    bucket = tg.LeakyBucket(1, 1, 100)
    assert bucket.check(now=0).allowed
    with pytest.raises(tg.LimitedError) as info:
        bucket.check(now=0)
    assert info.value.decision.retry_after == 100
    with pytest.raises(tg.LimitedError) as never:
        bucket.check(2, now=0)
    assert never.value.decision.outcome is Outcome.NEVER


# --- decisions -------------------------------------------------------------------------------------


def test_decisions_are_immutable_values() -> None:
    d = tg.LeakyBucket(2, 1, 1).decide(now=0)
    with pytest.raises(AttributeError):
        d.used = 5  # type: ignore[misc]
    assert d == tg.Decision(Outcome.ALLOWED, Outcome.ALLOWED, 2, 1, 1, 0, 1, 0)
    assert hash(d) == hash(tuple(d))
    assert d._replace(used=2).used == 2 and d.used == 1
    assert not dataclasses.is_dataclass(d)


def test_http_status_comes_from_the_library() -> None:
    assert Outcome.ALLOWED.http_status is None
    assert Outcome.LIMITED.http_status == 429
    assert Outcome.NEVER.http_status == 429
    assert Outcome.OVERLOADED.http_status == 503


def test_as_shadow_via_the_library() -> None:
    d = tg.Decision(Outcome.LIMITED, Outcome.LIMITED, 30, 30, 0, 5, 9, 0)
    s = d.as_shadow()
    assert s.outcome is Outcome.ALLOWED and s.verdict is Outcome.LIMITED and s.shadow
    with pytest.raises(tg.InvalidArgumentError):
        tg.Decision(7, 7, 1, 1, 0, 0, 0, 0).as_shadow()  # type: ignore[arg-type]


# --- fixed window (docs/semantics.md#fixed-window) ------------------------------------------------


def test_fixed_window_counts_per_window() -> None:
    w = tg.FixedWindow(3, 100)
    assert [w.decide(now=10).allowed for _ in range(4)] == [True, True, True, False]
    denied = w.decide(now=40)
    assert (denied.used, denied.remaining, denied.retry_after, denied.reset_after) == (3, 0, 60, 60)
    assert w.decide(now=100).allowed  # next window
    # up to 2N across an edge, as documented
    w2 = tg.FixedWindow(3, 100)
    admitted = sum(w2.decide(now=t).allowed for t in [99, 99, 99, 100, 100, 100])
    assert admitted == 6


def test_fixed_window_offset_never_earlier_now_and_errors() -> None:
    w = tg.FixedWindow(2, 100, 30)
    assert w.params == (2, 100, 30)
    assert w.decide(now=30).reset_after == 100
    assert w.decide(3, now=30).outcome is Outcome.NEVER
    w.decide(now=130)
    # an earlier window is judged in the stored one
    late = w.peek(now=50)
    assert late.used == 1 and late.reset_after == 230 - 50  # to the stored window's end
    assert not w.is_drained(now=130) and w.is_drained(now=230)
    w.reset()
    assert w.is_drained(now=130)
    w.set_quota(5, 100, 30, now=130)
    assert w.params == (5, 100, 30)
    assert w.span > 0
    with pytest.raises(tg.QuotaError, match="OFFSET_OUT_OF_RANGE"):
        tg.FixedWindow(1, 10, 10)
    with pytest.raises(tg.QuotaError, match="QUOTA_OVERFLOW"):
        tg.FixedWindow(tg.WINDOW_MAX_LIMIT + 1, 10)


def test_tiktok_window_preset_and_policy_header() -> None:
    w = tg.presets.tiktok_shop_window()
    assert w.params == (50, SECOND, 0)
    d = w.decide(now=0)
    assert w.headers(d) == {
        "X-Sb-Shop-Api-Call-Limit": "1/50",
        "RateLimit": '"tiktok";r=49;t=1',
        "RateLimit-Policy": '"tiktok";q=50;w=1',
    }


# --- sliding log (docs/semantics.md#sliding-window-log) -------------------------------------------


def test_sliding_log_any_window() -> None:
    log = tg.SlidingLog(3, 100)
    assert all(log.decide(now=t).allowed for t in (0, 10, 20))
    d = log.decide(now=99)
    assert d.outcome is Outcome.LIMITED and d.retry_after == 1 and d.reset_after == 21
    assert log.decide(now=100).allowed  # (0, 100]: the entry at 0 left
    assert log.used(now=100) == 3
    assert log.next_admit_time(now=100) == 110
    assert log.next_admit_time(4, now=100) is None
    assert log.decide(4, now=100).outcome is Outcome.NEVER
    log.reset()
    assert log.used(now=100) == 0


def test_sliding_log_capacity_and_client_preset() -> None:
    with pytest.raises(tg.CapacityExceededError, match="TG_STATUS_CAPACITY_EXCEEDED"):
        tg.SlidingLog(tg.SLIDING_LOG_CAPACITY + 1, 10)
    log = tg.presets.tiktok_shop_client_log(jitter_margin=SECOND // 10)
    for _ in range(50):
        assert log.decide(now=0).allowed
    assert log.next_admit_time(now=0) == SECOND + SECOND // 10
    assert log.headers(log.peek(now=0))["RateLimit-Policy"] == '"tiktok";q=50;w=2'


# --- concurrency (docs/semantics.md#concurrency-limit) --------------------------------------------


def test_concurrency_context_manager_releases() -> None:
    limit = tg.ConcurrencyLimit(2)
    with limit as d:
        assert d.allowed and limit.in_flight == 1
        with limit.permit():
            assert limit.in_flight == 2
            with pytest.raises(tg.OverloadedError) as info:
                with limit:
                    pass  # never reached
            assert info.value.decision.outcome is Outcome.OVERLOADED
            assert info.value.decision.http_status == 503
            with limit.try_permit() as refused:
                assert not refused.allowed
            assert limit.in_flight == 2
    assert limit.in_flight == 0 and limit.max == 2


def test_concurrency_releases_on_exceptions_and_never_underflows() -> None:
    limit = tg.ConcurrencyLimit(1)
    with pytest.raises(KeyError):
        with limit:
            raise KeyError("boom")
    assert limit.in_flight == 0
    with pytest.raises(tg.NotAcquiredError, match="TG_STATUS_NOT_ACQUIRED"):
        limit.release()
    assert limit.acquire().allowed
    refused = limit.acquire()
    assert refused.outcome is Outcome.OVERLOADED and refused.retry_after is None
    limit.release()
    assert tg.ConcurrencyLimit(0).acquire().outcome is Outcome.OVERLOADED
    with pytest.raises(tg.InvalidArgumentError):
        tg.ConcurrencyLimit(2**32)


# --- wrapping clock (docs/semantics.md#wrapping-counters) -----------------------------------------


def test_wrapping_clock_extends_a_32_bit_counter() -> None:
    raw = [2**32 - 10]
    clock = tg.WrappingClock(lambda: raw[0])
    assert clock.last == 2**32 - 10
    raw[0] = 5  # wrapped
    assert clock.now() == 2**32 + 5
    raw[0] = 2**32 - 1
    assert clock() == 2 * 2**32 - 1
    raw[0] = 0
    assert clock.now() == 2 * 2**32
    # usable as a limiter clock
    bucket = tg.LeakyBucket(1, 1, 1000, clock=clock, ticks_per_second=1000)
    assert bucket.decide().allowed


def test_wrapping_clock_read_errors_leave_it_unchanged() -> None:
    values: list[object] = [100]
    clock = tg.WrappingClock(lambda: values[0])  # type: ignore[return-value]
    values[0] = "x"
    with pytest.raises(tg.ArgumentTypeError):
        clock.now()
    values[0] = 2**32
    with pytest.raises(tg.InvalidArgumentError):
        clock.now()

    def fail() -> int:
        raise OSError("sensor gone")

    clock._read = fail  # type: ignore[assignment]
    with pytest.raises(OSError, match="sensor gone"):
        clock.now()
    assert clock.last == 100
    clock._read = lambda: 150  # type: ignore[assignment]
    assert clock.now() == 150


# --- pagination (docs/semantics.md#deep-pagination) -----------------------------------------------


def test_pagination_rule() -> None:
    assert tg.pagination.check_query("limit=250&page=401") is Outcome.NEVER
    assert tg.pagination.check_query("limit=250&page=400") is Outcome.ALLOWED
    assert tg.pagination.check_query(b"page=9999999") is Outcome.ALLOWED  # no limit: not paging
    assert tg.pagination.check_offset(2**32, 2**32) is Outcome.NEVER  # no wrapping
    assert tg.pagination.check_offset(10, 10, max_offset=99) is Outcome.NEVER
    with pytest.raises(tg.MalformedError, match="TG_STATUS_MALFORMED"):
        tg.pagination.check_query("limit=ten&page=1")
    with pytest.raises(tg.InvalidArgumentError):
        tg.pagination.check_offset(-1, 1)


def test_allow_is_decide_as_a_bool() -> None:
    for make in (
        lambda **kw: tg.LeakyBucket(2, 1, 100, **kw),
        lambda **kw: tg.FixedWindow(2, 100, **kw),
        lambda **kw: tg.SlidingLog(2, 100, **kw),
    ):
        limiter = make()
        assert [limiter.allow(now=0) for _ in range(3)] == [True, True, False]
        assert limiter.allow(3, now=0) is False  # Never
        assert limiter.peek(now=0).used == 2  # allow spent like decide
        with pytest.raises(tg.ZeroCostError):
            limiter.allow(0, now=0)
        with pytest.raises(tg.InvalidArgumentError):
            limiter.allow(now=-1)
        shadow = make(shadow=True)
        assert all(shadow.allow(now=0) for _ in range(3))
        assert shadow.peek(now=0).used == 2


def test_allow_matches_decide_on_a_twin() -> None:
    import random

    rng = random.Random(7)
    for make in (
        lambda: tg.LeakyBucket(5, 2, 100),
        lambda: tg.FixedWindow(5, 100),
        lambda: tg.SlidingLog(5, 100),
    ):
        fast, full = make(), make()
        now = 0
        for _ in range(500):
            now += rng.choice([0, 0, 1, 7, 40, 150])
            cost = rng.choice([1, 1, 1, 2, 6])
            assert fast.allow(cost, now=now) == full.decide(cost, now=now).allowed
        assert fast.peek(now=now) == full.peek(now=now)


def test_lying_int_subclasses_are_checked_as_their_real_value() -> None:
    class Liar(int):
        """An int whose comparisons always pass a range check."""

        def __le__(self, other: object) -> bool:
            return True

        def __ge__(self, other: object) -> bool:
            return True

        def __lt__(self, other: object) -> bool:
            return False

        def __gt__(self, other: object) -> bool:
            return False

    bucket = tg.LeakyBucket(5, 1, 1)
    for bad in (Liar(-1), Liar(2**64), Liar(2**70)):
        with pytest.raises(tg.InvalidArgumentError, match="now"):
            bucket.decide(now=bad)
        with pytest.raises(tg.InvalidArgumentError, match="now"):
            bucket.allow(now=bad)
        with pytest.raises(tg.InvalidArgumentError, match="cost"):
            bucket.decide(bad, now=0)
        with pytest.raises(tg.InvalidArgumentError):
            tg.Quota(bad, 1, 1)
    # A well-behaved subclass still works, and reaches C as its value.
    assert bucket.allow(Liar(5), now=0)
    assert bucket.peek(now=0).used == 5


def test_a_limited_wait_of_two_to_the_64_minus_one_ticks_is_not_never() -> None:
    window = tg.FixedWindow(1, 2**64 - 1)
    assert window.decide(now=0).allowed
    d = window.decide(now=0)
    assert d.outcome is Outcome.LIMITED
    assert d.retry_after == 2**64 - 1
    assert window.headers(d, ticks_per_second=1)["Retry-After"] == str(2**64 - 1)
    never = window.decide(2, now=0)
    assert never.outcome is Outcome.NEVER and never.retry_after is None
    assert "Retry-After" not in window.headers(never, ticks_per_second=1)
