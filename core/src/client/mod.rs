//! The client toolkit (docs/semantics.md#client-toolkit): staying under someone else's limit.
//!
//! Both vendors whose limits tollgate mirrors (docs/semantics.md#vendor-presets) tell API callers the same thing:
//! regulate your rate, stagger requests in a queue, catch 429 and 503, retry with random
//! exponential backoff. This module is that advice as code, `no_std` and allocation-free:
//!
//! | piece | what it answers | file |
//! |---|---|---|
//! | [`Pacer`] | when may I send next? (a mirror of the server's limiter, with a margin) | `pacer.rs` |
//! | [`parse_call_limit`], [`parse_retry_after`] | what did the server say? (never trusted blindly) | `sync.rs` |
//! | [`Backoff`], [`Jitter`] | how long to wait before a retry? | `backoff.rs` |
//! | [`RetryBudget`] | may I retry at all, or would it feed a retry storm? | `budget.rs` |
//! | [`Class`], [`next_step`] | is this failure worth a retry? | `retry.rs` |
//! | [`RequestQueue`] | several producers, one paced stream of requests | `queue.rs` |
//! | [`SplitMix64`], [`Random`] | seeded randomness for jitter | `rng.rs` |
//!
//! A ShopBase client (leaky bucket of 30, 2 per second, up to 200 ms of network jitter) on a
//! millisecond clock:
//!
//! ```
//! use tollgate::client::{next_step, safe_burst, Backoff, Class, Jitter, Next, Pace, Pacer};
//! use tollgate::client::{RetryBudget, SplitMix64};
//! use tollgate::{LeakyBucket, Quota};
//!
//! let shopbase = Quota::new(30, 2, 1_000)?;
//! let mut pacer = Pacer::new(LeakyBucket::new(safe_burst(&shopbase, 200)?));
//! let backoff = Backoff::new(250, 30_000, 8, Jitter::Full)?;
//! let mut budget: RetryBudget<10> = RetryBudget::new(10_000, 100, 10)?;
//! let mut rng = SplitMix64::new(0x5eed);
//!
//! let now = 0; // your clock, in milliseconds
//! match pacer.acquire(now, 1)? {
//!     Pace::Send => {
//!         // ... send; say the answer was 429 with "Retry-After: 2" and "30/30":
//!         pacer.sync(now, now + 80, 1_700_000_000, 1_000, Some(b"30/30"), Some(b"2"))?;
//!         let mut retries = backoff.start();
//!         let next = next_step(Class::of_status(429), now + 80, Some(2_000), &mut retries,
//!                              &mut budget, &mut rng);
//!         assert!(matches!(next, Next::RetryAt(t) if t >= 2_080));
//!     }
//!     Pace::Wait(_at) => { /* sleep until `_at`, then ask again */ }
//!     Pace::Never => { /* the request is larger than the bucket: fix the request */ }
//! }
//! # Ok::<(), tollgate::Error>(())
//! ```

mod backoff;
mod budget;
mod pacer;
mod queue;
mod retry;
mod rng;
mod sync;

pub use backoff::{Backoff, Jitter, Retries};
pub use budget::RetryBudget;
pub use pacer::{safe_burst, safe_window, Mirror, Pace, Pacer};
pub use queue::{Release, RequestQueue};
pub use retry::{next_step, Class, GiveUp, Next};
pub use rng::{Random, SplitMix64};
pub use sync::{parse_call_limit, parse_retry_after, seconds_to_ticks, CallLimit};
