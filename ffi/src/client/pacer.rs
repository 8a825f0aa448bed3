//! `tg_bucket_pacer` and `tg_log_pacer`: "when may I send next" against a leaky-bucket
//! (ShopBase) or sliding-log (TikTok Shop) mirror of a server's limit, with a safety margin for
//! network jitter, and the sync of the mirror with the server's headers.

use core::ffi::c_char;

use tollgate::client::{safe_burst, safe_window, CallLimit, Mirror, Pace, Pacer};
use tollgate::{LeakyBucket, Quota, SlidingLog, WindowQuota};

use crate::boundary::{self, guard, header_value, init_with, with, Exclusive, Out, Stored};
use crate::decision::TG_RETRY_NEVER;
use crate::sliding_log::TG_SLIDING_LOG_CAPACITY;
use crate::status::tg_status;

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

pub(super) type Log = SlidingLog<TG_SLIDING_LOG_CAPACITY>;

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
