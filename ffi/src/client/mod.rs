//! The client toolkit (docs/semantics.md#client-toolkit) in C: staying under someone else's limit.
//!
//! - `tg_bucket_pacer` (ShopBase: a leaky-bucket mirror) and `tg_log_pacer` (TikTok Shop: a
//!   sliding-log mirror): "when may I send next", with a safety margin for network jitter, and
//!   the sync of the mirror with the server's headers (`pacer.rs`);
//! - `tg_call_limit_parse` and `tg_retry_after_parse`: the server's headers, never trusted
//!   blindly (`sync.rs`);
//! - `tg_backoff`: exponential backoff with jitter, the policy, one request's retry count and a
//!   caller-seeded SplitMix64 generator in one struct (`backoff.rs`);
//! - `tg_retry_budget`: retries limited to a fraction of recent successes plus a floor
//!   (`budget.rs`);
//! - `tg_retry_class_of_*` and `tg_retry_next_step`: what may be retried, and when (`retry.rs`);
//! - `tg_request_queue`: a lock-free queue of request ids released at a pacer's times
//!   (`queue.rs`).
//!
//! Pacers, backoffs and budgets are **one caller at a time**, like `tg_sliding_log`: a second
//! caller arriving while one is inside gets `TG_STATUS_BUSY` and nothing is done. The request
//! queue is lock-free: any number of threads push and pop at once. The one-caller cell and the
//! pointer checks are `boundary.rs`'s.

// One file per C type family, named like the core's `client/` files. Declared in the header's
// order (cbindgen emits items in module order), one per group so that rustfmt keeps it.
mod pacer;

mod sync;

mod backoff;

mod budget;

mod retry;

mod queue;

pub use backoff::*;
pub use budget::*;
pub use pacer::*;
pub use queue::*;
pub use retry::*;
pub use sync::*;
