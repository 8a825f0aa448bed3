//! Leaky bucket / GCRA, pass or fail, no queueing (docs/semantics.md#leaky-bucket).
//!
//! [`LeakyBucket`] keeps the state word of [`state::bucket`](crate::state::bucket) in an atomic
//! and runs that module's arithmetic in a CAS loop; the functions here are the loops, and the
//! arithmetic on a [`Quota`] for the key tables.
//!
//! The proptests replay the admitted requests at their times raised to the latest time seen and
//! check that the reference model admits every one.

use crate::atomic::{const_fn, update, AtomicU64, Ordering};
pub(crate) use crate::state::bucket::admit;
use crate::state::bucket::{self, report, retry_after};
pub(crate) use crate::state::Mode;
use crate::{Decision, Error, Outcome, Quota};

/// [`bucket::step`] on a quota.
#[inline]
pub(crate) fn step(
    state: u64,
    quota: &Quota,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<u64>, Decision), Error> {
    bucket::step(state, quota.units(), now, cost, mode)
}

/// [`bucket::admission`] on a quota, as the outcome-only paths take it: `now` in units, the
/// request's size in units (0: [`Outcome::Never`]) and the latest admissible end of the bucket.
#[inline]
pub(crate) fn admit_bounds(quota: &Quota, now: u64, cost: u64) -> Result<(u64, u64, u64), Error> {
    let a = bucket::admission(quota.units(), now, cost)?;
    Ok((a.now, a.need, a.deadline))
}

/// `true` if a bucket in `state` is empty at `now` (indistinguishable from a new one).
pub(crate) fn is_drained(state: u64, quota: &Quota, now: u64) -> bool {
    bucket::is_drained(state, quota.units(), now)
}

/// [`bucket::convert`] between two quotas.
pub(crate) fn convert(state: u64, old: &Quota, new: &Quota, now: u64) -> Result<u64, Error> {
    bucket::convert(state, old.units(), new.units(), now)
}

/// [`LeakyBucket::decide`] on a state word kept anywhere (a bucket's own, or one in shared
/// memory): the one implementation both use.
#[inline]
pub(crate) fn decide_in(
    cell: &AtomicU64,
    quota: &Quota,
    now: u64,
    cost: u64,
) -> Result<Decision, Error> {
    let (now_u, need, deadline) = admit_bounds(quota, now, cost)?;
    if need == 0 {
        // Never: record a later `now` (as `step` does) and report the unchanged level.
        let word = update(cell, |s| {
            Ok(if now_u > s {
                (Some(now_u), now_u)
            } else {
                (None, s)
            })
        })?;
        return Ok(report(quota.units(), Outcome::Never, word, now_u, None));
    }
    // The CAS loop carries only the outcome and the word it was judged on; the numbers are
    // computed once, after it.
    let (outcome, word) = update(cell, |s| {
        let (new, outcome) = admit(s, now_u, need, deadline);
        Ok((new, (outcome, new.unwrap_or(s))))
    })?;
    let units = quota.units();
    Ok(if outcome == Outcome::Allowed {
        report(units, outcome, word, now_u, Some(0))
    } else {
        let retry = retry_after(units, word, now_u, need);
        report(units, outcome, word, now_u, Some(retry))
    })
}

/// [`LeakyBucket::check`] on a state word kept anywhere.
#[inline]
pub(crate) fn check_in(
    cell: &AtomicU64,
    quota: &Quota,
    now: u64,
    cost: u64,
) -> Result<Outcome, Error> {
    let (now_u, need, deadline) = admit_bounds(quota, now, cost)?;
    if need == 0 {
        // Never: record a later `now`, as `decide` does.
        return update(cell, |s| {
            Ok((if now_u > s { Some(now_u) } else { None }, Outcome::Never))
        });
    }
    update(cell, |s| Ok(admit(s, now_u, need, deadline)))
}

/// [`LeakyBucket::peek`] on a state word kept anywhere.
#[inline]
pub(crate) fn peek_in(
    cell: &AtomicU64,
    quota: &Quota,
    now: u64,
    cost: u64,
) -> Result<Decision, Error> {
    update(cell, |s| step(s, quota, now, cost, Mode::Peek))
}

/// A leaky bucket (GCRA) whose state is one atomic word: `&self` decisions, lock-free, no
/// allocation; it can live in a `static`.
///
/// ```
/// use tollgate::{LeakyBucket, Outcome, Quota};
/// const SECOND: u64 = 1_000_000_000; // nanosecond ticks
/// static SHOPBASE: LeakyBucket = LeakyBucket::new(match Quota::new(30, 2, SECOND) {
///     Ok(q) => q,
///     Err(_) => panic!(),
/// });
/// for _ in 0..30 {
///     assert!(SHOPBASE.decide(0, 1).unwrap().is_allowed());
/// }
/// let d = SHOPBASE.decide(0, 1).unwrap();
/// assert_eq!(d.outcome, Outcome::Limited);
/// assert_eq!(d.retry_after, Some(SECOND / 2));
/// assert_eq!((d.used, d.limit, d.remaining), (30, 30, 0));
/// ```
#[derive(Debug)]
pub struct LeakyBucket {
    quota: Quota,
    state: AtomicU64,
}

