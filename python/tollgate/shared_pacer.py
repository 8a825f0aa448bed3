"""Client pacers whose state lives in shared memory: one pace for several processes (Unix).

:class:`~tollgate.client.BucketPacer` and :class:`~tollgate.client.LogPacer` keep their mirror
of a server's limit in the process. The worker processes of one app (gunicorn or Celery
workers calling one vendor with one app's credentials) would then each send at the full rate,
and together exceed it. :class:`SharedBucketPacer` and :class:`SharedLogPacer` keep the same
mirror, and the time before which a ``Retry-After`` forbids sending, in regions of shared
memory (:mod:`tollgate.shared`), so every process that opens the same path paces against one
mirror:

- ``acquire`` / ``next_send`` / ``reserve``: the same answers as the in-process pacers, for the
  requests of all processes together (a SEND is counted in the shared mirror, lock-free);
- ``sync`` / ``observe_call_limit``: a server's ``used/limit`` header raises the shared mirror
  so that its remaining is at most ``limit − used``, applied at the time the request was sent;
  it never lowers the mirror (every step only adds to it, so no process ever sees a free
  burst);
- ``sync`` / ``block_until``: a 429's ``Retry-After`` holds back the sends of every process.

A pacer is two named regions (or two anonymous ones, inherited by ``fork``): the mirror at
``path`` and the ``Retry-After`` time at ``path + ".block"``. Every process must give the same
parameters (another quota raises :class:`~tollgate.RegionError`) and use the same clock (the
default ``time.monotonic_ns`` is one clock per host).

What is not exactly as in one process:

- A bucket mirror counts in thousandths of a request, so that a header can raise it by a
  fraction of one; a header sync lands within a thousandth of a request above the exact level
  (never below).
- Between reading the ``Retry-After`` time and counting a send, another process may record a
  new ``Retry-After``: a send that had already passed the check goes out, as a request already
  in flight would. Within one process the check and the count are one step.
- When several processes raise the mirror from headers at once, each adds what it saw missing:
  the mirror may end above the highest server count (more conservative, never less).

For :class:`~tollgate.http.Pacing`, ``Pacing(vendor, shared="/dev/shm/myapp-pacers")`` makes one
such pacer per key in that directory (see :class:`~tollgate.http.SharedPacers`).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any, Union

from ._util import NANOS_PER_SECOND, U64_MAX, u64
from .client import Pace, PaceAction, parse_call_limit, parse_retry_after
from .errors import (
    ArgumentTypeError,
    CapacityExceededError,
    InvalidArgumentError,
    MalformedError,
    QuotaError,
)
from .limiters import Clock, Quota
from .shared import CREATE_IF_MISSING, SharedBucket, SharedLog

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BLOCK_SUFFIX", "FINE_UNITS", "SharedBucketPacer", "SharedLogPacer"]

#: A bucket mirror's units per request: a header sync raises it to within 1/1000 of a request.
FINE_UNITS = 1000
#: The suffix of the region holding a pacer's ``Retry-After`` time, next to its mirror.
BLOCK_SUFFIX = ".block"

_PathArg = Union[str, "os.PathLike[str]", None]
# A bucket of 1 draining 1 per tick is an atomic "maximum time" register: its word is the time
# before which it refuses, a decision at `until - 1` moves it to `until` unless it is later.
_BLOCK_QUOTA_ARGS = (1, 1, 1)


def _block_quota() -> Quota:
    return Quota(*_BLOCK_QUOTA_ARGS, min_span=0)


class _SharedPacer:
    """What both shared pacers share: the clock, the ``Retry-After`` register, the answers."""

    __slots__ = (
        "_block",
        "_clock",
        "_clock_kw",
        "_mirror",
        "_mode",
        "_path",
        "_scale",
        "capacity",
        "ticks_per_second",
    )

    _mirror: SharedBucket | SharedLog
    _block: SharedBucket
    #: Mirror units per request.
    _scale: int
    #: The mirror's capacity in requests (a bucket's burst after the margin, a log's limit).
    capacity: int
    ticks_per_second: int | None

    def _init_common(
        self,
        path: _PathArg,
        mode: int,
        create: str,
        clock: Clock | None,
        ticks_per_second: int | None,
    ) -> dict[str, Any]:
        if clock is None:
            if ticks_per_second not in (None, NANOS_PER_SECOND):
                raise ArgumentTypeError(
                    "ticks_per_second without clock: the default clock is time.monotonic_ns "
                    f"({NANOS_PER_SECOND} ticks per second); pass clock= too"
                )
            self._clock: Clock = time.monotonic_ns
            self.ticks_per_second = NANOS_PER_SECOND
        else:
            if not callable(clock):
                raise ArgumentTypeError(f"clock must be callable, not {type(clock).__name__}")
            self._clock = clock
            self.ticks_per_second = ticks_per_second
        self._path = None if path is None else os.fspath(path)
        self._mode = mode
        self._clock_kw: dict[str, Any] = (
            {} if clock is None else {"clock": clock, "ticks_per_second": ticks_per_second}
        )
        return {"mode": mode, "create": create, **self._clock_kw}

    def _open_block(self, kw: dict[str, Any]) -> None:
        block_path = None if self._path is None else self._path + BLOCK_SUFFIX
        self._block = SharedBucket(_block_quota(), path=block_path, name="retry-after", **kw)

    @property
    def path(self) -> str | None:
        """The mirror region's path (the ``Retry-After`` region is ``path + ".block"``); None
        for anonymous regions."""
        return self._path

    def _now(self, now: int | None) -> int:
        return u64("now", self._clock() if now is None else now)

    def _cost(self, cost: int) -> int:
        return u64("cost", u64("cost", cost) * self._scale)

    def blocked_until(self, now: int | None = None) -> int:
        """The time before which a ``Retry-After`` forbids sending, if later than ``now``;
        else 0 (not blocked)."""
        now = self._now(now)
        d = self._block.peek(1, now)
        if d.allowed or d.retry_after is None:
            return 0
        return int(now + d.retry_after)

    def block_until(self, until: int) -> None:
        """Forbids every process sending before ``until`` (ticks); a later block never shortens
        an earlier one."""
        until = u64("until", until)
        if until > 0:
            # Admitted (and the word set to `until`) iff the word is at most until - 1.
            self._block.decide(1, until - 1)

    def next_send(self, cost: int = 1, now: int | None = None) -> int | None:
        """The earliest time ≥ now a request of ``cost`` may be sent (None: never). Spends
        nothing."""
        now = self._now(now)
        d = self._mirror.peek(self._cost(cost), now)
        if d.retry_after is None:
            return None
        return max(now + d.retry_after, self.blocked_until(now))

    def acquire(self, cost: int = 1, now: int | None = None) -> Pace:
        """May ``cost`` be sent at ``now``? SEND counts it in the shared mirror; WAIT says until
        when."""
        now = self._now(now)
        units = self._cost(cost)
        if self.blocked_until(now):
            at = self.next_send(cost, now)
            return Pace(PaceAction.WAIT, at) if at is not None else Pace(PaceAction.NEVER, None)
        d = self._mirror.decide(units, now)
        if d.allowed:
            return Pace(PaceAction.SEND, now)
        if d.retry_after is None:
            return Pace(PaceAction.NEVER, None)
        return Pace(PaceAction.WAIT, now + d.retry_after)

    def reserve(self, cost: int = 1, now: int | None = None) -> int | None:
        """Books the earliest time ≥ now for ``cost`` (later calls, from any process, book later
        times); None: never (nothing booked)."""
        t = self._now(now)
        units = self._cost(cost)
        while True:
            at = self.next_send(cost, t)
            if at is None:
                return None
            if self._mirror.decide(units, at).allowed:
                return at
            t = at  # another caller took the slot: look again from there

    def observe_call_limit(self, sent_at: int, used: int, limit: int) -> None:
        """Takes in a server's ``used/limit`` for a request sent at ``sent_at``: the shared
        mirror's remaining becomes at most ``limit − used`` (a margin is kept); never lowered."""
        sent_at, used, limit = u64("sent_at", sent_at), u64("used", used), u64("limit", limit)
        if limit == 0 or used > limit:
            raise InvalidArgumentError(f"a used/limit of {used}/{limit} is not a server's count")
        target = max(self.capacity - (limit - used), 0)
        if target > 0:
            self._raise_to(sent_at, target * self._scale)

    def _raise_to(self, at: int, target: int) -> None:
        """Raises the mirror's units in use at ``at`` to at least ``target`` (≤ its capacity)
        by admitting what is missing; every step only adds, so it never lowers the mirror."""
        raise NotImplementedError

    def sync(
        self,
        sent_at: int,
        *,
        call_limit: str | bytes | None = None,
        retry_after: str | bytes | None = None,
        now: int | None = None,
        now_unix: int | None = None,
    ) -> None:
        """Applies a response's headers, as :meth:`tollgate.client.BucketPacer.sync`:
        ``call_limit`` (``X-Sb-Shop-Api-Call-Limit``) for the request sent at ``sent_at``, and
        ``retry_after`` (``Retry-After``) received at ``now``, which is Unix time ``now_unix``
        (default: the system clock). Absent headers are None. A malformed value raises
        :class:`~tollgate.MalformedError` after the other header, if well-formed, was applied.
        """
        tps = self.ticks_per_second
        if tps is None:
            raise ArgumentTypeError("sync needs the pacer's ticks_per_second")
        sent_at = u64("sent_at", sent_at)
        now = self._now(now)
        error: MalformedError | None = None
        if call_limit is not None:
            try:
                parsed = parse_call_limit(call_limit)
            except MalformedError as e:
                error = e
            else:
                self.observe_call_limit(sent_at, parsed.used, parsed.limit)
        if retry_after is not None:
            try:
                seconds = parse_retry_after(retry_after, now_unix)
            except MalformedError as e:
                error = error or e
            else:
                self.block_until(min(now + seconds * tps, U64_MAX))
        if error is not None:
            raise error

    def close(self) -> None:
        """Unmaps the regions from this process (their state stays for the others)."""
        for name in ("_mirror", "_block"):
            region = getattr(self, name, None)
            if region is not None:
                region.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reopen_args(self) -> tuple[tuple[int, ...], dict[str, Any]]:
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        # A named pacer travels to another process (a `spawn` pool, a pickle) as its path and
        # parameters; an anonymous one is inherited by fork only.
        if self._path is None:
            raise TypeError(
                "an anonymous shared pacer is inherited by fork only; use path= to pass it to "
                "processes started another way"
            )
        return (_reopen, (type(self), *self._reopen_args()))


