"""The key table (docs/semantics.md#key-tables): one limiter per key in fixed memory, lock-free, never growing.

The memory is one ctypes buffer owned by the :class:`KeyTable`, sized by ``tg_table_size`` and
aligned to ``tg_table_align`` (the C query functions); nothing is allocated after construction.

Keys:

- an ``int`` in 0..2**128-1 is an exact 128-bit key;
- a ``(app, shop)`` pair of u64 ids is the exact key ``app << 64 | shop`` (``tg_key_pair``), so
  ``(7, 42)`` and ``7 << 64 | 42`` are the same key;
- an ``(app, shop, api)`` triple of u64 ids, a tuple of any other length, a ``str`` (UTF-8) or
  ``bytes`` is hashed with the table's secret seed (SipHash-2-4-128; ``tg_table_key_*``);
- a :class:`Key` (from :meth:`KeyTable.key`) is used as is.

Hashed keys of different kinds never collide by construction (the library puts a domain byte and
the length in front); exact keys and hashed keys can coincide only with probability ~2**-128.
"""

from __future__ import annotations

import ctypes
import enum
import os
from typing import Any, NamedTuple, Sequence, Tuple, Union

from ._ffi import TgDecision, TgKey, TgQuota, TgTable, TgTableStats, TgWindowQuota, lib
from ._util import NANOS_PER_SECOND, U64_MAX, Seconds, check, seconds_to_ticks, u64
from .decision import Decision, from_c
from .errors import ArgumentTypeError, CapacityExceededError, InvalidArgumentError
from .limiters import Clock, Quota, _Limiter
from . import headers as _headers

U128_MAX = (1 << 128) - 1
SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1


class FullPolicy(enum.IntEnum):
    """What the table answers when a new key finds no room (``tg_full_policy``)."""

    #: Refuse: Overloaded (HTTP 503). The default.
    FAIL_CLOSED = 0
    #: Let the request through, flagged ``fail_open``.
    FAIL_OPEN = 1


class Key(NamedTuple):
    """An exact 128-bit table key: ``hi`` (bits 64..128) and ``lo`` (bits 0..64)."""

    hi: int
    lo: int

    def __int__(self) -> int:
        return self.hi << 64 | self.lo


class WindowQuota(NamedTuple):
    """A fixed-window tier of a window table: ``limit`` units per ``window`` ticks.

    :meth:`from_seconds` builds one from a window in seconds, converted exactly.
    """

    limit: int
    window: int
    offset: int = 0

    @classmethod
    def from_seconds(
        cls,
        limit: int,
        window_s: Seconds,
        ticks_per_second: int = NANOS_PER_SECOND,
        offset: int = 0,
    ) -> WindowQuota:
        """``limit`` units per ``window_s`` seconds of a clock of ``ticks_per_second``.

        The window must be a whole number of ticks (``Fraction(1, 10)`` s on a millisecond
        clock is 100 ticks; ``0.1`` as a float is refused, not rounded): see
        :func:`tollgate.Quota`.
        """
        return cls(limit, seconds_to_ticks("window_s", window_s, ticks_per_second), offset)


class TableStats(NamedTuple):
    """A snapshot of a table's counters."""

    #: Slots in the table.
    capacity: int
    #: Slots holding a key now.
    occupied: int
    #: Slots taken from a drained key for a new one.
    reclaimed: int
    #: Decisions answered by the full policy for lack of room.
    rejected: int


KeyLike = Union[int, str, bytes, Key, Tuple[int, ...]]


def key_pair(app: int, shop: int) -> Key:
    """The exact key of an (app, shop) pair (``tg_key_pair``)."""
    k = lib.tg_key_pair(u64("app", app), u64("shop", shop))
    return Key(k.hi, k.lo)


def key_triple(app: int, shop: int, api: int) -> Key:
    """The exact key of an (app, shop, api) triple whose app and api fit 32 bits."""
    from ._util import u32

    k = lib.tg_key_triple(u32("app", app), u64("shop", shop), u32("api", api))
    return Key(k.hi, k.lo)


