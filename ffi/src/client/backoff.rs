//! `tg_backoff`: exponential backoff with jitter — the policy, one request's retry count and a
//! caller-seeded SplitMix64 generator in one struct.

use tollgate::client::{Backoff, Jitter, Retries, SplitMix64};

use crate::boundary::{self, guard, init_with, with, Exclusive, Out, Stored};
use crate::status::tg_status;

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
    pub(super) retries: Retries,
    pub(super) rng: SplitMix64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn the_c_struct_holds_exactly_its_value_on_this_host() {
        use boundary::Slot;
        assert_eq!(
            size_of::<Slot<Exclusive<BackoffState>>>(),
            size_of::<tg_backoff>()
        );
    }
}
