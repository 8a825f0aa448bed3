"""One limit across many processes and hosts: the leaky bucket and fixed window on Redis.

The same Lua scripts as the Rust crate ``tollgate-redis`` (shipped in this package, ``lua/``; the
one copy of them), the same state, key layout and quota fingerprints, and the same arithmetic on
the caller's side, in Python integers: a Python process and a Rust gateway share one limit per
key, and every decision and reported number equals the core's (``tollgate.LeakyBucket``,
``tollgate.FixedWindow``) on the same sequence of requests. Needs the ``redis`` package
(``pip install 'tollgate[redis]'``).

>>> import redis
>>> from tollgate import Quota
>>> from tollgate.redis import RedisLimiter
>>> limiter = RedisLimiter.from_url(                                    # doctest: +SKIP
...     "redis://127.0.0.1:6379/", Quota(30, 2, 1000), ticks_per_second=1000,
...     clock=lambda: time.time_ns() // 1_000_000)
>>> limiter.decide(("app", 42)).used                                     # doctest: +SKIP
1

The surface is the key table's (:class:`tollgate.KeyTable`): ``decide``/``peek``/``allow``/
``check`` take ``key, cost=1, now=None, *, tier=0``, and ``headers(decision, tier=...)`` gives
the response headers, so middleware can take either. ``decide_batch`` sends many requests in one
pipelined round trip.

Failures, as in the Rust crate (docs/redis.md has the full matrix):

- Redis down or slower than the client's socket timeouts: the :class:`FailurePolicy` answers
  (closed: Overloaded, HTTP 503; open: Allowed with ``FLAG_FAIL_OPEN``), and for
  ``retry_interval`` seconds calls answer by the policy without trying Redis.
- A command Redis refuses for one request (``NOPERM``, ``OOM``, a script error): the policy
  answers that request alone; the connection, the circuit and the other requests are untouched.
- A key holding no valid state (another type, garbage fields, a fingerprint no tollgate wrote):
  repaired as a full bucket or window at ``now`` (never a fresh one), counted and logged.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, NamedTuple, Sequence, Union

import redis as _redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import TimeoutError as _TimeoutError

from . import headers as _headers
from .decision import FLAG_FAIL_OPEN, FLAG_SHADOW, Decision, Outcome
from .errors import (
    ArgumentTypeError,
    ClockOutOfRangeError,
    InvalidArgumentError,
    LimitedError,
    OverloadedError,
    QuotaError,
    ZeroCostError,
)
from .limiters import Quota
from .table import WindowQuota

__all__ = [
    "FailurePolicy",
    "GCRA_LUA",
    "HybridLimiter",
    "RedisLimiter",
    "Request",
    "Stats",
    "WINDOW_LUA",
]

log = logging.getLogger("tollgate.redis")

U64_MAX = (1 << 64) - 1
#: The largest fixed-window limit (the core's packed word keeps 32 bits for the count).
WINDOW_MAX_LIMIT = (1 << 32) - 1
#: Compare-and-set rounds for a key whose quota changed while other nodes write it.
CONVERSION_ROUNDS = 4


def _script(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


#: The leaky bucket's script (the file ``lua/gcra.lua``, also compiled into the Rust crate).
GCRA_LUA = _script("gcra.lua")
#: The fixed window's script (``lua/fixed_window.lua``).
WINDOW_LUA = _script("fixed_window.lua")


class FailurePolicy(enum.Enum):
    """What a process answers while Redis cannot: the Rust crate's ``FailurePolicy``."""

    #: Let the request through: outcome Allowed, verdict Overloaded, ``FLAG_FAIL_OPEN``.
    OPEN = "open"
    #: Refuse it: Overloaded (HTTP 503), ``retry_after`` = the retry interval. The default.
    CLOSED = "closed"


class Stats(NamedTuple):
    """Counters of a :class:`RedisLimiter` (the Rust crate's ``Stats``)."""

    #: Round trips to Redis that completed.
    round_trips: int
    #: Round trips that failed (error, timeout, refused connection).
    failures: int
    #: Requests answered by the failure policy (every cause).
    policy_answers: int
    #: Requests whose own command failed in Redis (or whose reply was malformed).
    server_errors: int
    #: Keys found holding no valid state, repaired as full.
    repaired: int


# --- the caller's arithmetic: the Rust crate's gcra.rs and fixed_window.rs, in Python ints ---


