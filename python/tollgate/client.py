"""The client toolkit (docs/semantics.md#client-toolkit): staying under someone else's limit.

- :class:`BucketPacer` / :class:`LogPacer`: "when may I send next" from a mirror of the
  server's limit (a leaky bucket, or a sliding log), with a margin for network jitter; synced
  from the server's ``X-Sb-Shop-Api-Call-Limit`` and ``Retry-After`` headers.
- :func:`parse_call_limit`, :func:`parse_retry_after`: the header parsers.
- :class:`Backoff`: exponential with cap, attempt limit and jitter (none, full, equal,
  decorrelated), never shorter than a ``Retry-After``; seeded generator.
- :class:`RetryBudget`: retries only while under a fraction of recent successes plus a floor.
- :func:`retry_class_of_status` / ``_of_outcome`` / ``_of_transport_error`` and
  :func:`next_step`: retry only what can succeed (429, 503, transport errors; never Never).
- :class:`RequestQueue`: a lock-free queue of request ids released at the pacer's pace.

Every object serves one caller at a time in C (a second caller would get ``TG_STATUS_BUSY``);
the Python classes serialise callers with a lock, except the queue, which is lock-free. Times
are ticks of the object's clock (``time.monotonic_ns`` by default), as for the limiters.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
import time
from typing import NamedTuple

from ._ffi import (
    TgBackoff,
    TgBucketPacer,
    TgCallLimit,
    TgLogPacer,
    TgNext,
    TgPace,
    TgRelease,
    TgRequestQueue,
    TgRetryBudget,
    lib,
)
from ._util import U64_MAX, check, text_bytes, u32, u64
from .decision import Outcome
from .errors import ArgumentTypeError
from .limiters import Clock, _clock_args


class PaceAction(enum.IntEnum):
    """A pacer's answer (``tg_pace_action``)."""

    #: Send now; the mirror counted the request.
    SEND = 0
    #: Not before ``at``; nothing counted.
    WAIT = 1
    #: The cost exceeds the mirror's capacity: never.
    NEVER = 2


class Pace(NamedTuple):
    """What :meth:`BucketPacer.acquire` answered; ``at`` is None for NEVER."""

    action: PaceAction
    #: ``now`` for SEND, the time to ask again for WAIT, None for NEVER.
    at: int | None

    @property
    def send(self) -> bool:
        """Whether to send now."""
        return self.action is PaceAction.SEND


class CallLimit(NamedTuple):
    """A parsed ``X-Sb-Shop-Api-Call-Limit`` value: ``used/limit``."""

    used: int
    limit: int


class Jitter(enum.IntEnum):
    """Backoff randomisation (``tg_jitter``), as in AWS's "Exponential Backoff and Jitter"."""

    NONE = 0
    FULL = 1
    EQUAL = 2
    DECORRELATED = 3


class RetryClass(enum.IntEnum):
    """What an attempt's result means for retrying (``tg_retry_class``)."""

    SUCCESS = 0
    RETRYABLE = 1
    FATAL = 2


class NextAction(enum.IntEnum):
    """What follows an attempt (``tg_next_action``)."""

    DONE = 0
    RETRY = 1
    GIVE_UP = 2


class GiveUp(enum.IntEnum):
    """Why :func:`next_step` gave up (``tg_give_up``)."""

    NONE = 0
    FATAL = 1
    ATTEMPTS_EXHAUSTED = 2
    BUDGET_EXHAUSTED = 3


class Next(NamedTuple):
    """What :func:`next_step` answered; ``at`` is the retry time for RETRY."""

    action: NextAction
    give_up: GiveUp
    at: int


class ReleaseAction(enum.IntEnum):
    """What :meth:`RequestQueue.release` answered (``tg_release_action``)."""

    SEND = 0
    WAIT = 1
    EMPTY = 2


class Release(NamedTuple):
    """The queue's answer: SEND with ``id``; WAIT until ``at``; EMPTY."""

    action: ReleaseAction
    id: int | None
    at: int | None


