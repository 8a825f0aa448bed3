//! Fixed window (docs/semantics.md#fixed-window).
//!
//! Windows of W ticks start at every tick s with s ≡ o (mod W). At most N cost units per window.
//!
//! # State
//!
//! One 64-bit word: the window index in the high bits and the count in the low
//! k = ⌊log₂ N⌋ + 1 bits (k ≤ 32, since N ≤ [`WindowQuota::MAX_LIMIT`]). Window index i covers
//! `[o + (i − 1)·W, o + i·W)`, so index 0 is the partial window before the first boundary.
//! The clock may reach `o + (2^(64−k) − 1)·W − 1` ticks ([`FixedWindow::span`]); beyond that a
//! decision returns [`Error::ClockOutOfRange`].
//!
//! # Known and documented
//!
//! Up to 2N units can pass in a span of W ticks that straddles a window edge. Use the leaky
//! bucket or the sliding log where that matters.
//!
//! # Time going backwards
//!
//! A `now` in an earlier window than the stored one is judged in the stored window, with
//! `retry_after` and `reset_after` measured from `now` to that window's end. Peeks and `Never`
//! answers in a later window move the stored window forward with a count of zero (which changes
//! no decision), so every decision leaves its time in the state.

use crate::atomic::{const_fn, update, AtomicU64, Ordering};
use crate::gcra::Mode;
use crate::{Decision, Error, Outcome, WindowQuota};

const fn count_bits(limit: u64) -> u32 {
    64 - limit.leading_zeros()
}

const fn max_index(quota: &WindowQuota) -> u64 {
    u64::MAX >> count_bits(quota.limit())
}

const fn decode(state: u64, quota: &WindowQuota) -> (u64, u64) {
    let k = count_bits(quota.limit());
    (state >> k, state & ((1 << k) - 1))
}

const fn encode(index: u64, count: u64, quota: &WindowQuota) -> u64 {
    (index << count_bits(quota.limit())) | count
}

/// The index of the window holding `now`, if representable: ⌊(now + W − o) / W⌋, computed in
/// 64 bits (for now ≥ o it is ⌊(now − o) / W⌋ + 1; before the first boundary, 0).
#[inline]
fn index_of(quota: &WindowQuota, now: u64) -> Result<u64, Error> {
    let idx = match now.checked_sub(quota.offset()) {
        Some(since) => (since / quota.window()).checked_add(1),
        None => Some(0),
    };
    match idx {
        Some(i) if i <= max_index(quota) => Ok(i),
        _ => Err(Error::ClockOutOfRange),
    }
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
    index_of(quota, at).map_or(0, |i| encode(i, 0, quota))
}

/// `true` if the window stored in `state` is over at `now`, whatever its count: a key table
/// reclaims only such slots (see its protocol).
pub(crate) fn is_over(state: u64, quota: &WindowQuota, now: u64) -> bool {
    let (stored, _) = decode(state, quota);
    index_of(quota, now).map_or(true, |i| i > stored)
}

/// One decision on a state word. Pure.
pub(crate) fn step(
    state: u64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<u64>, Decision), Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    let (window, count, record_time) = judged_window(state, quota, now)?;
    if cost > quota.limit() {
        return Ok((
            record_time,
            report(quota, Outcome::Never, window, count, now),
        ));
    }
    let fits = count + cost <= quota.limit();
    Ok(match (mode, fits) {
        (Mode::Decide, true) => {
            let next = encode(window, count + cost, quota);
            (
                Some(next),
                report(quota, Outcome::Allowed, window, count + cost, now),
            )
        }
        (Mode::Peek, true) => (
            record_time,
            report(quota, Outcome::Allowed, window, count, now),
        ),
        (_, false) => (
            record_time,
            report(quota, Outcome::Limited, window, count, now),
        ),
    })
}

/// The numbers reported for `count` units in window `window`, at `now`.
#[inline]
fn report(quota: &WindowQuota, verdict: Outcome, window: u64, count: u64, now: u64) -> Decision {
    // The window ends at o + window·W, after `now` (window ≥ now's window); past 64 bits the
    // distance is computed in 128 and saturated.
    let to_end = if let Some(end) = end_of(quota, window) {
        end.saturating_sub(now)
    } else {
        let end = u128::from(quota.offset()) + u128::from(window) * u128::from(quota.window());
        u64::try_from(end - u128::from(now)).unwrap_or(u64::MAX)
    };
    let retry = match verdict {
        Outcome::Allowed => Some(0),
        Outcome::Never => None,
        _ => Some(to_end),
    };
    Decision::plain(verdict, quota.limit(), count, retry, to_end)
}

