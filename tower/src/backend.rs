//! Where the layer's decisions are made: the [`Backend`] trait.
//!
//! A backend owns the limiter state and the clock: it answers "may this key spend `cost` now?"
//! with a [`Decision`], and says what its tiers are so the layer can write `RateLimit-Policy`.
//! [`LocalTable`](crate::LocalTable), a lock-free key table in this process, is one backend
//! shipped here; `RegionTable` (feature `shared`) keeps the same table in a shared-memory region,
//! so several processes on one host enforce one limit; `RedisBackend` (feature `redis`) keeps
//! state in Redis, so a fleet does. A backend that keeps its state elsewhere implements the same
//! trait: its future may be pending while it waits for the store.

use std::future::Future;
use std::sync::Arc;

use tollgate::key::Key;
use tollgate::{Decision, Error};

/// One tier's numbers for the `RateLimit-Policy` header (see `docs/semantics.md#header-values`):
/// the quota `q` and the window `w` in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TierInfo {
    /// The capacity: a bucket's burst, a window's limit.
    pub limit: u64,
    /// The window in whole seconds, rounded up: a window's length, or the time a full bucket
    /// takes to drain.
    pub window_seconds: u64,
}

/// A store of rate-limit state that the layer asks for decisions.
///
/// A backend owns the limiter state and the clock: it answers "may this key spend `cost` now?"
/// with a [`Decision`], and says what its tiers are so the layer can write `RateLimit-Policy`.
/// [`LocalTable`](crate::LocalTable), a lock-free key table in this process, is one; with the
/// `shared` feature, `RegionTable` keeps one limit across the processes of one host (a table in
/// a shared-memory region); with the `redis` feature, `RedisBackend` keeps one limit across a
/// fleet. A backend that keeps its state elsewhere (a store of your own) implements the same
/// trait: its future may be pending while it waits for the store.
///
/// Decisions are exact and per key: the backend reads its own clock, so every decision for a
/// key is judged on one timeline. The layer polls the future once as soon as the request
/// arrives; a backend in this process returns [`std::future::Ready`], and the request then
/// costs no extra task, allocation or wake-up.
pub trait Backend: Send + Sync + 'static {
    /// The future of one decision. `Unpin` (a [`std::future::Ready`], a
    /// `tokio::task::JoinHandle` or a boxed future all are) so the layer can poll it in place.
    type Future: Future<Output = Result<Decision, Error>> + Send + Unpin + 'static;

    /// Decides on a request of `cost` for `key` on tier `tier`, now, and records it if admitted.
    fn decide(&self, key: Key, tier: usize, cost: u64) -> Self::Future;

    /// Would a request of `cost` pass now? Spends nothing. The layer asks this for the headers
    /// of a request it refuses for its shape (deep pagination) without spending.
    fn peek(&self, key: Key, tier: usize, cost: u64) -> Self::Future;

    /// The tiers' numbers, by index; `None` past the last tier.
    fn tier(&self, tier: usize) -> Option<TierInfo>;

    /// Ticks per second of the backend's clock, to turn `retry_after` and `reset_after` into
    /// the seconds of the headers.
    fn ticks_per_second(&self) -> u64;

    /// Folds a byte-string key (a header value, several parts) into an exact 128-bit key with
    /// the backend's secret seed (see `docs/semantics.md#key-tables`).
    fn key_bytes(&self, bytes: &[u8]) -> Key;
}

impl<T: Backend> Backend for Arc<T> {
    type Future = T::Future;

    fn decide(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        (**self).decide(key, tier, cost)
    }

    fn peek(&self, key: Key, tier: usize, cost: u64) -> Self::Future {
        (**self).peek(key, tier, cost)
    }

    fn tier(&self, tier: usize) -> Option<TierInfo> {
        (**self).tier(tier)
    }

    fn ticks_per_second(&self) -> u64 {
        (**self).ticks_per_second()
    }

    fn key_bytes(&self, bytes: &[u8]) -> Key {
        (**self).key_bytes(bytes)
    }
}
