"""The key table over the C ABI (docs/semantics.md#key-tables)."""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import signal

import pytest

import tollgate as tg
from tollgate import FullPolicy, KeyTable, Outcome, WindowQuota

from conftest import SECOND


def test_memory_is_sized_and_aligned_by_the_library() -> None:
    table = KeyTable(1000, [tg.Quota(30, 2, SECOND), tg.Quota(60, 4, SECOND)])
    assert table.memory_size == tg.lib.tg_table_size(1000, 2) > 1000
    align = tg.lib.tg_table_align()
    assert ctypes.cast(table._table, ctypes.c_void_p).value % align == 0
    assert ctypes.sizeof(table._memory) >= table.memory_size
    assert table.stats == tg.TableStats(1000, 0, 0, 0)


def test_a_copy_is_an_independent_table() -> None:
    table = KeyTable(64, tg.Quota(3, 1, 10), seed=(1, 2))
    for _ in range(3):
        assert table.decide("shop", 1, 0).allowed
    twin = table.copy()
    assert ctypes.cast(twin._table, ctypes.c_void_p).value != ctypes.cast(
        table._table, ctypes.c_void_p
    ).value
    assert not twin.decide("shop", 1, 0).allowed
    assert twin.decide("shop", 1, 10).allowed
    # The original did not see the copy's request.
    assert table.peek("shop", 1, 10).used == 2
    assert twin.peek("shop", 1, 10).used == 3
    assert twin.stats == table.stats._replace(rejected=0)


def test_each_key_behaves_as_its_own_bucket() -> None:
    quota = tg.Quota(5, 1, 10)
    table = KeyTable(64, quota, seed=(1, 2))
    rng = random.Random(7)
    buckets = {k: tg.LeakyBucket(quota) for k in range(10)}
    now = 0
    for _ in range(2000):
        now += rng.randrange(0, 4)
        key = rng.randrange(10)
        cost = rng.randrange(1, 7)
        assert table.decide(key, cost, now) == buckets[key].decide(cost, now)
    assert table.stats.occupied <= 10


def test_key_forms() -> None:
    table = KeyTable(64, tg.Quota(3, 1, SECOND))
    # the Python packing of pairs is tg_key_pair's
    rng = random.Random(3)
    for _ in range(200):
        app, shop = rng.randrange(2**64), rng.randrange(2**64)
        assert table.key((app, shop)) == tg.key_pair(app, shop) == tg.Key(app, shop)
        assert int(table.key((app, shop))) == app << 64 | shop
    assert table.key(7 << 64 | 42) == table.key((7, 42))
    assert tg.key_triple(1, 2, 3) == tg.Key(1 << 32 | 3, 2)
    # hashed keys: stable per table, distinct for distinct inputs
    assert table.key("shop.example") == table.key(b"shop.example")
    assert table.key("shop.example") != table.key("shop.example.")
    assert table.key((1, 2, 3)) != table.key((1, 2, 3, 0))
    assert table.key((1, 2, 3)) == table.key((1, 2, 3))
    # a seed changes hashed keys, not exact ones
    other = KeyTable(64, tg.Quota(3, 1, SECOND), seed=(9, 9))
    assert other.key("shop.example") != table.key("shop.example")
    assert other.key((7, 42)) == table.key((7, 42))
    # the same key decides on one bucket whatever form names it
    for form in ((7, 42), 7 << 64 | 42, tg.Key(7, 42)):
        table.decide(form, now=0)
    assert table.peek((7, 42), now=0).used == 3
    for bad, err in [
        (-1, tg.InvalidArgumentError),
        (2**128, tg.InvalidArgumentError),
        (1.5, tg.ArgumentTypeError),
        ((1, -2), tg.InvalidArgumentError),
        (None, tg.ArgumentTypeError),
    ]:
        with pytest.raises(err):
            table.decide(bad, now=0)  # type: ignore[arg-type]


def test_tiers_and_a_key_changing_tier_keeps_its_level() -> None:
    table = KeyTable(16, [tg.Quota(2, 1, 100), tg.Quota(10, 1, 100)])
    assert table.decide("k", 2, now=0, tier=0).allowed
    assert table.decide("k", now=0, tier=0).outcome is Outcome.LIMITED
    d = table.decide("k", now=0, tier=1)
    assert d.allowed and d.used == 3 and d.limit == 10
    with pytest.raises(tg.InvalidArgumentError, match="tier"):
        table.decide("k", now=0, tier=2)
    with pytest.raises(tg.ArgumentTypeError):
        table.decide("k", now=0, tier="0")  # type: ignore[arg-type]


