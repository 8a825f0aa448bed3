//! The client toolkit (docs/semantics.md#client-toolkit) in C: staying under someone else's limit.
//!
//! - `tg_bucket_pacer` (ShopBase: a leaky-bucket mirror) and `tg_log_pacer` (TikTok Shop: a
//!   sliding-log mirror): "when may I send next", with a safety margin for network jitter, and
//!   the sync of the mirror with the server's headers;
//! - `tg_call_limit_parse` and `tg_retry_after_parse`: the server's headers, never trusted
//!   blindly;
//! - `tg_backoff`: exponential backoff with jitter, the policy, one request's retry count and a
//!   caller-seeded SplitMix64 generator in one struct;
//! - `tg_retry_budget`: retries limited to a fraction of recent successes plus a floor;
//! - `tg_retry_class_of_*` and `tg_retry_next_step`: what may be retried, and when;
//! - `tg_request_queue`: a lock-free queue of request ids released at a pacer's times.
//!
//! Pacers, backoffs and budgets are **one caller at a time**, like `tg_sliding_log`: a second
//! caller arriving while one is inside gets `TG_STATUS_BUSY` and nothing is done. The request
//! queue is lock-free: any number of threads push and pop at once.

use core::cell::UnsafeCell;
use core::ffi::c_char;
use core::sync::atomic::{AtomicU32, Ordering};

use tollgate::client::{
    next_step, parse_call_limit, parse_retry_after, safe_burst, safe_window, Backoff, CallLimit,
    Class, GiveUp, Jitter, Mirror, Next, Pace, Pacer, Release, RequestQueue, Retries, RetryBudget,
    SplitMix64,
};
use tollgate::{LeakyBucket, Quota, SlidingLog, WindowQuota};

use crate::boundary::{self, guard, init_target, object, try_bytes, Out, Stored};
use crate::decision::{tg_outcome, TG_RETRY_NEVER};
use crate::sliding_log::TG_SLIDING_LOG_CAPACITY;
use crate::status::tg_status;

/// A value for one caller at a time: a flag, then the value.
pub(crate) struct Exclusive<T> {
    busy: AtomicU32,
    value: UnsafeCell<T>,
}

