"""One limit across the processes of one host: limiters in shared memory (Unix).

A pre-forked server (gunicorn, uWSGI) runs several worker processes; a limiter private to each
multiplies the limit by their number. The classes here keep the limiter in a **region** of
shared memory instead:

- ``path="/dev/shm/myapp-shopbase"``: a named region, a file every process opens by the same
  path with the same parameters (created by whichever comes first; exactly one of several racing
  creators does). Works with any process start method, including ``spawn``.
- ``path=None``: an anonymous region, shared with the child processes forked after it was made
  (create it in the master before the server forks its workers, e.g. in gunicorn's config file
  or with ``preload_app``).

Every decision is the same as the private limiter's, lock-free, and safe when a process dies
at any instant: a killed worker never blocks the others nor makes the limiter admit more than
its quota. :class:`SharedLeases` is a concurrency limit whose permits are leases that expire,
so a worker that dies holding permits never wedges it.

Regions are created owner-only (mode ``0o600``): every process that can write a region can
change any of its decisions, so only processes of the same user should share one
(``mode=`` widens it for a group). Opening a region whose parameters, kind, size, owner or
permissions differ from what was asked raises :class:`~tollgate.RegionError` naming the
difference. Every process must use the same clock: the default, ``time.monotonic_ns``, is one
clock for the whole host.

:class:`SharedKeys` keeps one named region per key in a directory, for a per-key limit (a
bucket per (app, shop)) across processes, with a bound on the number of keys.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from . import headers as _headers
from ._ffi import TgDecision, TgLease, TgRegionError, TgShared, TgTable, lib
from ._util import check, u32, u64
from .decision import Decision, Outcome, from_c
from .errors import InvalidArgumentError
from .errors import RegionError, status_error
from .limiters import Clock, Quota, _allower, _decider, _Limiter
from .table import (
    FullPolicy,
    KeyTable,
    WindowQuota,
    _capacity,
    _seed,
    _tier_array,
    _tier_list,
)

#: ``create=`` values: open the region if it exists, else create it (the default); create only
#: (an existing path is an error); open only (a missing path is an error).
CREATE_IF_MISSING = "if_missing"
CREATE_NEW = "new"
CREATE_EXISTING = "existing"
_CREATE = {CREATE_IF_MISSING: 0, CREATE_NEW: 1, CREATE_EXISTING: 2}


def _region_args(path: str | os.PathLike[str] | None, mode: int, create: str) -> tuple:
    if create not in _CREATE:
        raise ValueError(f"create must be one of {sorted(_CREATE)}, not {create!r}")
    if type(mode) is not int or not 0 < mode <= 0o777:
        raise ValueError(f"mode must be permission bits in 0o1..0o777, not {mode!r}")
    raw_path = None if path is None else os.fsencode(path)
    return raw_path, mode, _CREATE[create]


def _open(func_name: str, raw: TgShared, args: tuple, region: tuple) -> None:
    raw_path, mode, create = region
    err = TgRegionError()
    status = getattr(lib, func_name)(raw, raw_path, *args, mode, create, ctypes.byref(err))
    if status:
        if err.status == status and err.message:
            message = err.message.decode("utf-8", "replace")
            where = os.fsdecode(raw_path) if raw_path else "anonymous"
            raise RegionError(f"{message} ({where})", status, err.found, err.expected)
        raise status_error(status, func_name, lib.tg_status_str)


class _RegionHandle:
    """What every handle on a region does: closed explicitly, on ``with`` exit, or when
    garbage-collected; passed to another process by path. (Methods only: the classes that mix it
    in declare the slots ``_raw``, ``_path``, ``_mode``, ``_clock_kw`` and ``name``.)"""

    __slots__ = ()
    _raw: Any
    _path: str | None
    _mode: int
    _clock_kw: dict
    name: str

    def _setup(
        self, path: Any, mode: int, create: str, clock: Clock | None, tps: int | None
    ) -> tuple:
        self._raw = TgShared()
        self._path = None if path is None else os.fspath(path)
        self._mode = mode
        self._clock_kw = {} if clock is None else {"clock": clock, "ticks_per_second": tps}
        return _region_args(path, mode, create)

    def _kw(self, **extra: Any) -> dict:
        """The keyword arguments that open this region again in another process."""
        return {
            "path": self._path,
            "mode": self._mode,
            "create": CREATE_EXISTING,
            "name": self.name,
            **self._clock_kw,
            **extra,
        }

    @property
    def path(self) -> str | None:
        """The region's path, or None for an anonymous region."""
        return self._path

    @property
    def created(self) -> bool:
        """True if this handle created the region, False if it opened an existing one."""
        out = ctypes.c_bool()
        check(lib.tg_shared_created(self._raw, ctypes.byref(out)), "tg_shared_created")
        return out.value

    def close(self) -> None:
        """Unmaps the region from this process (the region and its state stay for the others).
        Idempotent."""
        raw = getattr(self, "_raw", None)
        if raw is not None:
            self._closing()
            lib.tg_shared_close(raw)  # a second close answers UNINITIALIZED: nothing to do

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def _closing(self) -> None:
        """Called by :meth:`close` before the region is unmapped."""

    def _reopen_args(self) -> tuple:
        raise NotImplementedError

    def __reduce__(self) -> tuple:
        # A named region travels to another process (multiprocessing with `spawn`, a pickle) as
        # its path and parameters: the other side opens it. An anonymous one cannot.
        if self._path is None:
            raise TypeError(
                "an anonymous shared region is inherited by fork only; use path= to pass it to "
                "processes started another way"
            )
        return (_reopen, (type(self), self._reopen_args()))


