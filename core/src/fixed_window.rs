//! Fixed window (docs/semantics.md#fixed-window).
//!
//! [`FixedWindow`] keeps the state of [`state::window`](crate::state::window) packed in one
//! atomic 64-bit word — the window index in the high bits, the count in the low
//! k = ⌊log₂ N⌋ + 1 bits — and runs that module's arithmetic in a CAS loop. The clock may reach
//! `o + (2^(64−k) − 1)·W − 1` ticks ([`FixedWindow::span`]); beyond that a decision returns
//! [`Error::ClockOutOfRange`].
//!
//! # Known and documented
//!
//! Up to 2N units can pass in a span of W ticks that straddles a window edge. Use the leaky
//! bucket or the sliding log where that matters.

use crate::atomic::{const_fn, update, AtomicU64, Ordering};
use crate::state::window::{self, count_bits, index_of, judged_window, max_index, report, State};
use crate::state::Mode;
use crate::{Decision, Error, Outcome, WindowQuota};

const fn decode(word: u64, quota: &WindowQuota) -> State {
    let k = count_bits(quota.limit());
    State {
        index: word >> k,
        count: word & ((1 << k) - 1),
    }
}

/// The packed word of `state`: its index is at most [`max_index`] (every state the arithmetic
/// makes from a packed word is) and its count at most the limit.
const fn encode(state: State, quota: &WindowQuota) -> u64 {
    (state.index << count_bits(quota.limit())) | state.count
}

/// The largest `now` a fixed window with this quota accepts.
pub(crate) fn span(quota: &WindowQuota) -> u64 {
    let end =
        u128::from(quota.offset()) + u128::from(max_index(quota)) * u128::from(quota.window());
    u64::try_from(end - 1).unwrap_or(u64::MAX)
}

/// The largest `now` whose state fits `bits` bits (a key table keeps fewer than 64), or `None`
/// if not even the first full window fits.
pub(crate) fn span_in_bits(quota: &WindowQuota, bits: u32) -> Option<u64> {
    let max_state = if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let max = max_state >> count_bits(quota.limit());
    if max == 0 {
        return None;
    }
    let end = u128::from(quota.offset()) + u128::from(max) * u128::from(quota.window());
    Some(u64::try_from(end - 1).unwrap_or(u64::MAX).min(span(quota)))
}

/// The state of a new window counter that has seen `at` (count zero in `at`'s window).
pub(crate) fn fresh(quota: &WindowQuota, at: u64) -> u64 {
    index_of(quota, at).map_or(0, |index| encode(State { index, count: 0 }, quota))
}

/// `true` if the window stored in `state` is over at `now`, whatever its count: a key table
/// reclaims only such slots (see its protocol).
pub(crate) fn is_over(state: u64, quota: &WindowQuota, now: u64) -> bool {
    let stored = decode(state, quota).index;
    index_of(quota, now).map_or(true, |i| i > stored)
}

/// [`window::step`] on a packed word.
pub(crate) fn step(
    state: u64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<u64>, Decision), Error> {
    let (next, decision) = window::step(decode(state, quota), quota, now, cost, mode)?;
    Ok((next.map(|s| encode(s, quota)), decision))
}

/// The outcome-only [`Mode::Decide`] step: exactly the state change [`step`] makes.
#[inline]
pub(crate) fn admit(
    state: u64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
) -> Result<(Option<u64>, Outcome), Error> {
    let (judged, moved) = judged_window(decode(state, quota), quota, now)?;
    let record_time = if moved {
        Some(encode(judged, quota))
    } else {
        None
    };
    Ok(if cost > quota.limit() {
        (record_time, Outcome::Never)
    } else if judged.count + cost <= quota.limit() {
        let next = State {
            count: judged.count + cost,
            ..judged
        };
        (Some(encode(next, quota)), Outcome::Allowed)
    } else {
        (record_time, Outcome::Limited)
    })
}

/// `true` if a window in `state` holds nothing that counts at `now` and no later time.
pub(crate) fn is_drained(state: u64, quota: &WindowQuota, now: u64) -> bool {
    window::is_drained(decode(state, quota), quota, now)
}

/// [`window::convert`] on a packed word.
pub(crate) fn convert(
    state: u64,
    old: &WindowQuota,
    new: &WindowQuota,
    now: u64,
) -> Result<u64, Error> {
    let converted = window::convert(decode(state, old), old, new, now)?;
    Ok(encode(converted, new))
}

/// [`FixedWindow::decide`] on a state word kept anywhere (a window's own, or one in shared
/// memory): the one implementation both use.
#[inline]
pub(crate) fn decide_in(
    cell: &AtomicU64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
) -> Result<Decision, Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    // The CAS loop carries only the outcome and the word it was judged on; the numbers are
    // computed once, after it. The word is always the judged window: an admission or a
    // `Never` in a later window writes it, and a denial needs a count above zero, so a
    // stored window `now` has not left.
    let (outcome, word) = update(cell, |s| {
        let (new, outcome) = admit(s, quota, now, cost)?;
        Ok((new, (outcome, new.unwrap_or(s))))
    })?;
    Ok(report(quota, outcome, decode(word, quota), now))
}