def _never(value: int) -> int | None:
    return None if value == U64_MAX else value


class _Clocked:
    __slots__ = ("_clock", "ticks_per_second", "_lock", "_raw")

    def __init__(self, clock: Clock | None, ticks_per_second: int | None) -> None:
        self._clock, self.ticks_per_second = _clock_args(clock, ticks_per_second)
        self._lock = threading.Lock()

    def _now(self, now: int | None) -> int:
        return u64("now", self._clock() if now is None else now)


class _Pacer(_Clocked):
    __slots__ = ()
    _prefix = ""

    def _fn(self, name: str):  # noqa: ANN202
        return getattr(lib, f"{self._prefix}_{name}"), f"{self._prefix}_{name}"

    def next_send(self, cost: int = 1, now: int | None = None) -> int | None:
        """The earliest time ≥ now a request of ``cost`` may be sent (None: never). Spends
        nothing."""
        func, name = self._fn("next_send")
        out = ctypes.c_uint64()
        now, cost = self._now(now), u64("cost", cost)
        with self._lock:
            status = func(self._raw, now, cost, ctypes.byref(out))
        check(status, name)
        return _never(out.value)

    def acquire(self, cost: int = 1, now: int | None = None) -> Pace:
        """May ``cost`` be sent at ``now``? SEND counts it in the mirror; WAIT says until when."""
        func, name = self._fn("acquire")
        out = TgPace()
        now, cost = self._now(now), u64("cost", cost)
        with self._lock:
            status = func(self._raw, now, cost, out)
        check(status, name)
        action = PaceAction(out.action)
        return Pace(action, None if action is PaceAction.NEVER else out.at)

    def reserve(self, cost: int = 1, now: int | None = None) -> int | None:
        """Books the earliest time ≥ now for ``cost`` (later calls book later times); None:
        never (nothing booked)."""
        func, name = self._fn("reserve")
        out = ctypes.c_uint64()
        now, cost = self._now(now), u64("cost", cost)
        with self._lock:
            status = func(self._raw, now, cost, ctypes.byref(out))
        check(status, name)
        return _never(out.value)

    def observe_call_limit(self, sent_at: int, used: int, limit: int) -> None:
        """Takes in a server's ``used/limit`` for a request sent at ``sent_at`` (never lowers the
        mirror's level)."""
        func, name = self._fn("observe_call_limit")
        args = u64("sent_at", sent_at), u64("used", used), u64("limit", limit)
        with self._lock:
            status = func(self._raw, *args)
        check(status, name)

    def block_until(self, until: int) -> None:
        """Forbids sending before ``until`` (ticks); a later block never shortens an earlier."""
        func, name = self._fn("block_until")
        until = u64("until", until)
        with self._lock:
            status = func(self._raw, until)
        check(status, name)

    def sync(
        self,
        sent_at: int,
        *,
        call_limit: str | bytes | None = None,
        retry_after: str | bytes | None = None,
        now: int | None = None,
        now_unix: int | None = None,
    ) -> None:
        """Applies a response's headers: ``call_limit`` (``X-Sb-Shop-Api-Call-Limit``) for the
        request sent at ``sent_at``, and ``retry_after`` (``Retry-After``: seconds or an
        HTTP-date) received at ``now``, which is Unix time ``now_unix`` (default: the system
        clock). Absent headers are None.

        A malformed value raises :class:`~tollgate.MalformedError` — after the other header, if
        well-formed, was applied (a 429's Retry-After is honoured next to a garbled count).
        """
        func, name = self._fn("sync")
        tps = self.ticks_per_second
        if tps is None:
            raise ArgumentTypeError("sync needs the pacer's ticks_per_second")
        cl = b"" if call_limit is None else text_bytes("call_limit", call_limit)
        ra = b"" if retry_after is None else text_bytes("retry_after", retry_after)
        sent = u64("sent_at", sent_at)
        now = self._now(now)
        unix = u64("now_unix", int(time.time()) if now_unix is None else now_unix)
        with self._lock:
            status = func(
                self._raw,
                sent,
                now,
                unix,
                tps,
                cl if call_limit is not None else None,
                len(cl),
                ra if retry_after is not None else None,
                len(ra),
            )
        check(status, name)


