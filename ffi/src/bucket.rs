//! `tg_bucket`: a leaky bucket (GCRA), pass or fail, no queueing (docs/semantics.md#leaky-bucket).

use tollgate::{LeakyBucket, Quota};

use crate::boundary::{self, guard, init_target, object, object_mut, Out, Stored};
use crate::decision::{check_on, decide_on, tg_decision};
use crate::quota::{self, tg_quota};
use crate::status::tg_status;

/// Words (`uint64_t`) in a `tg_bucket`.
pub const TG_BUCKET_WORDS: usize = 10;

/// A leaky bucket (GCRA): a bucket of `burst` draining an exact `count` per `period` ticks;
/// a request of cost c passes iff the level plus c fits the burst, and a denial costs nothing.
///
/// Fixed-size plain memory: declare it in a `static`, on the stack or inside your own struct —
/// `static tg_bucket b = TG_BUCKET_INIT;` — then call `tg_bucket_init` once before sharing it.
/// Until then every call answers `TG_STATUS_UNINITIALIZED`. Decisions are lock-free and safe
/// from any number of threads at once (one atomic word); `tg_bucket_init` and
/// `tg_bucket_set_quota` need the bucket to themselves. Nothing is allocated; there is no
/// `_free`. The fields are private.
#[repr(C, align(8))]
pub struct tg_bucket {
    _private: [u64; TG_BUCKET_WORDS],
}

impl Stored for LeakyBucket {
    type C = tg_bucket;
    const MAGIC: u64 = boundary::magic(*b"tgbucket");
}

const _: () = assert!(boundary::fits::<LeakyBucket>());

/// # Safety
///
/// `bucket` is NULL or valid for writes of a `tg_bucket`, used by no other thread meanwhile.
unsafe fn init_with(
    bucket: *mut tg_bucket,
    make: impl FnOnce() -> Result<Quota, tg_status>,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<LeakyBucket>(bucket) }?;
        boundary::init(target, LeakyBucket::new(make()?));
        Ok(())
    })
}

/// Initialises an empty bucket of `burst` draining `count` per `period` ticks (an exact quota,
/// as `tg_quota_init`). May be called again to start over with a new quota.
///
/// Errors: those of `tg_quota_init`; `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. The
/// bucket is written only on success.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_init(
    bucket: *mut tg_bucket,
    burst: u64,
    count: u64,
    period: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { init_with(bucket, || Ok(Quota::new(burst, count, period)?)) }
}

/// Initialises an empty bucket with a quota made by a `tg_quota_init*` function (for example an
/// approximate one).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the
/// quota).
///
/// # Safety
///
/// As `tg_bucket_init`; `quota` is NULL or points to a `tg_quota` valid for reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_init_quota(
    bucket: *mut tg_bucket,
    quota: *const tg_quota,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { init_with(bucket, || quota::read(quota)) }
}

/// Decides on a request of `cost` at `now` (ticks of the caller's clock): admitted iff the level
/// plus `cost` fits the burst; a denial changes nothing; a cost above the burst is
/// `TG_OUTCOME_NEVER`. The decision is written to `*out` (checked before anything is spent).
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads and writes (any number of threads
/// may decide at once); `out` is NULL or valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_decide(
    bucket: *mut tg_bucket,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_on::<LeakyBucket>(bucket, out, |b| b.decide(now, cost)) }
}

/// The outcome alone of `tg_bucket_decide`: the same state change (an admitted request is
/// spent, a denial changes nothing), no numbers. Returns the `tg_outcome` (0 to 3) or, on error,
/// a negative value: the negated `tg_status` (`-TG_STATUS_ZERO_COST`,
/// `-TG_STATUS_CLOCK_OUT_OF_RANGE`, `-TG_STATUS_NULL_POINTER`, `-TG_STATUS_MISALIGNED`,
/// `-TG_STATUS_UNINITIALIZED`). Only scalars cross the boundary: the cheapest call for
/// bindings that ask only "may I?".
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads and writes (any number of threads
/// may decide at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_check(bucket: *mut tg_bucket, now: u64, cost: u64) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { check_on::<LeakyBucket>(bucket, |b| b.check(now, cost)) }
}

