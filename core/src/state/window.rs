//! The fixed window's state and its arithmetic (docs/semantics.md#fixed-window).
//!
//! Windows of W ticks start at every tick s with s ≡ o (mod W). At most N cost units per window.
//!
//! # State
//!
//! A window index and a count ([`State`]). Window index i covers `[o + (i − 1)·W, o + i·W)`, so
//! index 0 is the partial window before the first boundary, and the state (0, 0) is a new
//! window counter. [`FixedWindow`](crate::FixedWindow) packs the state in one 64-bit word, the
//! count in the low k = ⌊log₂ N⌋ + 1 bits (k ≤ 32, since N ≤
//! [`WindowQuota::MAX_LIMIT`]) and the index above; so the index may reach 2^(64−k) − 1, and
//! beyond that window ([`index_of`]) a step returns [`Error::ClockOutOfRange`], wherever the
//! state is kept.
//!
//! # Time going backwards
//!
//! A `now` in an earlier window than the stored one is judged in the stored window, with
//! `retry_after` and `reset_after` measured from `now` to that window's end. Peeks and `Never`
//! answers in a later window move the stored window forward with a count of zero (which changes
//! no decision), so every decision leaves its time in the state.

use super::Mode;
use crate::{Decision, Error, Outcome, WindowQuota};

/// A fixed window's state: the window it counts in and the units counted there.
///
/// Ordered by index, then count: under one quota a state only ever moves up in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct State {
    /// The window's index ([`index_of`]).
    pub index: u64,
    /// Units counted in that window, at most the quota's limit.
    pub count: u64,
}

/// k = ⌊log₂ N⌋ + 1: the bits of a packed state word that hold the count.
pub(crate) const fn count_bits(limit: u64) -> u32 {
    64 - limit.leading_zeros()
}

/// The largest window index a packed state word holds for this quota.
pub(crate) const fn max_index(quota: &WindowQuota) -> u64 {
    u64::MAX >> count_bits(quota.limit())
}

/// The index of the window holding `now`: ⌊(now + W − o) / W⌋ (for now ≥ o it is
/// ⌊(now − o) / W⌋ + 1; before the first boundary, 0).
///
/// ```
/// use tollgate::state::window;
/// use tollgate::WindowQuota;
/// let q = WindowQuota::new(2, 100)?.with_offset(30)?; // windows [30, 130), [130, 230), ...
/// assert_eq!(window::index_of(&q, 29), Ok(0));
/// assert_eq!(window::index_of(&q, 30), Ok(1));
/// assert_eq!(window::index_of(&q, 129), Ok(1));
/// # Ok::<(), tollgate::Error>(())
/// ```
///
/// Errors: [`Error::ClockOutOfRange`] for an index above 2^(64−k) − 1 (see the module docs).
#[inline]
pub fn index_of(quota: &WindowQuota, now: u64) -> Result<u64, Error> {
    let idx = match now.checked_sub(quota.offset()) {
        Some(since) => (since / quota.window()).checked_add(1),
        None => Some(0),
    };
    match idx {
        Some(i) if i <= max_index(quota) => Ok(i),
        _ => Err(Error::ClockOutOfRange),
    }
}

/// The end of window `index`, o + index·W, or `None` past 64 bits.
#[inline]
pub(crate) const fn end_of(quota: &WindowQuota, index: u64) -> Option<u64> {
    match index.checked_mul(quota.window()) {
        Some(e) => e.checked_add(quota.offset()),
        None => None,
    }
}

/// Ticks from `now` to the end of window `index` (o + index·W), saturating: 0 if the window is
/// over, `u64::MAX` if its end lies that far. A state's `reset_after`, and how long a backend
/// must keep it.
#[inline]
pub fn ticks_to_end(quota: &WindowQuota, index: u64, now: u64) -> u64 {
    if let Some(end) = end_of(quota, index) {
        end.saturating_sub(now)
    } else {
        // Past 64 bits: computed in 128.
        let end = u128::from(quota.offset()) + u128::from(index) * u128::from(quota.window());
        u64::try_from(end - u128::from(now)).unwrap_or(u64::MAX)
    }
}

/// The window a decision at `now` is judged in, given the stored state, and whether that is a
/// new state to record: the stored window while `now` is before its end (an earlier `now`
/// included), else `now`'s own window with a count of zero. Only the first decision of a new
/// window divides.
#[inline]
pub(crate) fn judged_window(
    state: State,
    quota: &WindowQuota,
    now: u64,
) -> Result<(State, bool), Error> {
    match end_of(quota, state.index) {
        Some(end) if now >= end => {
            let index = index_of(quota, now)?;
            Ok((State { index, count: 0 }, true))
        }
        _ => Ok((state, false)),
    }
}

