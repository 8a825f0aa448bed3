"""Periods and windows given in seconds: converted to ticks exactly, or refused with a hint."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

import tollgate as tg
from tollgate.table import WindowQuota, random_seed

MS = 1_000  # a millisecond clock
NS = 1_000_000_000


def ms_clock() -> int:
    return 0


@pytest.mark.parametrize(
    ("seconds", "ticks_per_second", "ticks"),
    [
        (1, NS, NS),
        (60, MS, 60_000),
        (0.5, MS, 500),
        (0.25, 4, 1),
        (Fraction(1, 10), MS, 100),
        (Fraction(2, 3), 3, 2),
        (Decimal("0.1"), MS, 100),
        (1.5, 2, 3),
    ],
)
def test_quota_period_in_seconds_equals_the_ticks(
    seconds: object, ticks_per_second: int, ticks: int
) -> None:
    q = tg.Quota(30, 2, period_s=seconds, ticks_per_second=ticks_per_second)
    assert q == tg.Quota(30, 2, ticks)
    assert q.period == ticks
    assert WindowQuota.from_seconds(5, seconds, ticks_per_second) == WindowQuota(5, ticks)


def test_the_default_clock_is_nanoseconds() -> None:
    assert tg.Quota(30, 2, period_s=1) == tg.Quota(30, 2, NS)
    assert tg.Quota(1, 1, period_s=0.5).period == NS // 2
    assert WindowQuota.from_seconds(50, 1) == WindowQuota(50, NS)


def test_a_float_that_is_not_the_number_it_reads_as_is_refused_with_a_hint() -> None:
    with pytest.raises(tg.InvalidArgumentError, match=r"0\.1 s is not exact as a float: pass Fraction\(1, 10\)"):
        tg.Quota(1, 1, period_s=0.1, ticks_per_second=MS)
    with pytest.raises(tg.InvalidArgumentError, match="not exact as a float"):
        WindowQuota.from_seconds(1, 0.001, MS)
    # 0.1's binary value times 10**9 is not a whole number either: refused on nanoseconds too.
    with pytest.raises(tg.InvalidArgumentError, match="not exact as a float"):
        tg.Quota(1, 1, period_s=0.1)
    with pytest.raises(tg.InvalidArgumentError, match="and 1/10 s is not a whole number of ticks at 3"):
        tg.Quota(1, 1, period_s=0.1, ticks_per_second=3)


def test_a_time_that_is_not_a_whole_number_of_ticks_is_refused() -> None:
    with pytest.raises(tg.InvalidArgumentError, match="not a whole number of ticks at 1000"):
        tg.Quota(1, 1, period_s=Fraction(1, 3), ticks_per_second=MS)
    with pytest.raises(tg.InvalidArgumentError, match="not a whole number of ticks"):
        tg.Quota(1, 1, period_s=Decimal("0.0005"), ticks_per_second=MS)
    with pytest.raises(tg.InvalidArgumentError, match="not a whole number of ticks"):
        tg.FixedWindow(1, window_s=0.0625, clock=ms_clock, ticks_per_second=MS)


def test_bad_seconds_are_refused() -> None:
    for bad in (float("nan"), float("inf"), Decimal("NaN")):
        with pytest.raises(tg.InvalidArgumentError, match="finite"):
            tg.Quota(1, 1, period_s=bad)
    with pytest.raises(tg.InvalidArgumentError, match="negative"):
        tg.Quota(1, 1, period_s=-1)
    with pytest.raises(tg.InvalidArgumentError, match="more than 2\\*\\*64 - 1"):
        tg.Quota(1, 1, period_s=2**64 // NS + 1)
    with pytest.raises(tg.ArgumentTypeError, match="not bool"):
        tg.Quota(1, 1, period_s=True)
    with pytest.raises(tg.ArgumentTypeError, match="not str"):
        tg.Quota(1, 1, period_s="1")
    with pytest.raises(tg.QuotaError):
        tg.Quota(1, 1, period_s=0)  # zero ticks: the quota's own error


def test_ticks_and_seconds_are_never_both_or_neither() -> None:
    with pytest.raises(tg.ArgumentTypeError, match="one of them"):
        tg.Quota(1, 1, 1000, period_s=1)
    with pytest.raises(tg.ArgumentTypeError, match="one of them"):
        tg.Quota(1, 1)
    with pytest.raises(tg.ArgumentTypeError, match="one of them"):
        tg.FixedWindow(1)
    with pytest.raises(tg.ArgumentTypeError, match="one of them"):
        tg.SlidingLog(1, 10, window_s=1)
    with pytest.raises(tg.ArgumentTypeError):
        tg.LeakyBucket(tg.Quota(1, 1, 1), period_s=1)


def test_limiters_take_seconds_of_their_own_clock() -> None:
    b = tg.LeakyBucket(30, 2, period_s=1, clock=ms_clock, ticks_per_second=MS)
    assert b.quota == tg.Quota(30, 2, MS)
    w = tg.FixedWindow(50, window_s=Fraction(1, 2), clock=ms_clock, ticks_per_second=MS)
    assert w.params == (50, 500, 0)
    log = tg.SlidingLog(5, window_s=Decimal("1.5"), clock=ms_clock, ticks_per_second=MS)
    assert log.decide(1, now=0).allowed
    # The default clock: nanoseconds.
    assert tg.FixedWindow(50, window_s=1).params == (50, NS, 0)
    # A custom clock without ticks_per_second cannot convert seconds.
    with pytest.raises(tg.ArgumentTypeError, match="needs ticks_per_second"):
        tg.FixedWindow(50, window_s=1, clock=ms_clock)


def test_random_seed_is_two_u64_and_differs() -> None:
    a, b = random_seed(), random_seed()
    assert a != b
    assert all(0 <= k < 2**64 for k in a + b)
    t = tg.KeyTable(5, tg.Quota(1, 1, period_s=1), seed=a)
    assert t.decide(tg.key_pair(1, 2), now=0).allowed


def test_the_c_seed_draw_fills_two_words() -> None:
    import ctypes

    from tollgate._ffi import lib

    words = (ctypes.c_uint64 * 2)()
    assert lib.tg_seed_random(words) == 0
    again = (ctypes.c_uint64 * 2)()
    assert lib.tg_seed_random(again) == 0
    assert list(words) != list(again)