/// Would a request of `cost` be admitted at `now`? Spends nothing; the numbers describe the
/// current level, not counting the request asked about.
///
/// Errors: as `tg_bucket_decide`.
///
/// # Safety
///
/// As `tg_bucket_decide`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_peek(
    bucket: *mut tg_bucket,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { decide_on::<LeakyBucket>(bucket, out, |b| b.peek(now, cost)) }
}

/// Whether the bucket is empty at `now` (indistinguishable from a new one).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads; `out_drained` is NULL or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_is_drained(
    bucket: *const tg_bucket,
    now: u64,
    out_drained: *mut bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { object::<LeakyBucket>(bucket) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_drained) }?;
        out.set(b.is_drained(now));
        Ok(())
    })
}

/// Empties the bucket (an operator's reset). Safe while other threads decide.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_reset(bucket: *mut tg_bucket) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe { object::<LeakyBucket>(bucket) }?.reset();
        Ok(())
    })
}

/// Changes the bucket's quota at `now`, keeping its level (rounded up: no free burst, no
/// lock-out; a level above the new burst drains at the new rate).
///
/// Errors: `TG_STATUS_CLOCK_OUT_OF_RANGE` (for either quota), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (bucket or quota).
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads and writes that **no other thread
/// uses during the call**; `quota` is NULL or points to a `tg_quota` valid for reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_set_quota(
    bucket: *mut tg_bucket,
    quota: *const tg_quota,
    now: u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { quota::read(quota) }?;
        // SAFETY: forwarded contract (exclusive use).
        let b = unsafe { object_mut::<LeakyBucket>(bucket) }?;
        b.set_quota(q, now)?;
        Ok(())
    })
}

/// Copies the bucket's quota to `*out` (for example for `tg_header_ratelimit_policy_bucket`).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `bucket` is NULL or points to a `tg_bucket` valid for reads; `out` is NULL or valid for a
/// write of a `tg_quota`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_quota(
    bucket: *const tg_bucket,
    out: *mut tg_quota,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let b = unsafe { object::<LeakyBucket>(bucket) }?;
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Quota>(out) }?;
        boundary::init(target, *b.quota());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::tg_outcome;
    use core::mem::MaybeUninit;

    #[test]
    fn the_c_struct_holds_exactly_a_bucket_on_this_host() {
        assert_eq!(
            size_of::<boundary::Slot<LeakyBucket>>(),
            size_of::<tg_bucket>()
        );
    }

    #[test]
    fn shopbase_through_the_c_functions() {
        let mut b = tg_bucket {
            _private: [0; TG_BUCKET_WORDS],
        };
        let mut d = MaybeUninit::<tg_decision>::uninit();
        // SAFETY: valid pointers to local memory.
        unsafe {
            assert_eq!(
                tg_bucket_decide(&raw mut b, 0, 1, d.as_mut_ptr()),
                tg_status::Uninitialized
            );
            assert_eq!(tg_bucket_init(&raw mut b, 30, 2, 1000), tg_status::Ok);
            for _ in 0..30 {
                assert_eq!(
                    tg_bucket_decide(&raw mut b, 0, 1, d.as_mut_ptr()),
                    tg_status::Ok
                );
            }
            assert_eq!(
                tg_bucket_decide(&raw mut b, 0, 1, d.as_mut_ptr()),
                tg_status::Ok
            );
            let d = d.assume_init();
            assert_eq!(d.outcome, tg_outcome::Limited as u32);
            assert_eq!((d.used, d.limit, d.retry_after), (30, 30, 500));
            // A NULL out spends nothing.
            assert_eq!(
                tg_bucket_decide(&raw mut b, 500, 1, core::ptr::null_mut()),
                tg_status::NullPointer
            );
            let mut d2 = MaybeUninit::<tg_decision>::uninit();
            assert_eq!(
                tg_bucket_decide(&raw mut b, 500, 1, d2.as_mut_ptr()),
                tg_status::Ok
            );
            assert_eq!(d2.assume_init().outcome, tg_outcome::Allowed as u32);
        }
    }
}
