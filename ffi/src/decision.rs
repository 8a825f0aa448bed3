//! `tg_decision` and `tg_outcome`: what a limiter answered, kept apart from errors.

use tollgate::{Decision, Outcome};

use crate::boundary::{guard, try_ref, Out};
use crate::status::tg_status;

/// What a limiter answered (the `outcome` and `verdict` fields of `tg_decision`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_outcome {
    /// Pass.
    Allowed = 0,
    /// Rate limit exceeded; `retry_after` says when the same request would pass (HTTP 429).
    Limited = 1,
    /// Protective shedding: a concurrency cap, or a full key table in fail-closed mode
    /// (HTTP 503).
    Overloaded = 2,
    /// Can never pass: the cost exceeds the capacity, or a request-shape rule such as deep
    /// pagination refuses it. Retrying cannot help (HTTP 429).
    Never = 3,
}

impl From<Outcome> for tg_outcome {
    fn from(o: Outcome) -> tg_outcome {
        match o {
            Outcome::Allowed => tg_outcome::Allowed,
            Outcome::Limited => tg_outcome::Limited,
            Outcome::Overloaded => tg_outcome::Overloaded,
            Outcome::Never => tg_outcome::Never,
        }
    }
}

impl tg_outcome {
    /// A value received from C, checked.
    pub(crate) fn from_u32(value: u32) -> Result<Outcome, tg_status> {
        Ok(match value {
            0 => Outcome::Allowed,
            1 => Outcome::Limited,
            2 => Outcome::Overloaded,
            3 => Outcome::Never,
            _ => return Err(tg_status::InvalidArgument),
        })
    }
}

/// `tg_decision.flags`: computed in shadow (dry-run) mode; `verdict` is what enforcement would
/// have done, `outcome` is `TG_OUTCOME_ALLOWED`.
pub const TG_DECISION_SHADOW: u32 = 1;
/// `tg_decision.flags`: a key table had no room for the key and its fail-open policy allowed the
/// request.
pub const TG_DECISION_FAIL_OPEN: u32 = 2;
/// `tg_decision.retry_after` for "never": the request can never pass (`TG_OUTCOME_NEVER`), or
/// no time can be promised (`TG_OUTCOME_OVERLOADED`). A `TG_OUTCOME_LIMITED` verdict always
/// carries a real wait, which may itself be `UINT64_MAX` ticks (a window of 2^64 − 1 ticks):
/// read `retry_after` as "never" only when the verdict is `TG_OUTCOME_NEVER` or
/// `TG_OUTCOME_OVERLOADED`.
pub const TG_RETRY_NEVER: u64 = u64::MAX;

/// A decision and the numbers that describe the limiter after it. Times are in the caller's
/// ticks. For a denial, a `TG_OUTCOME_NEVER` or a peek, `used`, `remaining` and `reset_after`
/// describe the unchanged state.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_decision {
    /// What to do with the request: a `tg_outcome`. Equal to `verdict` unless shadow mode or a
    /// fail-open table turned a refusal into `TG_OUTCOME_ALLOWED`.
    pub outcome: u32,
    /// What the limiter itself decided: a `tg_outcome`.
    pub verdict: u32,
    /// Bit set of `TG_DECISION_SHADOW` and `TG_DECISION_FAIL_OPEN`.
    pub flags: u32,
    /// Always 0; keeps the 64-bit fields aligned in every language.
    pub reserved: u32,
    /// The capacity: a bucket's burst, a window's limit, a concurrency cap.
    pub limit: u64,
    /// Units in use after the decision (an admitted request included), rounded up.
    pub used: u64,
    /// `limit - used`: how many cost-1 requests would pass back to back now.
    pub remaining: u64,
    /// Ticks until the same request would pass with no other traffic: 0 when admitted,
    /// `TG_RETRY_NEVER` (`UINT64_MAX`) when it never can (verdict `TG_OUTCOME_NEVER`) or no time
    /// can be promised (`TG_OUTCOME_OVERLOADED`); for `TG_OUTCOME_LIMITED` always a real wait.
    pub retry_after: u64,
    /// Ticks until the limiter is empty again (a bucket drained, a window over).
    pub reset_after: u64,
}

