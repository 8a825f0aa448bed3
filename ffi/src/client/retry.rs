//! `tg_retry_class_of_*` and `tg_retry_next_step`: what may be retried, and when.

use tollgate::client::{next_step, Class, GiveUp, Next};

use super::backoff::{tg_backoff, BackoffState};
use super::budget::{tg_retry_budget, Budget};
use crate::boundary::{guard, object, with, Exclusive, Out};
use crate::decision::tg_outcome;
use crate::status::tg_status;

/// How an attempt ended, for the retry decision.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_retry_class {
    /// It succeeded (HTTP 1xx–3xx, `TG_OUTCOME_ALLOWED`): done.
    Success = 0,
    /// It may succeed later: HTTP 429 or 503, a transport error, `TG_OUTCOME_LIMITED` or
    /// `TG_OUTCOME_OVERLOADED`.
    Retryable = 1,
    /// It can never succeed as it is: any other status, or `TG_OUTCOME_NEVER`.
    Fatal = 2,
}

impl From<Class> for tg_retry_class {
    fn from(c: Class) -> tg_retry_class {
        match c {
            Class::Success => tg_retry_class::Success,
            Class::Retryable => tg_retry_class::Retryable,
            Class::Fatal => tg_retry_class::Fatal,
        }
    }
}

fn class_of(value: u32) -> Result<Class, tg_status> {
    Ok(match value {
        0 => Class::Success,
        1 => Class::Retryable,
        2 => Class::Fatal,
        _ => return Err(tg_status::InvalidArgument),
    })
}

/// # Safety
///
/// `out_class` is NULL or valid for a write.
unsafe fn write_class(
    out_class: *mut u32,
    class: impl FnOnce() -> Result<Class, tg_status>,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_class) }?;
        out.set(tg_retry_class::from(class()?) as u32);
        Ok(())
    })
}

/// The `tg_retry_class` of an HTTP status, written to `*out_class`: 1xx–3xx succeed, 429 and 503
/// may be retried, anything else (other 4xx and 5xx, and any value outside 100–599) is fatal.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out_class` is NULL or valid for a write of a `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_class_of_status(
    http_status: u32,
    out_class: *mut u32,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        write_class(out_class, || {
            Ok(u16::try_from(http_status).map_or(Class::Fatal, Class::of_status))
        })
    }
}

/// The `tg_retry_class` of a limiter's `tg_outcome` (a client's own mirror, or a gateway's
/// decision), written to `*out_class`: `TG_OUTCOME_NEVER` is fatal, whatever HTTP status it
/// travels as.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (not a `tg_outcome`), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out_class` is NULL or valid for a write of a `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_class_of_outcome(outcome: u32, out_class: *mut u32) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        write_class(out_class, || {
            Ok(Class::of_outcome(tg_outcome::from_u32(outcome)?))
        })
    }
}

/// The `tg_retry_class` of a transport error (no HTTP answer: timeout, reset connection),
/// written to `*out_class`: retryable. Such a request may have reached the server: retry it
/// only if it is idempotent.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `out_class` is NULL or valid for a write of a `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_class_of_transport_error(out_class: *mut u32) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { write_class(out_class, || Ok(Class::of_transport_error())) }
}

/// What to do after an attempt (`tg_next.action`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_next_action {
    /// The request succeeded; nothing more to do.
    Done = 0,
    /// Retry at `tg_next.at`.
    Retry = 1,
    /// Do not retry; `tg_next.give_up` says why.
    GiveUp = 2,
}

/// Why a request is not retried (`tg_next.give_up`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_give_up {
    /// Not giving up (the action is not `TG_NEXT_ACTION_GIVE_UP`).
    None = 0,
    /// The attempt can never succeed (`TG_RETRY_CLASS_FATAL`).
    Fatal = 1,
    /// The backoff's `max_retries` were all used.
    AttemptsExhausted = 2,
    /// The retry budget refuses: retries would exceed their share of recent successes.
    BudgetExhausted = 3,
}

/// The answer of `tg_retry_next_step`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_next {
    /// A `tg_next_action`.
    pub action: u32,
    /// A `tg_give_up`: why, for `TG_NEXT_ACTION_GIVE_UP`; `TG_GIVE_UP_NONE` otherwise.
    pub give_up: u32,
    /// For `TG_NEXT_ACTION_RETRY`: when to retry, in ticks (`now` plus the backoff delay, at
    /// least `now + retry_after`); 0 otherwise.
    pub at: u64,
}

impl From<Next> for tg_next {
    fn from(n: Next) -> tg_next {
        let (action, give_up, at) = match n {
            Next::Done => (tg_next_action::Done, tg_give_up::None, 0),
            Next::RetryAt(t) => (tg_next_action::Retry, tg_give_up::None, t),
            Next::GiveUp(why) => (
                tg_next_action::GiveUp,
                match why {
                    GiveUp::Fatal => tg_give_up::Fatal,
                    GiveUp::AttemptsExhausted => tg_give_up::AttemptsExhausted,
                    GiveUp::BudgetExhausted => tg_give_up::BudgetExhausted,
                },
                0,
            ),
        };
        tg_next {
            action: action as u32,
            give_up: give_up as u32,
            at,
        }
    }
}

/// Decides what follows an attempt of class `retry_class` (a `tg_retry_class`) that ended at
/// `now`. A success is recorded in `budget` (`TG_NEXT_ACTION_DONE`). A retryable failure is
/// retried (`TG_NEXT_ACTION_RETRY`) if `backoff` has retries left and `budget` allows one — both
/// are then counted — at `now` plus the next backoff delay, never earlier than
/// `now + retry_after` (the server's `Retry-After` in ticks; 0 if none). Otherwise, or for a
/// fatal class, `TG_NEXT_ACTION_GIVE_UP` with the reason.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (not a `tg_retry_class`), `TG_STATUS_BUSY` (either
/// object), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (either
/// object). Nothing is counted on an error.
///
/// # Safety
///
/// `backoff` is NULL or points to a `tg_backoff`, and `budget` to a `tg_retry_budget`, valid for
/// reads and writes; `out` is NULL or valid for a write of a `tg_next`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_next_step(
    retry_class: u32,
    now: u64,
    retry_after: u64,
    backoff: *mut tg_backoff,
    budget: *mut tg_retry_budget,
    out: *mut tg_next,
) -> tg_status {
    guard(|| {
        let class = class_of(retry_class)?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let bud = unsafe { object::<Exclusive<Budget>>(budget) }?;
        // SAFETY: forwarded contract.
        let next = unsafe {
            with(backoff, |b: &mut BackoffState| {
                bud.with(|bud| {
                    Ok(next_step(
                        class,
                        now,
                        Some(retry_after),
                        &mut b.retries,
                        bud,
                        &mut b.rng,
                    ))
                })
            })
        }?;
        out.set(tg_next::from(next));
        Ok(())
    })
}