@dataclass(frozen=True)
class _Bucket:
    """B, D (units per tick), I (units per request), B·I and the exact span."""

    burst: int
    unit: int
    interval: int
    tolerance: int
    span: int

    @staticmethod
    def build(burst: int, unit: int, interval: int) -> _Bucket | None:
        if burst == 0 or unit == 0 or interval == 0:
            return None
        tolerance = burst * interval
        if tolerance > U64_MAX:
            return None
        return _Bucket(burst, unit, interval, tolerance, (U64_MAX - tolerance) // unit)

    @staticmethod
    def of(q: Quota) -> _Bucket:
        burst, count, period = q._params()
        span, drain = q.exact_span, q.drain_ticks

        def matches(p: _Bucket | None) -> bool:
            return p is not None and p.span == span and -(-p.tolerance // p.unit) == drain

        if q.exact:
            g = math.gcd(count, period)
            p = _Bucket.build(burst, count // g, period // g)
            if matches(p):
                return p  # type: ignore[return-value]
        else:
            for k in range(63, -1, -1):
                unit = 1 << k
                interval = -(-(period * unit) // count)
                if interval > U64_MAX:
                    continue
                p = _Bucket.build(burst, unit, interval)
                if p is not None and p.span >= span:
                    if matches(p):
                        return p
                    break
        raise InvalidArgumentError(f"{q!r}: a quota this module cannot reproduce")

    def fingerprint(self) -> str:
        return f"{self.burst}:{self.unit}:{self.interval}"

    @staticmethod
    def parse(fp: str) -> _Bucket | None:
        parts = fp.split(":")
        if len(parts) != 3 or not all(_is_u64(x) for x in parts):
            return None
        return _Bucket.build(*(int(x) for x in parts))

    def step(self, state: int, now: int, cost: int, peek: bool) -> tuple[int | None, Decision]:
        if now > self.span:
            raise ClockOutOfRangeError(f"now {now} is beyond the quota's exact span {self.span}")
        now_units = now * self.unit
        limit = self.burst

        def report(verdict: Outcome, s: int, retry_after: int | None) -> Decision:
            excess = max(s - now_units, 0)
            used = min(-(-excess // self.interval), limit)
            return Decision(
                verdict, verdict, limit, used, limit - used, retry_after, -(-excess // self.unit), 0
            )

        later = now_units if now_units > state else None
        if cost > limit:
            return later, report(Outcome.NEVER, state, None)
        need = cost * self.interval
        base = max(state, now_units)
        nxt = base + need
        if nxt <= now_units + self.tolerance and nxt <= U64_MAX:
            if not peek:
                return nxt, report(Outcome.ALLOWED, nxt, 0)
            return later, report(Outcome.ALLOWED, state, 0)
        over = base - now_units + need - self.tolerance
        ticks = min(-(-over // self.unit), U64_MAX)
        return (later if peek else None), report(Outcome.LIMITED, state, ticks)

    def convert(self, state: int, old: _Bucket, now: int) -> int:
        if now > old.span or now > self.span:
            raise ClockOutOfRangeError(f"now {now} is beyond the exact span of a quota change")
        backlog = max(state - now * old.unit, 0)
        by_level = -(-(backlog * self.interval) // old.interval)
        by_time = -(-(backlog * self.unit) // old.unit)
        converted = now * self.unit + max(by_level, by_time)
        if converted > U64_MAX:
            raise ClockOutOfRangeError("the converted state does not fit the new quota")
        return converted

    def full(self, now: int) -> int:
        if now > self.span:
            raise ClockOutOfRangeError(f"now {now} is beyond the quota's exact span {self.span}")
        return now * self.unit + self.tolerance


@dataclass(frozen=True)
class _Window:
    limit: int
    window: int
    offset: int

    @staticmethod
    def of(q: WindowQuota) -> _Window:
        limit, window, offset = (int(x) for x in q)
        if limit == 0:
            raise QuotaError("a window's limit must be at least 1")
        if window == 0:
            raise QuotaError("a window must be at least 1 tick")
        if limit > WINDOW_MAX_LIMIT:
            raise QuotaError(f"a window's limit must be at most {WINDOW_MAX_LIMIT}")
        if window > U64_MAX or not 0 <= offset < window:
            raise QuotaError("a window's offset must be below its length")
        return _Window(limit, window, offset)

    @property
    def max_index(self) -> int:
        return U64_MAX >> self.limit.bit_length()

    def index_of(self, now: int) -> int:
        idx = (now + self.window - self.offset) // self.window
        if idx > self.max_index:
            raise ClockOutOfRangeError(f"now {now} is beyond the window's span")
        return idx

    def ticks_to_end(self, index: int, now: int) -> int:
        return min(max(self.offset + index * self.window - now, 0), U64_MAX)

    def fingerprint(self) -> str:
        return f"{self.limit}:{self.window}:{self.offset}"

    @staticmethod
    def parse(fp: str) -> _Window | None:
        parts = fp.split(":")
        if len(parts) != 3 or not all(_is_u64(x) for x in parts):
            return None
        try:
            return _Window.of(WindowQuota(*(int(x) for x in parts)))
        except QuotaError:
            return None

    def step(
        self, state: tuple[int, int], now: int, cost: int, peek: bool
    ) -> tuple[tuple[int, int] | None, Decision]:
        current = self.index_of(now)
        stored, stored_count = state
        if current > stored:
            win, count, later = current, 0, (current, 0)
        else:
            win, count, later = stored, stored_count, None
        to_end = self.ticks_to_end(win, now)
        limit = self.limit

        def report(verdict: Outcome, used: int, retry_after: int | None) -> Decision:
            return Decision(
                verdict, verdict, limit, used, max(limit - used, 0), retry_after, to_end, 0
            )

        if cost > limit:
            return later, report(Outcome.NEVER, count, None)
        if count + cost <= limit:
            if not peek:
                return (win, count + cost), report(Outcome.ALLOWED, count + cost, 0)
            return later, report(Outcome.ALLOWED, count, 0)
        return later, report(Outcome.LIMITED, count, to_end)

    def convert(self, state: tuple[int, int], old: _Window, now: int) -> tuple[int, int]:
        stored, count = state
        current_new = self.index_of(now)
        current_old = old.index_of(now)
        if current_old > stored:
            # Over: a new state in the new quota's current window.
            return current_new, 0
        # Not over, a count of zero included: into the window holding the stored window's last
        # tick (or now's, if later), so the window's end never moves earlier.
        end = old.offset + stored * old.window
        last_tick = min(max(end - 1, 0), U64_MAX)
        return self.index_of(max(last_tick, now)), min(count, self.limit)


def _is_u64(x: str) -> bool:
    return x.isascii() and x.isdigit() and int(x) <= U64_MAX


# --- requests and the batch ---

Limit = Union[Quota, WindowQuota]
KeyLike = Union[str, bytes, int, tuple]


class Request(NamedTuple):
    """One request of a batch: a key, its quota, the time in ticks, the cost, and peek or not."""

    key: KeyLike
    limit: Limit
    now: int
    cost: int = 1
    peek: bool = False


@dataclass
class _Job:
    redis_key: bytes
    bucket: _Bucket | None
    window: _Window | None
    argv: list[str]
    conversion: list[str] = field(default_factory=list)
    converted_window: int | None = None
    result: tuple[Decision, Any] | None = None
    error: Exception | None = None
    by_policy: bool = False


class RedisLimiter:
    """A leaky bucket or fixed window per key, shared through Redis (module docs).

    ``client`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster`` (any object with
    ``pipeline()``; set its socket timeouts: :meth:`from_url` does). ``tiers`` are the quotas a
    call names by index (``tier=``), as for :class:`tollgate.KeyTable`; a call may also pass
    ``quota=`` directly. Keys are ``str``, ``bytes``, ``int`` or a tuple of them (joined with
    ``/``); they live under ``{prefix}b:{key}`` (buckets) and ``{prefix}w:{key}`` (windows),
    the Rust crate's layout, so both share one limit per key.
    """

    def __init__(
        self,
        client: Any,
        tiers: Limit | Sequence[Limit] = (),
        *,
        ticks_per_second: int,
        clock: Callable[[], int] | None = None,
        prefix: str = "tg:",
        policy: FailurePolicy = FailurePolicy.CLOSED,
        retry_interval: float = 0.25,
        grace: float = 1.0,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        if isinstance(tiers, (Quota, WindowQuota)):
            tiers = [tiers]
        self.tiers = tuple(tiers)
        for t in self.tiers:
            if not isinstance(t, (Quota, WindowQuota)):
                raise ArgumentTypeError(f"a tier is a Quota or a WindowQuota, not {t!r}")
        if not isinstance(ticks_per_second, int) or ticks_per_second < 1:
            raise InvalidArgumentError("ticks_per_second must be a positive integer")
        self.client = client
        self.ticks_per_second = ticks_per_second
        self._clock = clock
        self.prefix = prefix.encode() if isinstance(prefix, str) else bytes(prefix)
        self.policy = FailurePolicy(policy)
        self.retry_interval = float(retry_interval)
        self.grace_ms = int(round(grace * 1000))
        self.shadow = bool(shadow)
        self.name = name
        self._gcra_sha = _sha1(GCRA_LUA)
        self._window_sha = _sha1(WINDOW_LUA)
        # Per server (its host:port; "" for a single server): monotonic time before which it
        # is not tried again.
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stats = [0, 0, 0, 0, 0]
        self._params: dict[Any, Any] = {}
        # The same quota objects come back call after call: found by identity first (a Quota's
        # equality and hash ask the C library).
        self._by_id: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        tiers: Limit | Sequence[Limit] = (),
        *,
        timeout: float = 0.05,
        client_options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> RedisLimiter:
        """A limiter on a new ``redis.Redis`` client for ``url`` (``redis://``, or ``rediss://``
        for TLS), with ``timeout`` seconds for connecting and for each socket operation, and no
        retries (the failure policy answers instead). ``client_options`` go to
        ``redis.Redis.from_url`` (for TLS: ``ssl_ca_certs``, ``ssl_certfile``, ...); the other
        keywords to the constructor."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
        }
        options.update(client_options or {})
        client = _redis.Redis.from_url(url, **options)
        return cls(client, tiers, **kw)

    # --- the key table's surface ---

    def decide(
        self,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        quota: Limit | None = None,
    ) -> Decision:
        """Decides on a request of ``cost`` for ``key`` at ``now`` under tier ``tier`` (or
        ``quota``): one round trip."""
        return self._one(key, cost, now, tier, quota, False)

    def peek(
        self,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        quota: Limit | None = None,
    ) -> Decision:
        """Would ``cost`` pass for ``key``? Spends nothing; the numbers describe the level."""
        return self._one(key, cost, now, tier, quota, True)

    def allow(
        self,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        quota: Limit | None = None,
    ) -> bool:
        """Decides like :meth:`decide` and answers only whether to let the request through."""
        return self.decide(key, cost, now, tier=tier, quota=quota).allowed

    def check(
        self,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        quota: Limit | None = None,
    ) -> Decision:
        """:meth:`decide`, raising ``LimitedError``/``OverloadedError`` when refused."""
        d = self.decide(key, cost, now, tier=tier, quota=quota)
        if d.outcome is Outcome.OVERLOADED:
            raise OverloadedError(d)
        if d.outcome is not Outcome.ALLOWED:
            raise LimitedError(d)
        return d

    def headers(
        self,
        decision: Decision,
        *,
        tier: int = 0,
        quota: Limit | None = None,
        ticks_per_second: int | None = None,
    ) -> dict[str, str]:
        """The response headers for a decision of tier ``tier`` (or ``quota``)."""
        tps = ticks_per_second or self.ticks_per_second
        q = self._limit(tier, quota)
        if isinstance(q, WindowQuota):
            policy = _headers.ratelimit_policy_window(q.limit, q.window, self.name, tps)
        else:
            policy = _headers.ratelimit_policy_bucket(q, self.name, tps)
        return _headers.for_decision(decision, ticks_per_second=tps, name=self.name, policy=policy)

    @property
    def stats(self) -> Stats:
        """The counters now."""
        return Stats(*self._stats)

    def decide_batch(self, requests: Sequence[Request]) -> list[Decision | Exception]:
        """Decides many requests (any keys and quotas) in one pipelined round trip; the answers
        come back in order. An argument error is returned in its place (not raised)."""
        return [r[0] if isinstance(r, tuple) else r for r in self._run(list(requests))]

    def policy_decision(self, limit: Limit) -> Decision:
        """What this process answers without Redis, by its policy."""
        capacity = limit.burst if isinstance(limit, Quota) else int(limit.limit)
        if self.policy is FailurePolicy.OPEN:
            d = Decision(
                Outcome.ALLOWED, Outcome.OVERLOADED, capacity, 0, capacity, 0, 0, FLAG_FAIL_OPEN
            )
        else:
            hint = -(-self.ticks_per_second * int(round(self.retry_interval * 1e9)) // 10**9)
            d = Decision(
                Outcome.OVERLOADED, Outcome.OVERLOADED, capacity, capacity, 0, hint, hint, 0
            )
        return self._finish(d)

    # --- internals ---

    def _limit(self, tier: int, quota: Limit | None) -> Limit:
        if quota is not None:
            return quota
        if not isinstance(tier, int) or not 0 <= tier < len(self.tiers):
            raise InvalidArgumentError(
                f"tier must be in 0..{len(self.tiers) - 1}, got {tier!r}"
                if self.tiers
                else "no tiers: pass quota="
            )
        return self.tiers[tier]

    def _one(
        self, key: KeyLike, cost: int, now: int | None, tier: int, quota: Limit | None, peek: bool
    ) -> Decision:
        if now is None:
            if self._clock is None:
                raise ArgumentTypeError("no clock: pass now= or clock= to the limiter")
            now = self._clock()
        out = self._run([Request(key, self._limit(tier, quota), now, cost, peek)])[0]
        if isinstance(out, Exception):
            raise out
        return out[0]

    def _finish(self, d: Decision) -> Decision:
        if self.shadow:
            return d._replace(outcome=Outcome.ALLOWED, flags=d.flags | FLAG_SHADOW)
        return d

    def _count(self, i: int, n: int = 1) -> None:
        with self._lock:
            self._stats[i] += n

    def _key(self, kind: bytes, key: KeyLike) -> bytes:
        return self.prefix + kind + b":" + _key_bytes(key)

    def _cached(self, limit: Limit) -> Any:
        hit = self._by_id.get(id(limit))
        if hit is not None and hit[0] is limit:
            return hit[1]
        p = self._params.get(limit)
        if p is None:
            if isinstance(limit, Quota):
                p = _Bucket.of(limit)
            elif isinstance(limit, WindowQuota):
                p = _Window.of(limit)
            else:
                raise ArgumentTypeError(f"a quota is a Quota or a WindowQuota, not {limit!r}")
            self._params[limit] = p
        if len(self._by_id) > 4096:
            self._by_id.clear()
        self._by_id[id(limit)] = (limit, p)
        return p

    def _prepare(self, r: Request) -> _Job:
        now, cost = r.now, r.cost
        if not isinstance(now, int) or not 0 <= now <= U64_MAX:
            raise InvalidArgumentError(f"now must be a u64, got {now!r}")
        if not isinstance(cost, int) or not 0 <= cost <= U64_MAX:
            raise InvalidArgumentError(f"cost must be a u64, got {cost!r}")
        if cost == 0:
            raise ZeroCostError("cost 0 is not a request (use peek)")
        p = self._cached(r.limit)
        if isinstance(p, _Bucket):
            if now > p.span:
                raise ClockOutOfRangeError(f"now {now} is beyond the quota's exact span {p.span}")
            now_units = now * p.unit
            full = now_units + p.tolerance
            decide = not r.peek and cost <= p.burst
            need = cost * p.interval if decide else 0
            threshold = full - need if decide else 0
            ms_per_unit = 1000.0 / (self.ticks_per_second * p.unit)
            argv = [
                p.fingerprint(),
                "d" if decide else "r",
                str(now_units),
                str(need),
                str(threshold),
                f"{ms_per_unit:e}",
                str(self.grace_ms),
                str(full),
            ]
            return _Job(self._key(b"b", r.key), p, None, argv)
        index = p.index_of(now)
        decide = not r.peek and cost <= p.limit
        argv = [p.fingerprint(), "d" if decide else "r", str(index), str(min(cost, p.limit)),
                str(p.limit), ""]
        return _Job(self._key(b"w", r.key), None, p, argv)

    def _window_ttl_ms(self, p: _Window, index: int, now: int) -> int:
        ticks = p.ticks_to_end(index, now)
        ms = -(-(ticks * 1000) // self.ticks_per_second) + self.grace_ms + 1
        return min(ms, 10**15)

    def _invocation(self, job: _Job, r: Request) -> list[Any]:
        if job.bucket is not None:
            return ["EVALSHA", self._gcra_sha, 1, job.redis_key, *job.argv, *job.conversion]
        p = job.window
        assert p is not None
        index = int(job.argv[2])
        later = index if job.converted_window is None else max(job.converted_window, index)
        argv = job.argv[:5] + [str(self._window_ttl_ms(p, later, r.now))]
        return ["EVALSHA", self._window_sha, 1, job.redis_key, *argv, *job.conversion]

    def _run(self, requests: list[Request]) -> list[tuple[Decision, Any] | Exception]:
        jobs: list[_Job | Exception] = []
        for r in requests:
            try:
                jobs.append(self._prepare(r))
            except (InvalidArgumentError, ArgumentTypeError) as e:
                jobs.append(e)
        start = 0
        while start < len(jobs):
            quotas: dict[bytes, Any] = {}
            end = start
            while end < len(jobs):
                job = jobs[end]
                if isinstance(job, _Job):
                    # Quotas with equal integers decide identically (one fingerprint).
                    params = job.bucket if job.bucket is not None else job.window
                    seen = quotas.setdefault(job.redis_key, params)
                    if seen is not params and seen != params:
                        break
                end += 1
            self._segment(jobs[start:end], requests[start:end])
            start = end
        out: list[tuple[Decision, Any] | Exception] = []
        for job, r in zip(jobs, requests):
            if isinstance(job, Exception):
                out.append(job)
            elif job.error is not None:
                out.append(job.error)
            elif job.result is None:
                self._count(2)
                out.append((self.policy_decision(r.limit), None))
            else:
                out.append((self._finish(job.result[0]), job.result[1]))
        return out

    def _segment(self, jobs: list[Any], requests: list[Request]) -> None:
        for _ in range(CONVERSION_ROUNDS):
            pending = [
                i
                for i, j in enumerate(jobs)
                if isinstance(j, _Job) and j.result is None and j.error is None and not j.by_policy
            ]
            if not pending:
                return
            replies = self._round_trip([self._invocation(jobs[i], requests[i]) for i in pending])
            converting: set[bytes] = set()
            reload = False
            for i, reply in zip(pending, replies):
                job = jobs[i]
                if reply is _UNREACHABLE:
                    job.by_policy = True  # its server is down or late (counted at the end)
                    continue
                if isinstance(reply, NoScriptError):
                    reload = True
                    continue
                if isinstance(reply, (MovedError, AskError, TryAgainError, ClusterDownError)):
                    self._topology_changed()
                    continue
                if isinstance(reply, Exception):
                    self._by_policy(job, f"{type(reply).__name__}: {reply}")
                    continue
                try:
                    again, repaired = self._absorb(job, requests[i], reply,
                                                   job.redis_key not in converting)
                except _Malformed:
                    self._by_policy(job, "malformed reply")
                    continue
                if repaired:
                    self._count(4)
                    log.warning("%r held no valid state; repaired as full", job.redis_key)
                if again:
                    converting.add(job.redis_key)
            if reload:
                try:
                    # A cluster client sends SCRIPT LOAD to every primary.
                    self.client.script_load(GCRA_LUA)
                    self.client.script_load(WINDOW_LUA)
                except (_ConnectionError, _TimeoutError, ResponseError) as e:
                    log.warning("SCRIPT LOAD failed: %s", e)
                    return

    def _by_policy(self, job: _Job, message: str) -> None:
        job.by_policy = True
        self._count(3)
        log.warning("%r answered by the failure policy: %s", job.redis_key, message)

    def _absorb(self, job: _Job, r: Request, reply: Any, first: bool) -> tuple[bool, bool]:
        if not isinstance(reply, list) or not reply:
            raise _Malformed
        fields = [x.decode() if isinstance(x, bytes) else str(x) for x in reply]
        if not first and fields[0] == "0":
            job.conversion = []
            job.converted_window = None
            return True, False

        def num(i: int) -> int:
            if i >= len(fields) or not _is_u64(fields[i]):
                raise _Malformed
            return int(fields[i])

        def tagged(i: int) -> bool:
            return len(fields) > i and fields[i] == "repaired"

        try:
            if job.bucket is not None:
                p = job.bucket
                if fields[0] == "1":
                    state = num(1)
                    nxt, d = p.step(state, r.now, r.cost, r.peek)
                    job.result = (d, ("b", p, state if nxt is None else nxt))
                    return False, tagged(2)
                if fields[0] == "0" and len(fields) >= 3:
                    state, old_fp = num(1), fields[2]
                    old = _Bucket.parse(old_fp)
                    converted = p.full(r.now) if old is None else p.convert(state, old, r.now)
                    job.conversion = [fields[1], old_fp, str(converted)]
                    return True, old is None
                raise _Malformed
            w = job.window
            assert w is not None
            if fields[0] == "1":
                state2 = (num(1), num(2))
                nxt2, d = w.step(state2, r.now, r.cost, r.peek)
                job.result = (d, ("w", w, state2 if nxt2 is None else nxt2))
                return False, tagged(3)
            if fields[0] == "0" and len(fields) >= 4:
                state2, old_fp = (num(1), num(2)), fields[3]
                oldw = _Window.parse(old_fp)
                if oldw is None:
                    i, c = max(w.index_of(r.now), state2[0]), w.limit
                else:
                    i, c = w.convert(state2, oldw, r.now)
                job.converted_window = i
                job.conversion = [fields[1], fields[2], old_fp, str(i), str(c)]
                return True, oldw is None
            raise _Malformed
        except ClockOutOfRangeError as e:
            job.error = e
            return False, False

    def _transport_failed(self, server: str, e: BaseException) -> None:
        self._count(1)
        self._down_until[server] = time.monotonic() + self.retry_interval
        log.warning(
            "Redis %s unreachable, answering by the %s policy: %s",
            server or "server", self.policy.value, e,
        )
        if server:
            # A cluster node: it may have failed over (at most once per retry interval, as its
            # circuit is open meanwhile).
            self._topology_changed()

    def _topology_changed(self) -> None:
        manager = getattr(self.client, "nodes_manager", None)
        if manager is not None:
            try:
                manager.initialize()
            except Exception as e:  # noqa: BLE001 - the next round trip tries again
                log.warning("cluster rediscovery failed: %s", e)

    def _round_trip(self, commands: list[list[Any]]) -> list[Any]:
        """Sends the commands, one pipeline per server (a cluster client: the primary of each
        key's slot, so a server that is down fails only its own keys); a command whose server
        could not be reached gets ``_UNREACHABLE``."""
        if not hasattr(self.client, "get_node_from_key"):
            return self._pipeline("", self.client, commands)
        groups: dict[str, tuple[Any, list[int]]] = {}
        out: list[Any] = [_UNREACHABLE] * len(commands)
        for i, c in enumerate(commands):
            try:
                node = self.client.get_node_from_key(c[3])
            except Exception as e:  # noqa: BLE001 - no node known for the slot
                log.warning("no cluster node for %r: %s", c[3], e)
                self._topology_changed()
                continue
            groups.setdefault(node.name, (node, []))[1].append(i)
        for name, (node, indices) in groups.items():
            conn = self.client.get_redis_connection(node)
            replies = self._pipeline(name, conn, [commands[i] for i in indices])
            for i, r in zip(indices, replies):
                out[i] = r
        return out

    def _pipeline(self, server: str, conn: Any, commands: list[list[Any]]) -> list[Any]:
        if time.monotonic() < self._down_until.get(server, 0.0):
            return [_UNREACHABLE] * len(commands)
        pipe = conn.pipeline(transaction=False)
        for c in commands:
            pipe.execute_command(*c)
        try:
            replies = pipe.execute(raise_on_error=False)
        except (_ConnectionError, _TimeoutError, OSError) as e:
            self._transport_failed(server, e)
            return [_UNREACHABLE] * len(commands)
        # A reply that is a connection error means the transport failed mid-pipeline.
        if len(replies) != len(commands) or any(
            isinstance(r, (_ConnectionError, _TimeoutError)) for r in replies
        ):
            self._transport_failed(server, RuntimeError("the pipeline was cut"))
            return [_UNREACHABLE] * len(commands)
        self._count(0)
        return replies


class HybridLimiter:
    """A :class:`RedisLimiter` with a local mirror that answers clear denials without a round
    trip (the Rust crate's ``HybridLimiter``; docs/redis.md).

    The mirror keeps, per key, the state Redis returned with this process's latest decision on
    it: a lower bound of the shared state under one quota. Admission only gets harder as the
    state grows, so a request the mirror denies, Redis would deny too, and a denial changes
    nothing in Redis: those are answered locally. Every possible admission goes to Redis, so the
    hybrid limiter never admits more than the shared limit. At most ``capacity`` keys are
    mirrored (drained entries are dropped first, then all: forgetting is always safe).
    """

    def __init__(self, shared: RedisLimiter, capacity: int = 100_000) -> None:
        self.shared = shared
        self.capacity = max(int(capacity), 1)
        self._mirror: dict[bytes, tuple[str, Any, Any]] = {}
        self._lock = threading.Lock()
        #: Denials answered locally.
        self.local_denials = 0

    def decide(
        self,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        quota: Limit | None = None,
    ) -> Decision:
        """Decides like :meth:`RedisLimiter.decide`; a sure denial is answered at once."""
        if now is None:
            if self.shared._clock is None:
                raise ArgumentTypeError("no clock: pass now= or clock= to the limiter")
            now = self.shared._clock()
        out = self.decide_batch([Request(key, self.shared._limit(tier, quota), now, cost)])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def allow(self, key: KeyLike, cost: int = 1, now: int | None = None, *, tier: int = 0,
              quota: Limit | None = None) -> bool:
        """Decides like :meth:`decide` and answers only whether to let the request through."""
        return self.decide(key, cost, now, tier=tier, quota=quota).allowed

    def decide_batch(self, requests: Sequence[Request]) -> list[Decision | Exception]:
        """Like :meth:`RedisLimiter.decide_batch`; denials the mirror is sure of are local."""
        answers: list[Decision | Exception | None] = [None] * len(requests)
        remote: list[int] = []
        with self._lock:
            for i, r in enumerate(requests):
                d = None if r.peek else self._local_denial(r)
                if d is None:
                    remote.append(i)
                else:
                    self.local_denials += 1
                    answers[i] = self.shared._finish(d)
        if remote:
            results = self.shared._run([requests[i] for i in remote])
            with self._lock:
                for i, res in zip(remote, results):
                    if isinstance(res, tuple):
                        answers[i] = res[0]
                        if res[1] is not None:
                            self._remember(requests[i], res[1])
                    else:
                        answers[i] = res
        return answers  # type: ignore[return-value]

    def _redis_key(self, r: Request) -> bytes:
        kind = b"b" if isinstance(r.limit, Quota) else b"w"
        return self.shared._key(kind, r.key)

    def _local_denial(self, r: Request) -> Decision | None:
        try:
            known = self._mirror.get(self._redis_key(r))
            if known is None or type(r.cost) is not int or r.cost < 1:
                return None
            kind, p, state = known
            if p != self.shared._cached(r.limit):
                return None
            if kind == "b":
                _, d = p.step(state, r.now, r.cost, True)
                if d.verdict is not Outcome.LIMITED:
                    return None
                return p.step(state, r.now, r.cost, False)[1]
            if r.cost > p.limit or p.index_of(r.now) != state[0] or state[1] + r.cost <= p.limit:
                return None
            return p.step(state, r.now, r.cost, False)[1]
        except (InvalidArgumentError, ArgumentTypeError):
            return None

    def _remember(self, r: Request, known: tuple[str, Any, Any]) -> None:
        key = self._redis_key(r)
        old = self._mirror.get(key)
        if old is not None and old[1] == known[1] and old[2] >= known[2]:
            return  # replies of concurrent requests may arrive out of order: keep the larger
        if old is None and len(self._mirror) >= self.capacity:
            self._mirror = {k: v for k, v in self._mirror.items() if not _drained(v, r.now)}
            if len(self._mirror) >= self.capacity:
                self._mirror.clear()
        self._mirror[key] = known


def _drained(known: tuple[str, Any, Any], now: int) -> bool:
    kind, p, state = known
    try:
        if kind == "b":
            return p.step(state, now, 1, True)[1].reset_after == 0
        return state[1] == 0 or p.index_of(now) > state[0]
    except ClockOutOfRangeError:
        return True


def _key_bytes(key: KeyLike) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key).encode()
    if isinstance(key, tuple):
        return b"/".join(_key_bytes(p) for p in key)
    raise ArgumentTypeError(f"a key is a str, bytes, int or tuple, not {type(key).__name__}")


class _Malformed(Exception):
    pass


#: The reply of a command whose server could not be reached.
_UNREACHABLE = object()


def _sha1(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode("utf-8")).hexdigest()
