//! The fixed window (docs/semantics.md#fixed-window) split between the caller and Redis.
//!
//! The state is the core's (window index, count), stored as two fields instead of one packed
//! word. The caller computes the index of `now`'s window (u128 arithmetic); the script compares
//! indices as decimal strings (no arithmetic at all) and adds the cost to a count of at most
//! 2³² − 1 (exact in a double). The reported numbers are computed here by [`step`], as
//! `tollgate::FixedWindow` computes them.

use crate::gcra::Mode;
use tollgate::{Decision, Error, Outcome, WindowQuota};

/// A window quota's integers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) struct Params {
    pub(crate) limit: u64,
    window: u64,
    offset: u64,
}

impl Params {
    pub(crate) fn of(q: &WindowQuota) -> Params {
        Params {
            limit: q.limit(),
            window: q.window(),
            offset: q.offset(),
        }
    }

    /// The largest window index the core's packed word can hold (64 − k bits for the index,
    /// k = ⌊log₂ N⌋ + 1): beyond it the core answers `ClockOutOfRange`, and so does this crate.
    fn max_index(&self) -> u64 {
        u64::MAX >> (64 - self.limit.leading_zeros())
    }

    /// The index of the window holding `now`: window i covers `[o + (i − 1)·W, o + i·W)`.
    pub(crate) fn index_of(&self, now: u64) -> Result<u64, Error> {
        let w = u128::from(self.window);
        let idx = (u128::from(now) + w - u128::from(self.offset)) / w;
        match u64::try_from(idx) {
            Ok(i) if i <= self.max_index() => Ok(i),
            _ => Err(Error::ClockOutOfRange),
        }
    }

    /// Ticks from `now` to the end of window `index` (saturating).
    pub(crate) fn ticks_to_end(self, index: u64, now: u64) -> u64 {
        let end = u128::from(self.offset) + u128::from(index) * u128::from(self.window);
        u64::try_from(end.saturating_sub(u128::from(now))).unwrap_or(u64::MAX)
    }