def test_full_table_policies_and_reclamation() -> None:
    # One group: 5 slots (capacities round up to groups of 5).
    closed = KeyTable(5, tg.Quota(1, 1, 100))
    assert all(closed.decide(k, now=0).allowed for k in range(1, 6))
    full = closed.decide(6, now=0)
    assert full.outcome is Outcome.OVERLOADED and full.http_status == 503
    assert closed.stats.rejected == 1 and closed.stats.occupied == 5
    # once the keys drained (at 100), their slots are reclaimed for new keys after that
    assert closed.decide(6, now=101).allowed
    assert closed.stats.reclaimed >= 1

    opened = KeyTable(5, tg.Quota(1, 1, 100), policy=FullPolicy.FAIL_OPEN)
    for k in range(1, 6):
        opened.decide(k, now=0)
    d = opened.decide(6, now=0)
    assert d.allowed and d.fail_open and d.verdict is Outcome.OVERLOADED
    assert opened.stats.rejected == 1


def test_window_table() -> None:
    table = KeyTable(16, [WindowQuota(2, 100), WindowQuota(3, 100, 50)])
    assert [table.decide("a", now=10).allowed for _ in range(3)] == [True, True, False]
    assert table.decide("a", now=100).allowed
    assert table.decide("b", now=10, tier=1).reset_after == 40
    assert (
        table.headers(table.peek("b", now=10, tier=1), tier=1)["RateLimit-Policy"]
        == '"default";q=3;w=1'
    )
    with pytest.raises(tg.QuotaError, match="OFFSET_OUT_OF_RANGE"):
        KeyTable(4, WindowQuota(1, 10, 10))
    with pytest.raises(tg.ArgumentTypeError):
        KeyTable(4, [WindowQuota(1, 10), tg.Quota(1, 1, 1)])  # type: ignore[list-item]


def test_probe_len_and_bad_construction() -> None:
    table = KeyTable(8, tg.Quota(1, 1, 1))
    assert table.probe_len("absent") == 0
    table.decide("here", now=0)
    assert table.probe_len("here") >= 1
    with pytest.raises(tg.CapacityExceededError):
        KeyTable(0, tg.Quota(1, 1, 1))
    with pytest.raises(tg.InvalidArgumentError):
        KeyTable(4, [])


def test_headers_for_a_shopbase_table() -> None:
    table = KeyTable(16, tg.presets.shopbase_quota(), name="shopbase")
    d = None
    for _ in range(22):
        d = table.decide((1, 2), now=0)
    assert table.headers(d) == {
        "X-Sb-Shop-Api-Call-Limit": "22/30",
        "RateLimit": '"shopbase";r=8;t=11',
        "RateLimit-Policy": '"shopbase";q=30;w=15',
    }


def test_table_allow() -> None:
    table = KeyTable(8, tg.Quota(2, 1, 100))
    assert [table.allow("k", now=0) for _ in range(3)] == [True, True, False]
    assert table.peek("k", now=0).used == 2
    full = KeyTable(5, tg.Quota(2, 1, 100))
    for k in range(5):
        full.allow(k, now=0)
    assert full.allow(5, now=0) is False  # fail-closed
    shadow = KeyTable(8, tg.Quota(1, 1, 100), shadow=True)
    assert shadow.allow("k", now=0) and shadow.allow("k", now=0)
    assert shadow.decide("k", now=0).would_limit


def test_allow_and_decide_through_the_scalar_calls_match_on_a_twin() -> None:
    import random

    rng = random.Random(11)
    fast = tg.KeyTable(64, tg.Quota(3, 1, 100), seed=(1, 2))
    full = tg.KeyTable(64, tg.Quota(3, 1, 100), seed=(1, 2))
    now = 0
    for _ in range(600):
        now += rng.choice([0, 0, 1, 30, 120])
        key = (rng.randrange(3), rng.randrange(20))
        cost = rng.choice([1, 1, 2, 4])
        assert fast.allow(key, cost, now=now) == full.decide(key, cost, now=now).allowed
    for app in range(3):
        for shop in range(20):
            assert fast.peek((app, shop), now=now) == full.peek((app, shop), now=now)


def test_lying_int_subclass_keys_and_tiers_are_taken_at_their_value() -> None:
    class Liar(int):
        def __int__(self) -> int:
            return 0

        def __le__(self, other: object) -> bool:
            return True

        def __ge__(self, other: object) -> bool:
            return True

        def __lt__(self, other: object) -> bool:
            return False

    table = tg.KeyTable(64, [tg.Quota(1, 1, 100), tg.Quota(2, 1, 100)])
    assert table.key(Liar(5)) == table.key(5)
    with pytest.raises(tg.InvalidArgumentError):
        table.key(Liar(2**128))
    with pytest.raises(tg.InvalidArgumentError):
        table.decide((1, 2), now=0, tier=Liar(2))
    assert table.decide((1, 2), now=0, tier=Liar(1)).limit == 2