class BucketPacer(_Pacer):
    """A pacer mirroring a leaky-bucket server limit: ``burst`` draining ``count`` per
    ``period`` ticks, with a burst margin for network jitter of up to ``jitter`` ticks
    (ShopBase, 30 and 2/s with 200 ms of jitter: a mirror of 29)."""

    __slots__ = ()
    _prefix = "tg_bucket_pacer"

    def __init__(
        self,
        burst: int,
        count: int,
        period: int,
        jitter: int = 0,
        *,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
    ) -> None:
        super().__init__(clock, ticks_per_second)
        self._raw = TgBucketPacer()
        status = lib.tg_bucket_pacer_init(
            self._raw,
            u64("burst", burst),
            u64("count", count),
            u64("period", period),
            u64("jitter", jitter),
        )
        check(status, "tg_bucket_pacer_init")


class LogPacer(_Pacer):
    """A pacer mirroring a window server limit with a sliding log of ``limit`` per ``window``
    ticks, lengthened by ``jitter`` ticks (TikTok Shop, 50 per 1000 ms with 25 ms of jitter: 50
    per 1025 ms)."""

    __slots__ = ()
    _prefix = "tg_log_pacer"

    def __init__(
        self,
        limit: int,
        window: int,
        jitter: int = 0,
        *,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
    ) -> None:
        super().__init__(clock, ticks_per_second)
        self._raw = TgLogPacer()
        status = lib.tg_log_pacer_init(
            self._raw, u64("limit", limit), u64("window", window), u64("jitter", jitter)
        )
        check(status, "tg_log_pacer_init")


def parse_call_limit(value: str | bytes) -> CallLimit:
    """Parses ``X-Sb-Shop-Api-Call-Limit`` (``22/30``); raises ``MalformedError``."""
    raw = text_bytes("value", value)
    out = TgCallLimit()
    check(lib.tg_call_limit_parse(raw, len(raw), out), "tg_call_limit_parse")
    return CallLimit(out.used, out.limit)


def parse_retry_after(value: str | bytes, now_unix: int | None = None) -> int:
    """Seconds to wait for a ``Retry-After`` value (delay-seconds or any RFC 9110 HTTP-date,
    measured from ``now_unix``, default the system clock; a past date is 0)."""
    raw = text_bytes("value", value)
    unix = u64("now_unix", int(time.time()) if now_unix is None else now_unix)
    out = ctypes.c_uint64()
    check(lib.tg_retry_after_parse(raw, len(raw), unix, ctypes.byref(out)), "tg_retry_after_parse")
    return out.value


