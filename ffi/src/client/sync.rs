//! `tg_call_limit_parse` and `tg_retry_after_parse`: the server's headers, never trusted
//! blindly.

use core::ffi::c_char;

use tollgate::client::{parse_call_limit, parse_retry_after};

use crate::boundary::{guard, try_bytes, Out};
use crate::status::tg_status;

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
