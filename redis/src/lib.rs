//! # tollgate-redis — one shared limit across many gateway nodes
//!
//! tollgate's leaky bucket (GCRA, docs/semantics.md#leaky-bucket) and fixed window (docs/semantics.md#fixed-window) with their state in Redis, so a
//! fleet of gateway nodes enforces one quota per key. Decisions and every reported number are
//! identical to `tollgate::LeakyBucket` / `tollgate::FixedWindow` run on the same sequence of
//! requests:
//!
//! - The state is the core's (one u64 per bucket; index and count per window), stored per key
//!   with its quota's fingerprint, and updated atomically by a server-side Lua script
//!   (`EVALSHA`). Redis's Lua has only doubles (exact to 2⁵³), so the script handles u64s as
//!   two base-10¹⁰ limbs and only ever adds and compares them; the caller precomputes every
//!   product in exact u64 arithmetic, and computes the reported numbers (u128 divisions) from
//!   the state the script decided on. docs/redis.md gives the argument.
//! - Time is the caller's `now` in ticks (all nodes share one timeline), not Redis's `TIME`.
//! - Keys expire once drained (plus a grace period); each request carries its key's quota, and
//!   a quota change converts the stored state as the core's `set_quota` does; shadow mode;
//!   pipelined batches ([`RedisLimiter::decide_batch`]).
//! - [`HybridLimiter`]: a local mirror answers clear denials without a round trip, and never
//!   admits more than the shared limit.
//! - Redis down or slower than the timeout: the [`FailurePolicy`] answers (fail-open, or
//!   fail-closed with [`Outcome::Overloaded`](tollgate::Outcome::Overloaded), HTTP 503); the node
//!   keeps serving and resumes when Redis is back. [`Config::timeout`] bounds every call,
//!   connecting included (the blocking client arms its socket with the time left before each
//!   read and write).
//! - One bad key never fails the node: a command Redis refuses for one request (`NOPERM`, `OOM`,
//!   a script error) is answered by the policy for that request alone, with the connection and
//!   the circuit untouched; a key holding another type or an unreadable state is repaired as a
//!   full bucket or window (never a fresh one, never unlimited). [`Stats`] counts both.
//! - Redis Cluster ([`Config::cluster`]): each key to its slot's primary, a circuit per primary.
//! - An async front end for tokio (feature `tokio`): `AsyncRedisLimiter`; TLS (`rediss://`) with
//!   the feature `tls` (rustls).
//! - The Lua scripts are shared with the Python package (`tollgate.redis`), which decides
//!   identically on the same keys.
//!
//! ```no_run
//! use tollgate::{Outcome, Quota};
//! use tollgate_redis::{Config, RedisLimiter};
//! const SECOND: u64 = 1_000; // a millisecond clock, the same on every node
//! let limiter = RedisLimiter::new(Config::new("redis://127.0.0.1:6379/", SECOND))?;
//! let shopbase = Quota::new(30, 2, SECOND)?;
//! let d = limiter.decide("app:42/shop:7", shopbase, 0, 1)?;
//! assert_eq!((d.outcome, d.used, d.limit), (Outcome::Allowed, 1, 30));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "tokio")]
mod asynchronous;
mod conn;
mod fixed_window;
mod gcra;
mod hybrid;
mod limiter;
mod node;

#[cfg(feature = "tokio")]
pub use asynchronous::AsyncRedisLimiter;
pub use hybrid::HybridLimiter;
pub use limiter::{Config, FailurePolicy, Limit, RedisLimiter, Request, Stats};
