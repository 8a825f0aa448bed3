//! The limiters' state arithmetic as pure functions, for backends that keep the state
//! elsewhere: in Redis, a database row, a file.
//!
//! Every limiter in this crate is a small state plus pure functions on it. [`LeakyBucket`] and
//! [`FixedWindow`] run those functions in a compare-and-swap loop on an atomic word; a backend
//! that keeps the state somewhere else runs **the same functions** around its own atomic update
//! (a transaction, a compare-and-set, a server-side script), and so decides exactly as the
//! in-memory limiters do: the same outcomes, the same reported numbers, the same errors.
//!
//! - [`bucket`]: the leaky bucket (GCRA). The state is one `u64` in units of 1/D tick;
//!   [`bucket::Units`] holds the quota's numbers the arithmetic runs on
//!   ([`Quota::units`](crate::Quota::units)).
//! - [`window`]: the fixed window. The state is a window index and a count
//!   ([`window::State`]); the quota is the [`WindowQuota`](crate::WindowQuota) itself.
//!
//! Each kind has a **step** (one decision or peek on a state: the new state, if any, and the
//! [`Decision`](crate::Decision)) and a **conversion** (a key that changes quota keeps its
//! history, as `set_quota` does). A step is one request against one state: the caller reads the
//! state, steps, and writes the new state back atomically (only if the state it read is still
//! there), or steps again on the state it finds.
//!
//! ```
//! use tollgate::state::{bucket, Mode};
//! use tollgate::{LeakyBucket, Quota};
//! let quota = Quota::new(30, 2, 1_000)?; // 30, draining 2 per second, on a millisecond clock
//! let bucket = LeakyBucket::new(quota);
//! // A backend's stored word: 0 is an empty bucket.
//! let mut word = 0;
//! for now in [0, 0, 400, 900] {
//!     let (next, decision) = bucket::step(word, quota.units(), now, 1, Mode::Decide)?;
//!     word = next.unwrap_or(word); // written back atomically by the backend
//!     assert_eq!(decision, bucket.decide(now, 1)?);
//! }
//! # Ok::<(), tollgate::Error>(())
//! ```
//!
//! [`LeakyBucket`]: crate::LeakyBucket
//! [`FixedWindow`]: crate::FixedWindow

pub mod bucket;
pub mod window;

