//! The fixed window (docs/semantics.md#fixed-window), its quota rules and quota changes.

use tollgate::{Decision, Error, Outcome};

use crate::{decision, sat64, Mode, Model};

/// The span of a fixed window, as documented in the core's `fixed_window.rs`:
/// o + (2^(64−k) − 1)·W − 1 with k = ⌊log₂ N⌋ + 1 count bits, or `u64::MAX` when that is beyond
/// 64 bits.
///
/// # Panics
///
/// If `limit` or `window` is 0.
pub fn fixed_window_span(limit: u64, window: u64, offset: u64) -> u64 {
    let k = 64 - limit.leading_zeros();
    let max_index = (1u128 << (64 - k)) - 1;
    sat64(u128::from(offset) + max_index * u128::from(window) - 1)
}

/// docs/semantics.md#fixed-window validation of a window quota (limit, window, offset).
pub fn window_validate(limit: u64, window: u64, offset: u64) -> Result<(), Error> {
    if limit == 0 {
        return Err(Error::ZeroBurst);
    }
    if window == 0 {
        return Err(Error::ZeroPeriod);
    }
    if limit > u64::from(u32::MAX) {
        return Err(Error::QuotaOverflow);
    }
    if offset >= window {
        return Err(Error::OffsetOutOfRange);
    }
    Ok(())
}

/// docs/semantics.md#fixed-window: windows of W ticks starting at every s ≡ o (mod W), at most
/// N units per window.
///
/// A `now` in an earlier window than the latest one seen is judged in that latest window, with
/// times measured from `now` to its end.
#[derive(Clone, Debug)]
pub struct FixedWindow {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    /// o.
    pub offset: u64,
    /// The largest `now` accepted.
    pub span: u64,
    /// The latest window seen, numbered so that window k is [o + k·W, o + (k+1)·W).
    latest: Option<i128>,
    /// Units counted in the latest window.
    count: u64,
}

impl FixedWindow {
    /// An empty window counter, validated as the engine validates.
    pub fn new(limit: u64, window: u64, offset: u64) -> Result<FixedWindow, Error> {
        window_validate(limit, window, offset)?;
        Ok(FixedWindow {
            limit,
            window,
            offset,
            span: fixed_window_span(limit, window, offset),
            latest: None,
            count: 0,
        })
    }

    /// The window holding `now`.
    pub fn window_of(&self, now: u64) -> i128 {
        (i128::from(now) - i128::from(self.offset)).div_euclid(i128::from(self.window))
    }

    /// `true` if nothing counts at `now` and no later time is on record: the latest window seen
    /// is over, or it is `now`'s window with a count of zero. (A latest window later than
    /// `now`'s is a record of time: not drained, whatever its count.)
    pub fn is_drained(&self, now: u64) -> bool {
        self.latest.is_none_or(|latest| {
            let current = self.window_of(now);
            current > latest || (current == latest && self.count == 0)
        })
    }

    /// Forgets everything (an operator's reset).
    pub fn reset(&mut self) {
        self.latest = None;
        self.count = 0;
    }

    /// Changes the quota at `now` to `next`'s (a new model from [`FixedWindow::new`]).
    ///
    /// A `now` past either span is refused with `ClockOutOfRange`, changing nothing. A latest
    /// window that is over (`now`'s window is later) becomes a new state in `now`'s window of
    /// the new quota. Any other — a count of zero in `now`'s window included — keeps its count,
    /// capped at the new limit, in the new quota's window holding the latest window's last tick
    /// (or `now`, if later): the latest time the state may have seen, so the end of the stored
    /// window never moves earlier; refused with `ClockOutOfRange` if that window is past the new
    /// span. A counter that has seen nothing is a count of zero in window −1, the window before
    /// the first boundary (the engine's state (0, 0)).
    pub fn set_quota(&mut self, next: &FixedWindow, now: u64) -> Result<(), Error> {
        if now > next.span || now > self.span {
            return Err(Error::ClockOutOfRange);
        }
        let latest = self.latest.unwrap_or(-1);
        let (window, count) = if self.window_of(now) > latest {
            (next.window_of(now), 0)
        } else {
            // The last tick of window `latest`: o + (latest + 1)·W − 1. Never negative here:
            // window −1 is over at every `now` unless o > 0.
            let last = i128::from(self.offset) + (latest + 1) * i128::from(self.window) - 1;
            let at = u64::try_from(last.max(0)).unwrap_or(u64::MAX).max(now);
            if at > next.span {
                return Err(Error::ClockOutOfRange);
            }
            (next.window_of(at), self.count.min(next.limit))
        };
        *self = FixedWindow {
            latest: Some(window),
            count,
            ..*next
        };
        Ok(())
    }
}

impl Model for FixedWindow {
    /// A request of `cost` at `now`: a decision (`Mode::Decide`) or a peek (`Mode::Peek`).
    fn judge(&mut self, now: u64, cost: u64, mode: Mode) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        if now > self.span {
            return Err(Error::ClockOutOfRange);
        }
        let current = self.window_of(now);
        let window = match self.latest {
            Some(latest) if latest >= current => latest,
            _ => {
                self.latest = Some(current);
                self.count = 0;
                current
            }
        };
        let end = i128::from(self.offset) + (window + 1) * i128::from(self.window);
        let to_end = u64::try_from(end - i128::from(now)).unwrap_or(u64::MAX);
        let (outcome, retry_after) = if cost > self.limit {
            (Outcome::Never, None)
        } else if self.count + cost <= self.limit {
            if mode == Mode::Decide {
                self.count += cost;
            }
            (Outcome::Allowed, Some(0))
        } else {
            (Outcome::Limited, Some(to_end))
        };
        Ok(decision(
            outcome,
            self.limit,
            self.count,
            retry_after,
            to_end,
        ))
    }
}
