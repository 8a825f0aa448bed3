//! The strict sliding-window log (docs/semantics.md#sliding-window-log).

use tollgate::{Decision, Error, Outcome};

use crate::{decision, sat64, window_validate, Mode, Model};

/// docs/semantics.md#sliding-window-log: at most N units in any half-open window (t − W, t], over
/// a plain list of the admitted (time, cost) entries.
///
/// Every call is judged at the latest `now` seen (a clock that steps back stands still);
/// reported times are measured from the caller's `now`.
#[derive(Clone, Debug)]
pub struct SlidingLog {
    /// N.
    pub limit: u64,
    /// W.
    pub window: u64,
    /// The admitted (time, cost) entries still in the window at the latest time.
    entries: Vec<(u64, u64)>,
    /// The latest time seen.
    latest: u64,
}

impl SlidingLog {
    /// An empty log, validated as the engine validates a window quota.
    pub fn new(limit: u64, window: u64) -> Result<SlidingLog, Error> {
        window_validate(limit, window, 0)?;
        Ok(SlidingLog {
            limit,
            window,
            entries: Vec::new(),
            latest: 0,
        })
    }

    /// Units of entries inside (t − W, t].
    fn units_at(&self, t: u128) -> u64 {
        self.entries
            .iter()
            .filter(|&&(time, _)| u128::from(time) + u128::from(self.window) > t)
            .map(|&(_, cost)| cost)
            .sum()
    }

    /// Ticks from `now` to the absolute time `t` (saturating at `u64::MAX`).
    fn from_now(t: u128, now: u64) -> u64 {
        sat64(t - u128::from(now))
    }

    /// Units in the window at the latest time seen (or `now`, if later); `now` counts as seen.
    pub fn used(&mut self, now: u64) -> u64 {
        self.latest = self.latest.max(now);
        self.units_at(u128::from(self.latest))
    }

    /// The earliest time at or after `now` a request of `cost` passes with no other traffic
    /// (`now + retry_after` of a peek), `None` for an error, a request that never passes, or a
    /// time beyond `u64::MAX`.
    pub fn next_admit_time(&mut self, now: u64, cost: u64) -> Option<u64> {
        let d = self.peek(now, cost).ok()?;
        now.checked_add(d.retry_after?)
    }

    /// Forgets every entry (an operator's reset); the latest time seen is kept.
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

impl Model for SlidingLog {
    /// A request of `cost` at `now`: a decision (`Mode::Decide`, recording an entry when
    /// admitted) or a peek (`Mode::Peek`).
    ///
    /// # Panics
    ///
    /// Never for a valid model: a limited request fits once every entry has left.
    fn judge(&mut self, now: u64, cost: u64, mode: Mode) -> Result<Decision, Error> {
        if cost == 0 {
            return Err(Error::ZeroCost);
        }
        self.latest = self.latest.max(now);
        let t = self.latest;
        let w = u128::from(self.window);
        // Entries that left the window can never count again (t never goes back).
        self.entries
            .retain(|&(time, _)| u128::from(time) + w > u128::from(t));
        let used = self.units_at(u128::from(t));
        // Until the newest entry leaves.
        let reset = |entries: &[(u64, u64)]| {
            entries
                .iter()
                .map(|&(time, _)| u128::from(time) + w)
                .max()
                .map_or(0, |gone| Self::from_now(gone, now))
        };
        if cost > self.limit {
            let reset_after = reset(&self.entries);
            return Ok(decision(
                Outcome::Never,
                self.limit,
                used,
                None,
                reset_after,
            ));
        }
        if used + cost <= self.limit {
            if mode == Mode::Decide {
                self.entries.push((t, cost));
            }
            let used = self.units_at(u128::from(t));
            let reset_after = reset(&self.entries);
            return Ok(decision(
                Outcome::Allowed,
                self.limit,
                used,
                Some(0),
                reset_after,
            ));
        }
        // The earliest moment one of the entries leaves after which the request fits (at a time
        // before the latest one the call would be judged at the latest, which just failed).
        let retry = self
            .entries
            .iter()
            .map(|&(time, _)| u128::from(time) + w)
            .filter(|&gone| self.units_at(gone) + cost <= self.limit)
            .min()
            .expect("once every entry has left, a cost within the limit fits");
        Ok(decision(
            Outcome::Limited,
            self.limit,
            used,
            Some(Self::from_now(retry, now)),
            reset(&self.entries),
        ))
    }
}
