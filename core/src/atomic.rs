//! The atomics the engine is built on, and its one CAS loop.
//!
//! Atomics come from `portable-atomic`, so the same code builds for targets with 64-bit CAS,
//! with 32-bit CAS only (Cortex-M3: portable-atomic's lock-based `AtomicU64`, or its
//! interrupt-masking fallback when the firmware enables `unsafe-assume-single-core`) and with no
//! CAS at all (Cortex-M0, with `critical-section` or `unsafe-assume-single-core`). This crate
//! forwards those features and never enables them itself. Under `--cfg loom` the same code runs
//! on loom's atomics, so the loom models in `tests/loom.rs` check the shipped CAS loops.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicU32, AtomicU64, Ordering};

use crate::Error;

/// Declares a `const fn`, or under loom (whose atomics have no const constructor) a plain `fn`.
macro_rules! const_fn {
    ($(#[$m:meta])* $v:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $v const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $v fn $($rest)*
    };
}
pub(crate) use const_fn;

/// The CAS loop every limiter shares: `step` maps the current word to `(new word, result)`;
/// `None` leaves the word as it is (the decision is then linearized at the load).
#[inline]
pub(crate) fn update<T>(
    cell: &AtomicU64,
    mut step: impl FnMut(u64) -> Result<(Option<u64>, T), Error>,
) -> Result<T, Error> {
    let mut current = cell.load(Ordering::Acquire);
    loop {
        let (new, out) = step(current)?;
        match new {
            Some(new) if new != current => {
                match cell.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Ok(out),
                    Err(actual) => current = actual,
                }
            }
            _ => return Ok(out),
        }
    }
}