impl<T> Exclusive<T> {
    const fn new(value: T) -> Exclusive<T> {
        Exclusive {
            busy: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` on the value if no one else is inside, else `TG_STATUS_BUSY`.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> Result<R, tg_status>) -> Result<R, tg_status> {
        /// Releases the flag even if `f` panics.
        struct Release<'a>(&'a AtomicU32);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(0, Ordering::Release);
            }
        }
        if self
            .busy
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(tg_status::Busy);
        }
        let _release = Release(&self.busy);
        // SAFETY: the flag was 0 and is now ours: no other reference to the value exists until
        // it is released (every access goes through `with`).
        f(unsafe { &mut *self.value.get() })
    }
}

/// Checks a C object pointer and runs `f` on the value inside, one caller at a time.
///
/// # Safety
///
/// As [`boundary::object`].
unsafe fn with<T, R>(
    ptr: *const <Exclusive<T> as Stored>::C,
    f: impl FnOnce(&mut T) -> Result<R, tg_status>,
) -> Result<R, tg_status>
where
    Exclusive<T>: Stored,
{
    // SAFETY: forwarded contract.
    unsafe { object::<Exclusive<T>>(ptr) }?.with(f)
}

/// Checks a C object pointer and initialises it with `make()`'s value, written only on success.
///
/// # Safety
///
/// As [`boundary::init_target`]; no other thread uses the object during the call.
unsafe fn init_with<T>(
    ptr: *mut <Exclusive<T> as Stored>::C,
    make: impl FnOnce() -> Result<T, tg_status>,
) -> tg_status
where
    Exclusive<T>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Exclusive<T>>(ptr) }?;
        boundary::init(target, Exclusive::new(make()?));
        Ok(())
    })
}

/// Header bytes C passed as `(pointer, length)`: `None` for a NULL pointer with length 0 (the
/// header was absent).
///
/// # Safety
///
/// As [`boundary::try_bytes`].
unsafe fn header_value<'a>(ptr: *const c_char, len: usize) -> Result<Option<&'a [u8]>, tg_status> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(tg_status::NullPointer)
        };
    }
    // SAFETY: forwarded contract.
    unsafe { try_bytes(ptr.cast::<u8>(), len) }.map(Some)
}

// ---------------------------------------------------------------------------------------------
// Pacers

/// Words (`uint64_t`) in a `tg_bucket_pacer`.
pub const TG_BUCKET_PACER_WORDS: usize = 12;

/// Words (`uint64_t`) in a `tg_log_pacer`.
pub const TG_LOG_PACER_WORDS: usize = 267;

/// A pacer over a leaky-bucket mirror of a server's limit (ShopBase: 30, 2 per second): "when
/// may I send next", plus the time before which a server's `Retry-After` forbids sending.
///
/// One caller at a time (`TG_STATUS_BUSY` otherwise). Fixed-size plain memory:
/// `static tg_bucket_pacer p = TG_BUCKET_PACER_INIT;` then `tg_bucket_pacer_init`. Nothing is
/// allocated. The fields are private.
#[repr(C, align(8))]
pub struct tg_bucket_pacer {
    _private: [u64; TG_BUCKET_PACER_WORDS],
}

/// A pacer over a sliding-log mirror of a server's window limit (TikTok Shop: 50 per second),
/// of at most `TG_SLIDING_LOG_CAPACITY` units per window, plus the time before which a server's
/// `Retry-After` forbids sending.
///
/// One caller at a time (`TG_STATUS_BUSY` otherwise). Fixed-size plain memory (about 2 KiB):
/// `static tg_log_pacer p = TG_LOG_PACER_INIT;` then `tg_log_pacer_init`. Nothing is allocated.
/// The fields are private.
#[repr(C, align(8))]
pub struct tg_log_pacer {
    _private: [u64; TG_LOG_PACER_WORDS],
}

type Log = SlidingLog<TG_SLIDING_LOG_CAPACITY>;

impl Stored for Exclusive<Pacer<LeakyBucket>> {
    type C = tg_bucket_pacer;
    const MAGIC: u64 = boundary::magic(*b"tgpacerb");
}

impl Stored for Exclusive<Pacer<Log>> {
    type C = tg_log_pacer;
    const MAGIC: u64 = boundary::magic(*b"tgpacerl");
}

const _: () = assert!(boundary::fits::<Exclusive<Pacer<LeakyBucket>>>());
const _: () = assert!(boundary::fits::<Exclusive<Pacer<Log>>>());

/// What a pacer says (`tg_pace.action`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_pace_action {
    /// Send now: the mirror has counted the request (`at` is `now`).
    Send = 0,
    /// Not before `at`; nothing was counted.
    Wait = 1,
    /// The cost exceeds the mirror's capacity: no time will do (`at` is `TG_RETRY_NEVER`).
    Never = 2,
}

/// A pacer's answer to `tg_*_pacer_acquire`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_pace {
    /// A `tg_pace_action`.
    pub action: u32,
    /// Always 0; keeps `at` aligned in every language.
    pub reserved: u32,
    /// In ticks: `now` for `TG_PACE_ACTION_SEND`, the time to ask again for
    /// `TG_PACE_ACTION_WAIT`, `TG_RETRY_NEVER` for `TG_PACE_ACTION_NEVER`.
    pub at: u64,
}

impl tg_pace {
    fn new(pace: Pace, now: u64) -> tg_pace {
        let (action, at) = match pace {
            Pace::Send => (tg_pace_action::Send, now),
            Pace::Wait(t) => (tg_pace_action::Wait, t),
            Pace::Never => (tg_pace_action::Never, TG_RETRY_NEVER),
        };
        tg_pace {
            action: action as u32,
            reserved: 0,
            at,
        }
    }
}

/// # Safety
///
/// `pacer` is NULL or valid for reads and writes of its C struct; `out_time` is NULL or valid
/// for a write.
unsafe fn pacer_time<M: Mirror>(
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    out_time: *mut u64,
    f: impl FnOnce(&mut Pacer<M>) -> Result<Option<u64>, tollgate::Error>,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_time) }?;
        // SAFETY: forwarded contract.
        let t = unsafe { with(pacer, |p| Ok(f(p)?)) }?;
        out.set(t.unwrap_or(TG_RETRY_NEVER));
        Ok(())
    })
}

/// # Safety
///
/// `pacer` is NULL or valid for reads and writes of its C struct; `out` is NULL or valid for a
/// write of a `tg_pace`.
unsafe fn pacer_acquire<M: Mirror>(
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    now: u64,
    cost: u64,
    out: *mut tg_pace,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let pace = unsafe { with(pacer, |p| Ok(p.acquire(now, cost)?)) }?;
        out.set(tg_pace::new(pace, now));
        Ok(())
    })
}

/// # Safety
///
/// `pacer` is NULL or valid for reads and writes of its C struct.
unsafe fn pacer_observe<M: Mirror>(
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    sent_at: u64,
    used: u64,
    limit: u64,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        if limit == 0 || used > limit {
            return Err(tg_status::InvalidArgument);
        }
        // SAFETY: forwarded contract.
        unsafe {
            with(pacer, |p| {
                Ok(p.observe_call_limit(sent_at, CallLimit { used, limit })?)
            })
        }
    })
}

/// # Safety
///
/// `pacer` is NULL or valid for reads and writes of its C struct.
unsafe fn pacer_block<M: Mirror>(
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    until: u64,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with(pacer, |p| {
                p.block_until(until);
                Ok(())
            })
        }
    })
}

/// The arguments of `tg_*_pacer_sync` after the pacer.
#[derive(Clone, Copy)]
struct SyncArgs {
    sent_at: u64,
    now: u64,
    now_unix: u64,
    ticks_per_second: u64,
    call_limit: *const c_char,
    call_limit_len: usize,
    retry_after: *const c_char,
    retry_after_len: usize,
}

/// # Safety
///
/// `pacer` is NULL or valid for reads and writes of its C struct; each header pointer is NULL
/// (with length 0) or valid for reads of its length.
unsafe fn pacer_sync<M: Mirror>(
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    a: SyncArgs,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        if a.ticks_per_second == 0 {
            return Err(tg_status::InvalidArgument);
        }
        // SAFETY: forwarded contract.
        let call_limit = unsafe { header_value(a.call_limit, a.call_limit_len) }?;
        // SAFETY: forwarded contract.
        let retry_after = unsafe { header_value(a.retry_after, a.retry_after_len) }?;
        // SAFETY: forwarded contract.
        unsafe {
            with(pacer, |p| {
                Ok(p.sync(
                    a.sent_at,
                    a.now,
                    a.now_unix,
                    a.ticks_per_second,
                    call_limit,
                    retry_after,
                )?)
            })
        }
    })
}

/// Initialises a pacer whose mirror is a leaky bucket of `burst` draining `count` per `period`
/// ticks — the server's limit — made safe for network jitter of up to `jitter` ticks: the same
/// rate, a burst smaller by ⌈jitter · count / period⌉ (ShopBase, 30 and 2 per 1000 ms, with
/// 200 ms of jitter: a mirror of 29). `jitter = 0` mirrors the server exactly. The mirror's
/// quota is checked as by `tg_quota_init_min_span` with `min_span = 0`. Not blocked.
///
/// Errors: those of `tg_quota_init_min_span`; `TG_STATUS_CAPACITY_EXCEEDED` (the margin leaves
/// no burst), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. Written only on success.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_init(
    pacer: *mut tg_bucket_pacer,
    burst: u64,
    count: u64,
    period: u64,
    jitter: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        init_with(pacer, || {
            let server = Quota::with_min_span(burst, count, period, 0)?;
            Ok(Pacer::new(LeakyBucket::new(safe_burst(&server, jitter)?)))
        })
    }
}

/// The earliest time at or after `now` at which a request of `cost` may be sent, with no other
/// traffic (the mirror would admit it and no `Retry-After` forbids it), written to `*out_time`;
/// `TG_RETRY_NEVER` if never (the cost exceeds the burst). Spends nothing.
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_BUSY`,
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for reads and writes; `out_time` is
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_next_send(
    pacer: *mut tg_bucket_pacer,
    now: u64,
    cost: u64,
    out_time: *mut u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_time::<LeakyBucket>(pacer, out_time, |p| p.next_send(now, cost)) }
}

/// May a request of `cost` be sent at `now`? `TG_PACE_ACTION_SEND`: yes, and the mirror has
/// counted it; `TG_PACE_ACTION_WAIT`: not before `out->at`, nothing counted;
/// `TG_PACE_ACTION_NEVER`: the cost exceeds the burst.
///
/// Errors: as `tg_bucket_pacer_next_send` (`out` is checked before anything is counted).
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for reads and writes; `out` is NULL or
/// valid for a write of a `tg_pace`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_acquire(
    pacer: *mut tg_bucket_pacer,
    now: u64,
    cost: u64,
    out: *mut tg_pace,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_acquire::<LeakyBucket>(pacer, now, cost, out) }
}

