//! # tollgate — an exact, lock-free, allocation-free rate-limit engine
//!
//! tollgate decides whether a request may pass a rate limit, and reports the numbers an API
//! gateway puts in its headers (`used`, `remaining`, `retry_after`, `reset_after`). It is built
//! for both sides of a throttled API: the **gateway** that enforces a limit and the **app** that
//! must stay under someone else's.
//!
//! What it guarantees:
//! - **Exact.** Rates are exact rationals (3 per 10⁹ ticks is exactly 3 per second, forever);
//!   all arithmetic is integer, overflow-checked, and never panics ([`Quota`] documents the
//!   span of the exact arithmetic).
//! - **Any clock.** The caller passes `now` as a `u64` count of ticks of its own monotonic clock:
//!   nanoseconds, a 1 kHz SysTick, CPU cycles. A clock that steps back never makes a limiter
//!   admit more than the true timeline would. [`WrappingClock`] extends a wrapping 32-bit
//!   hardware counter.
//! - **Lock-free and allocation-free.** `#![no_std]`, no `alloc`, no `unsafe` (the optional
//!   `shared` feature adds one module that maps shared memory). A leaky bucket or fixed window is
//!   one atomic word updated by one CAS loop, and can live in a `static`.
//!
//! What it is not: a cache, a proxy or a queue of requests. It answers "now or when", and the
//! caller acts on the answer.
//!
//! ```
//! use tollgate::{LeakyBucket, Outcome, Quota};
//! const SECOND: u64 = 1_000; // a millisecond clock
//! let bucket = LeakyBucket::new(Quota::new(30, 2, SECOND)?); // ShopBase: 30, draining 2/s
//! let d = bucket.decide(0, 1)?;
//! assert_eq!(d.outcome, Outcome::Allowed);
//! assert_eq!((d.used, d.limit), (1, 30));
//! # Ok::<(), tollgate::Error>(())
//! ```
//!
//! Limiters: [`LeakyBucket`] (GCRA, docs/semantics.md#leaky-bucket), [`FixedWindow`] (docs/semantics.md#fixed-window), [`SlidingLog`] (docs/semantics.md#sliding-window-log),
//! [`ConcurrencyLimit`] (docs/semantics.md#concurrency-limit). Decisions: [`Decision`], [`Outcome`] (docs/semantics.md#outcomes-and-http-statuses). Header values:
//! [`header`] (docs/semantics.md#header-values). Pagination: [`pagination`] (docs/semantics.md#deep-pagination). Vendor presets: [`presets`] (docs/semantics.md#vendor-presets).
//! Keyed tables: [`table`] and [`key`] (docs/semantics.md#key-tables). Client toolkit: [`client`] (docs/semantics.md#client-toolkit). One limit for
//! the processes of one host (std, Unix, feature `shared`): `shared`. The limiters' state
//! arithmetic as pure functions, for backends that keep the state elsewhere (Redis, a database):
//! [`state`].
#![no_std]
// Without the `shared` feature the crate has no unsafe code at all. With it, mapping shared
// memory needs some: it is allowed in one module, `shared/region.rs`, and denied elsewhere.
#![cfg_attr(not(feature = "shared"), forbid(unsafe_code))]
#![cfg_attr(feature = "shared", deny(unsafe_code))]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "std")]
extern crate std;

mod atomic;
pub mod client;
pub mod clock;
mod concurrency;
mod decision;
mod error;
mod fixed_window;
mod gcra;
pub mod header;
pub mod key;
#[doc(hidden)]
pub mod log_ring;
pub mod pagination;
pub mod presets;
mod quota;
#[cfg(all(feature = "shared", unix, not(loom)))]
pub mod shared;
mod sliding_log;
pub mod state;
pub mod table;

pub use clock::WrappingClock;
pub use concurrency::{ConcurrencyLimit, Permit};
pub use decision::{Decision, Outcome};
pub use error::Error;
pub use fixed_window::FixedWindow;
pub use gcra::LeakyBucket;
pub use quota::{duration_to_ticks, Quota, WindowQuota};
pub use sliding_log::SlidingLog;