impl LeakyBucket {
    const_fn! {
        /// An empty bucket with this quota.
        pub fn new(quota: Quota) -> LeakyBucket {
            LeakyBucket { quota, state: AtomicU64::new(0) }
        }
    }

    /// The bucket's quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Decides on a request of `cost` at `now`: admitted iff the level plus `cost` fits the
    /// burst; a denial changes nothing; a cost above the burst is [`Outcome::Never`].
    ///
    /// Errors: [`Error::ZeroCost`], [`Error::ClockOutOfRange`].
    #[inline]
    pub fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        decide_in(&self.state, &self.quota, now, cost)
    }

    /// The outcome alone of [`decide`](LeakyBucket::decide): the same state change (an admitted
    /// request is spent, a denial changes nothing), the same [`Outcome`], but none of the
    /// reported numbers, so no division and nothing large to return. For callers that only ask
    /// "may I?".
    ///
    /// ```
    /// use tollgate::{LeakyBucket, Outcome, Quota};
    /// let bucket = LeakyBucket::new(Quota::new(2, 1, 1_000).unwrap());
    /// assert_eq!(bucket.check(0, 1), Ok(Outcome::Allowed));
    /// assert_eq!(bucket.check(0, 1), Ok(Outcome::Allowed));
    /// assert_eq!(bucket.check(0, 1), Ok(Outcome::Limited));
    /// assert_eq!(bucket.check(0, 3), Ok(Outcome::Never));
    /// // The full decision sees the same state: two requests in the bucket.
    /// assert_eq!(bucket.peek(0, 1).unwrap().used, 2);
    /// ```
    ///
    /// Errors: [`Error::ZeroCost`], [`Error::ClockOutOfRange`].
    #[inline]
    pub fn check(&self, now: u64, cost: u64) -> Result<Outcome, Error> {
        check_in(&self.state, &self.quota, now, cost)
    }

    /// Would a request of `cost` be admitted at `now`? Spends nothing; the numbers describe the
    /// current level, not counting the request asked about.
    pub fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        peek_in(&self.state, &self.quota, now, cost)
    }

    /// `true` if the bucket is empty at `now`.
    pub fn is_drained(&self, now: u64) -> bool {
        is_drained(self.state.load(Ordering::Acquire), &self.quota, now)
    }

    /// Changes the quota, keeping the bucket's history: the level carries over when the new
    /// rate is not faster; when it is faster, the backlog is kept by time (the bucket empties
    /// when it would have under the old quota), because a bucket cannot tell its level from the
    /// gap a clock that stepped back leaves. No free burst, and the bucket is empty no later than
    /// under the slower quota. On error nothing changes.
    pub fn set_quota(&mut self, quota: Quota, now: u64) -> Result<(), Error> {
        let state = self.state.load(Ordering::Acquire);
        let converted = convert(state, &self.quota, &quota, now)?;
        self.state = AtomicU64::new(converted);
        self.quota = quota;
        Ok(())
    }

    /// Empties the bucket (an operator's reset).
    pub fn reset(&self) {
        self.state.store(0, Ordering::Release);
    }

    /// Raises the bucket's level at `now` to at least `used` requests (capped at the burst);
    /// never lowers it. A client mirror uses this to take in a server's `used/limit` header
    /// (docs/semantics.md#client-toolkit): whatever the server counted that the mirror did not, the mirror counts too.
    ///
    /// ```
    /// use tollgate::{LeakyBucket, Quota};
    /// let mirror = LeakyBucket::new(Quota::new(30, 2, 1_000).unwrap());
    /// mirror.raise_level_to(0, 22).unwrap(); // the server said "22/30"
    /// assert_eq!(mirror.peek(0, 1).unwrap().used, 22);
    /// mirror.raise_level_to(0, 5).unwrap(); // never lowered
    /// assert_eq!(mirror.peek(0, 1).unwrap().used, 22);
    /// ```
    ///
    /// Errors: [`Error::ClockOutOfRange`].
    pub fn raise_level_to(&self, now: u64, used: u64) -> Result<(), Error> {
        let target = bucket::at_level(self.quota.units(), now, used)?;
        update(&self.state, |s| {
            Ok((if target > s { Some(target) } else { None }, ()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn shopbase() -> LeakyBucket {
        LeakyBucket::new(Quota::new(30, 2, SECOND).unwrap())
    }

    #[test]
    fn shopbase_29_of_30_is_9_of_30_ten_seconds_later() {
        let b = shopbase();
        for _ in 0..29 {
            assert!(b.decide(0, 1).unwrap().is_allowed());
        }
        let d = b.peek(0, 1).unwrap();
        assert_eq!((d.used, d.limit), (29, 30));
        let d = b.peek(10 * SECOND, 1).unwrap();
        assert_eq!((d.used, d.limit, d.remaining), (9, 30, 21));
    }

    #[test]
    fn shopbase_31st_request_retries_after_half_a_second() {
        let b = shopbase();
        for i in 0..30 {
            let d = b.decide(0, 1).unwrap();
            assert!(d.is_allowed());
            assert_eq!(d.used, i + 1);
            assert_eq!(d.reset_after, (i + 1) * SECOND / 2);
        }
        let d = b.decide(0, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        assert_eq!(d.retry_after, Some(SECOND / 2));
        assert_eq!(d.reset_after, 15 * SECOND);
        // Exactly then it passes, one tick earlier it does not.
        assert!(!b.peek(SECOND / 2 - 1, 1).unwrap().is_allowed());
        assert!(b.decide(SECOND / 2, 1).unwrap().is_allowed());
    }

    #[test]
    fn cost_above_burst_is_never_and_zero_cost_is_an_error() {
        let b = shopbase();
        let d = b.decide(0, 31).unwrap();
        assert_eq!(d.outcome, Outcome::Never);
        assert_eq!(d.retry_after, None);
        assert_eq!(d.used, 0);
        assert_eq!(b.decide(0, 0), Err(Error::ZeroCost));
        assert_eq!(b.peek(0, 0), Err(Error::ZeroCost));
        assert!(b.is_drained(0));
    }

    #[test]
    fn peek_spends_nothing() {
        let b = shopbase();
        for _ in 0..100 {
            assert!(b.peek(0, 30).unwrap().is_allowed());
        }
        assert!(b.decide(0, 30).unwrap().is_allowed());
    }

    #[test]
    fn now_beyond_the_span_is_an_error_and_near_it_works() {
        let q = Quota::new(30, 2, SECOND).unwrap();
        let b = LeakyBucket::new(q);
        assert_eq!(b.decide(q.exact_span() + 1, 1), Err(Error::ClockOutOfRange));
        assert_eq!(b.decide(u64::MAX, 1), Err(Error::ClockOutOfRange));
        for _ in 0..30 {
            assert!(b.decide(q.exact_span(), 1).unwrap().is_allowed());
        }
        assert_eq!(
            b.decide(q.exact_span(), 1).unwrap().outcome,
            Outcome::Limited
        );
    }

    #[test]
    fn raise_level_to_raises_and_never_lowers() {
        let b = shopbase();
        b.raise_level_to(0, 22).unwrap();
        let d = b.peek(0, 1).unwrap();
        assert_eq!((d.used, d.remaining), (22, 8));
        b.raise_level_to(0, 10).unwrap();
        assert_eq!(b.peek(0, 1).unwrap().used, 22);
        // Drains as usual: 22 at 0 is 12 at 5 s; raising to 20 at 5 s takes it to 20.
        assert_eq!(b.peek(5 * SECOND, 1).unwrap().used, 12);
        b.raise_level_to(5 * SECOND, 20).unwrap();
        assert_eq!(b.peek(5 * SECOND, 1).unwrap().used, 20);
        // Capped at the burst: a full bucket, the next request waits half a second.
        b.raise_level_to(5 * SECOND, 1_000).unwrap();
        let d = b.decide(5 * SECOND, 1).unwrap();
        assert_eq!(
            (d.outcome, d.retry_after),
            (Outcome::Limited, Some(SECOND / 2))
        );
        let q = *b.quota();
        assert_eq!(
            b.raise_level_to(q.exact_span() + 1, 1),
            Err(Error::ClockOutOfRange)
        );
        b.raise_level_to(q.exact_span(), 30).unwrap();
    }

    #[test]
    fn set_quota_keeps_the_level() {
        let mut b = shopbase();
        for _ in 0..20 {
            assert!(b.decide(0, 1).unwrap().is_allowed());
        }
        // A larger bucket at the same rate: the level of 20 carries over.
        b.set_quota(Quota::new(60, 2, SECOND).unwrap(), 0).unwrap();
        assert_eq!(b.peek(0, 1).unwrap().used, 20);
        // A faster rate: the backlog of 10 s keeps its time, 40 requests at 4/s.
        b.set_quota(Quota::new(60, 4, SECOND).unwrap(), 0).unwrap();
        let d = b.peek(0, 1).unwrap();
        assert_eq!((d.used, d.reset_after), (40, 10 * SECOND));
        // Down to a burst of 10 at 1/s: the 40 carry over by level; no free burst.
        b.set_quota(Quota::new(10, 1, SECOND).unwrap(), 0).unwrap();
        assert!(!b.peek(0, 1).unwrap().is_allowed());
        assert_eq!(b.peek(0, 1).unwrap().retry_after, Some(31 * SECOND));
    }

    #[test]
    fn set_quota_refuses_a_backlog_the_new_quota_cannot_hold_and_changes_nothing() {
        let mut b = LeakyBucket::new(Quota::new(1_000, 1, 1).unwrap());
        assert!(b.decide(0, 1_000).unwrap().is_allowed());
        let glacial = Quota::with_min_span(1, 1, 1 << 62, 0).unwrap();
        assert_eq!(b.set_quota(glacial, 0), Err(Error::ClockOutOfRange));
        assert_eq!(b.quota().burst(), 1_000);
        assert_eq!(b.peek(0, 1).unwrap().used, 1_000);
    }
}