/// Books the earliest time at or after `now` for a request of `cost` and writes it to
/// `*out_time`: the mirror counts the request at that time, so later calls book later times
/// (a schedule for a batch). `TG_RETRY_NEVER` (nothing booked) if never.
///
/// Errors: as `tg_bucket_pacer_next_send`.
///
/// # Safety
///
/// As `tg_bucket_pacer_next_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_reserve(
    pacer: *mut tg_bucket_pacer,
    now: u64,
    cost: u64,
    out_time: *mut u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_time::<LeakyBucket>(pacer, out_time, |p| p.reserve(now, cost)) }
}

/// Takes in a server's `used/limit` (`X-Sb-Shop-Api-Call-Limit`, for example from
/// `tg_call_limit_parse`) for a request sent at `sent_at`: the mirror's remaining becomes at most
/// the server's `limit - used` (with a margin, the margin is kept); it is never lowered.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`limit` 0 or `used > limit`),
/// `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_observe_call_limit(
    pacer: *mut tg_bucket_pacer,
    sent_at: u64,
    used: u64,
    limit: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_observe::<LeakyBucket>(pacer, sent_at, used, limit) }
}

/// Forbids sending before `until` (a 429's `Retry-After` in ticks added to the time it was
/// received). A later block never shortens an earlier one.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_bucket_pacer_block_until(
    pacer: *mut tg_bucket_pacer,
    until: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_block::<LeakyBucket>(pacer, until) }
}

