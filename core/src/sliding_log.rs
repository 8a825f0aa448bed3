//! Sliding window log, strict (docs/semantics.md#sliding-window-log).
//!
//! At most N cost units in **any** half-open window `(t − W, t]`. Exact, with memory O(N): the
//! admitted `(time, cost)` entries live in a fixed-capacity ring ([`heapless::Deque`]) of `CAP`
//! entries, `CAP ≥ N`, inside the limiter. For clients and small key counts; `&mut self`.
//!
//! # Time going backwards
//!
//! Every decision is judged at the latest `now` the log has seen (which is at least the newest
//! entry's time, the rule of docs/semantics.md#backwards-clocks): a clock that steps back is treated as standing still, so the
//! log never admits more than the true timeline would. `retry_after` and `reset_after` are
//! measured from the caller's `now`.

use heapless::Deque;

use crate::{Decision, Error, Outcome, WindowQuota};

/// A strict sliding-window log of at most `CAP` entries.
///
/// ```
/// use tollgate::{Outcome, SlidingLog, WindowQuota};
/// // A TikTok Shop client: 50 per second per (app, shop, api), millisecond clock.
/// let mut log: SlidingLog<50> = SlidingLog::new(WindowQuota::new(50, 1_000).unwrap()).unwrap();
/// for i in 0..50 {
///     assert!(log.decide(i * 10, 1).unwrap().is_allowed());
/// }
/// let d = log.decide(600, 1).unwrap();
/// assert_eq!(d.outcome, Outcome::Limited);
/// assert_eq!(d.retry_after, Some(400)); // the entry at 0 leaves the window at 1 000
/// assert!(log.decide(1_000, 1).unwrap().is_allowed());
/// ```
#[derive(Debug, Clone)]
pub struct SlidingLog<const CAP: usize> {
    quota: WindowQuota,
    entries: Deque<(u64, u64), CAP>,
    used: u64,
    latest: u64,
}

impl<const CAP: usize> SlidingLog<CAP> {
    /// An empty log. [`Error::CapacityExceeded`] if the quota's limit is above `CAP`.
    pub const fn new(quota: WindowQuota) -> Result<Self, Error> {
        if quota.limit() > CAP as u64 {
            return Err(Error::CapacityExceeded);
        }
        Ok(SlidingLog {
            quota,
            entries: Deque::new(),
            used: 0,
            latest: 0,
        })
    }

    /// The quota.
    pub const fn quota(&self) -> &WindowQuota {
        &self.quota
    }