/// [`FixedWindow::check`] on a state word kept anywhere.
#[inline]
pub(crate) fn check_in(
    cell: &AtomicU64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
) -> Result<Outcome, Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    update(cell, |s| admit(s, quota, now, cost))
}

/// [`FixedWindow::peek`] on a state word kept anywhere.
#[inline]
pub(crate) fn peek_in(
    cell: &AtomicU64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
) -> Result<Decision, Error> {
    update(cell, |s| step(s, quota, now, cost, Mode::Peek))
}

/// A fixed-window counter whose state is one atomic word: `&self` decisions, lock-free, no
/// allocation; it can live in a `static`.
///
/// ```
/// use tollgate::{FixedWindow, Outcome, WindowQuota};
/// // TikTok Shop: 50 per second, on a millisecond clock.
/// let w = FixedWindow::new(WindowQuota::new(50, 1_000).unwrap());
/// for _ in 0..50 {
///     assert!(w.decide(200, 1).unwrap().is_allowed());
/// }
/// let d = w.decide(300, 1).unwrap();
/// assert_eq!(d.outcome, Outcome::Limited);
/// assert_eq!(d.retry_after, Some(700)); // the window ends at 1 000
/// assert!(w.decide(1_000, 1).unwrap().is_allowed());
/// ```
#[derive(Debug)]
pub struct FixedWindow {
    quota: WindowQuota,
    state: AtomicU64,
}

impl FixedWindow {
    const_fn! {
        /// An empty window counter with this quota.
        pub fn new(quota: WindowQuota) -> FixedWindow {
            FixedWindow { quota, state: AtomicU64::new(0) }
        }
    }

    /// The quota.
    pub const fn quota(&self) -> &WindowQuota {
        &self.quota
    }

    /// The largest `now` this quota accepts: `o + (2^(64−k) − 1)·W − 1` ticks, for the
    /// k = ⌊log₂ N⌋ + 1 bits of the state word that hold the count.
    pub fn span(&self) -> u64 {
        span(&self.quota)
    }

    /// Decides on a request of `cost` at `now`: admitted iff the window's count plus `cost` fits
    /// the limit; a denial uses up nothing; a cost above the limit is [`Outcome::Never`].
    #[inline]
    pub fn decide(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        decide_in(&self.state, &self.quota, now, cost)
    }

    /// The outcome alone of [`decide`](FixedWindow::decide): the same state change and
    /// [`Outcome`], none of the reported numbers.
    ///
    /// ```
    /// use tollgate::{FixedWindow, Outcome, WindowQuota};
    /// let window = FixedWindow::new(WindowQuota::new(1, 1_000).unwrap());
    /// assert_eq!(window.check(0, 1), Ok(Outcome::Allowed));
    /// assert_eq!(window.check(999, 1), Ok(Outcome::Limited));
    /// assert_eq!(window.check(1_000, 1), Ok(Outcome::Allowed));
    /// assert_eq!(window.check(1_000, 2), Ok(Outcome::Never));
    /// ```
    ///
    /// Errors: [`Error::ZeroCost`], [`Error::ClockOutOfRange`].
    #[inline]
    pub fn check(&self, now: u64, cost: u64) -> Result<Outcome, Error> {
        check_in(&self.state, &self.quota, now, cost)
    }

    /// Would a request of `cost` be admitted at `now`? Spends nothing.
    pub fn peek(&self, now: u64, cost: u64) -> Result<Decision, Error> {
        peek_in(&self.state, &self.quota, now, cost)
    }

    /// `true` if nothing counts against the limit at `now`.
    pub fn is_drained(&self, now: u64) -> bool {
        is_drained(self.state.load(Ordering::Acquire), &self.quota, now)
    }

    /// Changes the quota at `now` ([`window::convert`]); the stored window's count carries over,
    /// capped at the new limit (no free burst).
    ///
    /// If the stored window is over, the counter starts anew in the new quota's current window.
    /// Otherwise — even with nothing counted yet — the count goes into the new quota's window
    /// that holds the stored window's last tick (or `now`, if later): the counter may already
    /// have seen that time (a peek, a refused request, a clock that stepped back), so the change
    /// never opens a window that ends before the stored one would have.
    ///
    /// ```
    /// use tollgate::{FixedWindow, WindowQuota};
    /// let mut w = FixedWindow::new(WindowQuota::new(3, 100)?);
    /// assert!(w.peek(120, 1)?.is_allowed()); // nothing counted in [100, 200)
    /// w.set_quota(WindowQuota::new(3, 30)?, 120)?;
    /// // Judged in [180, 210), the new window holding 199, until it ends.
    /// assert_eq!(w.peek(120, 1)?.reset_after, 90);
    /// # Ok::<(), tollgate::Error>(())
    /// ```
    ///
    /// Errors: [`Error::ClockOutOfRange`] if `now`, or the window the count goes to, is beyond
    /// either quota's span; nothing changes then.
    pub fn set_quota(&mut self, quota: WindowQuota, now: u64) -> Result<(), Error> {
        let converted = convert(self.state.load(Ordering::Acquire), &self.quota, &quota, now)?;
        self.state = AtomicU64::new(converted);
        self.quota = quota;
        Ok(())
    }