/// Reads a response's headers and applies them: `call_limit` is the value of
/// `X-Sb-Shop-Api-Call-Limit` for the request sent at `sent_at`, `retry_after` the value of
/// `Retry-After` received at `now` (ticks), which is Unix time `now_unix` (seconds), on a clock
/// of `ticks_per_second`. A header that was absent is passed as NULL with length 0.
///
/// Each well-formed value is applied; a malformed one is not, and is reported as
/// `TG_STATUS_MALFORMED` — **the one status after which something may have changed**: the other
/// header, if well-formed, was applied (a 429's `Retry-After` is honoured even next to a garbled
/// count).
///
/// Errors: `TG_STATUS_MALFORMED` (see above), `TG_STATUS_INVALID_ARGUMENT` (`ticks_per_second`
/// 0), `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER` (also a NULL
/// value with a non-zero length), `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_bucket_pacer` valid for reads and writes; `call_limit`
/// and `retry_after` are NULL or valid for reads of their lengths.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: pacer, times, clock, two buffers
pub unsafe extern "C" fn tg_bucket_pacer_sync(
    pacer: *mut tg_bucket_pacer,
    sent_at: u64,
    now: u64,
    now_unix: u64,
    ticks_per_second: u64,
    call_limit: *const c_char,
    call_limit_len: usize,
    retry_after: *const c_char,
    retry_after_len: usize,
) -> tg_status {
    let args = SyncArgs {
        sent_at,
        now,
        now_unix,
        ticks_per_second,
        call_limit,
        call_limit_len,
        retry_after,
        retry_after_len,
    };
    // SAFETY: forwarded contract.
    unsafe { pacer_sync::<LeakyBucket>(pacer, args) }
}

/// Initialises a pacer whose mirror is a sliding log of at most `limit` units per `window`
/// ticks — the server's limit — made safe for network jitter of up to `jitter` ticks: the same
/// limit over `window + jitter` ticks (TikTok Shop, 50 per 1000 ms, with 25 ms of jitter: 50 per
/// 1025 ms, 97.5 % of the rate). `jitter = 0` mirrors the server exactly. Not blocked.
///
/// Errors: `TG_STATUS_ZERO_BURST` (limit 0), `TG_STATUS_ZERO_PERIOD` (window 0),
/// `TG_STATUS_CAPACITY_EXCEEDED` (limit above `TG_SLIDING_LOG_CAPACITY`),
/// `TG_STATUS_QUOTA_OVERFLOW` (limit above `TG_WINDOW_MAX_LIMIT`), `TG_STATUS_INVALID_ARGUMENT`
/// (`window + jitter` overflows), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. Written
/// only on success.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_init(
    pacer: *mut tg_log_pacer,
    limit: u64,
    window: u64,
    jitter: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        init_with(pacer, || {
            let server = WindowQuota::new(limit, window)?;
            Ok(Pacer::new(Log::new(safe_window(&server, jitter)?)?))
        })
    }
}

/// As `tg_bucket_pacer_next_send`, for a sliding-log mirror (`TG_RETRY_NEVER` if the cost
/// exceeds the limit). A `now` earlier than the log's newest entry is judged at that entry.
///
/// Errors: `TG_STATUS_ZERO_COST`, `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for reads and writes; `out_time` is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_next_send(
    pacer: *mut tg_log_pacer,
    now: u64,
    cost: u64,
    out_time: *mut u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_time::<Log>(pacer, out_time, |p| p.next_send(now, cost)) }
}

/// As `tg_bucket_pacer_acquire`, for a sliding-log mirror.
///
/// Errors: as `tg_log_pacer_next_send` (`out` is checked before anything is counted).
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for reads and writes; `out` is NULL or
/// valid for a write of a `tg_pace`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_acquire(
    pacer: *mut tg_log_pacer,
    now: u64,
    cost: u64,
    out: *mut tg_pace,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_acquire::<Log>(pacer, now, cost, out) }
}

/// As `tg_bucket_pacer_reserve`, for a sliding-log mirror.
///
/// Errors: as `tg_log_pacer_next_send`.
///
/// # Safety
///
/// As `tg_log_pacer_next_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_reserve(
    pacer: *mut tg_log_pacer,
    now: u64,
    cost: u64,
    out_time: *mut u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_time::<Log>(pacer, out_time, |p| p.reserve(now, cost)) }
}