def test_allow_many_is_allow_in_order_in_one_call() -> None:
    one = tg.KeyTable(64, tg.Quota(2, 1, 100), seed=(3, 4))
    many = tg.KeyTable(64, tg.Quota(2, 1, 100), seed=(3, 4))
    keys = [(1, 1), (1, 2), (1, 1), (1, 1), "shop-9", 12345, (1, 2, 3)]
    for now in (0, 0, 60, 250):
        assert many.allow_many(keys, now=now) == [one.allow(k, now=now) for k in keys]
    assert many.allow_many([], now=300) == []
    for k in keys:
        assert many.peek(k, now=300) == one.peek(k, now=300)
    with pytest.raises(tg.InvalidArgumentError):
        many.allow_many([(1, 1), (1, -5)], now=300)
    with pytest.raises(tg.ZeroCostError):
        many.allow_many([(1, 1)], 0, now=300)
    shadow = tg.KeyTable(64, tg.Quota(1, 1, 100), shadow=True)
    assert shadow.allow_many([(1, 1)] * 3, now=0) == [True, True, True]


def test_decide_many_is_decide_in_order_in_one_call() -> None:
    one = tg.KeyTable(64, tg.Quota(2, 1, 100), seed=(3, 4))
    many = tg.KeyTable(64, tg.Quota(2, 1, 100), seed=(3, 4))
    # More keys than the library decides at a time, with repeats above the burst.
    keys = [(1, 1), (1, 2), (1, 1), (1, 1), "shop-9", 12345, (1, 2, 3)] * 3
    for now in (0, 0, 60, 250):
        got = many.decide_many(keys, now=now)
        assert got == [one.decide(k, now=now) for k in keys]
    assert [d.used for d in many.decide_many([(5, 5)] * 3, now=400)] == [1, 2, 2]
    assert many.decide_many([], now=400) == []
    with pytest.raises(tg.InvalidArgumentError):
        many.decide_many([(1, 1), (1, -5)], now=400)
    with pytest.raises(tg.ZeroCostError):
        many.decide_many([(1, 1)], 0, now=400)
    shadow = tg.KeyTable(64, tg.Quota(1, 1, 100), shadow=True)
    got = shadow.decide_many([(1, 1)] * 3, now=0)
    assert [(d.allowed, d.shadow, d.would_limit) for d in got] == [
        (True, True, False),
        (True, True, True),
        (True, True, True),
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_slot_claimed_by_a_killed_process_is_taken_again() -> None:
    """A table made by ``tg_table_init_buckets`` in memory shared with a forked child (an
    anonymous shared mapping): the child claims a slot for a new key and is killed before
    writing the key. Its claim carries its process id: the slot stays busy while the child lives
    (or is an unreaped zombie), and the next new key takes it once the child has been reaped."""
    from tollgate._ffi import TgTable, TgTableStats
    from tollgate.table import _tier_array

    size = tg.lib.tg_table_size(5, 1)
    memory = mmap.mmap(-1, size)  # MAP_SHARED | MAP_ANONYMOUS: shared with forked children
    base = ctypes.c_char.from_buffer(memory)
    address = ctypes.addressof(base)
    assert address % tg.lib.tg_table_align() == 0  # page-aligned
    table = ctypes.POINTER(TgTable)()
    tiers = _tier_array([tg.Quota(3, 1, SECOND)], False)
    status = tg.lib.tg_table_init_buckets(address, size, 5, tiers, 1, 0, 7, 8, ctypes.byref(table))
    assert status == 0
    group = 128
    # Slot 4's state word: word 4 of the first group, after the 192-byte header and one tier.
    slot4 = address + (192 + 64 + group - 1) // group * group + 4 * 8

    def new_keys(first: int, n: int) -> int:
        allowed = int(Outcome.ALLOWED)
        return sum(
            tg.lib.tg_table_check(table, 9, shop, 0, 0, 1, None) == allowed
            for shop in range(first, first + n)
        )

    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            # What a claim leaves: busy (tag 1, tier 0), version (this pid << 30 | sequence).
            ctypes.c_uint64.from_address(slot4).value = (((os.getpid() << 30) | 3) << 11) | 1
            os.write(ready_w, b"x")
            while True:
                signal.pause()
        finally:
            os._exit(1)
    try:
        assert os.read(ready_r, 1) == b"x"
        assert new_keys(1, 5) == 4  # the child lives: its claim stands
        os.kill(child, signal.SIGKILL)
        assert new_keys(6, 1) == 0  # killed, not yet reaped: its id is still taken
    finally:
        os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        os.close(ready_r)
        os.close(ready_w)
    assert os.WIFSIGNALED(status)
    assert new_keys(7, 1) == 1  # reaped: the next new key takes the child's slot
    out = TgTableStats()
    assert tg.lib.tg_table_get_stats(table, ctypes.byref(out)) == 0
    assert out.occupied == 5  # every slot holds a key
    del base, table
    memory.close()
