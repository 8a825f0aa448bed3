"""Quotas and the limiters of docs/semantics.md: leaky bucket, fixed window, sliding log, concurrency.

Every limiter keeps its state in a fixed-size C struct owned by the Python object. Times are
ticks of a clock the caller owns: by default ``time.monotonic_ns`` (10**9 ticks per second);
pass ``clock=`` (a callable returning ticks) and ``ticks_per_second=``, or give ``now=`` to each
call. Bucket, window and concurrency decisions are lock-free in C and ctypes releases the GIL
around each call, so one limiter can be shared by any number of threads.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Callable

from . import headers as _headers
from ._ffi import TgBucket, TgConcurrency, TgDecision, TgQuota, TgSlidingLog, TgWindow, lib
from ._util import (
    NANOS_PER_SECOND,
    U64_MAX,
    check,
    Seconds,
    positive_u64,
    seconds_to_ticks,
    u32,
    u64,
)
from .decision import Decision, Outcome, from_c
from .errors import ArgumentTypeError, LimitedError, OverloadedError

Clock = Callable[[], int]


def _clock_args(clock: Clock | None, ticks_per_second: int | None) -> tuple[Clock, int | None]:
    if clock is None:
        if ticks_per_second not in (None, NANOS_PER_SECOND):
            raise ArgumentTypeError(
                "ticks_per_second without clock: the default clock is time.monotonic_ns "
                f"({NANOS_PER_SECOND} ticks per second); pass clock= too"
            )
        return time.monotonic_ns, NANOS_PER_SECOND
    if not callable(clock):
        raise ArgumentTypeError(f"clock must be callable, not {type(clock).__name__}")
    if ticks_per_second is not None:
        ticks_per_second = positive_u64("ticks_per_second", ticks_per_second)
    return clock, ticks_per_second


def _ticks(name: str, ticks: object, seconds: object, ticks_per_second: int | None) -> int:
    """A period or window given as ``name`` (ticks) or ``name_s`` (seconds), exactly one."""
    if (ticks is None) == (seconds is None):
        raise ArgumentTypeError(f"give {name} (ticks) or {name}_s (seconds), one of them")
    if seconds is None:
        return u64(name, ticks)
    if ticks_per_second is None:
        raise ArgumentTypeError(f"{name}_s needs ticks_per_second with a custom clock")
    return seconds_to_ticks(f"{name}_s", seconds, ticks_per_second)


class Quota:
    """A validated leaky-bucket quota: ``burst`` B ≥ 1 draining exactly ``count`` per ``period``.

    The rate is the exact rational count/period ticks, with no drift. By default the exact
    arithmetic must reach at least 2**56 ticks (``TG_QUOTA_DEFAULT_MIN_SPAN``); pass
    ``min_span`` to ask for another reach (0: any quota that fits), and ``approximate=True`` to
    accept a conservative approximation (never admitting more) when exact arithmetic cannot
    reach ``min_span``. Raises :class:`~tollgate.QuotaError` naming the problem.

    The period is ticks (``period``), or seconds (``period_s=``, keyword only) on a clock of
    ``ticks_per_second`` (default 10**9, the default clock's nanoseconds) when they convert
    exactly: ``Quota(30, 2, period_s=1)``, ``Quota(5, 1, period_s=Fraction(1, 10))``. A time
    that is not a whole number of ticks, or a float such as ``0.1`` that is not the number it
    reads as, is refused with the exact value to pass instead.
    """

    __slots__ = ("_raw",)

    def __init__(
        self,
        burst: int,
        count: int,
        period: int | None = None,
        *,
        period_s: Seconds | None = None,
        ticks_per_second: int = NANOS_PER_SECOND,
        min_span: int | None = None,
        approximate: bool = False,
    ) -> None:
        burst = u64("burst", burst)
        count = u64("count", count)
        period = _ticks("period", period, period_s, ticks_per_second)
        self._raw = TgQuota()
        if approximate:
            span = DEFAULT_MIN_SPAN if min_span is None else u64("min_span", min_span)
            status = lib.tg_quota_init_approximate(self._raw, burst, count, period, span)
            check(status, "tg_quota_init_approximate")
        elif min_span is not None:
            span = u64("min_span", min_span)
            status = lib.tg_quota_init_min_span(self._raw, burst, count, period, span)
            check(status, "tg_quota_init_min_span")
        else:
            check(lib.tg_quota_init(self._raw, burst, count, period), "tg_quota_init")

    @classmethod
    def per_second(
        cls, burst: int, per_second: int, ticks_per_second: int = NANOS_PER_SECOND, **kw: object
    ) -> Quota:
        """A bucket of ``burst`` draining ``per_second`` requests per second of the clock."""
        return cls(burst, per_second, ticks_per_second, **kw)  # type: ignore[arg-type]

    @classmethod
    def per_minute(
        cls, burst: int, per_minute: int, ticks_per_second: int = NANOS_PER_SECOND, **kw: object
    ) -> Quota:
        """A bucket of ``burst`` draining ``per_minute`` requests per minute of the clock."""
        period = u64("ticks_per_second", ticks_per_second) * 60
        return cls(burst, per_minute, period, **kw)  # type: ignore[arg-type]

    @classmethod
    def _from_raw(cls, raw: TgQuota) -> Quota:
        quota = cls.__new__(cls)
        quota._raw = raw
        return quota

    def _params(self) -> tuple[int, int, int]:
        b, c, p = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
        status = lib.tg_quota_params(self._raw, ctypes.byref(b), ctypes.byref(c), ctypes.byref(p))
        check(status, "tg_quota_params")
        return b.value, c.value, p.value

    @property
    def burst(self) -> int:
        """B: the bucket size."""
        return self._params()[0]

    @property
    def count(self) -> int:
        """C: requests drained per period."""
        return self._params()[1]

    @property
    def period(self) -> int:
        """P: the period in ticks."""
        return self._params()[2]

    @property
    def exact(self) -> bool:
        """True for exact arithmetic, False for a conservative approximation."""
        out = ctypes.c_bool()
        check(lib.tg_quota_is_exact(self._raw, ctypes.byref(out)), "tg_quota_is_exact")
        return out.value

    @property
    def exact_span(self) -> int:
        """The largest ``now`` (ticks) a decision under this quota accepts."""
        out = ctypes.c_uint64()
        check(lib.tg_quota_exact_span(self._raw, ctypes.byref(out)), "tg_quota_exact_span")
        return out.value

    @property
    def drain_ticks(self) -> int:
        """Ticks a full bucket takes to drain: ⌈B·P / C⌉."""
        out = ctypes.c_uint64()
        check(lib.tg_quota_drain_ticks(self._raw, ctypes.byref(out)), "tg_quota_drain_ticks")
        return out.value

    def policy_header(self, name: str, ticks_per_second: int = NANOS_PER_SECOND) -> str:
        """The ``RateLimit-Policy`` value: ``"{name}";q={burst};w={drain seconds}``."""
        return _headers.ratelimit_policy_bucket(self, name, ticks_per_second)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quota):
            return NotImplemented
        return self._params() == other._params() and self.exact == other.exact

    def __hash__(self) -> int:
        return hash((self._params(), self.exact))

    def __repr__(self) -> str:
        b, c, p = self._params()
        extra = "" if self.exact else ", approximate"
        return f"Quota(burst={b}, count={c}, period={p}{extra})"


#: The least exact span ``Quota`` asks for by default: 2**56 ticks.
DEFAULT_MIN_SPAN = 1 << 56


class _Limiter:
    """Shared clock handling and shadow mode."""

    __slots__ = ("_clock", "_raw", "ticks_per_second", "shadow", "name")

    def __init__(
        self, clock: Clock | None, ticks_per_second: int | None, shadow: bool, name: str
    ) -> None:
        self._clock, self.ticks_per_second = _clock_args(clock, ticks_per_second)
        self.shadow = bool(shadow)
        self.name = name

    def _now(self, now: int | None) -> int:
        if now is None:
            now = self._clock()
        if type(now) is int and 0 <= now <= U64_MAX:
            return now
        return u64("now", now)

    def _tps(self, ticks_per_second: int | None) -> int:
        tps = ticks_per_second if ticks_per_second is not None else self.ticks_per_second
        if tps is None:
            raise ArgumentTypeError(
                "ticks_per_second is needed for header values: pass it here or to the limiter"
            )
        return positive_u64("ticks_per_second", tps)

    def _finish(self, raw: TgDecision) -> Decision:
        if self.shadow:
            check(lib.tg_decision_shadow(raw), "tg_decision_shadow")
        return from_c(raw)

    def check(self, cost: int = 1, now: int | None = None) -> Decision:
        """``decide``, raising :class:`~tollgate.LimitedError` or ``OverloadedError`` on refusal."""
        decision = self.decide(cost, now)  # type: ignore[attr-defined]
        if decision.outcome is Outcome.OVERLOADED:
            raise OverloadedError(decision)
        if decision.outcome is not Outcome.ALLOWED:
            raise LimitedError(decision)
        return decision

    def headers(self, decision: Decision, *, ticks_per_second: int | None = None) -> dict[str, str]:
        """The response headers for ``decision``: call limit, RateLimit fields, Retry-After."""
        tps = self._tps(ticks_per_second)
        return _headers.for_decision(
            decision, ticks_per_second=tps, name=self.name, policy=self._policy(tps)
        )

    def _policy(self, tps: int) -> str | None:
        return None


def _decider(func_name: str) -> Callable[..., Decision]:
    func = getattr(lib, func_name)

    def decide(
        self: _Limiter, cost: int = 1, now: int | None = None, _max: int = U64_MAX
    ) -> Decision:
        if now is None:
            now = self._clock()
        if type(now) is not int or not 0 <= now <= _max:
            now = u64("now", now)
        if type(cost) is not int or not 0 <= cost <= _max:
            cost = u64("cost", cost)
        raw = TgDecision()
        status = func(self._raw, now, cost, raw)
        if status:
            check(status, func_name)
        if self.shadow:
            return self._finish(raw)
        return from_c(raw)

    return decide


def _allower(func_name: str) -> Callable[..., bool]:
    func = getattr(lib, func_name)

    def allow(self: _Limiter, cost: int = 1, now: int | None = None, _max: int = U64_MAX) -> bool:
        """Decides like ``decide`` and answers only whether to let the request through.

        The fast path: one C call that passes and returns only integers (the library's
        outcome-only ``tg_*_check``), and no :class:`~tollgate.Decision` is built. In shadow mode
        always True.
        """
        if now is None:
            now = self._clock()
        if type(now) is not int or not 0 <= now <= _max:
            now = u64("now", now)
        if type(cost) is not int or not 0 <= cost <= _max:
            cost = u64("cost", cost)
        outcome = func(self._raw, now, cost)
        if outcome < 0:
            check(-outcome, func_name)
        return self.shadow or outcome == 0

    return allow


class LeakyBucket(_Limiter):
    """A leaky bucket (GCRA, docs/semantics.md#leaky-bucket): pass or fail, a denial costs nothing.

    ``LeakyBucket(Quota(...))``, ``LeakyBucket(burst, count, period)``,
    ``LeakyBucket(burst, count, period_s=seconds)`` (seconds of the limiter's clock, converted
    exactly: see :class:`Quota`) or ``LeakyBucket.per_second(burst, rate)``. Safe to share
    between threads.
    ``shadow=True`` reports refusals as allowed (``verdict`` keeps the real answer).
    """

    __slots__ = ()

    def __init__(
        self,
        quota: Quota | int,
        count: int | None = None,
        period: int | None = None,
        *,
        period_s: Seconds | None = None,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        if not isinstance(quota, Quota):
            if count is None or (period is None and period_s is None):
                raise ArgumentTypeError(
                    "LeakyBucket(burst, count, period), LeakyBucket(burst, count, period_s=...) "
                    "or LeakyBucket(Quota)"
                )
            quota = Quota(quota, count, _ticks("period", period, period_s, self.ticks_per_second))
        elif count is not None or period is not None or period_s is not None:
            raise ArgumentTypeError("give either a Quota or burst, count, period")
        self._raw = TgBucket()
        check(lib.tg_bucket_init_quota(self._raw, quota._raw), "tg_bucket_init_quota")

    @classmethod
    def per_second(
        cls,
        burst: int,
        per_second: int,
        *,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        **kw: object,
    ) -> LeakyBucket:
        """A bucket of ``burst`` draining ``per_second`` per second of the clock."""
        clock, tps = _clock_args(clock, ticks_per_second)
        if tps is None:
            raise ArgumentTypeError("per_second needs ticks_per_second with a custom clock")
        return cls(Quota(burst, per_second, tps), clock=clock, ticks_per_second=tps, **kw)  # type: ignore[arg-type]

    decide = _decider("tg_bucket_decide")
    allow = _allower("tg_bucket_check")
    decide.__doc__ = """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
    peek = _decider("tg_bucket_peek")
    peek.__doc__ = """Would ``cost`` pass at ``now``? Spends nothing; numbers describe the level."""

    def is_drained(self, now: int | None = None) -> bool:
        """Whether the bucket is empty at ``now`` (indistinguishable from a new one)."""
        out = ctypes.c_bool()
        check(
            lib.tg_bucket_is_drained(self._raw, self._now(now), ctypes.byref(out)),
            "tg_bucket_is_drained",
        )
        return out.value

    def reset(self) -> None:
        """Empties the bucket. Safe while other threads decide."""
        check(lib.tg_bucket_reset(self._raw), "tg_bucket_reset")

    def set_quota(self, quota: Quota, now: int | None = None) -> None:
        """Changes the quota at ``now``, keeping the level (no free burst, no lock-out).

        Not safe while other threads decide on this bucket.
        """
        if not isinstance(quota, Quota):
            raise ArgumentTypeError(f"quota must be a Quota, not {type(quota).__name__}")
        check(lib.tg_bucket_set_quota(self._raw, quota._raw, self._now(now)), "tg_bucket_set_quota")

    @property
    def quota(self) -> Quota:
        """A copy of the bucket's quota."""
        raw = TgQuota()
        check(lib.tg_bucket_quota(self._raw, raw), "tg_bucket_quota")
        return Quota._from_raw(raw)

    def _policy(self, tps: int) -> str | None:
        return _headers.ratelimit_policy_bucket(self.quota, self.name, tps)


class FixedWindow(_Limiter):
    """A fixed window (docs/semantics.md#fixed-window): at most ``limit`` units per window of ``window`` ticks.

    Windows start at every tick ≡ ``offset`` (mod ``window``). Up to 2 × limit can pass in a span
    of one window that straddles an edge. Safe to share between threads. ``window_s=`` (keyword
    only) gives the window in seconds of the limiter's clock instead, converted exactly (see
    :class:`Quota`): ``FixedWindow(50, window_s=1)``.
    """

    __slots__ = ()

    def __init__(
        self,
        limit: int,
        window: int | None = None,
        offset: int = 0,
        *,
        window_s: Seconds | None = None,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        window = _ticks("window", window, window_s, self.ticks_per_second)
        self._raw = TgWindow()
        status = lib.tg_window_init(
            self._raw, u64("limit", limit), window, u64("offset", offset)
        )
        check(status, "tg_window_init")

    decide = _decider("tg_window_decide")
    allow = _allower("tg_window_check")
    decide.__doc__ = """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
    peek = _decider("tg_window_peek")
    peek.__doc__ = """Would ``cost`` pass at ``now``? Spends nothing."""

    def is_drained(self, now: int | None = None) -> bool:
        """Whether nothing counts against the limit at ``now``."""
        out = ctypes.c_bool()
        check(
            lib.tg_window_is_drained(self._raw, self._now(now), ctypes.byref(out)),
            "tg_window_is_drained",
        )
        return out.value

    @property
    def span(self) -> int:
        """The largest ``now`` this window accepts."""
        out = ctypes.c_uint64()
        check(lib.tg_window_span(self._raw, ctypes.byref(out)), "tg_window_span")
        return out.value

    def reset(self) -> None:
        """Forgets all counts. Safe while other threads decide."""
        check(lib.tg_window_reset(self._raw), "tg_window_reset")

    def set_quota(self, limit: int, window: int, offset: int = 0, now: int | None = None) -> None:
        """Changes the quota at ``now``; the window's count carries over (capped at the limit).

        A stored window that is over starts anew in the new quota's current window; any other,
        even with nothing counted, goes into the new quota's window holding the stored window's
        last tick (or ``now``, if later), so it never ends sooner (docs/semantics.md#quota-changes).
        Not safe while other threads decide on this window.
        """
        status = lib.tg_window_set_quota(
            self._raw,
            u64("limit", limit),
            u64("window", window),
            u64("offset", offset),
            self._now(now),
        )
        check(status, "tg_window_set_quota")

    @property
    def params(self) -> tuple[int, int, int]:
        """(limit, window, offset)."""
        a, b, c = ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64()
        status = lib.tg_window_params(self._raw, ctypes.byref(a), ctypes.byref(b), ctypes.byref(c))
        check(status, "tg_window_params")
        return a.value, b.value, c.value

    def _policy(self, tps: int) -> str | None:
        limit, window, _ = self.params
        return _headers.ratelimit_policy_window(limit, window, self.name, tps)


class SlidingLog(_Limiter):
    """A strict sliding window log (docs/semantics.md#sliding-window-log): at most ``limit`` units in any (t − window, t].

    Exact, up to :data:`SLIDING_LOG_CAPACITY` units. The C log serves one caller at a time; this
    class serialises callers with a lock, so it too can be shared between threads.
    ``window_s=`` (keyword only) gives the window in seconds of the limiter's clock instead,
    converted exactly (see :class:`Quota`).
    """

    __slots__ = ("_lock", "_window")

    def __init__(
        self,
        limit: int,
        window: int | None = None,
        *,
        window_s: Seconds | None = None,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        window = _ticks("window", window, window_s, self.ticks_per_second)
        self._lock = threading.Lock()
        self._raw = TgSlidingLog()
        check(
            lib.tg_sliding_log_init(self._raw, u64("limit", limit), u64("window", window)),
            "tg_sliding_log_init",
        )
        self._window = (limit, window)

    _decide = _decider("tg_sliding_log_decide")
    _allow = _allower("tg_sliding_log_check")
    _peek = _decider("tg_sliding_log_peek")

    def decide(self, cost: int = 1, now: int | None = None) -> Decision:
        """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
        with self._lock:
            return self._decide(cost, now)

    def allow(self, cost: int = 1, now: int | None = None) -> bool:
        """Decides and answers only whether to let the request through (the fast path)."""
        with self._lock:
            return self._allow(cost, now)

    def peek(self, cost: int = 1, now: int | None = None) -> Decision:
        """Would ``cost`` pass at ``now``? Records nothing."""
        with self._lock:
            return self._peek(cost, now)

    def next_admit_time(self, cost: int = 1, now: int | None = None) -> int | None:
        """The earliest time ≥ now when ``cost`` would pass with no other traffic; None: never."""
        out = ctypes.c_uint64()
        cost = u64("cost", cost)
        with self._lock:
            status = lib.tg_sliding_log_next_admit_time(
                self._raw, self._now(now), cost, ctypes.byref(out)
            )
        check(status, "tg_sliding_log_next_admit_time")
        return None if out.value == U64_MAX else out.value

    def used(self, now: int | None = None) -> int:
        """Units in the window at ``now``."""
        out = ctypes.c_uint64()
        with self._lock:
            status = lib.tg_sliding_log_used(self._raw, self._now(now), ctypes.byref(out))
        check(status, "tg_sliding_log_used")
        return out.value

    def reset(self) -> None:
        """Forgets every entry; the latest time seen is kept."""
        with self._lock:
            check(lib.tg_sliding_log_reset(self._raw), "tg_sliding_log_reset")

    def _policy(self, tps: int) -> str | None:
        limit, window = self._window
        return _headers.ratelimit_policy_window(limit, window, self.name, tps)


class ConcurrencyLimit:
    """At most ``max`` requests in flight (docs/semantics.md#concurrency-limit); a refusal is Overloaded (HTTP 503).

    Use it as a context manager — ``with limit:`` acquires a permit (raising
    :class:`~tollgate.OverloadedError` when none is free) and releases it on exit — or call
    :meth:`acquire` / :meth:`release` yourself. Lock-free and safe to share between threads.
    """

    __slots__ = ("_raw",)

    def __init__(self, max: int) -> None:  # noqa: A002 - the documented name
        self._raw = TgConcurrency()
        check(lib.tg_concurrency_init(self._raw, u32("max", max)), "tg_concurrency_init")

    def acquire(self) -> Decision:
        """Takes a permit if one is free; pair every admitted acquire with one release."""
        raw = TgDecision()
        check(lib.tg_concurrency_acquire(self._raw, raw), "tg_concurrency_acquire")
        return from_c(raw)

    def release(self) -> None:
        """Returns a permit; :class:`~tollgate.NotAcquiredError` if none is in flight."""
        check(lib.tg_concurrency_release(self._raw), "tg_concurrency_release")

    def _counts(self) -> tuple[int, int]:
        a, b = ctypes.c_uint32(), ctypes.c_uint32()
        status = lib.tg_concurrency_in_flight(self._raw, ctypes.byref(a), ctypes.byref(b))
        check(status, "tg_concurrency_in_flight")
        return a.value, b.value

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self._counts()[0]

    @property
    def max(self) -> int:
        """The cap."""
        return self._counts()[1]

    def permit(self) -> Permit:
        """A context manager: ``with limit.permit() as decision:`` (raises when refused)."""
        return Permit(self, raise_on_refusal=True)

    def try_permit(self) -> Permit:
        """A context manager that yields the decision and releases only if it was admitted."""
        return Permit(self, raise_on_refusal=False)

    def __enter__(self) -> Decision:
        decision = self.acquire()
        if not decision.allowed:
            raise OverloadedError(decision, "concurrency limit reached: request shed (503)")
        return decision

    def __exit__(self, *exc: object) -> None:
        self.release()


class Permit:
    """One acquisition of a :class:`ConcurrencyLimit`, released when the ``with`` block ends."""

    __slots__ = ("_limit", "_raise", "decision")

    def __init__(self, limit: ConcurrencyLimit, raise_on_refusal: bool) -> None:
        self._limit = limit
        self._raise = raise_on_refusal
        self.decision: Decision | None = None

    def __enter__(self) -> Decision:
        decision = self._limit.acquire()
        if not decision.allowed and self._raise:
            raise OverloadedError(decision, "concurrency limit reached: request shed (503)")
        self.decision = decision
        return decision

    def __exit__(self, *exc: object) -> None:
        decision, self.decision = self.decision, None
        if decision is not None and decision.allowed:
            self._limit.release()
