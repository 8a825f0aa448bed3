//! Header values (docs/semantics.md#header-values), formatted into a caller buffer without allocation.
//!
//! Every `tg_header_*` writer puts the value and a terminating NUL into `buf`, and its length
//! (without the NUL) into `*out_len`. When `buf` is too small it writes nothing into `buf`,
//! returns `TG_STATUS_BUFFER_TOO_SMALL` and stores the buffer size needed (length + 1) into
//! `*out_len` — the one out-parameter written on an error, since it is the answer asked for.
//! `buf` may be NULL with `buf_len` 0 to measure. Nothing is ever truncated.
//!
//! The header names are string macros in the header (`TG_HEADER_SHOP_API_CALL_LIMIT`, ...,
//! written by `ffi/cbindgen.toml`, which cannot export `&str` constants); a test ties them to
//! the core's constants.

use core::ffi::c_char;

use tollgate::{header, Error, WindowQuota};

use crate::boundary::{guard, try_bytes, try_bytes_mut, try_ref, Out};
use crate::decision::tg_decision;
use crate::quota::{self, tg_quota};
use crate::status::tg_status;

/// The common body of the writers: checks every pointer, then writes value + NUL, or reports
/// the size needed.
///
/// # Safety
///
/// `buf` is NULL (with `buf_len` 0) or valid for writes of `buf_len` bytes; `out_len` is NULL or
/// valid for a write.
unsafe fn write_text(
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
    write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<(), tg_status> {
    // SAFETY: forwarded contract.
    let out = unsafe { Out::new(out_len) }?;
    // SAFETY: forwarded contract.
    let bytes = unsafe { try_bytes_mut(buf.cast::<u8>(), buf_len) }?;
    let room = buf_len.saturating_sub(1);
    match write(&mut bytes[..room]) {
        Ok(n) if n < bytes.len() => {
            bytes[n] = 0;
            out.set(n);
            Ok(())
        }
        Ok(n) => {
            out.set(n + 1);
            Err(tg_status::BufferTooSmall)
        }
        Err(Error::BufferTooSmall(needed)) => {
            out.set(needed.saturating_add(1));
            Err(tg_status::BufferTooSmall)
        }
        Err(e) => Err(e.into()),
    }
}

/// A header name from C: `(pointer, length)` bytes, which must be UTF-8.
///
/// # Safety
///
/// `name` is NULL (with `name_len` 0) or valid for reads of `name_len` bytes.
unsafe fn name_str<'a>(name: *const c_char, name_len: usize) -> Result<&'a str, tg_status> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { try_bytes(name.cast::<u8>(), name_len) }?;
    core::str::from_utf8(bytes).map_err(|_| tg_status::InvalidArgument)
}

/// # Safety
///
/// `decision` is NULL or points to a `tg_decision` valid for reads.
unsafe fn read_decision(decision: *const tg_decision) -> Result<tollgate::Decision, tg_status> {
    // SAFETY: forwarded contract.
    unsafe { try_ref(decision) }?.to_core()
}

/// Writes `{used}/{limit}` (e.g. `22/30`), the value of `X-Sb-Shop-Api-Call-Limit`.
///
/// Errors: `TG_STATUS_BUFFER_TOO_SMALL` (see the module rule: `*out_len` gets the size needed),
/// `TG_STATUS_INVALID_ARGUMENT` (a decision with an unknown outcome or flag),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `decision` is NULL or points to a `tg_decision` valid for reads; `buf` is NULL (with
/// `buf_len` 0) or valid for writes of `buf_len` bytes; `out_len` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_shop_api_call_limit(
    decision: *const tg_decision,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let d = unsafe { read_decision(decision) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_shop_api_call_limit(&d, b)
            })
        }
    })
}

/// The `Retry-After` seconds for a decision: 0 when the decision calls for no `Retry-After`
/// header (allowed, or `TG_OUTCOME_NEVER`: retrying cannot help), else
/// ⌈retry_after / ticks_per_second⌉ but at least 1 (a denial never says 0; an overload with no
/// known time says 1).
///
/// Errors: `TG_STATUS_INVALID_ARGUMENT` (`ticks_per_second` 0, or an unknown outcome or flag),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `decision` is NULL or points to a `tg_decision` valid for reads; `out_seconds` is NULL or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_retry_after_seconds(
    decision: *const tg_decision,
    ticks_per_second: u64,
    out_seconds: *mut u64,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let out = unsafe { Out::new(out_seconds) }?;
        // SAFETY: forwarded contract.
        let d = unsafe { read_decision(decision) }?;
        out.set(header::retry_after_seconds(&d, ticks_per_second)?.unwrap_or(0));
        Ok(())
    })
}

/// Writes the `Retry-After` value in whole seconds (see `tg_header_retry_after_seconds`); an
/// empty string (length 0) when the decision calls for no `Retry-After` header.
///
/// Errors: as `tg_header_shop_api_call_limit`, and `TG_STATUS_INVALID_ARGUMENT` for
/// `ticks_per_second` 0.
///
/// # Safety
///
/// As `tg_header_shop_api_call_limit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_retry_after(
    decision: *const tg_decision,
    ticks_per_second: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let d = unsafe { read_decision(decision) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_retry_after(&d, ticks_per_second, b)
            })
        }
    })
}

