//! Vendor presets (docs/semantics.md#vendor-presets). Each takes the clock's `ticks_per_second`, so it works on any
//! clock.

use tollgate::presets::{shopbase, tiktok_shop};
use tollgate::{FixedWindow, LeakyBucket};

use crate::boundary::{self, guard, init_target};
use crate::bucket::tg_bucket;
use crate::quota::tg_quota;
use crate::sliding_log::{self, tg_sliding_log};
use crate::status::tg_status;
use crate::window::tg_window;

/// ShopBase: bucket size.
pub const TG_PRESET_SHOPBASE_BURST: u64 = 30;
/// ShopBase: requests drained per second.
pub const TG_PRESET_SHOPBASE_PER_SECOND: u64 = 2;
/// ShopBase: the deep-pagination maximum offset.
pub const TG_PRESET_SHOPBASE_MAX_OFFSET: u64 = 100_000;
/// TikTok Shop: requests per second per (app, shop, api).
pub const TG_PRESET_TIKTOK_SHOP_PER_SECOND: u64 = 50;

const _: () = assert!(
    TG_PRESET_SHOPBASE_BURST == shopbase::BURST
        && TG_PRESET_SHOPBASE_PER_SECOND == shopbase::PER_SECOND
        && TG_PRESET_SHOPBASE_MAX_OFFSET == shopbase::MAX_OFFSET
        && TG_PRESET_TIKTOK_SHOP_PER_SECOND == tiktok_shop::PER_SECOND
);

/// ShopBase's quota (a bucket of 30 draining 2 per second) on a clock of `ticks_per_second`.
///
/// Errors: `TG_STATUS_ZERO_PERIOD` (`ticks_per_second` 0), the errors of `tg_quota_init`,
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out` is NULL or points to a `tg_quota` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_preset_shopbase_quota(
    ticks_per_second: u64,
    out: *mut tg_quota,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<tollgate::Quota>(out) }?;
        boundary::init(target, shopbase::quota(ticks_per_second)?);
        Ok(())
    })
}

/// Initialises `bucket` as a ShopBase bucket (30, draining 2 per second) on a clock of
/// `ticks_per_second`.
///
/// Errors: as `tg_preset_shopbase_quota`.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_preset_shopbase_bucket_init(
    bucket: *mut tg_bucket,
    ticks_per_second: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<LeakyBucket>(bucket) }?;
        boundary::init(target, LeakyBucket::new(shopbase::quota(ticks_per_second)?));
        Ok(())
    })
}

/// Initialises `window_counter` as TikTok Shop's server side: a fixed window of one second,
/// 50 per window (keep one per (app, shop, api)).
///
/// Errors: `TG_STATUS_ZERO_PERIOD` (`ticks_per_second` 0), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `window_counter` is NULL or points to a `tg_window` valid for writes, which no other thread
/// uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_preset_tiktok_shop_window_init(
    window_counter: *mut tg_window,
    ticks_per_second: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<FixedWindow>(window_counter) }?;
        let quota = tiktok_shop::server_quota(ticks_per_second)?;
        boundary::init(target, FixedWindow::new(quota));
        Ok(())
    })
}

/// Initialises `log` as TikTok Shop's client side: a strict sliding log of 50 per second,
/// lengthened by `jitter_margin` ticks (W + J) so network jitter up to J never earns a 429
/// whatever the server's window alignment.
///
/// Errors: `TG_STATUS_ZERO_PERIOD` (`ticks_per_second` 0), `TG_STATUS_INVALID_ARGUMENT`
/// (`ticks_per_second + jitter_margin` overflows), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_preset_tiktok_shop_client_log_init(
    log: *mut tg_sliding_log,
    ticks_per_second: u64,
    jitter_margin: u64,
) -> tg_status {
    guard(|| {
        let quota = tiktok_shop::client_quota(ticks_per_second, jitter_margin)?;
        // SAFETY: forwarded contract.
        unsafe { sliding_log::init_with_quota(log, quota) }
    })
}
