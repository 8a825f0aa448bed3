//! Exponential backoff with jitter (docs/semantics.md#client-toolkit), exactly as in Marc Brooker's AWS Architecture
//! Blog post "Exponential Backoff and Jitter" (2015), in integer ticks.
//!
//! With `base` b, `cap` c and the retry number k = 0, 1, 2, …:
//!
//! | [`Jitter`] | delay of retry k |
//! |---|---|
//! | `None` | e = min(c, b·2ᵏ) |
//! | `Full` | uniform in 0..=e |
//! | `Equal` | ⌈e/2⌉ + uniform in 0..=⌊e/2⌋ |
//! | `Decorrelated` | min(c, uniform in b..=3·previous), previous starting at b |
//!
//! ("previous" is the strategy's own previous delay, before any `Retry-After` floor.)
//!
//! Whatever the strategy, a delay is never shorter than the server's `Retry-After`
//! ([`Backoff::next_delay`] takes it as a floor, which may exceed the cap), and after
//! `max_retries` retries the schedule ends. All arithmetic saturates; nothing can overflow.

use super::Random;
use crate::Error;

/// How a backoff delay is randomised; the four strategies of the AWS study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Jitter {
    /// No jitter: min(cap, base·2ᵏ). Clients that failed together retry together.
    None = 0,
    /// Full jitter: uniform in `0..=min(cap, base·2ᵏ)`. The fewest calls in the AWS study.
    Full = 1,
    /// Equal jitter: half the exponential delay, plus uniform in the other half.
    Equal = 2,
    /// Decorrelated jitter: min(cap, uniform in `base..=3·previous`).
    Decorrelated = 3,
}

/// An exponential backoff policy: `base` and `cap` in ticks, a retry limit and a [`Jitter`].
///
/// ```
/// use tollgate::client::{Backoff, Jitter, SplitMix64};
/// const MS: u64 = 1_000_000; // nanosecond ticks
/// let policy = Backoff::new(100 * MS, 10_000 * MS, 5, Jitter::Full).unwrap();
/// let mut rng = SplitMix64::new(1);
/// let mut retries = policy.start();
/// // The server said "Retry-After: 2": the delay is at least 2 s.
/// let d = retries.next_delay(Some(2_000 * MS), &mut rng).unwrap();
/// assert!(d >= 2_000 * MS);
/// for _ in 1..5 {
///     assert!(retries.next_delay(None, &mut rng).unwrap() <= 10_000 * MS);
/// }
/// assert_eq!(retries.next_delay(None, &mut rng), None); // 5 retries: give up
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: u64,
    cap: u64,
    max_retries: u32,
    jitter: Jitter,
}

impl Backoff {
    /// A policy of delays from `base` ticks, never above `cap` (except to honour a
    /// `Retry-After`), for at most `max_retries` retries.
    ///
    /// [`Error::InvalidArgument`] if `base` is zero or `cap < base`.
    pub const fn new(
        base: u64,
        cap: u64,
        max_retries: u32,
        jitter: Jitter,
    ) -> Result<Backoff, Error> {
        if base == 0 || cap < base {
            return Err(Error::InvalidArgument);
        }
        Ok(Backoff {
            base,
            cap,
            max_retries,
            jitter,
        })
    }

    /// The base delay in ticks.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The cap in ticks.
    pub const fn cap(&self) -> u64 {
        self.cap
    }

    /// The most retries a schedule allows.
    pub const fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The jitter strategy.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// min(cap, base·2ᵏ), saturating: the un-jittered delay of retry `k`.
    pub const fn exponential(&self, k: u32) -> u64 {
        let grown = if k >= 64 {
            u64::MAX
        } else {
            match self.base.checked_mul(1 << k) {
                Some(v) => v,
                None => u64::MAX,
            }
        };
        if grown < self.cap {
            grown
        } else {
            self.cap
        }
    }

    /// The delay of retry `k` (0 for the first retry) before any `Retry-After` floor.
    /// `previous` is the delay of retry k − 1 (used only by [`Jitter::Decorrelated`]; pass
    /// `base` for the first retry).
    pub fn delay<R: Random + ?Sized>(&self, k: u32, previous: u64, rng: &mut R) -> u64 {
        match self.jitter {
            Jitter::None => self.exponential(k),
            Jitter::Full => rng.up_to(self.exponential(k)),
            Jitter::Equal => {
                let e = self.exponential(k);
                let half = e / 2;
                (e - half) + rng.up_to(half)
            }
            Jitter::Decorrelated => {
                let high = previous.max(self.base).saturating_mul(3);
                rng.between(self.base, high).min(self.cap)
            }
        }
    }

    /// A fresh retry schedule for one request.
    pub const fn start(&self) -> Retries {
        Retries {
            policy: *self,
            count: 0,
            previous: self.base,
        }
    }
}

/// The retry schedule of one request: how many retries so far and the last delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Retries {
    policy: Backoff,
    count: u32,
    previous: u64,
}

impl Retries {
    /// The delay before the next retry, never shorter than `retry_after` (the server's
    /// `Retry-After` in ticks, if it sent one), or `None` when `max_retries` retries were
    /// already made.
    pub fn next_delay<R: Random + ?Sized>(
        &mut self,
        retry_after: Option<u64>,
        rng: &mut R,
    ) -> Option<u64> {
        if self.count >= self.policy.max_retries {
            return None;
        }
        let d = self.policy.delay(self.count, self.previous, rng);
        self.count += 1;
        self.previous = d;
        Some(d.max(retry_after.unwrap_or(0)))
    }

    /// Retries made so far.
    pub const fn retries(&self) -> u32 {
        self.count
    }

    /// The policy.
    pub const fn policy(&self) -> &Backoff {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::SplitMix64;

    #[test]
    fn no_jitter_doubles_up_to_the_cap() {
        let b = Backoff::new(100, 1_000, 10, Jitter::None).unwrap();
        let mut rng = SplitMix64::new(0);
        let mut r = b.start();
        let delays: [u64; 6] = core::array::from_fn(|_| r.next_delay(None, &mut rng).unwrap());
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(b.exponential(63), 1_000);
        assert_eq!(b.exponential(64), 1_000);
        assert_eq!(b.exponential(u32::MAX), 1_000);
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert_eq!(
            Backoff::new(0, 1, 1, Jitter::Full),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            Backoff::new(2, 1, 1, Jitter::Full),
            Err(Error::InvalidArgument)
        );
        assert!(Backoff::new(1, 1, 0, Jitter::Full).is_ok());
    }

    #[test]
    fn retry_after_is_a_floor_even_above_the_cap() {
        let b = Backoff::new(10, 100, 3, Jitter::Full).unwrap();
        let mut rng = SplitMix64::new(3);
        let mut r = b.start();
        assert_eq!(r.next_delay(Some(5_000), &mut rng), Some(5_000));
        assert!(r.next_delay(Some(0), &mut rng).unwrap() <= 100);
        assert!(r.next_delay(None, &mut rng).is_some());
        assert_eq!(r.next_delay(Some(5_000), &mut rng), None);
        assert_eq!(r.retries(), 3);
    }
}