    /// Decides on a request of `cost` at `now`: admitted iff the units in `(t − W, t]` plus
    /// `cost` fit the limit; a denial records nothing; a cost above the limit is
    /// [`Outcome::Never`].
    pub fn decide(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, true)
    }

    /// The outcome alone of [`decide`](SlidingLog::decide): the same entries recorded and the
    /// same [`Outcome`], none of the reported numbers (no scan for `retry_after`).
    ///
    /// ```
    /// use tollgate::{Outcome, SlidingLog, WindowQuota};
    /// let mut log: SlidingLog<2> = SlidingLog::new(WindowQuota::new(2, 10).unwrap()).unwrap();
    /// assert_eq!(log.check(0, 2), Ok(Outcome::Allowed));
    /// assert_eq!(log.check(9, 1), Ok(Outcome::Limited));
    /// assert_eq!(log.check(10, 1), Ok(Outcome::Allowed));
    /// assert_eq!(log.check(10, 3), Ok(Outcome::Never));
    /// ```
    ///
    /// Errors: [`Error::ZeroCost`].
    pub fn check(&mut self, now: u64, cost: u64) -> Result<Outcome, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let t = self.advance(now);
        if cost > self.quota.limit() {
            return Ok(Outcome::Never);
        }
        if self.used + cost > self.quota.limit() {
            return Ok(Outcome::Limited);
        }
        self.record(t, cost)?;
        Ok(Outcome::Allowed)
    }

    /// Records `cost` admitted units at `t` (the latest time seen).
    fn record(&mut self, t: u64, cost: u64) -> Result<(), Error> {
        match self.entries.back_mut() {
            Some(last) if last.0 == t => last.1 += cost,
            _ => {
                // At most `limit ≤ CAP` units, each entry at least 1: room is guaranteed.
                if self.entries.push_back((t, cost)).is_err() {
                    return Err(Error::CapacityExceeded);
                }
            }
        }
        self.used += cost;
        Ok(())
    }

    /// Would a request of `cost` be admitted at `now`? Records nothing.
    pub fn peek(&mut self, now: u64, cost: u64) -> Result<Decision, Error> {
        self.judge(now, cost, false)
    }

    /// Units in the window at the latest time seen (or `now`, if later), without deciding.
    pub fn used(&mut self, now: u64) -> u64 {
        self.advance(now);
        self.used
    }

    /// The earliest time at or after `now` when a request of `cost` would be admitted with no
    /// other traffic: `Some(now)` if now, `None` if never (cost above the limit, or zero).
    pub fn next_admit_time(&mut self, now: u64, cost: u64) -> Option<u64> {
        let d = self.peek(now, cost).ok()?;
        now.checked_add(d.retry_after?)
    }

    /// Forgets every entry (an operator's reset); the latest time seen is kept.
    pub fn reset(&mut self) {
        self.entries.clear();
        self.used = 0;
    }

    /// Moves the log to `max(now, latest)` and drops entries that left the window.
    fn advance(&mut self, now: u64) -> u64 {
        if now > self.latest {
            self.latest = now;
        }
        let t = u128::from(self.latest);
        let w = u128::from(self.quota.window());
        while let Some(&(time, cost)) = self.entries.front() {
            if u128::from(time) + w > t {
                break;
            }
            self.entries.pop_front();
            self.used -= cost;
        }
        self.latest
    }

    /// Ticks from `now` until an entry at `time` leaves the window.
    fn until_gone(&self, time: u64, now: u64) -> u64 {
        let gone = u128::from(time) + u128::from(self.quota.window());
        u64::try_from(gone - u128::from(now)).unwrap_or(u64::MAX)
    }

    fn judge(&mut self, now: u64, cost: u64, record: bool) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        let t = self.advance(now);
        let limit = self.quota.limit();
        let reset = |log: &Self, extra: Option<u64>| {
            let newest = extra.or(log.entries.back().map(|&(time, _)| time));
            newest.map_or(0, |time| log.until_gone(time, now))
        };
        if cost > limit {
            let d = Decision::plain(Outcome::Never, limit, self.used, None, reset(self, None));
            return Ok(d);
        }
        if self.used + cost <= limit {
            if !record {
                let d = Decision::plain(
                    Outcome::Allowed,
                    limit,
                    self.used,
                    Some(0),
                    reset(self, None),
                );
                return Ok(d);
            }
            self.record(t, cost)?;
            let d = Decision::plain(
                Outcome::Allowed,
                limit,
                self.used,
                Some(0),
                reset(self, Some(t)),
            );
            return Ok(d);
        }
        // Oldest entries must leave until `used + cost - limit` units are gone.
        let mut to_free = self.used + cost - limit;
        let mut retry = 0;
        for &(time, c) in &self.entries {
            retry = self.until_gone(time, now);
            if c >= to_free {
                break;
            }
            to_free -= c;
        }
        let d = Decision::plain(
            Outcome::Limited,
            limit,
            self.used,
            Some(retry),
            reset(self, None),
        );
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open_and_strict() {
        let mut log: SlidingLog<4> = SlidingLog::new(WindowQuota::new(2, 10).unwrap()).unwrap();
        assert!(log.decide(0, 1).unwrap().is_allowed());
        assert!(log.decide(5, 1).unwrap().is_allowed());
        let d = log.decide(9, 1).unwrap();
        assert_eq!(
            (d.outcome, d.retry_after, d.reset_after),
            (Outcome::Limited, Some(1), 6)
        );
        // At 10 the entry at 0 is out of (0, 10].
        let d = log.decide(10, 1).unwrap();
        assert!(d.is_allowed());
        assert_eq!((d.used, d.reset_after), (2, 10));
    }

    #[test]
    fn earlier_now_is_judged_at_the_latest_time() {
        let mut log: SlidingLog<2> = SlidingLog::new(WindowQuota::new(2, 10).unwrap()).unwrap();
        assert!(log.decide(100, 2).unwrap().is_allowed());
        let d = log.decide(50, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        assert_eq!(d.retry_after, Some(60)); // measured from the caller's 50 to 110
        assert!(log.decide(110, 1).unwrap().is_allowed());
    }

    #[test]
    fn capacity_and_never_and_zero_cost() {
        assert_eq!(
            SlidingLog::<2>::new(WindowQuota::new(3, 10).unwrap()).unwrap_err(),
            Error::CapacityExceeded
        );
        let mut log: SlidingLog<3> = SlidingLog::new(WindowQuota::new(3, 10).unwrap()).unwrap();
        assert_eq!(log.decide(0, 4).unwrap().outcome, Outcome::Never);
        assert_eq!(log.decide(0, 0), Err(Error::ZeroCost));
        assert_eq!(log.next_admit_time(0, 4), None);
        assert!(log.decide(u64::MAX, 3).unwrap().is_allowed());
        assert_eq!(log.decide(u64::MAX, 1).unwrap().retry_after, Some(10));
    }

    #[test]
    fn retry_after_frees_exactly_enough_units() {
        let mut log: SlidingLog<8> = SlidingLog::new(WindowQuota::new(5, 100).unwrap()).unwrap();
        assert!(log.decide(0, 2).unwrap().is_allowed());
        assert!(log.decide(10, 2).unwrap().is_allowed());
        assert!(log.decide(20, 1).unwrap().is_allowed());
        // cost 3 needs 3 units freed: the entries at 0 (2) and 10 (2).
        assert_eq!(log.peek(30, 3).unwrap().retry_after, Some(80));
        assert_eq!(log.next_admit_time(30, 2), Some(100));
    }
}