    /// The quota's fingerprint stored next to the state: `N:W:o`.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{}:{}:{}", self.limit, self.window, self.offset)
    }

    /// Parses a fingerprint written by [`Params::fingerprint`].
    pub(crate) fn parse(fingerprint: &str) -> Option<Params> {
        let mut parts = fingerprint.split(':').map(str::parse::<u64>);
        let (Some(Ok(n)), Some(Ok(w)), Some(Ok(o)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let q = WindowQuota::new(n, w).ok()?.with_offset(o).ok()?;
        Some(Params::of(&q))
    }
}

/// One decision on the (index, count) the script decided on: the state after it (`None`:
/// unchanged) and the decision, exactly as `tollgate::FixedWindow` computes them.
pub(crate) fn step(
    state: (u64, u64),
    p: &Params,
    now: u64,
    cost: u64,
    mode: Mode,
) -> Result<(Option<(u64, u64)>, Decision), Error> {
    if cost == 0 {
        return Err(Error::ZeroCost);
    }
    let current = p.index_of(now)?;
    let (stored, stored_count) = state;
    let (window, count, later) = if current > stored {
        (current, 0, Some((current, 0)))
    } else {
        (stored, stored_count, None)
    };
    let to_end = p.ticks_to_end(window, now);
    let limit = p.limit;
    let report = |verdict, used: u64, retry_after| Decision {
        outcome: verdict,
        verdict,
        limit,
        used,
        remaining: limit.saturating_sub(used),
        retry_after,
        reset_after: to_end,
        flags: 0,
    };
    if cost > limit {
        return Ok((later, report(Outcome::Never, count, None)));
    }
    Ok(match (mode, count + cost <= limit) {
        (Mode::Decide, true) => (
            Some((window, count + cost)),
            report(Outcome::Allowed, count + cost, Some(0)),
        ),
        (Mode::Peek, true) => (later, report(Outcome::Allowed, count, Some(0))),
        (_, false) => (later, report(Outcome::Limited, count, Some(to_end))),
    })
}

/// Re-expresses (index, count) under a new quota at `now` — `FixedWindow::set_quota`'s
/// conversion: unless the stored window is drained, its count (capped at the new limit) goes into
/// the new quota's window holding the later of `now` and the stored window's last tick, so a
/// clock that stepped back cannot move the count into an earlier window.
pub(crate) fn convert(
    state: (u64, u64),
    old: &Params,
    new: &Params,
    now: u64,
) -> Result<(u64, u64), Error> {
    let (stored, count) = state;
    let current_new = new.index_of(now)?;
    let current_old = old.index_of(now)?;
    if current_old > stored || (current_old == stored && count == 0) {
        // Drained and new are indistinguishable (docs/semantics.md#quota-changes): a fresh state in the new quota. (A
        // later stored window, even empty, is the latest time seen: it is kept.)
        return Ok((current_new, 0));
    }
    let end = u128::from(old.offset) + u128::from(stored) * u128::from(old.window);
    let last_tick = u64::try_from(end.saturating_sub(1)).unwrap_or(u64::MAX);
    Ok((new.index_of(last_tick.max(now))?, count.min(new.limit)))
}

/// `true` if a window whose state is at least `state` surely denies a request of `cost` at `now`:
/// `now` falls in the known window and its known count leaves no room (hybrid mode's check).
pub(crate) fn denies(state: (u64, u64), p: &Params, now: u64, cost: u64) -> bool {
    cost <= p.limit && p.index_of(now) == Ok(state.0) && state.1 + cost > p.limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_and_reject_invalid_quotas() {
        let p = Params::of(&WindowQuota::new(50, 1_000).unwrap().with_offset(7).unwrap());
        assert_eq!(Params::parse(&p.fingerprint()), Some(p));
        assert_eq!(Params::parse("0:1000:0"), None);
        assert_eq!(Params::parse("5:10:10"), None);
        assert_eq!(Params::parse("5:10"), None);
    }

    #[test]
    fn index_and_span_match_the_core() {
        let one_tick = Params::of(&WindowQuota::new(u64::from(u32::MAX), 1).unwrap());
        assert_eq!(one_tick.index_of((1 << 32) - 2), Ok((1 << 32) - 1));
        assert_eq!(
            one_tick.index_of((1 << 32) - 1),
            Err(Error::ClockOutOfRange)
        );
        let p = Params::of(&WindowQuota::new(2, 100).unwrap().with_offset(30).unwrap());
        assert_eq!(p.index_of(29), Ok(0));
        assert_eq!(p.index_of(30), Ok(1));
        assert_eq!(p.ticks_to_end(0, 0), 30);
    }

    proptest::proptest! {
        /// The caller-side arithmetic, with (index, count) threaded through by hand as the
        /// script would, equals the core's `FixedWindow`, quota changes included.
        #[test]
        fn step_and_convert_match_the_core(
            quotas in proptest::collection::vec((1u64..20, 1u64..500, 0u64..500), 2),
            ops in proptest::collection::vec((0usize..2, -50i64..200, 0u64..25, proptest::bool::ANY), 1..80),
        ) {
            let quotas: Vec<WindowQuota> = quotas
                .iter()
                .map(|&(n, w, o)| WindowQuota::new(n, w).unwrap().with_offset(o % w).unwrap())
                .collect();
            let mut core = tollgate::FixedWindow::new(quotas[0]);
            let mut state = (0u64, 0u64);
            let mut params = Params::of(&quotas[0]);
            let mut now = 0u64;
            for (qi, dt, cost, peek) in ops {
                now = now.saturating_add_signed(dt);
                let q = quotas[qi];
                if cost != 0 && *core.quota() != q {
                    let converted = core.set_quota(q, now);
                    let ours = convert(state, &params, &Params::of(&q), now);
                    proptest::prop_assert_eq!(converted.is_ok(), ours.is_ok());
                    if let Ok(s) = ours {
                        state = s;
                        params = Params::of(&q);
                    }
                }
                let mode = if peek { Mode::Peek } else { Mode::Decide };
                let expected = if peek { core.peek(now, cost) } else { core.decide(now, cost) };
                let got = step(state, &params, now, cost, mode);
                proptest::prop_assert_eq!(got.map(|(_, d)| d), expected);
                if let Ok((Some(next), _)) = got {
                    state = next;
                }
            }
        }
    }
}
