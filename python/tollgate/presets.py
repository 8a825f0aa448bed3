"""Vendor presets (docs/semantics.md#vendor-presets), on any clock (``ticks_per_second``; default nanoseconds)."""

from __future__ import annotations

from ._ffi import TgBucket, TgQuota, TgSlidingLog, TgWindow, lib
from ._util import NANOS_PER_SECOND, check, u64
from .limiters import Clock, FixedWindow, LeakyBucket, Quota, SlidingLog, _clock_args

#: ShopBase: bucket size.
SHOPBASE_BURST = 30
#: ShopBase: requests drained per second.
SHOPBASE_PER_SECOND = 2
#: ShopBase: the deep-pagination maximum offset.
SHOPBASE_MAX_OFFSET = 100_000
#: TikTok Shop: requests per second per (app, shop, api).
TIKTOK_SHOP_PER_SECOND = 50


def _tps(clock: Clock | None, ticks_per_second: int | None) -> tuple[Clock, int]:
    clock, tps = _clock_args(clock, ticks_per_second)
    if tps is None:
        from .errors import ArgumentTypeError

        raise ArgumentTypeError("presets need ticks_per_second with a custom clock")
    return clock, tps


def shopbase_quota(ticks_per_second: int = NANOS_PER_SECOND) -> Quota:
    """ShopBase's quota: a bucket of 30 draining 2 per second."""
    raw = TgQuota()
    check(
        lib.tg_preset_shopbase_quota(u64("ticks_per_second", ticks_per_second), raw),
        "tg_preset_shopbase_quota",
    )
    return Quota._from_raw(raw)


def shopbase_bucket(
    *, clock: Clock | None = None, ticks_per_second: int | None = None, shadow: bool = False
) -> LeakyBucket:
    """A ShopBase bucket (30, draining 2 per second), named ``shopbase`` for its headers."""
    clock, tps = _tps(clock, ticks_per_second)
    bucket = LeakyBucket(
        shopbase_quota(tps), clock=clock, ticks_per_second=tps, shadow=shadow, name="shopbase"
    )
    raw = TgBucket()
    check(lib.tg_preset_shopbase_bucket_init(raw, tps), "tg_preset_shopbase_bucket_init")
    bucket._raw = raw
    return bucket


def tiktok_shop_window(
    *, clock: Clock | None = None, ticks_per_second: int | None = None, shadow: bool = False
) -> FixedWindow:
    """TikTok Shop's server side: a fixed window of 50 per second (one per (app, shop, api))."""
    clock, tps = _tps(clock, ticks_per_second)
    window = FixedWindow(
        TIKTOK_SHOP_PER_SECOND, tps, clock=clock, ticks_per_second=tps, shadow=shadow, name="tiktok"
    )
    raw = TgWindow()
    check(lib.tg_preset_tiktok_shop_window_init(raw, tps), "tg_preset_tiktok_shop_window_init")
    window._raw = raw
    return window


def tiktok_shop_client_log(
    jitter_margin: int = 0, *, clock: Clock | None = None, ticks_per_second: int | None = None
) -> SlidingLog:
    """TikTok Shop's client side: a sliding log of 50 per second lengthened by ``jitter_margin``
    ticks, so network jitter up to that never earns a 429."""
    clock, tps = _tps(clock, ticks_per_second)
    margin = u64("jitter_margin", jitter_margin)
    log = SlidingLog(TIKTOK_SHOP_PER_SECOND, tps, clock=clock, ticks_per_second=tps, name="tiktok")
    raw = TgSlidingLog()
    check(
        lib.tg_preset_tiktok_shop_client_log_init(raw, tps, margin),
        "tg_preset_tiktok_shop_client_log_init",
    )
    log._raw = raw
    log._window = (TIKTOK_SHOP_PER_SECOND, tps + margin)
    return log
