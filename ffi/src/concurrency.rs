//! `tg_concurrency`: an in-flight (concurrency) limit (docs/semantics.md#concurrency-limit).

use tollgate::ConcurrencyLimit;

use crate::boundary::{self, guard, init_target, object, Out, Stored};
use crate::decision::tg_decision;
use crate::status::tg_status;

/// Words (`uint64_t`) in a `tg_concurrency`.
pub const TG_CONCURRENCY_WORDS: usize = 2;

/// At most `max` requests in flight. A refusal is `TG_OUTCOME_OVERLOADED` (HTTP 503: protective
/// shedding, distinct from rate limiting). Pair every admitted `tg_concurrency_acquire` with one
/// `tg_concurrency_release`.
///
/// Fixed-size plain memory: `static tg_concurrency c = TG_CONCURRENCY_INIT;` then
/// `tg_concurrency_init` once before sharing it. Acquire and release are lock-free and safe from
/// any number of threads. Nothing is allocated. The fields are private.
#[repr(C, align(8))]
pub struct tg_concurrency {
    _private: [u64; TG_CONCURRENCY_WORDS],
}

impl Stored for ConcurrencyLimit {
    type C = tg_concurrency;
    const MAGIC: u64 = boundary::magic(*b"tgconcur");
}

const _: () = assert!(boundary::fits::<ConcurrencyLimit>());

/// Initialises a limit of `max` requests in flight, none in flight. `max = 0` sheds everything.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `limit` is NULL or points to a `tg_concurrency` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_concurrency_init(limit: *mut tg_concurrency, max: u32) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<ConcurrencyLimit>(limit) }?;
        boundary::init(target, ConcurrencyLimit::new(max));
        Ok(())
    })
}

/// Takes a slot if fewer than `max` are in flight. The decision reports `limit = max` and
/// `used` = in flight after it; a refusal is `TG_OUTCOME_OVERLOADED` with `retry_after =
/// TG_RETRY_NEVER` (no time can be promised).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (nothing
/// is taken then).
///
/// # Safety
///
/// `limit` is NULL or points to a `tg_concurrency` valid for reads and writes; `out` is NULL or
/// valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_concurrency_acquire(
    limit: *mut tg_concurrency,
    out: *mut tg_decision,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { object::<ConcurrencyLimit>(limit) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        out.set(tg_decision::from(c.try_acquire()));
        Ok(())
    })
}

/// Returns a slot taken by an admitted `tg_concurrency_acquire`.
///
/// Errors: `TG_STATUS_NOT_ACQUIRED` if none is in flight (the count never underflows),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `limit` is NULL or points to a `tg_concurrency` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_concurrency_release(limit: *mut tg_concurrency) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { object::<ConcurrencyLimit>(limit) }?.release()?;
        Ok(())
    })
}

/// Requests in flight now, and the cap.
///
/// Errors: `TG_STATUS_NULL_POINTER` (any pointer), `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `limit` is NULL or points to a `tg_concurrency` valid for reads; each out pointer is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_concurrency_in_flight(
    limit: *const tg_concurrency,
    out_in_flight: *mut u32,
    out_max: *mut u32,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (each out pointer).
        let (n, m) = unsafe { (Out::new(out_in_flight)?, Out::new(out_max)?) };
        // SAFETY: forwarded contract.
        let c = unsafe { object::<ConcurrencyLimit>(limit) }?;
        n.set(c.in_flight());
        m.set(c.max());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_struct_holds_exactly_a_limit_on_this_host() {
        assert_eq!(
            size_of::<boundary::Slot<ConcurrencyLimit>>(),
            size_of::<tg_concurrency>()
        );
    }
}