class Backoff:
    """Delays from ``base`` ticks doubling up to ``cap``, for at most ``max_retries`` retries,
    randomised by ``jitter`` with a SplitMix64 seeded by ``seed`` (default: random)."""

    __slots__ = ("_raw", "_lock", "base", "cap", "max_retries", "jitter")

    def __init__(
        self,
        base: int,
        cap: int,
        max_retries: int,
        jitter: Jitter = Jitter.FULL,
        seed: int | None = None,
    ) -> None:
        if not isinstance(jitter, int) or isinstance(jitter, bool):
            raise ArgumentTypeError(f"jitter must be a Jitter, not {type(jitter).__name__}")
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        self._raw = TgBackoff()
        self._lock = threading.Lock()
        self.base, self.cap = u64("base", base), u64("cap", cap)
        self.max_retries = u32("max_retries", max_retries)
        self.jitter = jitter
        status = lib.tg_backoff_init(
            self._raw,
            self.base,
            self.cap,
            self.max_retries,
            u32("jitter", jitter),
            u64("seed", seed),
        )
        check(status, "tg_backoff_init")
        self.jitter = Jitter(jitter)

    def next_delay(self, retry_after: int = 0) -> int | None:
        """The delay before the next retry (never below ``retry_after`` ticks), counting it; None
        when the retries are used up (give up)."""
        retry, delay = ctypes.c_bool(), ctypes.c_uint64()
        ra = u64("retry_after", retry_after)
        with self._lock:
            status = lib.tg_backoff_next_delay(
                self._raw, ra, ctypes.byref(retry), ctypes.byref(delay)
            )
        check(status, "tg_backoff_next_delay")
        return delay.value if retry.value else None

    @property
    def retries(self) -> int:
        """Retries counted so far."""
        out = ctypes.c_uint32()
        with self._lock:
            status = lib.tg_backoff_retries(self._raw, ctypes.byref(out))
        check(status, "tg_backoff_retries")
        return out.value

    def reset(self) -> None:
        """A fresh schedule for the next request (the generator is not re-seeded)."""
        with self._lock:
            status = lib.tg_backoff_reset(self._raw)
        check(status, "tg_backoff_reset")


class RetryBudget(_Clocked):
    """``floor`` retries plus ``per_mille``/1000 of the successes of the last ``window`` ticks."""

    __slots__ = ()

    def __init__(
        self,
        window: int,
        per_mille: int,
        floor: int,
        *,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
    ) -> None:
        super().__init__(clock, ticks_per_second)
        self._raw = TgRetryBudget()
        status = lib.tg_retry_budget_init(
            self._raw, u64("window", window), u32("per_mille", per_mille), u64("floor", floor)
        )
        check(status, "tg_retry_budget_init")

    def record_success(self, now: int | None = None) -> None:
        """Records a successful call: it earns ``per_mille``/1000 of a retry."""
        now = self._now(now)
        with self._lock:
            status = lib.tg_retry_budget_record_success(self._raw, now)
        check(status, "tg_retry_budget_record_success")

    def available(self, now: int | None = None) -> int:
        """How many retries the budget allows at ``now``."""
        out = ctypes.c_uint64()
        now = self._now(now)
        with self._lock:
            status = lib.tg_retry_budget_available(self._raw, now, ctypes.byref(out))
        check(status, "tg_retry_budget_available")
        return out.value

    def try_retry(self, now: int | None = None) -> bool:
        """Asks for one retry: True (recorded) if the budget allows it."""
        out = ctypes.c_bool()
        now = self._now(now)
        with self._lock:
            status = lib.tg_retry_budget_try_retry(self._raw, now, ctypes.byref(out))
        check(status, "tg_retry_budget_try_retry")
        return out.value


def retry_class_of_status(http_status: int) -> RetryClass:
    """1xx–3xx succeed, 429 and 503 may be retried, anything else is fatal."""
    out = ctypes.c_uint32()
    status = lib.tg_retry_class_of_status(u32("http_status", http_status), ctypes.byref(out))
    check(status, "tg_retry_class_of_status")
    return RetryClass(out.value)


def retry_class_of_outcome(outcome: Outcome) -> RetryClass:
    """A limiter outcome's class: Never is fatal whatever HTTP status it travels as."""
    out = ctypes.c_uint32()
    status = lib.tg_retry_class_of_outcome(u32("outcome", outcome), ctypes.byref(out))
    check(status, "tg_retry_class_of_outcome")
    return RetryClass(out.value)


def retry_class_of_transport_error() -> RetryClass:
    """A transport error (no answer) is retryable — if the request is idempotent."""
    out = ctypes.c_uint32()
    check(
        lib.tg_retry_class_of_transport_error(ctypes.byref(out)),
        "tg_retry_class_of_transport_error",
    )
    return RetryClass(out.value)


