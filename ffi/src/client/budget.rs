//! `tg_retry_budget`: retries limited to a fraction of recent successes plus a floor.

use tollgate::client::RetryBudget;

use crate::boundary::{self, guard, init_with, with, Exclusive, Out, Stored};
use crate::status::tg_status;

/// The slots of a `tg_retry_budget`: its window is cut into this many parts, forgotten one at a
/// time as time moves on.
pub const TG_RETRY_BUDGET_SLOTS: usize = 10;

/// Words (`uint64_t`) in a `tg_retry_budget`.
pub const TG_RETRY_BUDGET_WORDS: usize = 36;

/// A retry budget: one more retry is allowed iff the retries of the last `window` ticks stay
/// within `floor` plus ⌊successes · per_mille / 1000⌋ of the same window (kept in
/// `TG_RETRY_BUDGET_SLOTS` slots of ⌊window / TG_RETRY_BUDGET_SLOTS⌋ ticks), so a struggling
/// server is not buried under a retry storm. Share one between the requests to one server.
///
/// One caller at a time (`TG_STATUS_BUSY` otherwise). Fixed-size plain memory:
/// `static tg_retry_budget b = TG_RETRY_BUDGET_INIT;` then `tg_retry_budget_init`. Nothing is
/// allocated. The fields are private.
#[repr(C, align(8))]
pub struct tg_retry_budget {
    _private: [u64; TG_RETRY_BUDGET_WORDS],
}

pub(super) type Budget = RetryBudget<TG_RETRY_BUDGET_SLOTS>;

impl Stored for Exclusive<Budget> {
    type C = tg_retry_budget;
    const MAGIC: u64 = boundary::magic(*b"tgbudget");
}

const _: () = assert!(boundary::fits::<Exclusive<Budget>>());

/// Initialises an empty budget of `floor` retries plus `per_mille`/1000 of the successes of the
/// last `window` ticks (for example 10 s, 100 = 10 %, floor 10).
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`window` below `TG_RETRY_BUDGET_SLOTS` ticks),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. Written only on success.
///
/// # Safety
///
/// `budget` is NULL or points to a `tg_retry_budget` valid for writes, which no other thread
/// uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_budget_init(
    budget: *mut tg_retry_budget,
    window: u64,
    per_mille: u32,
    floor: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { init_with(budget, || Ok(Budget::new(window, per_mille, floor)?)) }
}

/// Records a successful call at `now`: it earns `per_mille`/1000 of a retry. A `now` earlier
/// than the latest seen counts at the latest.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `budget` is NULL or points to a `tg_retry_budget` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_budget_record_success(
    budget: *mut tg_retry_budget,
    now: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with(budget, |b: &mut Budget| {
                b.record_success(now);
                Ok(())
            })
        }
    })
}

/// How many retries the budget allows at `now`, written to `*out_available`.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `budget` is NULL or points to a `tg_retry_budget` valid for reads and writes;
/// `out_available` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_budget_available(
    budget: *mut tg_retry_budget,
    now: u64,
    out_available: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_available) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { with(budget, |b: &mut Budget| Ok(b.available(now))) }?);
        Ok(())
    })
}

/// Asks for one retry at `now`: `*out_allowed` is true, and the retry is recorded, if the budget
/// allows it; false (nothing recorded) otherwise.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED` (`out_allowed` is checked before anything is recorded).
///
/// # Safety
///
/// `budget` is NULL or points to a `tg_retry_budget` valid for reads and writes; `out_allowed`
/// is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_budget_try_retry(
    budget: *mut tg_retry_budget,
    now: u64,
    out_allowed: *mut bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_allowed) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { with(budget, |b: &mut Budget| Ok(b.try_retry(now))) }?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn the_c_struct_holds_exactly_its_value_on_this_host() {
        use boundary::Slot;
        assert_eq!(
            size_of::<Slot<Exclusive<Budget>>>(),
            size_of::<tg_retry_budget>()
        );
    }
}