class _Shared(_RegionHandle, _Limiter):
    """A handle on a region holding one limiter."""

    __slots__ = ("_path", "_mode", "_clock_kw", "__weakref__")


def _reopen(cls: type, args: tuple) -> Any:
    args, kwargs = args
    return cls(*args, **kwargs)


class SharedBucket(_Shared):
    """A leaky bucket (as :class:`~tollgate.LeakyBucket`) shared by every process that opens
    ``path`` with the same quota, or (``path=None``) by the children forked after it was made.
    """

    __slots__ = ("_quota",)

    def __init__(
        self,
        quota: Quota,
        *,
        path: str | os.PathLike[str] | None = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        if not isinstance(quota, Quota):
            raise TypeError(f"quota must be a tollgate.Quota, not {type(quota).__name__}")
        self._quota = quota
        region = self._setup(path, mode, create, clock, ticks_per_second)
        _open("tg_shared_open_bucket", self._raw, (quota._raw,), region)

    def _reopen_args(self) -> tuple:
        return ((self._quota,), self._kw(shadow=self.shadow))

    @property
    def quota(self) -> Quota:
        """The bucket's quota."""
        return self._quota

    decide = _decider("tg_shared_decide")
    decide.__doc__ = """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
    allow = _allower("tg_shared_decide")
    peek = _decider("tg_shared_peek")
    peek.__doc__ = """Would ``cost`` pass at ``now``? Spends nothing."""

    def reset(self) -> None:
        """Empties the bucket for every process."""
        check(lib.tg_shared_reset(self._raw), "tg_shared_reset")

    def _policy(self, tps: int) -> str | None:
        return _headers.ratelimit_policy_bucket(self._quota, self.name, tps)


class SharedWindow(_Shared):
    """A fixed window (as :class:`~tollgate.FixedWindow`) of at most ``limit`` units per
    ``window`` ticks, shared like :class:`SharedBucket`."""

    __slots__ = ("limit", "window", "offset")

    def __init__(
        self,
        limit: int,
        window: int,
        offset: int = 0,
        *,
        path: str | os.PathLike[str] | None = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        self.limit, self.window, self.offset = u64("limit", limit), u64("window", window), u64("offset", offset)
        region = self._setup(path, mode, create, clock, ticks_per_second)
        _open("tg_shared_open_window", self._raw, (self.limit, self.window, self.offset), region)

    def _reopen_args(self) -> tuple:
        return ((self.limit, self.window, self.offset), self._kw(shadow=self.shadow))

    decide = _decider("tg_shared_decide")
    decide.__doc__ = """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
    allow = _allower("tg_shared_decide")
    peek = _decider("tg_shared_peek")
    peek.__doc__ = """Would ``cost`` pass at ``now``? Spends nothing."""

    def reset(self) -> None:
        """Forgets every count, for every process."""
        check(lib.tg_shared_reset(self._raw), "tg_shared_reset")

    def _policy(self, tps: int) -> str | None:
        return _headers.ratelimit_policy_window(self.limit, self.window, self.name, tps)


class SharedLog(_Shared):
    """A strict sliding-window log (as :class:`~tollgate.SlidingLog`) of at most ``limit`` units
    (≤ 65 535) in any ``window`` ticks, shared like :class:`SharedBucket`; lock-free, so any
    number of threads and processes may decide at once."""

    __slots__ = ("limit", "window")

    def __init__(
        self,
        limit: int,
        window: int,
        *,
        path: str | os.PathLike[str] | None = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        self.limit, self.window = u64("limit", limit), u64("window", window)
        region = self._setup(path, mode, create, clock, ticks_per_second)
        _open("tg_shared_open_log", self._raw, (self.limit, self.window), region)

    def _reopen_args(self) -> tuple:
        return ((self.limit, self.window), self._kw(shadow=self.shadow))

    decide = _decider("tg_shared_decide")
    decide.__doc__ = """Decides on a request of ``cost`` at ``now`` (default: the clock)."""
    allow = _allower("tg_shared_decide")
    peek = _decider("tg_shared_peek")
    peek.__doc__ = """Would ``cost`` pass at ``now``? Spends nothing."""

    def _policy(self, tps: int) -> str | None:
        return _headers.ratelimit_policy_window(self.limit, self.window, self.name, tps)


class Lease:
    """A permit of a :class:`SharedLeases`, valid until ``deadline`` (ticks) unless released or
    renewed. Plain data: it may be passed to another process, which may release it."""

    __slots__ = ("_raw",)

    def __init__(self, raw: TgLease) -> None:
        self._raw = raw

    @property
    def deadline(self) -> int:
        """The tick at which the lease expires unless renewed."""
        return self._raw.deadline

    def __repr__(self) -> str:
        return f"Lease(slot={self._raw.slot}, generation={self._raw.generation}, deadline={self.deadline})"


class SharedLeases(_Shared):
    """At most ``max`` requests in flight across processes, each holding a :class:`Lease` of at
    most ``max_lease`` ticks: a lease not released by its deadline is free for the next caller,
    so a worker that dies holding permits never wedges the limit. A refusal is
    ``Outcome.OVERLOADED`` (HTTP 503)."""

    __slots__ = ("max", "max_lease")

    def __init__(
        self,
        max: int,
        max_lease: int,
        *,
        path: str | os.PathLike[str] | None = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, False, name)
        self.max, self.max_lease = u32("max", max), u64("max_lease", max_lease)
        region = self._setup(path, mode, create, clock, ticks_per_second)
        _open("tg_shared_open_leases", self._raw, (self.max, self.max_lease), region)

    def _reopen_args(self) -> tuple:
        return ((self.max, self.max_lease), self._kw())

    def acquire(self, lease: int, now: int | None = None) -> tuple[Decision, Lease | None]:
        """Takes a permit for ``lease`` ticks (1 ≤ lease ≤ ``max_lease``): the decision, and the
        lease when admitted (else None)."""
        out, raw = TgDecision(), TgLease()
        status = lib.tg_shared_acquire(self._raw, self._now(now), u64("lease", lease), out, raw)
        check(status, "tg_shared_acquire")
        decision = from_c(out)
        return decision, (Lease(raw) if decision.allowed else None)

    def release(self, lease: Lease) -> None:
        """Returns a permit; :class:`~tollgate.NotAcquiredError` if it was released already, or
        expired and was taken by another caller."""
        check(lib.tg_shared_release(self._raw, lease._raw), "tg_shared_release")

    def renew(self, lease: Lease, ticks: int, now: int | None = None) -> None:
        """Extends an unexpired lease to ``now + ticks``."""
        check(
            lib.tg_shared_renew(self._raw, lease._raw, self._now(now), u64("ticks", ticks)),
            "tg_shared_renew",
        )

    def in_flight(self, now: int | None = None) -> int:
        """Unexpired leases at ``now``."""
        out = ctypes.c_uint32()
        check(lib.tg_shared_in_flight(self._raw, self._now(now), ctypes.byref(out)), "tg_shared_in_flight")
        return out.value


class SharedKeyTable(_RegionHandle, KeyTable):
    """A :class:`~tollgate.table.KeyTable` in a shared region: one bucket (or fixed window) per
    key, shared by every process that opens the same ``path`` with the same parameters (or, with
    ``path=None``, by the children forked after it was made). Every :class:`KeyTable` method
    works (``decide``, ``allow``, ``check``, ``peek``, ``allow_many``, ``headers``, ``stats``,
    ``key``), with the same decisions, lock-free across processes.

    ``seed=None`` (the default) uses the region's seed: the process that creates the region
    draws it from the operating system's randomness and every process that opens the region
    adopts it, so keys hashed from strings or tuples agree everywhere. A given ``(k0, k1)`` must
    equal the region's. Opening a region whose capacity, tiers, policy or seed differ raises
    :class:`~tollgate.RegionError` naming the difference.

    :meth:`close` (or the end of a ``with`` block) unmaps the table from this process: call it
    only when no other thread of this process decides in it.
    """

    __slots__ = ("_path", "_mode", "_clock_kw", "_seed_arg", "__weakref__")

    def __init__(
        self,
        capacity: int,
        tiers: Quota | WindowQuota | Sequence[Quota] | Sequence[WindowQuota],
        *,
        path: str | os.PathLike[str] | None = None,
        policy: FullPolicy = FullPolicy.FAIL_CLOSED,
        seed: tuple[int, int] | None = None,
        mode: int = 0o600,
        create: str = CREATE_IF_MISSING,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        _Limiter.__init__(self, clock, ticks_per_second, shadow, name)
        tier_list, windows = _tier_list(tiers)
        capacity = _capacity(capacity)
        policy = FullPolicy(policy)
        seed_ptr = None
        if seed is not None:
            seed_ptr = (ctypes.c_uint64 * 2)(*_seed(seed))
        region = self._setup(path, mode, create, clock, ticks_per_second)
        func = "tg_shared_open_window_table" if windows else "tg_shared_open_bucket_table"
        arr = _tier_array(tier_list, windows)
        _open(func, self._raw, (capacity, arr, len(tier_list), int(policy), seed_ptr), region)
        out = ctypes.POINTER(TgTable)()
        check(lib.tg_shared_table(self._raw, ctypes.byref(out)), "tg_shared_table")
        self._table = out
        self._memory = None
        self._seed_arg = seed
        self.capacity = capacity
        self.tiers = tuple(tier_list)
        self._tier_count = len(self.tiers)
        self.policy = policy
        self._windows = windows

    def _closing(self) -> None:
        # Decisions after close are refused (a NULL table), never made on unmapped memory.
        self._table = None

    def _reopen_args(self) -> tuple:
        return (
            (self.capacity, list(self.tiers)),
            self._kw(policy=self.policy, seed=self._seed_arg, shadow=self.shadow),
        )

    def copy(self) -> KeyTable:
        """Not available for a shared table (a private snapshot would silently stop sharing)."""
        raise TypeError("a shared key table cannot be copied; open it again by path instead")


class SharedKeys:
    """One named :class:`SharedBucket` per key, in ``directory``: a per-key limit (for example a
    bucket per (app, shop)) shared by every process that uses the same directory and quota.

    Each key's region is a file named after the key; at most ``max_keys`` keys are opened by
    one process (beyond that :meth:`decide` answers ``Outcome.OVERLOADED``, fail-closed, so
    crafted keys cannot fill the disk or the address space). Keys are tuples of integers.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        quota: Quota,
        *,
        max_keys: int = 10_000,
        mode: int = 0o600,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        name: str = "default",
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.quota = quota
        self.max_keys = max_keys
        self.mode = mode
        self.name = name
        self._clock = clock
        self._tps = ticks_per_second
        self._buckets: dict[tuple[int, ...], SharedBucket] = {}
        self._lock = threading.Lock()

    @property
    def ticks_per_second(self) -> int | None:
        """The clock's ticks per second (10**9 for the default clock)."""
        return 1_000_000_000 if self._clock is None else self._tps

    def bucket(self, key: tuple[int, ...]) -> SharedBucket | None:
        """The key's bucket (opened or created on first use), or None past ``max_keys``."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            return bucket
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    return None
                parts = [str(u64("key part", k)) for k in key]
                bucket = SharedBucket(
                    self.quota,
                    path=self.directory / ("k-" + "-".join(parts)),
                    mode=self.mode,
                    clock=self._clock,
                    ticks_per_second=self._tps,
                    name=self.name,
                )
                self._buckets[key] = bucket
        return bucket

    def decide(
        self, key: tuple[int, ...], cost: int = 1, now: int | None = None, *, tier: int = 0
    ) -> Decision:
        """Decides for ``key``; ``Outcome.OVERLOADED`` when the key cannot be given a region.

        The key table's ``decide`` surface, so ``tollgate.middleware.Policy(backend=...)`` takes
        it: ``tier`` must be 0 (one quota for every key)."""
        if tier != 0 or type(tier) is bool:
            raise InvalidArgumentError(f"SharedKeys has one tier (0), got {tier!r}")
        bucket = self.bucket(key)
        if bucket is None:
            limit = self.quota.burst
            return Decision(Outcome.OVERLOADED, Outcome.OVERLOADED, limit, limit, 0, None, 0)
        return bucket.decide(cost, now)

    def close(self) -> None:
        """Unmaps every key's region from this process."""
        with self._lock:
            for bucket in self._buckets.values():
                bucket.close()
            self._buckets.clear()


__all__ = [
    "CREATE_EXISTING",
    "CREATE_IF_MISSING",
    "CREATE_NEW",
    "Lease",
    "SharedBucket",
    "SharedKeyTable",
    "SharedKeys",
    "SharedLeases",
    "SharedLog",
    "SharedWindow",
]