/// One request of `cost` at `now` on the state `state`: the new state (`None`: unchanged) and
/// the decision, exactly as [`FixedWindow::decide`](crate::FixedWindow::decide)
/// ([`Mode::Decide`]) or [`FixedWindow::peek`](crate::FixedWindow::peek) ([`Mode::Peek`])
/// compute them on a window counter holding `state`.
///
/// An admitted decision counts the cost; a denial changes nothing; a cost above the limit is
/// [`Outcome::Never`]. Any answer in a later window than the stored one moves the state to that
/// window (with a count of zero unless the request was admitted there).
///
/// ```
/// use tollgate::state::{window, Mode};
/// use tollgate::{Outcome, WindowQuota};
/// let q = WindowQuota::new(50, 1_000)?; // TikTok Shop: 50 per second, on a millisecond clock
/// let full = window::State { index: 1, count: 50 };
/// let (next, d) = window::step(full, &q, 300, 1, Mode::Decide)?;
/// assert_eq!((d.outcome, d.retry_after, next), (Outcome::Limited, Some(700), None));
/// let (next, d) = window::step(full, &q, 1_000, 1, Mode::Decide)?;
/// assert_eq!((d.outcome, next), (Outcome::Allowed, Some(window::State { index: 2, count: 1 })));
/// # Ok::<(), tollgate::Error>(())
/// ```
///
/// Errors: [`Error::ZeroCost`]; [`Error::ClockOutOfRange`] if `now` is in a later window than
/// the stored one and beyond the last window ([`index_of`]).
pub fn step(
    state: State,
    quota: &WindowQuota,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<State>, Decision), Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    let (judged, moved) = judged_window(state, quota, now)?;
    let record_time = if moved { Some(judged) } else { None };
    if cost > quota.limit() {
        return Ok((record_time, report(quota, Outcome::Never, judged, now)));
    }
    let fits = judged.count + cost <= quota.limit();
    Ok(match (mode, fits) {
        (Mode::Decide, true) => {
            let next = State {
                count: judged.count + cost,
                ..judged
            };
            (Some(next), report(quota, Outcome::Allowed, next, now))
        }
        (Mode::Peek, true) => (record_time, report(quota, Outcome::Allowed, judged, now)),
        (_, false) => (record_time, report(quota, Outcome::Limited, judged, now)),
    })
}

/// The numbers reported for `state` (the judged window and its count), at `now`.
#[inline]
pub(crate) fn report(quota: &WindowQuota, verdict: Outcome, state: State, now: u64) -> Decision {
    // The window ends after `now` (it is at least now's window).
    let to_end = ticks_to_end(quota, state.index, now);
    let retry = match verdict {
        Outcome::Allowed => Some(0),
        Outcome::Never => None,
        _ => Some(to_end),
    };
    Decision::plain(verdict, quota.limit(), state.count, retry, to_end)
}

/// `true` if a window in `state` holds nothing that counts at `now` and no later time: its
/// window is over, or it is `now`'s window with a count of zero. A stored window later than
/// `now`'s (left by a later peek or decision) is a record of time, not a new state.
///
/// For reporting and for a key table's reclaim. A quota change ([`convert`]) treats only an
/// over window as new: a count of zero in `now`'s window still carries its window's end.
pub(crate) fn is_drained(state: State, quota: &WindowQuota, now: u64) -> bool {
    index_of(quota, now).map_or(true, |i| {
        i > state.index || (i == state.index && state.count == 0)
    })
}

/// Re-expresses `state` under a new quota at `now`, as
/// [`FixedWindow::set_quota`](crate::FixedWindow::set_quota) does: the count of the stored
/// window carries over (capped at the new limit: no free burst).
///
/// - A stored window that is **over** (`now`'s window is later) becomes a new state in the new
///   quota's current window: it says nothing about times after it.
/// - Any other state — a count of zero in `now`'s own window included — goes, with its count,
///   into the new quota's window holding the stored window's last tick (or `now`, if later).
///   That tick is the latest time the state may have seen: a peek, a refused request or a clock
///   that stepped back leaves no count but may have seen it. So a clock that stepped back cannot
///   move the state into an earlier window that a later request would find fresh
///   (docs/semantics.md#time). With an unchanged window and offset that is simply the stored
///   window.
///
/// The end of the stored window, o + index·W (the state's *moment*, which a key table relies
/// on), never moves earlier: an over window ends by `now`, and the new window ends after `now`;
/// otherwise the new window holds a tick at least one before the old end, so it ends no
/// earlier.
///
/// ```
/// use tollgate::state::window::{self, State};
/// use tollgate::WindowQuota;
/// let old = WindowQuota::new(10, 100)?; // windows [0, 100), [100, 200), ...
/// let new = WindowQuota::new(10, 30)?; // windows [0, 30), [30, 60), ...
/// // Nothing counted yet in [100, 200), at 120: the state moves to [180, 210), which holds 199.
/// let s = window::convert(State { index: 2, count: 0 }, &old, &new, 120)?;
/// assert_eq!(s, State { index: 7, count: 0 });
/// // At 200 that window is over: a new state in now's window, [180, 210).
/// let s = window::convert(State { index: 2, count: 9 }, &old, &new, 200)?;
/// assert_eq!(s, State { index: 7, count: 0 });
/// # Ok::<(), tollgate::Error>(())
/// ```
///
/// Errors: [`Error::ClockOutOfRange`] if `now`, or the window the state goes to, is beyond
/// either quota's last window.
pub fn convert(
    state: State,
    old: &WindowQuota,
    new: &WindowQuota,
    now: u64,
) -> Result<State, Error> {
    let current_new = index_of(new, now)?;
    if index_of(old, now)? > state.index {
        // Over: it says nothing about `now` or later, like a new state
        // (docs/semantics.md#quota-changes).
        return Ok(State {
            index: current_new,
            count: 0,
        });
    }
    // Not over (a count of zero included): the latest tick the state may have seen.
    let end = u128::from(old.offset()) + u128::from(state.index) * u128::from(old.window());
    let last_tick = end.saturating_sub(1);
    let at = u64::try_from(last_tick).unwrap_or(u64::MAX).max(now);
    Ok(State {
        index: index_of(new, at)?,
        count: state.count.min(new.limit()),
    })
}
