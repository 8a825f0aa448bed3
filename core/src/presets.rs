//! Vendor presets (docs/semantics.md#vendor-presets). Each takes the clock's `ticks_per_second`, so it works on any clock.
//!
//! ```
//! use tollgate::presets::{shopbase, tiktok_shop};
//! let ms = 1_000;
//! let q = shopbase::quota(ms)?;
//! assert_eq!((q.burst(), q.count(), q.period()), (30, 2, 1_000));
//! let w = tiktok_shop::server_quota(ms)?;
//! assert_eq!((w.limit(), w.window()), (50, 1_000));
//! # Ok::<(), tollgate::Error>(())
//! ```

/// ShopBase: a leaky bucket of 30 draining 2 per second, keyed by (app, shop); every response
/// carries `X-Sb-Shop-Api-Call-Limit: used/30`; a GET whose `limit × page` exceeds 100 000 is
/// answered 429.
pub mod shopbase {
    use crate::{Error, Quota};

    /// Bucket size.
    pub const BURST: u64 = 30;
    /// Requests drained per second.
    pub const PER_SECOND: u64 = 2;
    /// The header carrying `used/limit`.
    pub const HEADER: &str = crate::header::SHOP_API_CALL_LIMIT;
    /// The deep-pagination maximum offset.
    pub const MAX_OFFSET: u64 = crate::pagination::DEFAULT_MAX_OFFSET;

    /// The server's quota (and the client's mirror) on a clock of `ticks_per_second`.
    pub const fn quota(ticks_per_second: u64) -> Result<Quota, Error> {
        Quota::per_second(BURST, PER_SECOND, ticks_per_second)
    }
}

/// TikTok Shop: 50 queries per second per API, counted separately for each (app, shop) pair;
/// over the limit the answer is 429 (and 503 means overload protection, not rate limiting).
pub mod tiktok_shop {
    use crate::{Error, WindowQuota};

    /// Requests per second per (app, shop, api).
    pub const PER_SECOND: u64 = 50;
    /// The capacity a client's [`SlidingLog`](crate::SlidingLog) needs for this preset.
    pub const CLIENT_LOG_CAPACITY: usize = 50;

    /// The server side: a fixed window of one second, 50 per window, keyed by (app, shop, api).
    pub const fn server_quota(ticks_per_second: u64) -> Result<WindowQuota, Error> {
        WindowQuota::new(PER_SECOND, ticks_per_second)
    }

    /// The client side: a strict sliding window log of 50 per second, per (app, shop, api).
    /// `jitter_margin` ticks lengthen the client's window (W + J) so network jitter up to J never
    /// earns a 429 whatever the server's window alignment (docs/semantics.md#sliding-window-log).
    pub const fn client_quota(
        ticks_per_second: u64,
        jitter_margin: u64,
    ) -> Result<WindowQuota, Error> {
        match ticks_per_second.checked_add(jitter_margin) {
            Some(w) => WindowQuota::new(PER_SECOND, w),
            None => Err(Error::InvalidArgument),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FixedWindow, LeakyBucket, Outcome, SlidingLog};

    #[test]
    fn presets_work_on_any_clock() {
        for tps in [1_000, 1_000_000, 1_000_000_000, 32_768] {
            let b = LeakyBucket::new(shopbase::quota(tps).unwrap());
            assert!(b.decide(0, 30).unwrap().is_allowed());
            let d = b.decide(0, 1).unwrap();
            assert_eq!(d.outcome, Outcome::Limited);
            assert_eq!(d.retry_after, Some(tps / 2));
            let w = FixedWindow::new(tiktok_shop::server_quota(tps).unwrap());
            assert!(w.decide(0, 50).unwrap().is_allowed());
            assert_eq!(w.decide(tps - 1, 1).unwrap().outcome, Outcome::Limited);
            assert!(w.decide(tps, 50).unwrap().is_allowed());
            let mut log: SlidingLog<{ tiktok_shop::CLIENT_LOG_CAPACITY }> =
                SlidingLog::new(tiktok_shop::client_quota(tps, tps / 100).unwrap()).unwrap();
            assert!(log.decide(0, 50).unwrap().is_allowed());
            assert_eq!(log.decide(tps, 1).unwrap().retry_after, Some(tps / 100));
        }
        assert_eq!(shopbase::quota(0), Err(crate::Error::ZeroPeriod));
        assert_eq!(
            tiktok_shop::client_quota(u64::MAX, 1),
            Err(crate::Error::InvalidArgument)
        );
    }
}