/// As `tg_bucket_pacer_observe_call_limit`, for a sliding-log mirror: the units the server
/// counted and the log did not are recorded at `sent_at` (they leave the window later, like
/// real entries).
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`limit` 0 or `used > limit`), `TG_STATUS_BUSY`,
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_observe_call_limit(
    pacer: *mut tg_log_pacer,
    sent_at: u64,
    used: u64,
    limit: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_observe::<Log>(pacer, sent_at, used, limit) }
}

/// As `tg_bucket_pacer_block_until`, for a sliding-log pacer.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_log_pacer_block_until(
    pacer: *mut tg_log_pacer,
    until: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { pacer_block::<Log>(pacer, until) }
}

/// As `tg_bucket_pacer_sync`, for a sliding-log pacer (a window server may send only
/// `Retry-After`: pass NULL, 0 for the absent count).
///
/// Errors: as `tg_bucket_pacer_sync`.
///
/// # Safety
///
/// `pacer` is NULL or points to a `tg_log_pacer` valid for reads and writes; `call_limit` and
/// `retry_after` are NULL or valid for reads of their lengths.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // the C signature: pacer, times, clock, two buffers
pub unsafe extern "C" fn tg_log_pacer_sync(
    pacer: *mut tg_log_pacer,
    sent_at: u64,
    now: u64,
    now_unix: u64,
    ticks_per_second: u64,
    call_limit: *const c_char,
    call_limit_len: usize,
    retry_after: *const c_char,
    retry_after_len: usize,
) -> tg_status {
    let args = SyncArgs {
        sent_at,
        now,
        now_unix,
        ticks_per_second,
        call_limit,
        call_limit_len,
        retry_after,
        retry_after_len,
    };
    // SAFETY: forwarded contract.
    unsafe { pacer_sync::<Log>(pacer, args) }
}

// ---------------------------------------------------------------------------------------------
// Header parsers

/// A server's `used/limit`, as in ShopBase's `X-Sb-Shop-Api-Call-Limit: 22/30`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_call_limit {
    /// Units the server counted as used, this request included.
    pub used: u64,
    /// The server's capacity (its bucket size); at least 1 and at least `used`.
    pub limit: u64,
}

/// Parses a `X-Sb-Shop-Api-Call-Limit` value such as `22/30` (`value_len` bytes, no NUL needed;
/// spaces and tabs around the value are allowed) into `*out`.
///
/// Errors: `TG_STATUS_MALFORMED` (anything but `digits/digits`, a number beyond 64 bits, a limit
/// of 0, `used > limit`, an empty value), `TG_STATUS_NULL_POINTER` (`value` NULL with a
/// non-zero length, or `out` NULL), `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `value` is NULL (with `value_len` 0) or valid for reads of `value_len` bytes; `out` is NULL or
/// valid for a write of a `tg_call_limit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_call_limit_parse(
    value: *const c_char,
    value_len: usize,
    out: *mut tg_call_limit,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let bytes = unsafe { try_bytes(value.cast::<u8>(), value_len) }?;
        let c = parse_call_limit(bytes)?;
        out.set(tg_call_limit {
            used: c.used,
            limit: c.limit,
        });
        Ok(())
    })
}

/// Parses a `Retry-After` value — delay-seconds (`120`) or an HTTP-date in any of the three
/// forms of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete RFC 850 and asctime
/// forms) — into whole seconds to wait from `now_unix` (the caller's current Unix time in
/// seconds), written to `*out_seconds`. A date in the past is 0 seconds. Multiply by the clock's
/// ticks per second (saturating) for ticks, or let `tg_*_pacer_sync` do it.
///
/// Errors: `TG_STATUS_MALFORMED` (stray characters, a negative or too large number, an invalid
/// date, a weekday that does not match its date, an empty value), `TG_STATUS_NULL_POINTER`,
/// `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `value` is NULL (with `value_len` 0) or valid for reads of `value_len` bytes; `out_seconds`
/// is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_retry_after_parse(
    value: *const c_char,
    value_len: usize,
    now_unix: u64,
    out_seconds: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_seconds) }?;
        // SAFETY: forwarded contract.
        let bytes = unsafe { try_bytes(value.cast::<u8>(), value_len) }?;
        out.set(parse_retry_after(bytes, now_unix)?);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Backoff

/// How a backoff delay is randomised (`tg_backoff_init`'s `jitter`): the four strategies of the
/// AWS "Exponential Backoff and Jitter" study. With e = min(cap, base · 2^k) for retry k = 0, 1…
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_jitter {
    /// e exactly: clients that failed together retry together.
    None = 0,
    /// Uniform in 0..=e: the fewest calls in the AWS study.
    Full = 1,
    /// ⌈e/2⌉ plus uniform in 0..=⌊e/2⌋.
    Equal = 2,
    /// min(cap, uniform in base..=3 · previous delay), previous starting at base.
    Decorrelated = 3,
}

