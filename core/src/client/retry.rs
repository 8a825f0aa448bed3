//! What may be retried, and when (docs/semantics.md#client-toolkit): retry only what can succeed — 429, 503 and
//! transport errors — never a [`Never`](crate::Outcome::Never) outcome; wait at least the
//! backoff delay and the server's `Retry-After`; and only while the [`RetryBudget`] allows.
//!
//! A transport error (timeout, reset connection) may mean the server did act on the request:
//! retry only idempotent requests on one, which is the caller's knowledge, not this module's.

use super::{Random, Retries, RetryBudget};
use crate::Outcome;

/// How an attempt ended, for the retry decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    /// The request succeeded (1xx–3xx, or [`Outcome::Allowed`]): done.
    Success = 0,
    /// It may succeed later: 429 Too Many Requests, 503 Service Unavailable, a transport error,
    /// an [`Outcome::Limited`] or [`Outcome::Overloaded`].
    Retryable = 1,
    /// It can never succeed as it is: any other 4xx/5xx, or an [`Outcome::Never`].
    Fatal = 2,
}

impl Class {
    /// The class of an HTTP status: 1xx–3xx succeed, 429 and 503 may be retried, anything else
    /// is fatal.
    ///
    /// ```
    /// use tollgate::client::Class;
    /// assert_eq!(Class::of_status(200), Class::Success);
    /// assert_eq!(Class::of_status(429), Class::Retryable);
    /// assert_eq!(Class::of_status(503), Class::Retryable);
    /// assert_eq!(Class::of_status(500), Class::Fatal);
    /// ```
    pub const fn of_status(status: u16) -> Class {
        match status {
            429 | 503 => Class::Retryable,
            100..=399 => Class::Success,
            _ => Class::Fatal,
        }
    }

    /// The class of a limiter's outcome (a client's own mirror, or a gateway's decision):
    /// `Never` is fatal, whatever the HTTP status it travels as.
    pub const fn of_outcome(outcome: Outcome) -> Class {
        match outcome {
            Outcome::Allowed => Class::Success,
            Outcome::Limited | Outcome::Overloaded => Class::Retryable,
            Outcome::Never => Class::Fatal,
        }
    }

    /// A transport error (no HTTP answer at all): retryable.
    pub const fn of_transport_error() -> Class {
        Class::Retryable
    }
}

/// Why a request is not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GiveUp {
    /// The attempt can never succeed ([`Class::Fatal`]).
    Fatal = 1,
    /// The backoff policy's `max_retries` were all used.
    AttemptsExhausted = 2,
    /// The retry budget refuses: retries would exceed their share of recent successes.
    BudgetExhausted = 3,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next {
    /// The request succeeded; nothing more to do.
    Done,
    /// Retry at this time (in ticks): `now` plus the backoff delay, at least the `Retry-After`.
    RetryAt(u64),
    /// Do not retry.
    GiveUp(GiveUp),
}

/// Decides what follows an attempt of class `class` that ended at `now`.
///
/// A success is recorded in `budget`. A retryable failure is retried if `retries` has attempts
/// left and `budget` allows one (the retry is then recorded), at `now` plus the next backoff
/// delay, never earlier than `now + retry_after` (the server's `Retry-After` in ticks).
///
/// ```
/// use tollgate::client::{next_step, Backoff, Class, Jitter, Next, RetryBudget, SplitMix64};
/// let policy = Backoff::new(100, 10_000, 3, Jitter::Full).unwrap();
/// let mut budget: RetryBudget<10> = RetryBudget::new(10_000, 100, 5).unwrap();
/// let mut rng = SplitMix64::new(9);
/// let mut retries = policy.start();
/// // A 429 with "Retry-After: 2" on a millisecond clock, at t = 1 000:
/// let next = next_step(Class::of_status(429), 1_000, Some(2_000), &mut retries, &mut budget, &mut rng);
/// assert!(matches!(next, Next::RetryAt(t) if t >= 3_000));
/// ```
pub fn next_step<R: Random + ?Sized, const SLOTS: usize>(
    class: Class,
    now: u64,
    retry_after: Option<u64>,
    retries: &mut Retries,
    budget: &mut RetryBudget<SLOTS>,
    rng: &mut R,
) -> Next {
    match class {
        Class::Success => {
            budget.record_success(now);
            Next::Done
        }
        Class::Fatal => Next::GiveUp(GiveUp::Fatal),
        Class::Retryable => {
            if retries.retries() >= retries.policy().max_retries() {
                return Next::GiveUp(GiveUp::AttemptsExhausted);
            }
            if !budget.try_retry(now) {
                return Next::GiveUp(GiveUp::BudgetExhausted);
            }
            match retries.next_delay(retry_after, rng) {
                Some(delay) => Next::RetryAt(now.saturating_add(delay)),
                None => Next::GiveUp(GiveUp::AttemptsExhausted),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Backoff, Jitter, SplitMix64};

    #[test]
    fn classification() {
        for s in [200, 201, 204, 301, 304] {
            assert_eq!(Class::of_status(s), Class::Success);
        }
        for s in [
            400,
            401,
            403,
            404,
            409,
            422,
            500,
            502,
            504,
            0,
            99,
            600,
            u16::MAX,
        ] {
            assert_eq!(Class::of_status(s), Class::Fatal, "{s}");
        }
        assert_eq!(Class::of_outcome(Outcome::Never), Class::Fatal);
        assert_eq!(Class::of_outcome(Outcome::Limited), Class::Retryable);
        assert_eq!(Class::of_outcome(Outcome::Overloaded), Class::Retryable);
        assert_eq!(Class::of_outcome(Outcome::Allowed), Class::Success);
        assert_eq!(Class::of_transport_error(), Class::Retryable);
    }

    #[test]
    fn attempts_then_budget_then_delay() {
        let policy = Backoff::new(10, 100, 2, Jitter::None).unwrap();
        let mut budget: RetryBudget<1> = RetryBudget::new(1_000, 0, 1).unwrap();
        let mut rng = SplitMix64::new(0);
        let mut r = policy.start();
        let c = Class::Retryable;
        assert_eq!(
            next_step(c, 5, None, &mut r, &mut budget, &mut rng),
            Next::RetryAt(15)
        );
        // The floor of 1 is spent: refused, and the refusal used no attempt.
        assert_eq!(
            next_step(c, 5, None, &mut r, &mut budget, &mut rng),
            Next::GiveUp(GiveUp::BudgetExhausted)
        );
        assert_eq!(r.retries(), 1);
        let mut roomy: RetryBudget<1> = RetryBudget::new(1_000, 0, 10).unwrap();
        assert_eq!(
            next_step(c, 5, Some(50), &mut r, &mut roomy, &mut rng),
            Next::RetryAt(55)
        );
        assert_eq!(
            next_step(c, 5, None, &mut r, &mut roomy, &mut rng),
            Next::GiveUp(GiveUp::AttemptsExhausted)
        );
        assert_eq!(roomy.available(5), 9); // exhausted attempts spend no budget
        assert_eq!(
            next_step(
                Class::Fatal,
                5,
                None,
                &mut policy.start(),
                &mut roomy,
                &mut rng
            ),
            Next::GiveUp(GiveUp::Fatal)
        );
        assert_eq!(
            next_step(Class::Success, 5, None, &mut r, &mut roomy, &mut rng),
            Next::Done
        );
    }
}
