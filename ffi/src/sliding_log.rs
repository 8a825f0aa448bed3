//! `tg_sliding_log`: a strict sliding window log (docs/semantics.md#sliding-window-log), for clients and small key counts.

use tollgate::{Decision, SlidingLog, WindowQuota};

use crate::boundary::{self, guard, init_target, Exclusive, Out, Stored};
use crate::decision::{check_error, tg_decision, tg_outcome};
use crate::status::tg_status;

/// The most entries a `tg_sliding_log` holds: its largest limit.
pub const TG_SLIDING_LOG_CAPACITY: usize = 128;

/// Words (`uint64_t`) in a `tg_sliding_log`.
pub const TG_SLIDING_LOG_WORDS: usize = 266;

/// A strict sliding window log: at most `limit` cost units in any half-open window
/// (t − window, t]. Exact; it keeps up to `TG_SLIDING_LOG_CAPACITY` admitted (time, cost)
/// entries inside the struct (about 2 KiB), so it is for clients (pacing against a server's
/// limit) and small key counts.
///
/// **One caller at a time**: unlike the lock-free limiters, a log is not for concurrent use.
/// A second caller arriving while one is inside gets `TG_STATUS_BUSY` and nothing is done —
/// never a data race. Serialise calls with your own lock if threads share a log.
///
/// Fixed-size plain memory: `static tg_sliding_log l = TG_SLIDING_LOG_INIT;` then
/// `tg_sliding_log_init`. Nothing is allocated. The fields are private.
#[repr(C, align(8))]
pub struct tg_sliding_log {
    _private: [u64; TG_SLIDING_LOG_WORDS],
}

type Log = SlidingLog<TG_SLIDING_LOG_CAPACITY>;

impl Stored for Exclusive<Log> {
    type C = tg_sliding_log;
    const MAGIC: u64 = boundary::magic(*b"tglogcap");
}

const _: () = assert!(boundary::fits::<Exclusive<Log>>());

/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes.
unsafe fn with_log<R>(
    log: *const tg_sliding_log,
    f: impl FnOnce(&mut Log) -> Result<R, tg_status>,
) -> Result<R, tg_status> {
    // SAFETY: forwarded contract.
    unsafe { boundary::with(log, f) }
}

/// Initialises an empty log of at most `limit` units per sliding `window` of ticks.
///
/// Errors: `TG_STATUS_ZERO_BURST` (limit 0), `TG_STATUS_ZERO_PERIOD` (window 0),
/// `TG_STATUS_CAPACITY_EXCEEDED` (limit above `TG_SLIDING_LOG_CAPACITY`),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. Written only on success.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_init(
    log: *mut tg_sliding_log,
    limit: u64,
    window: u64,
) -> tg_status {
    guard(|| {
        let quota = WindowQuota::new(limit, window)?;
        // SAFETY: forwarded contract.
        unsafe { init_with_quota(log, quota) }
    })
}

/// Checks `log`, then initialises it with `quota`.
///
/// # Safety
///
/// As `tg_sliding_log_init`.
pub(crate) unsafe fn init_with_quota(
    log: *mut tg_sliding_log,
    quota: WindowQuota,
) -> Result<(), tg_status> {
    // SAFETY: forwarded contract.
    let target = unsafe { init_target::<Exclusive<Log>>(log) }?;
    boundary::init(target, Exclusive::new(Log::new(quota)?));
    Ok(())
}

/// # Safety
///
/// `log` as for [`with_log`]; `out` is NULL or valid for a write of a `tg_decision`.
unsafe fn judge(
    log: *mut tg_sliding_log,
    out: *mut tg_decision,
    f: impl FnOnce(&mut Log) -> Result<Decision, tollgate::Error>,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let d = unsafe { with_log(log, |l| Ok(f(l)?)) }?;
        out.set(tg_decision::from(d));
        Ok(())
    })
}

/// Decides on a request of `cost` at `now`: admitted iff the units in (now − window, now] plus
/// `cost` fit the limit; a denial records nothing; a cost above the limit is
/// `TG_OUTCOME_NEVER`. A `now` earlier than the latest seen is judged at the latest time.
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes; `out` is NULL or
/// valid for a write of a `tg_decision`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_decide(
    log: *mut tg_sliding_log,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { judge(log, out, |l| l.decide(now, cost)) }
}

/// The outcome alone of `tg_sliding_log_decide`: the same entries recorded, no numbers. Returns
/// the `tg_outcome` (0 to 3) or, on error, the negated `tg_status` (`-TG_STATUS_ZERO_COST`,
/// `-TG_STATUS_BUSY`, `-TG_STATUS_NULL_POINTER`, `-TG_STATUS_MISALIGNED`,
/// `-TG_STATUS_UNINITIALIZED`).
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_check(
    log: *mut tg_sliding_log,
    now: u64,
    cost: u64,
) -> i32 {
    crate::boundary::guard_value(check_error(tg_status::Panic), || {
        // SAFETY: forwarded contract.
        match unsafe { with_log(log, |l| Ok(l.check(now, cost))) } {
            Ok(Ok(outcome)) => tg_outcome::from(outcome) as i32,
            Ok(Err(e)) => check_error(tg_status::from(e)),
            Err(status) => check_error(status),
        }
    })
}

/// Would a request of `cost` be admitted at `now`? Records nothing.
///
/// Errors: as `tg_sliding_log_decide`.
///
/// # Safety
///
/// As `tg_sliding_log_decide`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_peek(
    log: *mut tg_sliding_log,
    now: u64,
    cost: u64,
    out: *mut tg_decision,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { judge(log, out, |l| l.peek(now, cost)) }
}

/// The earliest time at or after `now` when a request of `cost` would be admitted with no other
/// traffic: `now` itself if it would pass now, `TG_RETRY_NEVER` (`UINT64_MAX`) if it never can
/// (cost above the limit). This is "when may I send next" for a client.
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes; `out_time` is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_next_admit_time(
    log: *mut tg_sliding_log,
    now: u64,
    cost: u64,
    out_time: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_time) }?;
        if cost == 0 {
            return Err(tg_status::ZeroCost);
        }
        // SAFETY: forwarded contract.
        let t = unsafe { with_log(log, |l| Ok(l.next_admit_time(now, cost))) }?;
        out.set(t.unwrap_or(u64::MAX));
        Ok(())
    })
}

/// Units in the window at `now` (or at the latest time seen, if later), without deciding.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes; `out_used` is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_used(
    log: *mut tg_sliding_log,
    now: u64,
    out_used: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_used) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { with_log(log, |l| Ok(l.used(now))) }?);
        Ok(())
    })
}

/// Forgets every entry (an operator's reset); the latest time seen is kept.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `log` is NULL or points to a `tg_sliding_log` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_sliding_log_reset(log: *mut tg_sliding_log) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with_log(log, |l| {
                l.reset();
                Ok(())
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_struct_holds_exactly_a_log_on_this_host() {
        assert_eq!(
            size_of::<boundary::Slot<Exclusive<Log>>>(),
            size_of::<tg_sliding_log>()
        );
    }

    #[test]
    fn a_second_caller_is_told_busy_and_nothing_happens() {
        let cell = Exclusive::new(Log::new(WindowQuota::new(2, 10).unwrap()).unwrap());
        let inner = cell.with(|l| {
            assert!(l.decide(0, 1).unwrap().is_allowed());
            Ok(cell.with(|l2| Ok(l2.decide(0, 1).unwrap())))
        });
        assert!(matches!(inner, Ok(Err(tg_status::Busy))));
        assert_eq!(cell.with(|l| Ok(l.used(0))), Ok(1));
    }
}