/// Words (`uint64_t`) in a `tg_backoff`.
pub const TG_BACKOFF_WORDS: usize = 8;

/// Exponential backoff for one request: the policy (base, cap, retry limit, `tg_jitter`), the
/// retries made so far, and a SplitMix64 generator seeded by the caller (reproducible: the same
/// seed gives the same delays; seed it from your own random source — `getrandom`, a hardware
/// RNG — so that clients do not jitter in step). Call `tg_backoff_reset` to reuse it for the
/// next request (the generator keeps going).
///
/// One caller at a time (`TG_STATUS_BUSY` otherwise). Fixed-size plain memory:
/// `tg_backoff b = TG_BACKOFF_INIT;` then `tg_backoff_init`. Nothing is allocated. The fields are
/// private.
#[repr(C, align(8))]
pub struct tg_backoff {
    _private: [u64; TG_BACKOFF_WORDS],
}

/// One request's retry schedule and its randomness.
pub(crate) struct BackoffState {
    retries: Retries,
    rng: SplitMix64,
}

impl Stored for Exclusive<BackoffState> {
    type C = tg_backoff;
    const MAGIC: u64 = boundary::magic(*b"tgbackof");
}

const _: () = assert!(boundary::fits::<Exclusive<BackoffState>>());

fn jitter_of(value: u32) -> Result<Jitter, tg_status> {
    Ok(match value {
        0 => Jitter::None,
        1 => Jitter::Full,
        2 => Jitter::Equal,
        3 => Jitter::Decorrelated,
        _ => return Err(tg_status::InvalidArgument),
    })
}

/// Initialises a backoff of delays from `base` ticks, never above `cap` (except to honour a
/// `Retry-After`), for at most `max_retries` retries, randomised by `jitter` (a `tg_jitter`)
/// with a generator seeded with `seed` (any value). No retries made yet.
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`base` 0, `cap < base`, an unknown `jitter`),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`. Written only on success.
///
/// # Safety
///
/// `backoff` is NULL or points to a `tg_backoff` valid for writes, which no other thread uses
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_backoff_init(
    backoff: *mut tg_backoff,
    base: u64,
    cap: u64,
    max_retries: u32,
    jitter: u32,
    seed: u64,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe {
        init_with(backoff, || {
            let policy = Backoff::new(base, cap, max_retries, jitter_of(jitter)?)?;
            Ok(BackoffState {
                retries: policy.start(),
                rng: SplitMix64::new(seed),
            })
        })
    }
}

/// The delay in ticks before the next retry, never shorter than `retry_after` (the server's
/// `Retry-After` in ticks; 0 if it sent none), counting the retry: `*out_retry` is true and
/// `*out_delay` the delay; or, when `max_retries` retries were already made, `*out_retry` is
/// false and `*out_delay` 0 (give up).
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED` (the outs are checked before anything is counted).
///
/// # Safety
///
/// `backoff` is NULL or points to a `tg_backoff` valid for reads and writes; `out_retry` and
/// `out_delay` are NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_backoff_next_delay(
    backoff: *mut tg_backoff,
    retry_after: u64,
    out_retry: *mut bool,
    out_delay: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let retry = unsafe { Out::new(out_retry) }?;
        // SAFETY: forwarded contract.
        let delay = unsafe { Out::new(out_delay) }?;
        // SAFETY: forwarded contract.
        let d = unsafe {
            with(backoff, |b: &mut BackoffState| {
                Ok(b.retries.next_delay(Some(retry_after), &mut b.rng))
            })
        }?;
        retry.set(d.is_some());
        delay.set(d.unwrap_or(0));
        Ok(())
    })
}

/// Retries counted so far (by `tg_backoff_next_delay` and `tg_retry_next_step`), written to
/// `*out_retries`.
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `backoff` is NULL or points to a `tg_backoff` valid for reads and writes; `out_retries` is
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_backoff_retries(
    backoff: *mut tg_backoff,
    out_retries: *mut u32,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_retries) }?;
        // SAFETY: forwarded contract.
        out.set(unsafe { with(backoff, |b: &mut BackoffState| Ok(b.retries.retries())) }?);
        Ok(())
    })
}

/// Starts a fresh schedule for the next request: no retries made, the same policy; the
/// generator continues where it was (it is not re-seeded).
///
/// Errors: `TG_STATUS_BUSY`, `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `backoff` is NULL or points to a `tg_backoff` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_backoff_reset(backoff: *mut tg_backoff) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        unsafe {
            with(backoff, |b: &mut BackoffState| {
                b.retries = b.retries.policy().start();
                Ok(())
            })
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Retry budget

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