impl From<Decision> for tg_decision {
    fn from(d: Decision) -> tg_decision {
        tg_decision {
            outcome: tg_outcome::from(d.outcome) as u32,
            verdict: tg_outcome::from(d.verdict) as u32,
            flags: u32::from(d.flags),
            reserved: 0,
            limit: d.limit,
            used: d.used,
            remaining: d.remaining,
            retry_after: d.retry_after.unwrap_or(TG_RETRY_NEVER),
            reset_after: d.reset_after,
        }
    }
}

/// `retry_after` as C carries it: `TG_RETRY_NEVER` means "never" only for a verdict that has
/// no time to promise (`TG_OUTCOME_NEVER`, `TG_OUTCOME_OVERLOADED`); for `TG_OUTCOME_LIMITED` it
/// is a real wait of 2^64 − 1 ticks (a window that long), which Rust reports as
/// `Some(u64::MAX)`.
fn retry_from_c(verdict: u32, retry_after: u64) -> Option<u64> {
    let no_time = verdict == tg_outcome::Never as u32 || verdict == tg_outcome::Overloaded as u32;
    if retry_after == TG_RETRY_NEVER && no_time {
        None
    } else {
        Some(retry_after)
    }
}

impl tg_decision {
    /// The engine's decision for a `tg_decision` received from C, checked: unknown outcomes or
    /// flags are `TG_STATUS_INVALID_ARGUMENT`.
    pub(crate) fn to_core(self) -> Result<Decision, tg_status> {
        let flags = u8::try_from(self.flags)
            .ok()
            .filter(|f| f & !(Decision::SHADOW | Decision::FAIL_OPEN) == 0)
            .ok_or(tg_status::InvalidArgument)?;
        Ok(Decision {
            outcome: tg_outcome::from_u32(self.outcome)?,
            verdict: tg_outcome::from_u32(self.verdict)?,
            limit: self.limit,
            used: self.used,
            remaining: self.remaining,
            retry_after: retry_from_c(self.verdict, self.retry_after),
            reset_after: self.reset_after,
            flags,
        })
    }
}

/// Turns a decision into its shadow (dry-run) form in place: `outcome` becomes
/// `TG_OUTCOME_ALLOWED`, `verdict` keeps what enforcement would have answered, and
/// `TG_DECISION_SHADOW` is set. The limiter's state was already updated as if enforced (a
/// refusal changes nothing), so operators can trial a quota on live traffic.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_INVALID_ARGUMENT` for a
/// decision with an unknown outcome or flag (it is then left unchanged).
///
/// # Safety
///
/// `decision` is NULL or points to a `tg_decision` no other thread accesses meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_decision_shadow(decision: *mut tg_decision) -> tg_status {
    guard(|| {
        // SAFETY: NULL or a valid, exclusive tg_decision (this function's contract).
        let current = *unsafe { try_ref(decision) }?;
        // SAFETY: as above; checked not NULL and aligned just now.
        let out = unsafe { Out::new(decision) }?;
        out.set(tg_decision::from(current.to_core()?.shadow()));
        Ok(())
    })
}

/// The HTTP status a gateway answers a `tg_outcome` with: 0 for `TG_OUTCOME_ALLOWED` (the
/// upstream's answer stands), 429 for `TG_OUTCOME_LIMITED` and `TG_OUTCOME_NEVER`, 503 for
/// `TG_OUTCOME_OVERLOADED`.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` for a value that is not a `tg_outcome`,
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out_http_status` is NULL or valid for a write of a `uint16_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_outcome_http_status(
    outcome: u32,
    out_http_status: *mut u16,
) -> tg_status {
    guard(|| {
        // SAFETY: NULL or valid for writes (this function's contract).
        let out = unsafe { Out::new(out_http_status) }?;
        out.set(tg_outcome::from_u32(outcome)?.http_status().unwrap_or(0));
        Ok(())
    })
}