def _reopen(cls: type[_SharedPacer], args: tuple[int, ...], kwargs: dict[str, Any]) -> Any:
    return cls(*args, **kwargs)


class SharedBucketPacer(_SharedPacer):
    """:class:`~tollgate.client.BucketPacer` in shared memory: a mirror of a leaky-bucket
    server limit (``burst`` draining ``count`` per ``period`` ticks) with a burst margin for
    ``jitter`` ticks of network jitter (⌈jitter · count / period⌉ requests), shared by every
    process that opens ``path`` with the same parameters (``path=None``: anonymous, shared with
    the children forked afterwards). ``mode`` and ``create`` are those of
    :class:`~tollgate.shared.SharedBucket`.

    ShopBase (30, 2/s, 200 ms of jitter) across processes::

        pacer = SharedBucketPacer(30, 2, 10**9, 2 * 10**8, path="/dev/shm/myapp-shop-42")
    """

    __slots__ = ("_interval", "_unit", "burst", "count", "jitter", "period")

    def __init__(
        self,
        burst: int,
        count: int,
        period: int,
        jitter: int = 0,
        *,
        path: _PathArg = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
    ) -> None:
        self.burst, self.count = u64("burst", burst), u64("count", count)
        self.period, self.jitter = u64("period", period), u64("jitter", jitter)
        kw = self._init_common(path, mode, create, clock, ticks_per_second)
        # As the in-process pacer: the server's quota must be valid, the margin leave a burst.
        Quota(self.burst, self.count, self.period, min_span=0)
        margin = -(-self.jitter * self.count // self.period)
        if margin >= self.burst:
            raise CapacityExceededError(
                f"a jitter of {self.jitter} ticks needs a margin of {margin} requests, which "
                f"leaves nothing of a burst of {self.burst}"
            )
        self.capacity = self.burst - margin
        try:
            fine = Quota(
                self.capacity * FINE_UNITS, self.count * FINE_UNITS, self.period, min_span=0
            )
            self._scale = FINE_UNITS
        except (QuotaError, InvalidArgumentError):  # too large to count in thousandths
            fine = Quota(self.capacity, self.count, self.period, min_span=0)
            self._scale = 1
        # The engine counts time in units of 1/unit tick; one mirror unit drains in `interval`.
        g = math.gcd(self.count * self._scale, self.period)
        self._unit, self._interval = self.count * self._scale // g, self.period // g
        self._mirror = SharedBucket(fine, path=self._path, name="pacer", **kw)
        self._open_block(kw)

    def _raise_to(self, at: int, target: int) -> None:
        # The bucket's word is the time its backlog drains (GCRA). A decision at `t` adds its
        # cost to max(word, t): deciding `k` units at the time a backlog of `target - k` units
        # at `at` would have drained lands the word exactly where a backlog of `target` at `at`
        # drains, whatever the (smaller) backlog was — so a fraction of a unit is raised too.
        mirror, unit, interval = self._mirror, self._unit, self._interval
        while True:
            d = mirror.peek(1, at)
            # `used` is the backlog rounded up to a unit; `reset_after` is it in ticks rounded
            # up, so the backlog is more than (reset_after − 1) ticks (exact at one unit a
            # tick): its floor in units.
            floor = 0
            if d.reset_after > 0:
                floor = max(((d.reset_after - 1) * unit + 1) // interval, d.used - 1)
            if floor >= target:
                return
            # The backlog is at most `used` units: k = target − used units decided when those
            # drain land on `target` exactly; within one unit of it, one more unit (< 1 above).
            k = max(target - d.used, 1)
            t = at + -(-(target - k) * interval // unit)
            if mirror.decide(k, t).allowed:
                return
            # Refused: another process added to the mirror since the peek. Look again.

    def _reopen_args(self) -> tuple[tuple[int, ...], dict[str, Any]]:
        args = (self.burst, self.count, self.period, self.jitter)
        kw = {"path": self._path, "mode": self._mode, **self._clock_kw}
        return args, kw


class SharedLogPacer(_SharedPacer):
    """:class:`~tollgate.client.LogPacer` in shared memory: a sliding log of ``limit`` (at most
    65 535) per ``window`` ticks lengthened by ``jitter`` ticks, shared like
    :class:`SharedBucketPacer`.

    TikTok Shop (50 per second, 50 ms of jitter) across processes::

        pacer = SharedLogPacer(50, 10**9, 5 * 10**7, path="/dev/shm/myapp-shop-7-search")
    """

    __slots__ = ("jitter", "limit", "window")

    def __init__(
        self,
        limit: int,
        window: int,
        jitter: int = 0,
        *,
        path: _PathArg = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
    ) -> None:
        self.limit, self.window = u64("limit", limit), u64("window", window)
        self.jitter = u64("jitter", jitter)
        kw = self._init_common(path, mode, create, clock, ticks_per_second)
        if self.window + self.jitter > U64_MAX:
            raise InvalidArgumentError("window + jitter overflows 64 bits")
        self.capacity = self.limit
        self._scale = 1
        self._mirror = SharedLog(
            self.limit, self.window + self.jitter, path=self._path, name="pacer", **kw
        )
        self._open_block(kw)

    def _raise_to(self, at: int, target: int) -> None:
        # As the in-process log: the units the server counted and the log did not are
        # recorded at `at` (judged, like every decision, at the latest time the log has seen).
        mirror = self._mirror
        while True:
            d = mirror.peek(1, at)
            if d.used >= target:
                return
            if mirror.decide(target - d.used, at).allowed:
                return
            # Refused: another process added to the log since the peek. Look again.

    def _reopen_args(self) -> tuple[tuple[int, ...], dict[str, Any]]:
        args = (self.limit, self.window, self.jitter)
        kw = {"path": self._path, "mode": self._mode, **self._clock_kw}
        return args, kw