type Budget = RetryBudget<TG_RETRY_BUDGET_SLOTS>;

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

// ---------------------------------------------------------------------------------------------
// Classification and the retry decision

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

// ---------------------------------------------------------------------------------------------
// Request queue

/// The most request ids a `tg_request_queue` holds.
pub const TG_REQUEST_QUEUE_CAPACITY: usize = 64;

/// Words (`uint64_t`) in a `tg_request_queue`.
pub const TG_REQUEST_QUEUE_WORDS: usize = 131;

/// A lock-free multi-producer, multi-consumer queue of up to `TG_REQUEST_QUEUE_CAPACITY` request
/// ids (a `uint64_t` each: an index into your own table of requests, a handle), released at a
/// pacer's times by `tg_request_queue_release_bucket` / `_log`: producers on any thread push;
/// a dispatcher holding the pacer releases.
///
/// A producer pre-empted in the middle of a push holds back the ids behind it: pop and release
/// report empty until it resumes — nothing blocks, spins or is lost; try again at the next tick.
///
/// Fixed-size plain memory (about 1 KiB): `static tg_request_queue q = TG_REQUEST_QUEUE_INIT;`
/// then `tg_request_queue_init` once before sharing it. Nothing is allocated. The fields are
/// private.
#[repr(C, align(8))]
pub struct tg_request_queue {
    _private: [u64; TG_REQUEST_QUEUE_WORDS],
}

type Queue = RequestQueue<TG_REQUEST_QUEUE_CAPACITY>;

impl Stored for Queue {
    type C = tg_request_queue;
    const MAGIC: u64 = boundary::magic(*b"tgrqueue");
}

const _: () = assert!(boundary::fits::<Queue>());

/// What a release hands out (`tg_release.action`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tg_release_action {
    /// Send request `id` at `at` (normally `now`); the pacer has counted it.
    Send = 0,
    /// Requests are waiting, but the pacer allows the next one only at `at`.
    Wait = 1,
    /// Nothing is queued.
    Empty = 2,
}

/// The answer of `tg_request_queue_release_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tg_release {
    /// A `tg_release_action`.
    pub action: u32,
    /// Always 0; keeps the 64-bit fields aligned in every language.
    pub reserved: u32,
    /// For `TG_RELEASE_ACTION_SEND`: the request id that was pushed; 0 otherwise.
    pub id: u64,
    /// For `TG_RELEASE_ACTION_SEND`: when to send; for `TG_RELEASE_ACTION_WAIT`: when to ask
    /// again; 0 for `TG_RELEASE_ACTION_EMPTY`.
    pub at: u64,
}

impl From<Release> for tg_release {
    fn from(r: Release) -> tg_release {
        let (action, id, at) = match r {
            Release::Send { id, at } => (tg_release_action::Send, id, at),
            Release::Wait(at) => (tg_release_action::Wait, 0, at),
            Release::Empty => (tg_release_action::Empty, 0, 0),
        };
        tg_release {
            action: action as u32,
            reserved: 0,
            id,
            at,
        }
    }
}

/// Initialises an empty queue.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for writes, which no other thread
/// uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_init(queue: *mut tg_request_queue) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let target = unsafe { init_target::<Queue>(queue) }?;
        boundary::init(target, Queue::new());
        Ok(())
    })
}

/// Adds `id` at the back. Lock-free; safe from any number of threads.
///
/// Errors: `TG_STATUS_CAPACITY_EXCEEDED` (the queue is full: nothing was added),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_push(queue: *mut tg_request_queue, id: u64) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        q.push(id).map_err(|_| tg_status::CapacityExceeded)
    })
}

/// Takes the id at the front without asking a pacer (to cancel or drain): `*out_found` is true
/// and `*out_id` the id, or `*out_found` is false and `*out_id` 0 if nothing is queued.
/// Lock-free; safe from any number of threads.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (the outs
/// are checked before anything is taken).
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes; `out_found` and
/// `out_id` are NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_pop(
    queue: *mut tg_request_queue,
    out_found: *mut bool,
    out_id: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let found = unsafe { Out::new(out_found) }?;
        // SAFETY: forwarded contract.
        let id = unsafe { Out::new(out_id) }?;
        let popped = q.pop();
        found.set(popped.is_some());
        id.set(popped.unwrap_or(0));
        Ok(())
    })
}

/// Ids pushed and not yet taken, at some moment during the call, written to `*out_len`.
///
/// Errors: `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED`.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads; `out_len` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_len(
    queue: *const tg_request_queue,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_len) }?;
        out.set(q.len());
        Ok(())
    })
}