def next_step(
    retry_class: RetryClass,
    backoff: Backoff,
    budget: RetryBudget,
    *,
    retry_after: int = 0,
    now: int | None = None,
) -> Next:
    """What follows an attempt of ``retry_class`` that ended at ``now`` (default: the budget's
    clock): DONE (a success, recorded in the budget), RETRY at ``at`` (backoff delay, never
    before ``now + retry_after``; both objects count it), or GIVE_UP with the reason."""
    if not isinstance(backoff, Backoff) or not isinstance(budget, RetryBudget):
        raise ArgumentTypeError("next_step needs a Backoff and a RetryBudget")
    cls = u32("retry_class", retry_class)
    now = budget._now(now)
    ra = u64("retry_after", retry_after)
    out = TgNext()
    with backoff._lock, budget._lock:
        status = lib.tg_retry_next_step(cls, now, ra, backoff._raw, budget._raw, out)
    check(status, "tg_retry_next_step")
    return Next(NextAction(out.action), GiveUp(out.give_up), out.at)


class RequestQueue:
    """A lock-free FIFO of up to :data:`REQUEST_QUEUE_CAPACITY` request ids (u64), released at a
    pacer's pace. Safe from any number of threads."""

    __slots__ = ("_raw",)

    def __init__(self) -> None:
        self._raw = TgRequestQueue()
        check(lib.tg_request_queue_init(self._raw), "tg_request_queue_init")

    def push(self, request_id: int) -> None:
        """Adds an id at the back; ``CapacityExceededError`` when full (nothing added)."""
        check(
            lib.tg_request_queue_push(self._raw, u64("request_id", request_id)),
            "tg_request_queue_push",
        )

    def pop(self) -> int | None:
        """Takes the front id without asking a pacer (to cancel or drain); None if empty."""
        found, value = ctypes.c_bool(), ctypes.c_uint64()
        status = lib.tg_request_queue_pop(self._raw, ctypes.byref(found), ctypes.byref(value))
        check(status, "tg_request_queue_pop")
        return value.value if found.value else None

    def __len__(self) -> int:
        out = ctypes.c_size_t()
        check(lib.tg_request_queue_len(self._raw, ctypes.byref(out)), "tg_request_queue_len")
        return out.value

    def release(self, pacer: BucketPacer | LogPacer, now: int | None = None) -> Release:
        """Releases the next request (cost 1) if ``pacer`` allows one at ``now``."""
        if isinstance(pacer, BucketPacer):
            func, name = lib.tg_request_queue_release_bucket, "tg_request_queue_release_bucket"
        elif isinstance(pacer, LogPacer):
            func, name = lib.tg_request_queue_release_log, "tg_request_queue_release_log"
        else:
            raise ArgumentTypeError(
                f"pacer must be a BucketPacer or LogPacer, not {type(pacer).__name__}"
            )
        now = pacer._now(now)
        out = TgRelease()
        with pacer._lock:
            status = func(self._raw, pacer._raw, now, out)
        check(status, name)
        action = ReleaseAction(out.action)
        if action is ReleaseAction.SEND:
            return Release(action, out.id, None)
        if action is ReleaseAction.WAIT:
            return Release(action, None, _never(out.at))
        return Release(action, None, None)


#: The most ids a :class:`RequestQueue` holds.
REQUEST_QUEUE_CAPACITY = 64
#: Sub-windows of a :class:`RetryBudget`'s window (its window must be at least this many ticks).
RETRY_BUDGET_SLOTS = 10

__all__ = [
    "REQUEST_QUEUE_CAPACITY",
    "RETRY_BUDGET_SLOTS",
    "Backoff",
    "BucketPacer",
    "CallLimit",
    "GiveUp",
    "Jitter",
    "LogPacer",
    "Next",
    "NextAction",
    "Pace",
    "PaceAction",
    "Release",
    "ReleaseAction",
    "RequestQueue",
    "RetryBudget",
    "RetryClass",
    "next_step",
    "parse_call_limit",
    "parse_retry_after",
    "retry_class_of_outcome",
    "retry_class_of_status",
    "retry_class_of_transport_error",
]