    /// Forgets all counts (an operator's reset).
    pub fn reset(&self) {
        self.state.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_windows_and_the_partial_first_window() {
        let q = WindowQuota::new(2, 100).unwrap().with_offset(30).unwrap();
        let w = FixedWindow::new(q);
        // [0, 30) is window 0, [30, 130) window 1.
        assert_eq!(w.decide(0, 2).unwrap().reset_after, 30);
        assert_eq!(w.decide(29, 1).unwrap().outcome, Outcome::Limited);
        let d = w.decide(30, 2).unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.reset_after, 100);
    }

    #[test]
    fn earlier_window_is_judged_in_the_stored_window() {
        let w = FixedWindow::new(WindowQuota::new(3, 100).unwrap());
        assert!(w.decide(250, 2).unwrap().is_allowed());
        let d = w.decide(150, 1).unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.used, 3);
        assert_eq!(d.reset_after, 150);
        let d = w.decide(10, 1).unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        assert_eq!(d.retry_after, Some(290));
    }

    #[test]
    fn never_zero_cost_and_out_of_range() {
        let q = WindowQuota::new(50, 1_000).unwrap();
        let w = FixedWindow::new(q);
        let d = w.decide(0, 51).unwrap();
        assert_eq!((d.outcome, d.retry_after), (Outcome::Never, None));
        assert_eq!(w.decide(0, 0), Err(Error::ZeroCost));
        // 50 needs 6 count bits: 58 index bits, window 1000: the span is the whole u64.
        assert_eq!(w.span(), u64::MAX);
        assert!(w.decide(u64::MAX, 1).unwrap().is_allowed());
        let one_tick = FixedWindow::new(WindowQuota::new(u64::from(u32::MAX), 1).unwrap());
        assert_eq!(one_tick.span(), (1 << 32) - 2);
        assert_eq!(
            one_tick.decide(one_tick.span() + 1, 1),
            Err(Error::ClockOutOfRange)
        );
        assert!(one_tick.decide(one_tick.span(), 1).unwrap().is_allowed());
    }

    #[test]
    fn set_quota_at_an_earlier_now_keeps_the_count_in_the_latest_window() {
        let mut w = FixedWindow::new(WindowQuota::new(2, 10).unwrap());
        assert!(w.peek(25, 1).unwrap().is_allowed()); // the latest time seen: window [20, 30)
        assert!(w.decide(22, 2).unwrap().is_allowed());
        // The clock steps back to 12 for a change to 5-tick windows: the count of 2 goes into
        // [25, 30), the new window holding the stored window's last tick, not into [10, 15).
        w.set_quota(WindowQuota::new(2, 5).unwrap(), 12).unwrap();
        assert_eq!(w.decide(29, 1).unwrap().outcome, Outcome::Limited);
        assert!(w.decide(30, 2).unwrap().is_allowed());
        // A state whose window is over converts to a new one.
        let mut fresh = FixedWindow::new(WindowQuota::new(2, 10).unwrap());
        assert!(fresh.decide(3, 2).unwrap().is_allowed());
        fresh
            .set_quota(WindowQuota::new(2, 7).unwrap(), 10)
            .unwrap();
        assert_eq!(fresh.peek(10, 1).unwrap().reset_after, 4);
    }

    #[test]
    fn set_quota_keeps_a_count_of_zero_in_a_window_not_over() {
        let mut w = FixedWindow::new(WindowQuota::new(2, 10).unwrap());
        // Window [10, 20) seen with nothing counted (a peek, then a refused cost).
        assert!(w.peek(12, 1).unwrap().is_allowed());
        assert_eq!(w.decide(12, 3).unwrap().outcome, Outcome::Never);
        assert!(w.is_drained(12));
        // To 3-tick windows at 12: into [18, 21), which holds 19 (the stored window's last
        // tick), not into now's [12, 15).
        w.set_quota(WindowQuota::new(2, 3).unwrap(), 12).unwrap();
        assert_eq!(w.peek(12, 1).unwrap().reset_after, 9);
        assert!(w.decide(13, 2).unwrap().is_allowed());
        assert_eq!(w.decide(16, 1).unwrap().outcome, Outcome::Limited);
        assert!(w.decide(21, 2).unwrap().is_allowed());
    }

    #[test]
    fn set_quota_carries_the_count() {
        let mut w = FixedWindow::new(WindowQuota::new(10, 100).unwrap());
        assert!(w.decide(5, 7).unwrap().is_allowed());
        w.set_quota(WindowQuota::new(100, 100).unwrap(), 6).unwrap();
        assert_eq!(w.peek(6, 1).unwrap().used, 7);
        w.set_quota(WindowQuota::new(5, 100).unwrap(), 6).unwrap();
        assert_eq!(w.peek(6, 1).unwrap().outcome, Outcome::Limited);
        assert!(w.peek(100, 5).unwrap().is_allowed());
    }
}