/// The end of window `index`, o + index·W, or `None` past 64 bits.
#[inline]
const fn end_of(quota: &WindowQuota, index: u64) -> Option<u64> {
    match index.checked_mul(quota.window()) {
        Some(e) => e.checked_add(quota.offset()),
        None => None,
    }
}

/// The window a decision at `now` is judged in, given the stored word: the stored window while
/// `now` is before its end (an earlier `now` included), else `now`'s own window with a count of
/// zero, recorded. Only the first decision of a new window divides.
#[inline]
fn judged_window(
    state: u64,
    quota: &WindowQuota,
    now: u64,
) -> Result<(u64, u64, Option<u64>), Error> {
    let (stored, stored_count) = decode(state, quota);
    match end_of(quota, stored) {
        Some(end) if now >= end => {
            let current = index_of(quota, now)?;
            Ok((current, 0, Some(encode(current, 0, quota))))
        }
        _ => Ok((stored, stored_count, None)),
    }
}

/// The outcome-only [`Mode::Decide`] step: exactly the state change [`step`] makes.
#[inline]
pub(crate) fn admit(
    state: u64,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
) -> Result<(Option<u64>, Outcome), Error> {
    let (window, count, record_time) = judged_window(state, quota, now)?;
    Ok(if cost > quota.limit() {
        (record_time, Outcome::Never)
    } else if count + cost <= quota.limit() {
        (Some(encode(window, count + cost, quota)), Outcome::Allowed)
    } else {
        (record_time, Outcome::Limited)
    })
}

/// `true` if a window in `state` holds nothing that counts at `now` and no later time: its
/// window is over, or it is `now`'s window with a count of zero. A stored window later than
/// `now`'s (left by a later peek or decision) is a record of time, not a new state.
pub(crate) fn is_drained(state: u64, quota: &WindowQuota, now: u64) -> bool {
    let (stored, count) = decode(state, quota);
    index_of(quota, now).map_or(true, |i| i > stored || (i == stored && count == 0))
}

/// Re-expresses `state` under a new quota at `now`: the count of the stored window carries over
/// (capped at the new limit: no free burst). A drained state becomes a new one. Otherwise the count goes
/// into the new quota's window holding the stored window's last tick — the latest time the
/// state may have seen — so a clock that stepped back cannot move the count into an earlier
/// window that a later request would find fresh (docs/semantics.md#time). With an unchanged window and offset
/// that is simply the current window.
pub(crate) fn convert(
    state: u64,
    old: &WindowQuota,
    new: &WindowQuota,
    now: u64,
) -> Result<u64, Error> {
    let (stored, count) = decode(state, old);
    let current_new = index_of(new, now)?;
    index_of(old, now)?;
    if is_drained(state, old, now) {
        // Drained and new are indistinguishable (docs/semantics.md#quota-changes): a fresh state in the new quota.
        return Ok(encode(current_new, 0, new));
    }
    let end = u128::from(old.offset()) + u128::from(stored) * u128::from(old.window());
    let last_tick = end.saturating_sub(1);
    let at = u64::try_from(last_tick).unwrap_or(u64::MAX).max(now);
    let window = index_of(new, at)?;
    Ok(encode(window, count.min(new.limit()), new))
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
    let (window, count) = decode(word, quota);
    Ok(report(quota, outcome, window, count, now))
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

    /// The largest `now` this quota accepts; see the module docs.
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

    /// Changes the quota; the current window's count carries over (capped at the new limit).
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
        // A drained state converts to a new one.
        let mut fresh = FixedWindow::new(WindowQuota::new(2, 10).unwrap());
        assert!(fresh.decide(3, 2).unwrap().is_allowed());
        fresh
            .set_quota(WindowQuota::new(2, 7).unwrap(), 10)
            .unwrap();
        assert_eq!(fresh.peek(10, 1).unwrap().reset_after, 4);
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
