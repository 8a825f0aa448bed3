//! The concurrency limit (docs/semantics.md#concurrency-limit).

use tollgate::{Decision, Error, Outcome};

use crate::decision;

/// docs/semantics.md#concurrency-limit: a counter of requests in flight, at most `max`.
#[derive(Clone, Debug)]
pub struct Concurrency {
    /// M.
    pub max: u32,
    /// Requests in flight.
    pub in_flight: u32,
}

impl Concurrency {
    /// No request in flight.
    pub fn new(max: u32) -> Concurrency {
        Concurrency { max, in_flight: 0 }
    }

    /// Admits iff fewer than M are in flight; a refusal is Overloaded with no retry time.
    pub fn try_acquire(&mut self) -> Decision {
        let limit = u64::from(self.max);
        if self.in_flight < self.max {
            self.in_flight += 1;
            decision(
                Outcome::Allowed,
                limit,
                u64::from(self.in_flight),
                Some(0),
                0,
            )
        } else {
            decision(
                Outcome::Overloaded,
                limit,
                u64::from(self.in_flight),
                None,
                0,
            )
        }
    }

    /// Returns a permit; an error when none is in flight.
    pub fn release(&mut self) -> Result<(), Error> {
        if self.in_flight == 0 {
            return Err(Error::NotAcquired);
        }
        self.in_flight -= 1;
        Ok(())
    }
}
