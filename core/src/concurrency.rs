//! Concurrency (in-flight) limit (docs/semantics.md#concurrency-limit).
//!
//! At most M requests in flight. A denial is [`Outcome::Overloaded`] (HTTP 503): protective
//! shedding, distinct from rate limiting (429).

use crate::atomic::{const_fn, AtomicU32, Ordering};
use crate::{Decision, Error, Outcome};

/// At most `max` requests in flight; one atomic counter, lock-free, `static`-friendly.
///
/// ```
/// use tollgate::{ConcurrencyLimit, Outcome};
/// static UPSTREAM: ConcurrencyLimit = ConcurrencyLimit::new(2);
/// let a = UPSTREAM.acquire().unwrap();
/// let _b = UPSTREAM.acquire().unwrap();
/// assert_eq!(UPSTREAM.acquire().unwrap_err().outcome, Outcome::Overloaded);
/// drop(a); // a permit releases exactly once, when dropped
/// assert!(UPSTREAM.acquire().is_ok());
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimit {
    max: u32,
    in_flight: AtomicU32,
}

/// A slot in a [`ConcurrencyLimit`]; dropping it releases the slot, exactly once.
#[derive(Debug)]
#[must_use = "dropping a permit releases it at once"]
pub struct Permit<'a> {
    limit: &'a ConcurrencyLimit,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // A permit exists only for an acquired slot, so this release cannot underflow.
        let _ = self.limit.release();
    }
}

impl Permit<'_> {
    /// Releases the slot now (the same as dropping the permit).
    pub fn release(self) {
        drop(self);
    }
}

impl ConcurrencyLimit {
    const_fn! {
        /// A limit of `max` requests in flight. `max = 0` sheds everything.
        pub fn new(max: u32) -> ConcurrencyLimit {
            ConcurrencyLimit { max, in_flight: AtomicU32::new(0) }
        }
    }

    /// The cap M.
    pub const fn max(&self) -> u32 {
        self.max
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes a slot if fewer than M are in flight. The decision reports `limit = M` and
    /// `used` = in flight after it; a refusal is [`Outcome::Overloaded`] with
    /// `retry_after = None` (no time can be promised). Pair every admitted `try_acquire` with
    /// one [`release`](ConcurrencyLimit::release); [`acquire`](ConcurrencyLimit::acquire)
    /// does that for you.
    pub fn try_acquire(&self) -> Decision {
        let limit = u64::from(self.max);
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            if current >= self.max {
                return Decision::plain(Outcome::Overloaded, limit, u64::from(current), None, 0);
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let used = u64::from(current) + 1;
                    return Decision::plain(Outcome::Allowed, limit, used, Some(0), 0);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Takes a slot as a [`Permit`] that releases it when dropped; the refusal is the decision.
    pub fn acquire(&self) -> Result<Permit<'_>, Decision> {
        let d = self.try_acquire();
        if d.is_allowed() {
            Ok(Permit { limit: self })
        } else {
            Err(d)
        }
    }

    /// Returns a slot taken by [`try_acquire`](ConcurrencyLimit::try_acquire).
    /// [`Error::NotAcquired`] if none is in flight; the counter never underflows.
    pub fn release(&self) -> Result<(), Error> {
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            if current == 0 {
                return Err(Error::NotAcquired);
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_without_acquire_is_an_error_and_never_underflows() {
        let c = ConcurrencyLimit::new(1);
        assert_eq!(c.release(), Err(Error::NotAcquired));
        assert_eq!(c.in_flight(), 0);
        assert!(c.try_acquire().is_allowed());
        assert_eq!(c.release(), Ok(()));
        assert_eq!(c.release(), Err(Error::NotAcquired));
    }

    #[test]
    fn overloaded_reports_the_cap() {
        let c = ConcurrencyLimit::new(1);
        let _p = c.acquire().unwrap();
        let d = c.try_acquire();
        assert_eq!(
            (d.outcome, d.limit, d.used, d.remaining),
            (Outcome::Overloaded, 1, 1, 0)
        );
        assert_eq!(d.outcome.http_status(), Some(503));
        let zero = ConcurrencyLimit::new(0);
        assert_eq!(zero.try_acquire().outcome, Outcome::Overloaded);
    }
}
