//! `tg_quota`: a leaky-bucket quota — a bucket of `burst` draining `count` per `period` ticks,
//! as an exact rational rate (docs/semantics.md#quotas).

use tollgate::Quota;

use crate::boundary::{self, guard, init_target, object, Out, Stored};
use crate::status::tg_status;

/// Words (`uint64_t`) in a `tg_quota`.
pub const TG_QUOTA_WORDS: usize = 9;

/// The least exact span, in ticks, `tg_quota_init` accepts: 2^56 ticks (2.3 years of
/// nanoseconds). Every quota with count / gcd(count, period) ≤ 255 meets it on any clock.
pub const TG_QUOTA_DEFAULT_MIN_SPAN: u64 = 72_057_594_037_927_936;

const _: () = assert!(TG_QUOTA_DEFAULT_MIN_SPAN == Quota::DEFAULT_MIN_SPAN);

/// A validated leaky-bucket quota: burst B ≥ 1, and an exact drain rate of `count` C per
/// `period` P ticks (3 per 1 000 000 000 ticks is exactly 3 per second, forever). Plain memory
/// of fixed size: declare it anywhere, `tg_quota q = TG_QUOTA_INIT;`, then fill it with
/// `tg_quota_init`. Copying it with `=` or `memcpy` is fine. The fields are private.
#[repr(C, align(8))]
pub struct tg_quota {
    _private: [u64; TG_QUOTA_WORDS],
}

impl Stored for Quota {
    type C = tg_quota;
    const MAGIC: u64 = boundary::magic(*b"tg_quota");
}

const _: () = assert!(boundary::fits::<Quota>());

/// The quota inside a `tg_quota` from C.
///
/// # Safety
///
/// `q` is NULL or points to a `tg_quota` valid for reads.
pub(crate) unsafe fn read(q: *const tg_quota) -> Result<Quota, tg_status> {
    // SAFETY: forwarded contract.
    unsafe { object::<Quota>(q) }.copied()
}

/// Writes `quota` into `out` (checked first) if `make` succeeds.
///
/// # Safety
///
/// `out` is NULL or valid for writes of a `tg_quota`.
unsafe fn fill(
    out: *mut tg_quota,
    make: impl FnOnce() -> Result<Quota, tollgate::Error>,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Quota>(out) }?;
        boundary::init(target, make()?);
        Ok(())
    })
}

/// Initialises `out` as an exact quota: a bucket of `burst` draining `count` per `period` ticks.
///
/// Errors: `TG_STATUS_ZERO_BURST`, `TG_STATUS_ZERO_COUNT`, `TG_STATUS_ZERO_PERIOD`,
/// `TG_STATUS_QUOTA_OVERFLOW` (burst × period / gcd(count, period) exceeds 64 bits),
/// `TG_STATUS_SPAN_TOO_SHORT` (the exact span is below `TG_QUOTA_DEFAULT_MIN_SPAN`),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. `out` is written only on success.
///
/// # Safety
///
/// `out` is NULL or points to a `tg_quota` valid for writes, not used by another thread
/// meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_init(
    out: *mut tg_quota,
    burst: u64,
    count: u64,
    period: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { fill(out, || Quota::new(burst, count, period)) }
}

/// As `tg_quota_init`, but the exact arithmetic must reach at least `min_span` ticks of the
/// caller's clock (else `TG_STATUS_SPAN_TOO_SHORT`). `min_span = 0` accepts any quota that fits.
///
/// # Safety
///
/// As `tg_quota_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_init_min_span(
    out: *mut tg_quota,
    burst: u64,
    count: u64,
    period: u64,
    min_span: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { fill(out, || Quota::with_min_span(burst, count, period, min_span)) }
}

/// Exact when the exact span reaches `min_span` ticks; otherwise a conservative approximation
/// that does: the emission interval rounded up, so it never admits more than the exact rate.
/// `tg_quota_is_exact` tells which was chosen. Errors as `tg_quota_init`
/// (`TG_STATUS_SPAN_TOO_SHORT` only if even the coarsest approximation cannot reach `min_span`).
///
/// # Safety
///
/// As `tg_quota_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_init_approximate(
    out: *mut tg_quota,
    burst: u64,
    count: u64,
    period: u64,
    min_span: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { fill(out, || Quota::approximate(burst, count, period, min_span)) }
}

/// The largest `now`, in ticks, a decision under this quota accepts:
/// ⌊(2^64 − 1 − B·P') / C'⌋ with C' = C / gcd(C, P), P' = P / gcd(C, P). Beyond it, decisions
/// return `TG_STATUS_CLOCK_OUT_OF_RANGE`.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `quota` is NULL or points to a `tg_quota` valid for reads; `out_span` is NULL or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_exact_span(
    quota: *const tg_quota,
    out_span: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_span) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { read(quota) }?.exact_span());
        Ok(())
    })
}

/// Ticks a full bucket takes to drain: ⌈B·P / C⌉.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// As `tg_quota_exact_span`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_drain_ticks(
    quota: *const tg_quota,
    out_ticks: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_ticks) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { read(quota) }?.drain_ticks());
        Ok(())
    })
}

/// Whether the quota's arithmetic is exact (`true`) or a conservative approximation chosen by
/// `tg_quota_init_approximate` (`false`).
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `quota` is NULL or points to a `tg_quota` valid for reads; `out_exact` is NULL or valid for
/// a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_is_exact(
    quota: *const tg_quota,
    out_exact: *mut bool,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_exact) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { read(quota) }?.is_exact());
        Ok(())
    })
}

/// The quota's parameters: burst B, count C and period P, as given.
///
/// Errors: `TG_STATUS_NULL_POINTER` (any pointer), `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `quota` is NULL or points to a `tg_quota` valid for reads; each out pointer is NULL or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_quota_params(
    quota: *const tg_quota,
    out_burst: *mut u64,
    out_count: *mut u64,
    out_period: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract (each out pointer).
        let (b, c, p) = unsafe {
            (
                Out::new(out_burst)?,
                Out::new(out_count)?,
                Out::new(out_period)?,
            )
        };
        // SAFETY: forwarded contract.
        let q = unsafe { read(quota) }?;
        b.set(q.burst());
        c.set(q.count());
        p.set(q.period());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;

    #[test]
    fn the_c_struct_holds_exactly_a_quota_on_this_host() {
        assert_eq!(size_of::<boundary::Slot<Quota>>(), size_of::<tg_quota>());
    }

    #[test]
    fn init_writes_only_on_success_and_reads_back() {
        let mut q = MaybeUninit::<tg_quota>::zeroed();
        let mut span = 7u64;
        // SAFETY: valid pointers to local memory.
        unsafe {
            assert_eq!(
                tg_quota_exact_span(q.as_ptr(), &raw mut span),
                tg_status::Uninitialized
            );
            assert_eq!(span, 7);
            assert_eq!(tg_quota_init(q.as_mut_ptr(), 0, 1, 1), tg_status::ZeroBurst);
            assert_eq!(
                tg_quota_exact_span(q.as_ptr(), &raw mut span),
                tg_status::Uninitialized
            );
            assert_eq!(tg_quota_init(q.as_mut_ptr(), 30, 2, 1000), tg_status::Ok);
            assert_eq!(
                tg_quota_drain_ticks(q.as_ptr(), &raw mut span),
                tg_status::Ok
            );
            assert_eq!(span, 15_000);
            assert_eq!(
                tg_quota_init(core::ptr::null_mut(), 30, 2, 1000),
                tg_status::NullPointer
            );
        }
    }
}