/// Whether a step spends capacity or only looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A decision: an admitted request is counted (`decide`).
    Decide,
    /// A look: would the request be admitted now? Nothing is counted (`peek`); the reported
    /// numbers describe the state as it is, not counting the request asked about.
    Peek,
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::bucket::{self, Units};
    use super::window::{self, State};
    use super::Mode;
    use crate::{Error, FixedWindow, LeakyBucket, Quota, WindowQuota};

    #[test]
    fn units_rebuilt_from_their_numbers_equal_the_quotas() {
        let ns = 1_000_000_000;
        let u = *Quota::new(30, 2, ns).unwrap().units();
        assert_eq!((u.burst(), u.unit(), u.interval()), (30, 1, ns / 2));
        assert_eq!(Units::new(30, 1, ns / 2), Ok(u));
        let century = 100 * 365 * 86_400 * ns;
        for (b, c) in [
            (1, 999_983),
            (10, 999_983),
            (7, 1_000_003),
            (1 << 20, 3_000_017),
        ] {
            let q = Quota::approximate(b, c, ns, century).unwrap();
            let u = q.units();
            assert!(u.unit().is_power_of_two());
            assert_eq!(u.span(), q.exact_span());
            assert_eq!(u.interval(), (ns * u.unit()).div_ceil(c));
            assert_eq!(Units::new(b, u.unit(), u.interval()).as_ref(), Ok(u));
        }
        assert_eq!(Units::new(0, 1, 1), Err(Error::ZeroBurst));
        assert_eq!(Units::new(1, 0, 1), Err(Error::InvalidArgument));
        assert_eq!(Units::new(1, 1, 0), Err(Error::InvalidArgument));
        assert_eq!(Units::new(2, 1, u64::MAX), Err(Error::QuotaOverflow));
    }

    #[test]
    fn admission_and_levels_are_the_steps_test() {
        let u = *Quota::new(30, 2, 1_000).unwrap().units();
        let a = bucket::admission(&u, 10, 3).unwrap();
        assert_eq!((a.now, a.need, a.deadline), (10, 1_500, 10 + 30 * 500));
        assert_eq!(bucket::at_level(&u, 10, 1_000), Ok(a.deadline));
        assert_eq!(bucket::at_level(&u, 10, 2), Ok(10 + 2 * 500));
        assert_eq!(bucket::admission(&u, 10, 31).map(|a| a.need), Ok(0));
        assert_eq!(bucket::admission(&u, 10, 0), Err(Error::ZeroCost));
        assert_eq!(
            bucket::admission(&u, u.span() + 1, 1),
            Err(Error::ClockOutOfRange)
        );
        assert_eq!(
            bucket::at_level(&u, u.span() + 1, 1),
            Err(Error::ClockOutOfRange)
        );
    }

    #[test]
    fn window_indices_and_ends_match_the_span() {
        let one_tick = WindowQuota::new(u64::from(u32::MAX), 1).unwrap();
        assert_eq!(
            window::index_of(&one_tick, (1 << 32) - 2),
            Ok((1 << 32) - 1)
        );
        assert_eq!(
            window::index_of(&one_tick, (1 << 32) - 1),
            Err(Error::ClockOutOfRange)
        );
        assert_eq!(FixedWindow::new(one_tick).span(), (1 << 32) - 2);
        let q = WindowQuota::new(2, 100).unwrap().with_offset(30).unwrap();
        assert_eq!(window::index_of(&q, 29), Ok(0));
        assert_eq!(window::index_of(&q, 30), Ok(1));
        assert_eq!(window::ticks_to_end(&q, 0, 0), 30);
        assert_eq!(window::ticks_to_end(&q, 1, 200), 0);
        assert_eq!(window::ticks_to_end(&q, u64::MAX, 0), u64::MAX);
    }

    proptest::proptest! {
        /// The state functions, with the state threaded through by hand as a backend would,
        /// equal `LeakyBucket` — decisions, numbers, errors and quota changes, the old units
        /// rebuilt from their three numbers as a backend reads them back.
        #[test]
        fn bucket_steps_and_conversions_are_the_leaky_buckets(
            quotas in proptest::collection::vec((1u64..40, 1u64..12, 1u64..3_000), 2),
            ops in proptest::collection::vec((0usize..2, -50i64..200, 0u64..45, proptest::bool::ANY), 1..80),
        ) {
            let quotas: Vec<Quota> = quotas
                .iter()
                .map(|&(b, c, p)| Quota::with_min_span(b, c, p, 0).unwrap())
                .collect();
            let mut core = LeakyBucket::new(quotas[0]);
            let mut state = 0u64;
            let mut units = *quotas[0].units();
            let mut now = 0u64;
            for (qi, dt, cost, peek) in ops {
                now = now.saturating_add_signed(dt);
                let q = quotas[qi];
                if cost != 0 && *core.quota() != q {
                    let converted = core.set_quota(q, now);
                    let old = Units::new(units.burst(), units.unit(), units.interval()).unwrap();
                    let ours = bucket::convert(state, &old, q.units(), now);
                    proptest::prop_assert_eq!(converted.is_ok(), ours.is_ok());
                    if let Ok(s) = ours {
                        state = s;
                        units = *q.units();
                    }
                }
                let mode = if peek { Mode::Peek } else { Mode::Decide };
                let expected = if peek { core.peek(now, cost) } else { core.decide(now, cost) };
                let got = bucket::step(state, &units, now, cost, mode);
                proptest::prop_assert_eq!(got.map(|(_, d)| d), expected);
                if let Ok((Some(next), _)) = got {
                    state = next;
                }
            }
        }

        /// The same for the window's (index, count) and `FixedWindow`.
        #[test]
        fn window_steps_and_conversions_are_the_fixed_windows(
            quotas in proptest::collection::vec((1u64..20, 1u64..500, 0u64..500), 2),
            ops in proptest::collection::vec((0usize..2, -50i64..200, 0u64..25, proptest::bool::ANY), 1..80),
        ) {
            let quotas: Vec<WindowQuota> = quotas
                .iter()
                .map(|&(n, w, o)| WindowQuota::new(n, w).unwrap().with_offset(o % w).unwrap())
                .collect();
            let mut core = FixedWindow::new(quotas[0]);
            let mut state = State::default();
            let mut quota = quotas[0];
            let mut now = 0u64;
            for (qi, dt, cost, peek) in ops {
                now = now.saturating_add_signed(dt);
                let q = quotas[qi];
                if cost != 0 && *core.quota() != q {
                    let converted = core.set_quota(q, now);
                    let ours = window::convert(state, &quota, &q, now);
                    proptest::prop_assert_eq!(converted.is_ok(), ours.is_ok());
                    if let Ok(s) = ours {
                        state = s;
                        quota = q;
                    }
                }
                let mode = if peek { Mode::Peek } else { Mode::Decide };
                let expected = if peek { core.peek(now, cost) } else { core.decide(now, cost) };
                let got = window::step(state, &quota, now, cost, mode);
                proptest::prop_assert_eq!(got.map(|(_, d)| d), expected);
                if let Ok((Some(next), _)) = got {
                    state = next;
                }
            }
        }
    }
}