def _table_op(func_name: str, full: bool):
    """A decide/peek/allow method. The key crosses into C as two integers (``tg_table_check``,
    ``tg_table_peek_key``: no struct passed by value), and an (app, shop) pair's packing is
    inlined (the hot path): its halves are simply app and shop."""
    func = getattr(lib, func_name)

    def op(
        self: KeyTable,
        key: KeyLike,
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
        _max: int = U64_MAX,
        _decision: type = TgDecision,
    ):
        if type(key) is tuple and len(key) == 2:
            hi, lo = key
            if not (type(hi) is int and type(lo) is int and 0 <= hi <= _max and 0 <= lo <= _max):
                k = self._key(key)
                hi, lo = k.hi, k.lo
        else:
            k = self._key(key)
            hi, lo = k.hi, k.lo
        if now is None:
            now = self._clock()
        if type(now) is not int or not 0 <= now <= _max:
            now = u64("now", now)
        if type(cost) is not int or not 0 <= cost <= _max:
            cost = u64("cost", cost)
        if type(tier) is not int or not 0 <= tier < self._tier_count:
            tier = self._checked_tier(tier)
        if not full:
            outcome = func(self._table, hi, lo, tier, now, cost, None)
            if outcome < 0:
                check(-outcome, func_name)
            return self.shadow or outcome == 0
        raw = _decision()
        status = func(self._table, hi, lo, tier, now, cost, raw)
        if status < 0:  # tg_table_check: a negated status
            check(-status, func_name)
        elif status and func_name == "tg_table_peek_key":
            check(status, func_name)
        if self.shadow:
            return self._finish(raw)
        return from_c(raw)

    return op


def _tier_list(
    tiers: Quota | WindowQuota | Sequence[Quota] | Sequence[WindowQuota],
) -> tuple[list, bool]:
    """The tiers as a list, and whether they are windows (all of one kind, at least one)."""
    if isinstance(tiers, (Quota, WindowQuota)):
        tiers = [tiers]
    tiers = list(tiers)
    if not tiers:
        raise InvalidArgumentError("a table needs at least one tier")
    windows = all(isinstance(t, WindowQuota) for t in tiers)
    if not windows and not all(isinstance(t, Quota) for t in tiers):
        raise ArgumentTypeError("tiers must be all Quota (buckets) or all WindowQuota (windows)")
    return tiers, windows


def _tier_array(tiers: list, windows: bool) -> ctypes.Array:
    """The tiers as the C array ``tg_table_init_*`` and ``tg_shared_open_*_table`` take."""
    if windows:
        return (TgWindowQuota * len(tiers))(
            *[
                TgWindowQuota(
                    u64("limit", t.limit), u64("window", t.window), u64("offset", t.offset)
                )
                for t in tiers
            ]
        )
    return (TgQuota * len(tiers))(*[t._raw for t in tiers])


def _capacity(capacity: int) -> int:
    capacity = u64("capacity", capacity)
    if capacity > SIZE_MAX:
        raise InvalidArgumentError(f"capacity must be at most {SIZE_MAX} (size_t), got {capacity}")
    return capacity


def _seed(seed: object) -> tuple[int, int]:
    """A seed given as a pair of u64, checked."""
    if not isinstance(seed, tuple) or len(seed) != 2:
        raise ArgumentTypeError("seed must be a pair of u64")
    return u64("seed[0]", seed[0]), u64("seed[1]", seed[1])


def random_seed() -> tuple[int, int]:
    """A key table seed ``(k0, k1)`` from the operating system's randomness (``os.urandom``).

    What :class:`KeyTable` uses when no ``seed`` is given; draw one yourself to give several
    tables, or another process's table, the same seed.
    """
    k0, k1 = (int.from_bytes(os.urandom(8), "little") for _ in range(2))
    return k0, k1