/// # Safety
///
/// `queue` is NULL or valid for reads and writes of a `tg_request_queue`; `pacer` is NULL or
/// valid for reads and writes of its C struct; `out` is NULL or valid for a write.
unsafe fn release_with<M: Mirror>(
    queue: *mut tg_request_queue,
    pacer: *mut <Exclusive<Pacer<M>> as Stored>::C,
    now: u64,
    out: *mut tg_release,
) -> tg_status
where
    Exclusive<Pacer<M>>: Stored,
{
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { object::<Queue>(queue) }?;
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out) }?;
        // SAFETY: forwarded contract.
        let r = unsafe { with(pacer, |p| Ok(q.release(p, now)?)) }?;
        out.set(tg_release::from(r));
        Ok(())
    })
}

/// Releases the next request (of cost 1) if `pacer` allows one at `now`:
/// `TG_RELEASE_ACTION_SEND` with its id (the pacer has counted it); `TG_RELEASE_ACTION_WAIT`
/// with the pacer's time, the queue left as it is; `TG_RELEASE_ACTION_EMPTY` if nothing is
/// queued. Several dispatchers may share the queue (each pacer one caller at a time).
///
/// Errors: `TG_STATUS_CLOCK_OUT_OF_RANGE`, `TG_STATUS_BUSY` (the pacer),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`, `TG_STATUS_UNINITIALIZED` (either object).
/// No id is lost on an error.
///
/// # Safety
///
/// `queue` is NULL or points to a `tg_request_queue` valid for reads and writes; `pacer` is NULL
/// or points to a `tg_bucket_pacer` valid for reads and writes; `out` is NULL or valid for a
/// write of a `tg_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_release_bucket(
    queue: *mut tg_request_queue,
    pacer: *mut tg_bucket_pacer,
    now: u64,
    out: *mut tg_release,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { release_with::<LeakyBucket>(queue, pacer, now, out) }
}

/// As `tg_request_queue_release_bucket`, paced by a `tg_log_pacer`.
///
/// Errors: `TG_STATUS_BUSY` (the pacer), `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`,
/// `TG_STATUS_UNINITIALIZED` (either object).
///
/// # Safety
///
/// As `tg_request_queue_release_bucket`, with `pacer` a `tg_log_pacer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_request_queue_release_log(
    queue: *mut tg_request_queue,
    pacer: *mut tg_log_pacer,
    now: u64,
    out: *mut tg_release,
) -> tg_status {
    // SAFETY: forwarded contract.
    unsafe { release_with::<Log>(queue, pacer, now, out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn the_c_structs_hold_exactly_their_values_on_this_host() {
        use boundary::Slot;
        assert_eq!(
            size_of::<Slot<Exclusive<Pacer<LeakyBucket>>>>(),
            size_of::<tg_bucket_pacer>()
        );
        assert_eq!(
            size_of::<Slot<Exclusive<Pacer<Log>>>>(),
            size_of::<tg_log_pacer>()
        );
        assert_eq!(
            size_of::<Slot<Exclusive<BackoffState>>>(),
            size_of::<tg_backoff>()
        );
        assert_eq!(
            size_of::<Slot<Exclusive<Budget>>>(),
            size_of::<tg_retry_budget>()
        );
        assert_eq!(size_of::<Slot<Queue>>(), size_of::<tg_request_queue>());
    }

    #[test]
    fn a_second_caller_is_told_busy_and_nothing_happens() {
        let cell = Exclusive::new(5u64);
        let inner = cell.with(|v| {
            *v += 1;
            Ok(cell.with(|w| {
                *w += 1;
                Ok(())
            }))
        });
        assert!(matches!(inner, Ok(Err(tg_status::Busy))));
        assert_eq!(cell.with(|v| Ok(*v)), Ok(6));
    }

    #[test]
    fn shopbase_pacing_through_the_c_functions() {
        let mut p = tg_bucket_pacer {
            _private: [0; TG_BUCKET_PACER_WORDS],
        };
        let mut pace = tg_pace {
            action: 9,
            reserved: 0,
            at: 0,
        };
        // SAFETY: valid pointers to local memory.
        unsafe {
            assert_eq!(
                tg_bucket_pacer_init(&raw mut p, 30, 2, 1_000, 0),
                tg_status::Ok
            );
            for _ in 0..30 {
                assert_eq!(
                    tg_bucket_pacer_acquire(&raw mut p, 0, 1, &raw mut pace),
                    tg_status::Ok
                );
                assert_eq!(pace.action, tg_pace_action::Send as u32);
            }
            assert_eq!(
                tg_bucket_pacer_acquire(&raw mut p, 0, 1, &raw mut pace),
                tg_status::Ok
            );
            assert_eq!((pace.action, pace.at), (tg_pace_action::Wait as u32, 500));
        }
    }
}