/// The value an outcome-only `_check` function returns for a status: the negated
/// `tg_status` (every status is below 2^31, and `TG_STATUS_OK` never stands for an error).
pub(crate) fn check_error(status: tg_status) -> i32 {
    // Statuses are small explicit values (at most a few hundred): no truncation.
    #[allow(clippy::cast_possible_wrap)]
    let code = status as u32 as i32;
    -code
}

/// The common body of every outcome-only `_check`: checks the object, decides, and returns the
/// `tg_outcome` (≥ 0) or a negated `tg_status` (< 0).
///
/// # Safety
///
/// `obj` is as for [`crate::boundary::object`].
pub(crate) unsafe fn check_on<T: crate::boundary::Stored>(
    obj: *const T::C,
    f: impl FnOnce(&T) -> Result<tollgate::Outcome, tollgate::Error>,
) -> i32 {
    crate::boundary::guard_value(check_error(tg_status::Panic), || {
        // SAFETY: forwarded contract.
        match unsafe { crate::boundary::object::<T>(obj) } {
            Ok(target) => match f(target) {
                Ok(outcome) => tg_outcome::from(outcome) as i32,
                Err(e) => check_error(tg_status::from(e)),
            },
            Err(status) => check_error(status),
        }
    })
}

/// The common body of every `_decide`/`_peek`: checks the object and the out-parameter first
/// (so a bad `out` spends nothing), then decides and writes the decision on success.
///
/// # Safety
///
/// `obj` is as for [`crate::boundary::object`]; `out` is NULL or valid for a write of a
/// `tg_decision`.
pub(crate) unsafe fn decide_on<T: crate::boundary::Stored>(
    obj: *const T::C,
    out: *mut tg_decision,
    f: impl FnOnce(&T) -> Result<Decision, tollgate::Error>,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { crate::boundary::object::<T>(obj) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        out.set(tg_decision::from(f(target)?));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate::{LeakyBucket, Quota};

    #[test]
    fn decisions_round_trip_and_never_is_uint64_max() {
        let b = LeakyBucket::new(Quota::new(2, 1, 10).unwrap());
        let d = b.decide(0, 3).unwrap();
        let c = tg_decision::from(d);
        assert_eq!(c.outcome, tg_outcome::Never as u32);
        assert_eq!(c.retry_after, u64::MAX);
        assert_eq!(c.to_core(), Ok(d));
        let bad = tg_decision { outcome: 4, ..c };
        assert_eq!(bad.to_core(), Err(tg_status::InvalidArgument));
        let bad = tg_decision { flags: 4, ..c };
        assert_eq!(bad.to_core(), Err(tg_status::InvalidArgument));
    }

    #[test]
    fn shadow_allows_and_flags() {
        let b = LeakyBucket::new(Quota::new(1, 1, 10).unwrap());
        let _ = b.decide(0, 1).unwrap();
        let mut c = tg_decision::from(b.decide(0, 1).unwrap());
        // SAFETY: a valid, exclusive decision.
        assert_eq!(unsafe { tg_decision_shadow(&raw mut c) }, tg_status::Ok);
        assert_eq!(c.outcome, tg_outcome::Allowed as u32);
        assert_eq!(c.verdict, tg_outcome::Limited as u32);
        assert_eq!(c.flags, TG_DECISION_SHADOW);
        let mut status = 0u16;
        // SAFETY: a valid out-parameter.
        let ok = unsafe { tg_outcome_http_status(2, &raw mut status) };
        assert_eq!(ok, tg_status::Ok);
        assert_eq!(status, 503);
        // SAFETY: a valid out-parameter.
        let bad = unsafe { tg_outcome_http_status(9, &raw mut status) };
        assert_eq!(bad, tg_status::InvalidArgument);
        assert_eq!(status, 503);
    }
}