class KeyTable(_Limiter):
    """A table of ``capacity`` slots holding one leaky bucket (or fixed window) per key.

    ``tiers`` is a :class:`~tollgate.Quota` or a sequence of them (bucket table), or a
    :class:`WindowQuota` or a sequence of them (window table); a decision names its key's tier
    by index. Keep the load (keys active within one drain time, over slots) at or under 0.8
    (32 bytes per key); the capacity is rounded up to a multiple of 5 slots.
    ``seed`` (two u64) keys the hashes; by default it is random per table. Decisions are
    lock-free and safe from any number of threads.
    """

    __slots__ = ("_memory", "_table", "capacity", "tiers", "policy", "_windows", "_tier_count")

    def __init__(
        self,
        capacity: int,
        tiers: Quota | WindowQuota | Sequence[Quota] | Sequence[WindowQuota],
        *,
        policy: FullPolicy = FullPolicy.FAIL_CLOSED,
        seed: tuple[int, int] | None = None,
        clock: Clock | None = None,
        ticks_per_second: int | None = None,
        shadow: bool = False,
        name: str = "default",
    ) -> None:
        super().__init__(clock, ticks_per_second, shadow, name)
        tiers, windows = _tier_list(tiers)
        capacity = _capacity(capacity)
        policy = FullPolicy(policy)
        k0, k1 = _seed(seed) if seed is not None else random_seed()
        size = lib.tg_table_size(capacity, len(tiers))
        if size == 0:
            raise CapacityExceededError(
                f"no table of {capacity} slots and {len(tiers)} tiers (capacity 0, too many "
                "tiers, or a size that does not fit size_t)"
            )
        align = lib.tg_table_align()
        self._memory = (ctypes.c_uint8 * (size + align - 1))()
        address = ctypes.addressof(self._memory)
        start = address + (-address % align)
        out = ctypes.POINTER(TgTable)()
        arr = _tier_array(tiers, windows)
        if windows:
            status = lib.tg_table_init_windows(
                start, size, capacity, arr, len(tiers), int(policy), k0, k1, ctypes.byref(out)
            )
            check(status, "tg_table_init_windows")
        else:
            status = lib.tg_table_init_buckets(
                start, size, capacity, arr, len(tiers), int(policy), k0, k1, ctypes.byref(out)
            )
            check(status, "tg_table_init_buckets")
        self._table = out
        self.capacity = capacity
        self.tiers = tuple(tiers)
        self._tier_count = len(self.tiers)
        self.policy = policy
        self._windows = windows

    def copy(self) -> "KeyTable":
        """An independent copy of the table at another address: its memory copied byte for byte
        (the memory holds no pointers) and checked with ``tg_table_attach``. Same keys, levels
        and counters; decisions in one never affect the other. Copy a table no other thread is
        deciding in: a copy taken mid-insertion holds that slot busy (under this process's id)
        for as long as this process lives."""
        import copy as _copy

        new = _copy.copy(self)
        size = self.memory_size
        align = lib.tg_table_align()
        new._memory = (ctypes.c_uint8 * (size + align - 1))()
        address = ctypes.addressof(new._memory)
        start = address + (-address % align)
        source = ctypes.cast(self._table, ctypes.c_void_p).value
        ctypes.memmove(start, source, size)
        out = ctypes.POINTER(TgTable)()
        check(lib.tg_table_attach(start, size, ctypes.byref(out)), "tg_table_attach")
        new._table = out
        return new

    @property
    def memory_size(self) -> int:
        """Bytes of table memory (``tg_table_size``), excluding alignment padding."""
        return lib.tg_table_size(self.capacity, len(self.tiers))

    def key(self, key: KeyLike) -> Key:
        """The table key of ``key`` (see the module docs for the accepted forms)."""
        k = self._key(key)
        return Key(k.hi, k.lo)

    def _key(self, key: KeyLike) -> TgKey:
        kind = type(key)
        if kind is tuple and len(key) == 2:  # type: ignore[arg-type]
            app, shop = key  # type: ignore[misc]
            if (
                type(app) is int
                and type(shop) is int
                and 0 <= app <= U64_MAX
                and 0 <= shop <= U64_MAX
            ):
                return TgKey(app, shop)  # tg_key_pair's packing (tested against it)
            return lib.tg_key_pair(u64("app", app), u64("shop", shop))
        if kind is int:
            if not 0 <= key <= U128_MAX:  # type: ignore[operator]
                raise InvalidArgumentError(f"an int key must be in 0..2**128-1, got {key}")
            return TgKey(key >> 64, key & U64_MAX)  # type: ignore[operator]
        if kind is Key:
            return TgKey(key.hi, key.lo)  # type: ignore[union-attr]
        out = TgKey()
        if isinstance(key, str):
            key = key.encode("utf-8")
        if isinstance(key, (bytes, bytearray, memoryview)):
            data = bytes(key)
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            check(lib.tg_table_key_bytes(self._table, buf, len(data), out), "tg_table_key_bytes")
            return out
        if isinstance(key, tuple):
            parts = [u64(f"key[{i}]", p) for i, p in enumerate(key)]
            if len(parts) == 3:
                check(lib.tg_table_key_triple(self._table, *parts, out), "tg_table_key_triple")
            else:
                arr = (ctypes.c_uint64 * len(parts))(*parts)
                check(
                    lib.tg_table_key_parts(self._table, arr, len(parts), out), "tg_table_key_parts"
                )
            return out
        if isinstance(key, int) and not isinstance(key, bool):
            # The stored value of an int subclass (not what its __int__ says).
            return self._key(int.__index__(key))
        raise ArgumentTypeError(
            f"a key is an int, (app, shop) or other tuple of ints, str, bytes or Key; not {kind.__name__}"
        )

    def _checked_tier(self, tier: object) -> int:
        if isinstance(tier, int) and not isinstance(tier, bool):
            value = int.__index__(tier)  # an int subclass's stored value, checked as it is
            if 0 <= value < self._tier_count:
                return value
            raise InvalidArgumentError(f"tier must be in 0..{len(self.tiers) - 1}, got {value}")
        raise ArgumentTypeError(f"tier must be an int, not {type(tier).__name__}")

    allow = _table_op("tg_table_check", full=False)
    allow.__doc__ = (
        """Decides like ``decide`` and answers only whether to let the request through."""
    )
    decide = _table_op("tg_table_check", full=True)
    decide.__doc__ = (
        """Decides on a request of ``cost`` for ``key`` at ``now`` under tier ``tier``."""
    )
    peek = _table_op("tg_table_peek_key", full=True)
    peek.__doc__ = (
        """Would ``cost`` pass for ``key``? Spends nothing (a new key is inserted, though)."""
    )

    def allow_many(
        self,
        keys: Sequence[KeyLike],
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
    ) -> list[bool]:
        """``allow`` for each key in ``keys``, in order, at one ``now``, in one C call
        (``tg_table_check_many``): for callers that decide in bulk. In shadow mode all True.

        Errors of the whole call (a bad tier, cost or time) are raised; none is per key here,
        since every key gets the same tier, cost and time.
        """
        n, hi_arr, lo_arr, now, cost, tier = self._many(keys, cost, now, tier)
        results = (ctypes.c_int32 * n)()
        check(
            lib.tg_table_check_many(self._table, hi_arr, lo_arr, n, tier, now, cost, results),
            "tg_table_check_many",
        )
        if self.shadow:
            return [True] * n
        for r in results:
            if r < 0:
                check(-r, "tg_table_check_many")
        return [r == 0 for r in results]

    def decide_many(
        self,
        keys: Sequence[KeyLike],
        cost: int = 1,
        now: int | None = None,
        *,
        tier: int = 0,
    ) -> list[Decision]:
        """``decide`` for each key in ``keys``, in order, at one ``now``, in one C call
        (``tg_table_decide_many``): the full decisions of ``allow_many``. Errors are raised as
        ``allow_many`` raises them.
        """
        n, hi_arr, lo_arr, now, cost, tier = self._many(keys, cost, now, tier)
        results = (ctypes.c_int32 * n)()
        raws = (TgDecision * n)()
        check(
            lib.tg_table_decide_many(
                self._table, hi_arr, lo_arr, n, tier, now, cost, raws, results
            ),
            "tg_table_decide_many",
        )
        for r in results:
            if r < 0:
                check(-r, "tg_table_decide_many")
        finish = self._finish if self.shadow else from_c
        return [finish(raw) for raw in raws]

    def _many(
        self, keys: Sequence[KeyLike], cost: int, now: int | None, tier: int
    ) -> tuple[int, Any, Any, int, int, int]:
        """The arguments of a bulk call: the keys' halves as two C arrays (``None`` when there
        are no keys), and the checked ``now``, ``cost`` and ``tier``."""
        from array import array

        n = len(keys)
        his = array("Q")
        los = array("Q")
        try:
            for key in keys:
                if type(key) is tuple and len(key) == 2:
                    hi, lo = key
                    if type(hi) is not int or type(lo) is not int:
                        k = self._key(key)
                        hi, lo = k.hi, k.lo
                else:
                    k = self._key(key)
                    hi, lo = k.hi, k.lo
                his.append(hi)  # array("Q") refuses what is not in 0..2**64-1
                los.append(lo)
        except OverflowError:
            # Out of range: the per-key path names the part that is wrong.
            for key in keys:
                self._key(key)
            raise
        if now is None:
            now = self._clock()
        now = u64("now", now)
        cost = u64("cost", cost)
        if type(tier) is not int or not 0 <= tier < self._tier_count:
            tier = self._checked_tier(tier)
        hi_arr = (ctypes.c_uint64 * n).from_buffer(his) if n else None
        lo_arr = (ctypes.c_uint64 * n).from_buffer(los) if n else None
        return n, hi_arr, lo_arr, now, cost, tier

    def check(
        self, key: KeyLike, cost: int = 1, now: int | None = None, *, tier: int = 0
    ) -> Decision:  # type: ignore[override]
        """``decide``, raising ``LimitedError``/``OverloadedError`` when refused."""
        from .errors import LimitedError, OverloadedError
        from .decision import Outcome

        decision = self.decide(key, cost, now, tier=tier)
        if decision.outcome is Outcome.OVERLOADED:
            raise OverloadedError(decision)
        if decision.outcome is not Outcome.ALLOWED:
            raise LimitedError(decision)
        return decision

    @property
    def stats(self) -> TableStats:
        """The table's counters now."""
        out = TgTableStats()
        check(lib.tg_table_get_stats(self._table, out), "tg_table_get_stats")
        return TableStats(out.capacity, out.occupied, out.reclaimed, out.rejected)

    def probe_len(self, key: KeyLike) -> int:
        """Slots a lookup of ``key`` reads (1 = its home slot); 0 if the key is absent."""
        out = ctypes.c_size_t()
        check(
            lib.tg_table_probe_len(self._table, self._key(key), ctypes.byref(out)),
            "tg_table_probe_len",
        )
        return out.value

    def headers(
        self, decision: Decision, *, tier: int = 0, ticks_per_second: int | None = None
    ) -> dict[str, str]:  # type: ignore[override]
        """The response headers for a decision of tier ``tier``."""
        tps = self._tps(ticks_per_second)
        t = self.tiers[tier]
        if isinstance(t, WindowQuota):
            policy = _headers.ratelimit_policy_window(t.limit, t.window, self.name, tps)
        else:
            policy = _headers.ratelimit_policy_bucket(t, self.name, tps)
        return _headers.for_decision(decision, ticks_per_second=tps, name=self.name, policy=policy)
