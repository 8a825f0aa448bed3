//! Reference models of tollgate's limiters, written plainly from docs/semantics.md: `u128`
//! arithmetic, a bucket level kept as an exact rational, a window number and a count, a `Vec` of
//! log entries; no atomics, no packed state, no cleverness. They share no code with the engine:
//! they use its types ([`Decision`], [`Outcome`], [`Error`], [`Mode`]) and never its arithmetic
//! (`tollgate::state`), so any divergence between the two is a failure of one of them.
//!
//! One set of models serves every test that needs an oracle: the core's integration tests
//! (`core/tests/*.rs`, a dev-dependency of `tollgate`) and the fuzz targets (`fuzz/`).
//!
//! - [`Gcra`]: the leaky bucket (docs/semantics.md#leaky-bucket), with quota changes
//!   ([`Gcra::set_quota`], by level or as the engine converts, see [`Conversion`]).
//! - [`FixedWindow`]: the fixed window (docs/semantics.md#fixed-window), with quota changes.
//! - [`SlidingLog`]: the strict sliding-window log (docs/semantics.md#sliding-window-log).
//! - [`Concurrency`]: the concurrency limit (docs/semantics.md#concurrency-limit).
//! - Quota rules: [`gcra_validate`], [`gcra_span`], [`window_validate`], [`fixed_window_span`].
//!
//! Every decision is a [`Decision`] with `outcome == verdict` and no flags (see [`decision`]), so
//! a test compares every reported number with one `assert_eq!`. A call is a decision or a peek,
//! as in the engine: [`Mode::Decide`] or [`Mode::Peek`], through each model's [`Model::judge`],
//! or the trait's `decide` and `peek` shorthands (bring [`Model`] into scope).
//!
//! Time going backwards is judged as docs/semantics.md#backwards-clocks says: at the latest time
//! seen (a bucket's level at an earlier `now` is the latest level plus the drain the gap would
//! have brought; a window or a log judges in its latest window; reported times are measured from
//! the caller's `now`). Tests of the backwards-clocks replay property raise each time to the
//! latest time seen before feeding a model, so the model then follows the true timeline.
//!
//! With the feature `proptest`, `ops` is the strategy of random call sequences that the core's
//! bucket and window proptests share (its shape is fixed: the proptest regression files replay
//! through it).

use tollgate::{Decision, Error, Outcome};

/// Decide or peek: the engine's own vocabulary, re-exported for the models' callers.
pub use tollgate::state::Mode;

mod bucket;
mod concurrency;
mod fixed_window;
mod sliding_log;
#[cfg(feature = "proptest")]
mod strategy;

pub use bucket::{gcra_span, gcra_validate, Conversion, Gcra};
pub use concurrency::Concurrency;
pub use fixed_window::{fixed_window_span, window_validate, FixedWindow};
pub use sliding_log::SlidingLog;
#[cfg(feature = "proptest")]
pub use strategy::{ops, Op};

/// A model of a limiter that decides and peeks: [`Gcra`], [`FixedWindow`] and [`SlidingLog`].
/// Each writes its `judge`; `decide` and `peek` are the two modes of it.
pub trait Model {
    /// A request of `cost` at `now`: a decision ([`Mode::Decide`], counted when admitted) or a
    /// peek ([`Mode::Peek`], counted never).
    fn judge(&mut self, now: u64, cost: u64, mode: Mode) -> Result<Decision, Error>;

    /// A request of `cost` at `now` that counts when admitted.
    fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, Mode::Decide)
    }

    /// Would a request of `cost` pass at `now`? Counts nothing.
    fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, Mode::Peek)
    }
}

/// A decision with `outcome == verdict`, no flags, and `remaining = limit − used`.
///
/// # Panics
///
/// If `used > limit`: no model reports more units in use than its limit.
pub fn decision(
    outcome: Outcome,
    limit: u64,
    used: u64,
    retry_after: Option<u64>,
    reset_after: u64,
) -> Decision {
    Decision {
        outcome,
        verdict: outcome,
        limit,
        used,
        remaining: limit - used,
        retry_after,
        reset_after,
        flags: 0,
    }
}

/// Greatest common divisor.
pub fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// ⌈a / b⌉.
///
/// # Panics
///
/// If `b == 0`.
pub fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

/// ⌈x · num / den⌉ without overflow in between, for `num, den < 2⁶⁴`; `None` if the result does
/// not fit u128.
fn mul_div_ceil(x: u128, num: u128, den: u128) -> Option<u128> {
    let (quotient, rest) = (x / den, x % den);
    // rest < den < 2⁶⁴ and num < 2⁶⁴: rest · num fits.
    quotient
        .checked_mul(num)?
        .checked_add(ceil_div(rest * num, den))
}

/// A reported tick count: `x`, or `u64::MAX` if it does not fit (the engine saturates too).
fn sat64(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}
