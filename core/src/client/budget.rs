//! A retry budget (docs/semantics.md#client-toolkit): retries are allowed only while they stay under a fraction of
//! recent successful traffic, plus a small floor — so a struggling server is not buried under a
//! retry storm. The same idea as Finagle's `RetryBudget` and gRPC's retry throttling, in fixed
//! memory and integer arithmetic.
//!
//! # The rule
//!
//! Time is cut into `SLOTS` slots of ⌊window / SLOTS⌋ ticks; "recent" means the current slot
//! and the `SLOTS − 1` before it. With s successes and r retries recorded there, one more retry
//! is allowed iff
//!
//! ```text
//! r + 1 ≤ floor + ⌊s · per_mille / 1000⌋
//! ```
//!
//! A retry that is allowed is recorded at once; a refused one records nothing. Old slots are
//! forgotten as time moves on, so the budget refills after an outage. A `now` earlier than the
//! latest one seen is counted in the latest slot (a clock that steps back is standing still).

use crate::Error;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Slot {
    epoch: u64,
    successes: u64,
    retries: u64,
}

/// A retry budget over a sliding window of `SLOTS` slots.
///
/// ```
/// use tollgate::client::RetryBudget;
/// // Retries up to 10 % of the successes of the last 10 s, plus 3, on a millisecond clock.
/// let mut budget: RetryBudget<10> = RetryBudget::new(10_000, 100, 3).unwrap();
/// assert_eq!(budget.available(0), 3); // the floor, before any traffic
/// for _ in 0..50 {
///     budget.record_success(0);
/// }
/// assert_eq!(budget.available(0), 8); // 3 + 10 % of 50
/// assert!(budget.try_retry(0));
/// assert_eq!(budget.available(0), 7);
/// assert_eq!(budget.available(20_000), 3); // 20 s later, only the floor is left
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryBudget<const SLOTS: usize> {
    slot_len: u64,
    per_mille: u64,
    floor: u64,
    latest: u64,
    slots: [Slot; SLOTS],
}

impl<const SLOTS: usize> RetryBudget<SLOTS> {
    /// A budget of `floor` retries plus `per_mille`/1000 of the successes of the last `window`
    /// ticks (in `SLOTS` slots). [`Error::InvalidArgument`] if `SLOTS` is zero or `window` is
    /// shorter than `SLOTS` ticks.
    pub const fn new(window: u64, per_mille: u32, floor: u64) -> Result<Self, Error> {
        if SLOTS == 0 || window < SLOTS as u64 {
            return Err(Error::InvalidArgument);
        }
        Ok(RetryBudget {
            slot_len: window / SLOTS as u64,
            per_mille: per_mille as u64,
            floor,
            latest: 0,
            slots: [Slot {
                epoch: 0,
                successes: 0,
                retries: 0,
            }; SLOTS],
        })
    }

    /// The current slot's epoch (slot number since tick 0), time never going back.
    fn epoch(&mut self, now: u64) -> u64 {
        if now > self.latest {
            self.latest = now;
        }
        self.latest / self.slot_len
    }

    fn index(epoch: u64) -> usize {
        // The remainder is below SLOTS, a usize.
        usize::try_from(epoch % SLOTS as u64).unwrap_or(0)
    }

    /// The current slot, cleared if it last held an older epoch.
    fn current(&mut self, now: u64) -> &mut Slot {
        let epoch = self.epoch(now);
        let slot = &mut self.slots[Self::index(epoch)];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                successes: 0,
                retries: 0,
            };
        }
        slot
    }

    /// Successes and retries recorded in the recent slots.
    fn totals(&mut self, now: u64) -> (u64, u64) {
        let epoch = self.epoch(now);
        let oldest = epoch.saturating_sub(SLOTS as u64 - 1);
        self.slots
            .iter()
            .filter(|s| (oldest..=epoch).contains(&s.epoch))
            .fold((0u64, 0u64), |(s, r), slot| {
                (
                    s.saturating_add(slot.successes),
                    r.saturating_add(slot.retries),
                )
            })
    }

    /// Records a successful call at `now`: it earns `per_mille`/1000 of a retry.
    pub fn record_success(&mut self, now: u64) {
        let slot = self.current(now);
        slot.successes = slot.successes.saturating_add(1);
    }

    /// How many retries the budget allows at `now`.
    pub fn available(&mut self, now: u64) -> u64 {
        let (successes, retries) = self.totals(now);
        let earned = u128::from(successes) * u128::from(self.per_mille) / 1000;
        let allowed = u64::try_from(earned)
            .unwrap_or(u64::MAX)
            .saturating_add(self.floor);
        allowed.saturating_sub(retries)
    }

    /// Asks for one retry at `now`: `true` (and the retry is recorded) if the budget allows it.
    pub fn try_retry(&mut self, now: u64) -> bool {
        if self.available(now) == 0 {
            return false;
        }
        let slot = self.current(now);
        slot.retries = slot.retries.saturating_add(1);
        true
    }

    /// The length of one slot in ticks: ⌊window / SLOTS⌋.
    pub const fn slot_len(&self) -> u64 {
        self.slot_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_alone_then_the_fraction_of_successes() {
        let mut b: RetryBudget<4> = RetryBudget::new(400, 200, 1).unwrap();
        assert!(b.try_retry(0));
        assert!(!b.try_retry(0));
        for _ in 0..4 {
            b.record_success(0);
        }
        assert_eq!(b.available(0), 0); // 1 + ⌊4 · 0.2⌋ − 1 = 0
        b.record_success(50);
        assert!(b.try_retry(99)); // 1 + ⌊5 · 0.2⌋ − 1 = 1
        assert!(!b.try_retry(99));
        // At 400 slot 0 ([0, 100)), which held everything, is forgotten: the floor is back.
        assert_eq!(b.available(399), 0);
        assert_eq!(b.available(400), 1);
    }

    #[test]
    fn a_clock_stepping_back_counts_in_the_latest_slot() {
        let mut b: RetryBudget<2> = RetryBudget::new(20, 1_000, 0).unwrap();
        b.record_success(15);
        b.record_success(3); // counted at 15
        assert_eq!(b.available(0), 2);
        assert_eq!(b.available(29), 2);
        assert_eq!(b.available(30), 0);
    }

    #[test]
    fn invalid_windows_are_refused() {
        assert_eq!(RetryBudget::<0>::new(10, 1, 1), Err(Error::InvalidArgument));
        assert_eq!(RetryBudget::<4>::new(3, 1, 1), Err(Error::InvalidArgument));
    }
}