/// Writes the IETF draft `RateLimit` value `"{name}";r={remaining};t={s}` with
/// s = ⌈reset_after / ticks_per_second⌉. `name` (`name_len` bytes, no NUL needed) must be
/// printable ASCII without `"` or `\`.
///
/// Errors: as `tg_header_retry_after`, and `TG_STATUS_INVALID_ARGUMENT` for a bad name.
///
/// # Safety
///
/// As `tg_header_shop_api_call_limit`; `name` is NULL (with `name_len` 0) or valid for reads of
/// `name_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_ratelimit(
    decision: *const tg_decision,
    name: *const c_char,
    name_len: usize,
    ticks_per_second: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let d = unsafe { read_decision(decision) }?;
        // SAFETY: forwarded contract.
        let name = unsafe { name_str(name, name_len) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_ratelimit(name, &d, ticks_per_second, b)
            })
        }
    })
}

/// Writes the IETF draft `RateLimit-Policy` value `"{name}";q={limit};w={window_seconds}`.
///
/// Errors: `TG_STATUS_BUFFER_TOO_SMALL`, `TG_STATUS_INVALID_ARGUMENT` (a bad name),
/// `TG_STATUS_NULL_POINTER`, `TG_STATUS_MISALIGNED`.
///
/// # Safety
///
/// `name` is NULL (with `name_len` 0) or valid for reads of `name_len` bytes; `buf` is NULL (with
/// `buf_len` 0) or valid for writes of `buf_len` bytes; `out_len` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_ratelimit_policy(
    name: *const c_char,
    name_len: usize,
    limit: u64,
    window_seconds: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let name = unsafe { name_str(name, name_len) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_ratelimit_policy(name, limit, window_seconds, b)
            })
        }
    })
}

/// `RateLimit-Policy` for a leaky bucket: q = burst, w = the time a full bucket takes to drain,
/// ⌈B·P / C / ticks_per_second⌉ seconds (ShopBase: `"shopbase";q=30;w=15`).
///
/// Errors: as `tg_header_ratelimit_policy`, `TG_STATUS_INVALID_ARGUMENT` for `ticks_per_second`
/// 0, `TG_STATUS_UNINITIALIZED` (the quota).
///
/// # Safety
///
/// As `tg_header_ratelimit_policy`; `quota` is NULL or points to a `tg_quota` valid for reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_ratelimit_policy_bucket(
    quota: *const tg_quota,
    name: *const c_char,
    name_len: usize,
    ticks_per_second: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        // SAFETY: forwarded contract.
        let q = unsafe { quota::read(quota) }?;
        // SAFETY: forwarded contract.
        let name = unsafe { name_str(name, name_len) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_ratelimit_policy_bucket(name, &q, ticks_per_second, b)
            })
        }
    })
}

/// `RateLimit-Policy` for a fixed or sliding window of `limit` units per `window` ticks:
/// q = limit, w = ⌈window / ticks_per_second⌉ seconds (TikTok Shop: `"tiktok";q=50;w=1`).
///
/// Errors: as `tg_header_ratelimit_policy`, `TG_STATUS_INVALID_ARGUMENT` for `ticks_per_second`
/// 0, and the window's own: `TG_STATUS_ZERO_BURST`, `TG_STATUS_ZERO_PERIOD`,
/// `TG_STATUS_QUOTA_OVERFLOW`.
///
/// # Safety
///
/// As `tg_header_ratelimit_policy`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tg_header_ratelimit_policy_window(
    limit: u64,
    window: u64,
    name: *const c_char,
    name_len: usize,
    ticks_per_second: u64,
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tg_status {
    guard(|| {
        let q = WindowQuota::new(limit, window)?;
        // SAFETY: forwarded contract.
        let name = unsafe { name_str(name, name_len) }?;
        // SAFETY: forwarded contract.
        unsafe {
            write_text(buf, buf_len, out_len, |b| {
                header::write_ratelimit_policy_window(name, &q, ticks_per_second, b)
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::tg_outcome;

    #[test]
    fn header_name_macros_match_the_core() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/tollgate.h");
        let text = std::fs::read_to_string(path).expect("include/tollgate.h");
        for (name, value) in [
            ("SHOP_API_CALL_LIMIT", header::SHOP_API_CALL_LIMIT),
            ("RETRY_AFTER", header::RETRY_AFTER),
            ("RATELIMIT", header::RATELIMIT),
            ("RATELIMIT_POLICY", header::RATELIMIT_POLICY),
        ] {
            let line = format!("#define TG_HEADER_{name} \"{value}\"\n");
            assert!(text.contains(&line), "missing: {line}");
        }
    }

    #[test]
    fn values_are_terminated_and_a_short_buffer_reports_the_size_needed() {
        let d = tg_decision {
            outcome: tg_outcome::Allowed as u32,
            verdict: tg_outcome::Allowed as u32,
            flags: 0,
            reserved: 0,
            limit: 30,
            used: 22,
            remaining: 8,
            retry_after: 0,
            reset_after: 0,
        };
        let x: c_char = 120; // 'x'
        let mut buf = [x; 6];
        let mut len = 99usize;
        // SAFETY: valid local pointers and sizes.
        unsafe {
            let s = tg_header_shop_api_call_limit(&raw const d, buf.as_mut_ptr(), 5, &raw mut len);
            assert_eq!((s, len), (tg_status::BufferTooSmall, 6));
            assert!(buf.iter().all(|&c| c == x));
            let s = tg_header_shop_api_call_limit(&raw const d, buf.as_mut_ptr(), 6, &raw mut len);
            assert_eq!((s, len), (tg_status::Ok, 5));
            assert_eq!(core::ffi::CStr::from_ptr(buf.as_ptr()).to_bytes(), b"22/30");
            let s =
                tg_header_retry_after(&raw const d, 1000, core::ptr::null_mut(), 0, &raw mut len);
            assert_eq!((s, len), (tg_status::BufferTooSmall, 1));
        }
    }
}
